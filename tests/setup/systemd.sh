#!/usr/bin/env bash
# setup.sh under a real systemd, as on a VPS: tests/setup/e2e.sh proves the installer with --no-systemd (there is no
# systemd on the machines the tests run on); this boots one.
#
#   sudo tests/setup/systemd.sh
#
# The machine's own root is booted as a container (systemd-nspawn, Debian's systemd-container package) through an
# overlay whose changes live in a tmpfs and vanish at the end, with a network of its own: its PostgreSQL, Redis and
# Caddy neither see nor disturb the machine's, and nothing it installs stays. Inside, it proves what a VPS runs: the
# units from deploy/ under systemd (hardened, MemoryMax, the instances wanted by morpheus-shop.target); two instances
# behind Caddy; a second run that changes nothing; a rolling restart during which every call through Caddy is
# answered; backup and restore; scaling to 1 and to 3; stop and start; restarting the target; uninstall; and an
# upgrade from the layout before --instances (one morpheus-shop.service, PORT in the env file), when git can give
# that code. The container has no network: Bun's cache must already hold the packages (`bun install` has run here).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
readonly ROOT
readonly MNT=/mnt/morpheus-shop-systemd-test BASE="/Morpheus%20Private"
# Where the scripts run inside the container: the container's /tmp is its own.
readonly SHARED=/var/tmp/morpheus-shop-systemd-test
# The services of the machine the container may start: the shop's own. Every other enabled one is masked.
readonly KEEP="postgresql.service redis-server.service caddy.service"
NSPAWN_PID=""
CHECKS=0
STARTED=$SECONDS

