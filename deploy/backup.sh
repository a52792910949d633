# shellcheck shell=bash
# shellcheck disable=SC2034 # HINT is read by setup.sh's error report
# Backup and restore of Morpheus Shop: `setup.sh backup [--output FILE] [--keep N]` and `setup.sh restore FILE`.
#
# Sourced by setup.sh (it defines functions only; run it through setup.sh, which checks the arguments, knows the
# installation's settings and manages the services). A backup is one tar file with everything a new server needs:
# database.dump (pg_dump custom format, which holds the uploaded builds too: docs/scaling.md#builds), data.tar (this
# server's copies of the builds) and manifest.txt. Settings such as the bot token
# and AnyPay keys live in the database; the secrets of /etc/morpheus-shop/env are made anew by setup.sh.

do_backup() { # do_backup FILE
  local file=$1 tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  HINT="pg_dump failed: is PostgreSQL running? (pg_lsclusters)"
  as_postgres pg_dump --format=custom --dbname="$DB_NAME" >"$tmp/database.dump"
  HINT="could not archive $DATA_DIR"
  # A build is written to DATA_DIR/builds/*.part (an upload, or a copy fetched from PostgreSQL) and renamed once whole
  # (src/shop/products/builds.ts): half a build is no use in a backup, and a file growing under tar fails the backup.
  tar -C "$DATA_DIR" --exclude='./builds/*.part' -cf "$tmp/data.tar" .
  {
    printf 'morpheus-shop backup\ncreated: %s\nhost: %s\ndatabase: %s\n' "$(date -u +%FT%TZ)" "$(hostname)" "$DB_NAME"
    printf 'code: %s\n' "$(cat "$APP_DIR/current/.source-version" 2>/dev/null || printf unknown)"
    printf 'pg_dump: %s\n' "$(pg_dump --version)"
  } >"$tmp/manifest.txt"
  mkdir -p "$(dirname "$file")"
  (umask 077 && tar -C "$tmp" -cf "$file.partial" manifest.txt database.dump data.tar)
  mv -f "$file.partial" "$file"
  rm -rf "$tmp"
  info "backup: $file ($(du -h "$file" | cut -f1))"
}

cmd_backup() {
  require_root
  require_installed
  load_state
  step "Backup" "see the error above"
  local file=${OPT_OUTPUT:-$BACKUP_DIR/$APP-$(date -u +%Y%m%d-%H%M%S).tar}
  do_backup "$file"
  local keep=${OPT_KEEP:-$BACKUPS_KEEP} old
  if ! [[ $keep =~ ^[0-9]+$ ]] || ((keep < 1)); then die "--keep must be a number ≥ 1"; fi
  while IFS= read -r old; do
    rm -f "$old"
    info "removed old backup $old"
  done < <(find "$BACKUP_DIR" -maxdepth 1 -name "$APP-*.tar" -type f -printf '%T@ %p\n' | sort -rn |
    tail -n +"$((keep + 1))" | cut -d' ' -f2-)
  ((QUIET)) && printf '%s\n' "$file"
  return 0
}

cmd_restore() {
  require_root
  require_installed
  load_state
  step "Checking the backup" "give a file made by 'setup.sh backup' (or a pg_dump -Fc dump)"
  [[ -n $RESTORE_FILE ]] || die "which backup? setup.sh restore FILE"
  [[ -r $RESTORE_FILE ]] || die "cannot read $RESTORE_FILE"
  local tmp dump data=""
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  local members
  members=$(tar -tf "$RESTORE_FILE" 2>/dev/null || true)
  if grep -qx 'database.dump' <<<"$members"; then
    tar -C "$tmp" -xf "$RESTORE_FILE"
    dump=$tmp/database.dump
    [[ -f $tmp/data.tar ]] && data=$tmp/data.tar
    [[ -f $tmp/manifest.txt ]] && sed 's/^/    /' "$tmp/manifest.txt"
  else
    dump=$RESTORE_FILE
  fi
  pg_restore --list "$dump" >/dev/null 2>&1 || die "$RESTORE_FILE holds no PostgreSQL dump"
  info "database dump OK${data:+, with uploaded builds}"

  if ((!ASSUME_YES)); then
    is_tty || die "restore replaces the shop's data" "pass --yes to confirm"
    local answer
    ask answer "Replace ALL of the shop's current data with this backup? Type yes"
    [[ $answer == yes ]] || die "cancelled" "nothing was changed"
  fi

  step "Safety backup of the current data" "the current data could not be saved, so nothing was restored"
  do_backup "$BACKUP_DIR/$APP-$(date -u +%Y%m%d-%H%M%S)-pre-restore.tar"

  step "Stopping the app (every process)" "$(app_log_hint)"
  stop_app

  step "Restoring the database $DB_NAME" "the dump did not restore; the safety backup above has the previous data"
  psql_admin -v db="$DB_NAME" <<<'drop database if exists :"db" with (force);'
  psql_admin -v db="$DB_NAME" <<<'create database :"db" owner :"db" encoding '"'UTF8'"' template template0;'
  psql_admin -v db="$DB_NAME" <<<'revoke all on database :"db" from public;'
  as_postgres pg_restore --no-owner --no-privileges --role="$DB_NAME" --exit-on-error --single-transaction \
    --dbname="$DB_NAME" <"$dump"
  info "restored $(psql_admin -d "$DB_NAME" -c "select count(*) from pg_tables where schemaname = 'public'") tables"

  if [[ -n $data ]]; then
    step "Restoring uploaded builds into $DATA_DIR" "check the disk space"
    find "$DATA_DIR" -mindepth 1 -delete
    tar -C "$DATA_DIR" -xf "$data" --no-same-owner
    chown -R "$SERVICE_USER:$SERVICE_USER" "$DATA_DIR"
  fi
  rm -rf "$tmp"

  step "Clearing cached answers in Redis" ""
  clear_cache

  step "Starting the app" "$(app_log_hint)"
  start_app
  printf '\nRestored %s. The panel logins and passwords are the ones in the backup.\n' "$RESTORE_FILE"
}

# The shop's keys in Redis start with REDIS_PREFIX ("mph:" unless the env file says otherwise; src/config.ts);
# after a restore they describe data that no longer exists, so they go. Best effort: they expire on their own anyway.
clear_cache() {
  load_env_file
  local url prefix
  url=$(env_value REDIS_URL)
  prefix=$(env_value REDIS_PREFIX)
  prefix=${prefix:-mph:}
  if ! [[ $prefix =~ ^[A-Za-z0-9_:.-]{1,64}$ ]]; then
    info "REDIS_PREFIX is not what the app accepts; nothing cleared"
  elif [[ $url =~ ^redis://(([^:@/]*):([^@/]*)@)?([^:/@]+)(:([0-9]+))?(/([0-9]+))?$ ]]; then
    local pass=${BASH_REMATCH[3]} host=${BASH_REMATCH[4]} port=${BASH_REMATCH[6]:-6379} db=${BASH_REMATCH[8]:-0}
    # One key a line: product names in keys may hold spaces.
    REDISCLI_AUTH=$pass redis-cli --no-auth-warning -h "$host" -p "$port" -n "$db" --scan --pattern "$prefix*" |
      REDISCLI_AUTH=$pass xargs -r -d '\n' -n 100 redis-cli --no-auth-warning -h "$host" -p "$port" -n "$db" del \
        >/dev/null || warn "could not clear Redis; cached entries expire on their own"
    info "cleared the shop's cached entries ($prefix*)"
  else
    info "REDIS_URL is not a plain redis:// URL; cached entries expire on their own"
  fi
}

