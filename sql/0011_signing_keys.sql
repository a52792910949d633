-- Ed25519 keys that sign every licence API answer (docs/licence-api.md#signed-answers). Kept here, not in a file or the environment, so that
-- every app process signs with the same keys and a backup restores them with the data they vouch for. The first key
-- is created by the migration runner (PostgreSQL cannot make Ed25519 keys). Several keys are active during a
-- rotation; a retired key keeps its id and public key for the record, and its private half is wiped.
create table signing_keys (
  key_id text primary key check (key_id ~ '^[0-9a-f]{16}$'),
  public_key bytea not null unique check (length(public_key) = 32),
  private_key bytea check (length(private_key) = 32),
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  check ((retired_at is null) = (private_key is not null))
);