say() { printf '\n--- %s\n' "$*"; }
ok() {
  CHECKS=$((CHECKS + 1))
  printf 'ok %d - %s\n' "$CHECKS" "$*"
}
fail() {
  printf '\nnot ok - %s\n' "$*" >&2
  exit 1
}
expect_eq() { # expect_eq ACTUAL EXPECTED WHAT
  [[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
  ok "$3"
}
expect_contains() { # expect_contains HAYSTACK NEEDLE WHAT
  [[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: ${1:0:800}"
  ok "$3"
}

container_init() { ps -eo pid=,ppid= | awk -v n="$NSPAWN_PID" '$2 == n {print $1; exit}'; }
# Runs a command in the container as root, with a login's PATH.
inside() {
  nsenter -t "$(container_init)" -m -u -i -n -p -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"
}
shop() { inside "$ROOT/setup.sh" "$@" </dev/null 2>&1; }
curl_in() { inside curl -sS --max-time 10 --cacert /var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt "$@"; }

cleanup() {
  local status=$?
  trap - EXIT
  set +e
  say "cleaning up"
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    local init
    init=$(container_init)
    # The machine is thrown away: no orderly shutdown is needed, and one can hang on a service that will not stop.
    [[ -n $init ]] && kill -KILL "$init"
    for ((i = 0; i < 50; i++)); do
      kill -0 "$NSPAWN_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$NSPAWN_PID" 2>/dev/null && kill -KILL "$NSPAWN_PID"
  fi
  mountpoint -q "$MNT/root" && umount "$MNT/root"
  mountpoint -q "$MNT" && umount "$MNT"
  rmdir "$MNT" 2>/dev/null
  rm -rf "$SHARED"
  if mountpoint -q "$MNT" 2>/dev/null; then
    printf 'cleanup: %s is still mounted\n' "$MNT" >&2
    status=1
  fi
  if ((status == 0)); then
    printf '\nPASS: %d checks in %ds, nothing left behind\n' "$CHECKS" "$((SECONDS - STARTED))"
  else
    printf '\nFAIL (status %d) after %ds\n' "$status" "$((SECONDS - STARTED))" >&2
  fi
  exit "$status"
}

# ---------------------------------------------------------------------------------------------------------------
say "preconditions"
((EUID == 0)) || fail "run as root"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is missing: apt-get install systemd-container"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || fail "the kernel has no overlay file system"
[[ ! -e $MNT ]] || fail "$MNT exists (an interrupted run?): umount $MNT/root $MNT; rmdir $MNT"
[[ -d /usr/lib/postgresql && -x /usr/bin/redis-server && -x /usr/bin/caddy ]] ||
  fail "PostgreSQL, Redis and Caddy must be installed on this machine (the container is this machine's root)"
ok "root, systemd-nspawn, overlayfs, PostgreSQL, Redis and Caddy"
trap cleanup EXIT

say "booting this machine's root under systemd, in a container with its own network"
mkdir -p "$MNT"
mount -t tmpfs -o size=4g,mode=755 tmpfs "$MNT"
mkdir -p "$MNT/upper" "$MNT/work" "$MNT/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$MNT/upper,workdir=$MNT/work" "$MNT/root"
masks=()
for unit in /etc/systemd/system/multi-user.target.wants/*.service; do
  [[ -e $unit ]] || continue
  [[ " $KEEP " == *" $(basename "$unit") "* ]] || masks+=("systemd.mask=$(basename "$unit")")
done
# The machine's Redis may have left its directory to root; the packaged service runs as redis and must write there.
[[ -d $MNT/root/var/lib/redis ]] && chown -R redis:redis "$MNT/root/var/lib/redis"
mkdir -p "$SHARED"
# The checkout is bound in at its own path: under /tmp (where CI may clone it) the container would see only its own
# empty /tmp. Read-only, since setup.sh only copies the code from it.
systemd-nspawn --quiet --keep-unit --register=no --link-journal=no --directory="$MNT/root" --private-network \
  --bind-ro="$ROOT" --machine=morpheus-shop-test --console=passive --boot -- "${masks[@]}" >"$SHARED/nspawn.log" 2>&1 &
NSPAWN_PID=$!
state=""
for ((i = 0; i < 120; i++)); do
  if [[ -n $(container_init) ]]; then
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] && break
  fi
  kill -0 "$NSPAWN_PID" 2>/dev/null || fail "the container did not boot: $(cat "$SHARED/nspawn.log")"
  sleep 0.5
done
[[ $state == running || $state == degraded ]] || fail "the container's systemd is '$state' after 60 s"
expect_eq "$(inside systemctl is-active postgresql redis-server caddy | paste -sd ' ')" "active active active" \
  "systemd $(inside systemctl --version | awk 'NR == 1 {print $2}') runs PostgreSQL, Redis and Caddy ($state)"

# ---------------------------------------------------------------------------------------------------------------
say "install: setup.sh --ip 127.0.0.1 --instances 2"
out=$(shop --ip 127.0.0.1 --yes --instances 2) || fail "setup.sh failed: $out"
printf '%s\n' "$out" | sed -n '/^What this run changed/,$p'
expect_contains "$out" "morpheus-shop.target enabled with morpheus-shop@3000.service morpheus-shop@3001.service" \
  "the target is enabled with two instances"
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3001 morpheus-shop.target | paste -sd ' ')" \
  "active active active" "both instances and the target are active"
property() { inside systemctl show "$1" -p "$2" --value; }
expect_eq "$(property morpheus-shop@3000 User) $(property morpheus-shop@3000 NoNewPrivileges) $(property morpheus-shop@3000 ProtectSystem)" \
  "morpheus yes strict" "the instance runs as morpheus, hardened"
memory_max=$(property morpheus-shop@3000 MemoryMax)
if ! [[ $memory_max =~ ^[0-9]+$ ]] || ((memory_max < 256 * 1048576 || memory_max > 1024 * 1048576)); then
  fail "MemoryMax of the instance: $memory_max"
fi
ok "with a memory limit of $((memory_max / 1048576)) MB"
expect_contains "$(property morpheus-shop@3001 Environment)" "PORT=3001" "each instance has its own port"
expect_contains "$(curl_in "https://127.0.0.1$BASE/healthz")" '"ok":true' "the shop answers through Caddy"
out=$(shop)
expect_contains "$out" "Nothing to change" "a second run changes nothing"

say "a rolling restart while calls come in through Caddy"
cat >"$SHARED/restart-with-calls.sh" <<'SCRIPT'
#!/usr/bin/env bash
# restart-with-calls.sh ROOT BASE: `setup.sh restart` while a loop calls through Caddy; prints "status:count ...".
root=$1 base=$2
c() { curl -sS --max-time 10 --cacert /var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt "$@"; }
rm -f /run/restart.done
(
  while [[ ! -e /run/restart.done ]]; do
    c -o /dev/null -w '%{http_code}\n' "https://127.0.0.1$base/healthz" || echo curl-failed
    c -o /dev/null -w '%{http_code}\n' -X POST -d key=NOPE -d uuid=PC "https://127.0.0.1$base/api/None/auth" ||
      echo curl-failed
  done
) >/run/calls &
"$root/setup.sh" restart </dev/null >/run/restart.log 2>&1 || {
  cat /run/restart.log
  exit 1
}
touch /run/restart.done
wait
sort /run/calls | uniq -c | awk '{print $2 ":" $1}' | paste -sd ' '
SCRIPT
chmod +x "$SHARED/restart-with-calls.sh"
calls=$(inside "$SHARED/restart-with-calls.sh" "$ROOT" "$BASE") || fail "setup.sh restart failed: $calls"
# A stopping instance serves on for SHUTDOWN_DRAIN_MS and the next waits for Caddy's probe, so the loop outlasts the
# per-key limit (120 a minute) on its one key: a 429 is the app's own answer. A lost call is a 502, 503 or curl-failed.
[[ $calls =~ ^200:[0-9]+\ 404:[0-9]+(\ 429:[0-9]+)?$ ]] || fail "calls during the restart: $calls"
ok "every call during the restart was answered (healthz 200, unknown product 404, or 429 past the key's limit): $calls"
[[ $(inside journalctl -u 'morpheus-shop@*' --no-pager -o cat | grep -c '"msg":"stopped"') -ge 2 ]] ||
  fail "the journal does not show both instances stopping gracefully"
ok "both instances stopped gracefully (the journal says \"stopped\")"

say "backup and restore"
out=$(shop backup) || fail "backup failed: $out"
backup=$(sed -n 's/^ *backup: \(.*\.tar\) (.*$/\1/p' <<<"$out")
out=$(shop restore "$backup" --yes) || fail "restore failed: $out"
expect_contains "$out" "Restored $backup" "restore stops every instance and starts them again"
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3001 | paste -sd ' ')" "active active" \
  "both instances run after the restore"

say "scaling"
out=$(shop --instances 1)
expect_contains "$out" "stopped the app process on port 3001" "--instances 1 stops the second instance"
expect_eq "$(inside systemctl is-enabled morpheus-shop@3001 2>&1 || true)" disabled "and disables it"
expect_contains "$(shop)" "Nothing to change" "the next run changes nothing"
out=$(shop --instances 3)
expect_contains "$out" "started the app on ports 3001 3002" "--instances 3 starts two more"
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3001 morpheus-shop@3002 | paste -sd ' ')" \
  "active active active" "all three run"
shop stop >/dev/null
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3002 2>&1 | paste -sd ' ')" "inactive inactive" \
  "setup.sh stop stops them"
shop start >/dev/null
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3002 | paste -sd ' ')" "active active" \
  "setup.sh start starts them"
inside systemctl restart morpheus-shop.target
expect_eq "$(inside systemctl is-active morpheus-shop@3000 morpheus-shop@3001 morpheus-shop@3002 | paste -sd ' ')" \
  "active active active" "restarting morpheus-shop.target restarts all three"

say "uninstall"
shop uninstall --purge --yes >/dev/null || fail "uninstall failed"
left=$(inside bash -c 'ls /etc/systemd/system | grep morpheus; systemctl list-units --all --no-legend "morpheus-shop*" | grep -v "not-found"' || true)
[[ -z $left ]] || fail "uninstall left: $left"
ok "uninstall --purge leaves no unit"

# ---------------------------------------------------------------------------------------------------------------
say "an upgrade from the layout before --instances"
previous=$(git -c safe.directory='*' -C "$ROOT" log --format=%H -1 --diff-filter=A -- 'deploy/morpheus-shop@.service' 2>/dev/null || true)
if [[ -z $previous ]] || ! git -c safe.directory='*' -C "$ROOT" cat-file -e "$previous^:setup.sh" 2>/dev/null; then
  printf '# no git history here: the upgrade from one morpheus-shop.service is not checked\n'
else
  mkdir -p "$SHARED/previous"
  git -c safe.directory='*' -C "$ROOT" archive "$previous^" | tar -x -C "$SHARED/previous"
  out=$(inside "$SHARED/previous/setup.sh" --ip 127.0.0.1 --yes </dev/null 2>&1) || fail "the previous setup.sh failed: $out"
  expect_eq "$(inside systemctl is-active morpheus-shop.service)" active "the previous version runs as morpheus-shop.service"
  out=$(shop --instances 2) || fail "the upgrade failed: $out"
  expect_contains "$out" "replaced morpheus-shop.service by morpheus-shop@3000.service" "the upgrade says it replaced the unit"
  expect_contains "$out" "env: PORT removed" "and removed PORT from the env file"
  expect_eq "$(inside bash -c 'systemctl is-active morpheus-shop.service; systemctl is-active morpheus-shop@3000 morpheus-shop@3001' |
    paste -sd ' ')" "inactive active active" "the single service is gone, two instances run"
  expect_contains "$(curl_in "https://127.0.0.1$BASE/healthz")" '"ok":true' "the upgraded shop answers through Caddy"
  expect_contains "$(shop)" "Nothing to change" "the run after the upgrade changes nothing"
fi
