#!/usr/bin/env bash
# End-to-end test of setup.sh on this machine (root, Debian): a real installation with a real ACME certificate.
#
#   sudo tests/setup/e2e.sh
#
# Pebble (Debian's ACME test server) stands in for Let's Encrypt and "shop.test" in /etc/hosts stands in for the
# domain. setup.sh runs with --no-systemd (processes started directly), installs this checkout, and the test
# proves: Caddy got a certificate from pebble over ACME; https://shop.test/Morpheus%20Private/ serves the login page
# over it; the printed credentials log in through Caddy (CSRF field, Secure/HttpOnly/SameSite=Strict session cookie,
# the dashboard and every tab); the pages fit Caddy's CSP (no inline script, static files from 'self', and — when
# Debian's chromium is there — a real browser logs in, swaps pages with htmx and posts a form with no CSP violation);
# `setup.sh cli` works on the env file's database and Redis (its changes reach the running app through REDIS_PREFIX);
# the auth API answers through Caddy and the client IP cannot be spoofed; AnyPay's notification URL sees the client
# address Caddy puts in X-Forwarded-For; a 50 MB build goes up through the panel, 58 MiB is refused with 413; a second
# run keeps data and password and changes nothing; graceful restarts; --reset-admin; backup → a dump that restores
# into an empty database with the same rows; restore puts the data back; --ip; a failed and a good upgrade; two app
# processes balanced by Caddy (--instances 2), a rolling restart that loses no call, scaling to 1 and to 3; the
# PostgreSQL and Redis memory settings; the resident memory of the whole stack, idle and under 60 s of auth calls.
#
# It leaves the machine as it found it: `setup.sh uninstall --purge` removes the install, and the test stops pebble
# and its own Redis, restores /etc/hosts and Caddy's files. PostgreSQL is a cluster of the test's own (PGPORT; setup.sh
# tunes and restarts it), dropped at the end: the machine's cluster (5432) is not touched, and neither is its Redis
# (6379): the shop uses a throwaway redis-server with a password on a free port, passed with --redis-url.
# Needs free ports 80, 443, 2019 (Caddy's admin API), 14000 and 15000; it fails at once if any is taken. With
# E2E_LOAD_SECONDS=0 the load for the memory figures is skipped (they are then only the idle ones).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
readonly ROOT
readonly HOST=shop.test DB=morpheus_e2e BASE="/Morpheus%20Private"
readonly CADDY_USER_HOME=/var/lib/caddy CADDY_DATA=/var/lib/caddy/.local/share/caddy
readonly HOSTS_MARK="# morpheus-shop e2e test"
WORK=""
PEBBLE_PID="" REDIS_PID=""
PG_VERSION="" PG_CLUSTER=morpheus_e2e PG_CREATED=0
LOAD_SECONDS=${E2E_LOAD_SECONDS:-60}
INSTALLED=0
CADDY_DATA_EXISTED=0 CADDY_ENTRIES_BEFORE=""
CADDYFILE_SUM=""
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
  [[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: ${1:0:600}"
  ok "$3"
}

curl_shop() { curl --noproxy '*' -sS --max-time 20 --cacert "$WORK/pebble-root.pem" "$@"; }
psql_db() { (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d "${PSQL_DB:-$DB}" "$@"); }
setup() { "$ROOT/setup.sh" "$@" </dev/null; }

port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }
free_port() { # free_port FROM TO [COUNT] → the first of COUNT (default 1) consecutive free ports
  local p i count=${3:-1}
  for ((p = $1; p + count - 1 <= $2; p++)); do
    for ((i = 0; i < count; i++)); do port_free "$((p + i))" || continue 2; done
    printf '%s' "$p"
    return 0
  done
  fail "no $count free port(s) in a row between $1 and $2"
}

show_logs() {
  local f
  for f in /var/log/morpheus-shop/app@*.log /var/log/morpheus-shop/caddy.log "$WORK/pebble.log"; do
    [[ -f $f ]] || continue
    printf '\n===== last lines of %s\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

cleanup() {
  local status=$?
  trap - EXIT
  set +e
  ((status != 0)) && [[ -n $WORK ]] && show_logs
  say "cleaning up"
  if ((INSTALLED)) && [[ -d /etc/morpheus-shop ]]; then
    "$ROOT/setup.sh" uninstall --purge --yes </dev/null >"$WORK/uninstall.log" 2>&1 ||
      {
        cat "$WORK/uninstall.log" >&2
        status=1
      }
  fi
  ((PG_CREATED)) && pg_dropcluster --stop "$PG_VERSION" "$PG_CLUSTER" >/dev/null 2>&1
  [[ -n $PEBBLE_PID ]] && kill "$PEBBLE_PID" 2>/dev/null
  [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null
  [[ -s $WORK/redis-sandbox/redis.pid ]] && kill "$(cat "$WORK/redis-sandbox/redis.pid")" 2>/dev/null
  wait 2>/dev/null
  # In place, not by rename: in containers /etc/hosts is often a bind mount.
  if grep -qF "$HOSTS_MARK" /etc/hosts; then
    local kept
    kept=$(grep -vF "$HOSTS_MARK" /etc/hosts)
    printf '%s\n' "$kept" >/etc/hosts
  fi
  # Caddy's home: what pebble issued, and whatever Caddy created there that was not there before the test.
  ((CADDY_DATA_EXISTED)) &&
    rm -rf "$CADDY_DATA/certificates/127.0.0.1-14000-dir" "$CADDY_DATA/acme/127.0.0.1-14000-dir" \
      "$CADDY_DATA/certificates/local/127.0.0.1"
  local entry
  for entry in "$CADDY_USER_HOME"/.[!.]* "$CADDY_USER_HOME"/*; do
    [[ -e $entry && $'\n'$CADDY_ENTRIES_BEFORE$'\n' != *$'\n'$entry$'\n'* ]] && rm -rf "$entry"
  done
  if [[ -n $CADDYFILE_SUM && $(sha256sum </etc/caddy/Caddyfile) != "$CADDYFILE_SUM" ]]; then
    printf 'cleanup: /etc/caddy/Caddyfile differs from before the test\n' >&2
    status=1
  fi
  id -u morpheus >/dev/null 2>&1 && {
    printf 'cleanup: user morpheus still exists\n' >&2
    status=1
  }
  [[ -n $PG_VERSION && -e /etc/postgresql/$PG_VERSION/$PG_CLUSTER ]] && {
    printf 'cleanup: the PostgreSQL cluster %s/%s still exists\n' "$PG_VERSION" "$PG_CLUSTER" >&2
    status=1
  }
  [[ -n $WORK ]] && rm -rf "$WORK"
  if ((status == 0)); then
    printf '\nPASS: %d checks in %ds, machine restored\n' "$CHECKS" "$((SECONDS - STARTED))"
  else
    printf '\nFAIL (status %d) after %ds\n' "$status" "$((SECONDS - STARTED))" >&2
  fi
  exit "$status"
}

# ---------------------------------------------------------------------------------------------------------------
say "preconditions"
((EUID == 0)) || fail "run as root (it installs the shop on this machine)"
[[ -f /etc/debian_version ]] || fail "needs Debian or Ubuntu"
for tool in caddy pebble redis-server psql pg_restore pg_createcluster openssl curl bun wrk; do
  command -v "$tool" >/dev/null ||
    fail "$tool is not installed (apt-get install -y caddy pebble redis-server postgresql wrk)"
done
PG_VERSION=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
[[ ! -e /etc/postgresql/$PG_VERSION/$PG_CLUSTER ]] ||
  fail "the PostgreSQL cluster $PG_VERSION/$PG_CLUSTER exists (interrupted run?): pg_dropcluster --stop $PG_VERSION $PG_CLUSTER"
[[ ! -e /etc/morpheus-shop ]] || fail "Morpheus Shop is installed on this machine (/etc/morpheus-shop); not touching it"
for port in 80 443 2019 14000 15000; do
  port_free "$port" || fail "port $port is taken: $(ss -Hltnp "sport = :$port")"
done
grep -qF "$HOSTS_MARK" /etc/hosts && fail "/etc/hosts still has the test's line (interrupted run?): remove it"
ok "root, tools present, ports 80/443/2019/14000/15000 free, no existing install"

WORK=$(mktemp -d /tmp/morpheus-e2e.XXXXXX)
chmod 755 "$WORK"
[[ -d $CADDY_DATA ]] && CADDY_DATA_EXISTED=1
CADDY_ENTRIES_BEFORE=$(find "$CADDY_USER_HOME" -mindepth 1 -maxdepth 1 | sort)
CADDYFILE_SUM=$(sha256sum </etc/caddy/Caddyfile)
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------------------------
say "pebble (ACME test CA), a Redis for the shop, $HOST in /etc/hosts"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pebble-listener -keyout "$WORK/pebble-key.pem" \
  -out "$WORK/pebble-cert.pem" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
cat >"$WORK/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$WORK/pebble-cert.pem", "privateKey": "$WORK/pebble-key.pem",
  "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$WORK/pebble.json" >"$WORK/pebble.log" 2>&1 &
PEBBLE_PID=$!
for ((i = 0; i < 50; i++)); do
  curl --noproxy '*' -fsS --cacert "$WORK/pebble-cert.pem" -o /dev/null https://127.0.0.1:14000/dir 2>/dev/null && break
  sleep 0.2
done
curl --noproxy '*' -fsS --cacert "$WORK/pebble-cert.pem" -o "$WORK/pebble-root.pem" https://127.0.0.1:15000/roots/0 ||
  fail "pebble did not start: $(cat "$WORK/pebble.log")"
ok "pebble answers on :14000; its issuing root fetched from :15000/roots/0"

REDIS_PORT=$(free_port 6390 6420)
REDIS_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
redis_shop() { REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --no-auth-warning -p "$REDIS_PORT" "$@"; }
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$REDIS_PASSWORD" --save '' --appendonly no \
  --daemonize no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
# Three in a row: the install runs two app processes, and a later run scales to three. Below the ephemeral ports and
# away from the usual ones, so that nothing else on a shared machine takes one while an instance restarts.
APP_PORT=$(free_port 29170 29260 3)
APP_PORT2=$((APP_PORT + 1))
printf '127.0.0.1 %s %s\n' "$HOST" "$HOSTS_MARK" >>/etc/hosts
ok "redis on 127.0.0.1:$REDIS_PORT (password), app ports $APP_PORT and $APP_PORT2, $HOST → 127.0.0.1"

PG_PORT=$(free_port 5480 5520)
pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" --start >"$WORK/pg-cluster.log" 2>&1 || {
  cat "$WORK/pg-cluster.log"
  fail "pg_createcluster failed"
}
PG_CREATED=1
# Every psql, pg_dump and pg_restore below and in setup.sh reaches this cluster.
export PGPORT=$PG_PORT
ok "a PostgreSQL $PG_VERSION cluster of the test's own on port $PG_PORT"

# ---------------------------------------------------------------------------------------------------------------
say "setup.sh's Redis step, on a sandboxed redis-server (the machine's Redis is not touched)"
# The installs below use --redis-url, so this is where the default path (configure the local Redis) is proven:
# a server as apt leaves it in a container (running, no password, all interfaces) gets a password, loopback only.
SANDBOX=$WORK/redis-sandbox
SANDBOX_PORT=$(free_port 6421 6450)
install -d -o redis -g redis "$SANDBOX"
sed -e "s|^port .*|port $SANDBOX_PORT|" -e "s|^pidfile .*|pidfile $SANDBOX/redis.pid|" \
  -e "s|^logfile .*|logfile $SANDBOX/redis.log|" -e "s|^dir .*|dir $SANDBOX|" -e 's|^bind .*|bind 0.0.0.0|' \
  -e '/^requirepass/d' -e '/^unixsocket/d' /etc/redis/redis.conf >"$SANDBOX/redis.conf"
chown redis:redis "$SANDBOX/redis.conf"
setpriv --reuid=redis --regid=redis --init-groups -- redis-server "$SANDBOX/redis.conf" --daemonize yes
redis_step() {
  (
    # shellcheck source=/dev/null # sourcing only defines setup.sh's functions
    source "$ROOT/setup.sh"
    # shellcheck disable=SC2034 # read by setup_redis
    REDIS_CONF=$SANDBOX/redis.conf SERVICE_MODE=direct REDIS_MODE=local
    setup_redis
    printf '%s\n' "$REDIS_URL" >"$SANDBOX/url"
  )
}
redis_step >"$WORK/redis-step1.log" 2>&1 || {
  cat "$WORK/redis-step1.log"
  fail "setup_redis failed on the sandbox"
}
SANDBOX_PASSWORD=$(sed -n 's|^redis://:\([0-9a-f]*\)@127.0.0.1:'"$SANDBOX_PORT"'/0$|\1|p' "$SANDBOX/url")
[[ ${#SANDBOX_PASSWORD} -ge 32 ]] || fail "setup_redis gave no REDIS_URL with a password: $(cat "$SANDBOX/url")"
expect_contains "$(redis-cli -p "$SANDBOX_PORT" ping 2>&1)" NOAUTH "Redis now refuses clients without the password"
expect_eq "$(REDISCLI_AUTH=$SANDBOX_PASSWORD redis-cli --no-auth-warning -p "$SANDBOX_PORT" ping)" PONG \
  "and answers with the password from REDIS_URL"
expect_eq "$(ss -Hltn "sport = :$SANDBOX_PORT" | awk '{print $4}' | sort | paste -sd ' ')" \
  "127.0.0.1:$SANDBOX_PORT [::1]:$SANDBOX_PORT" "Redis listens on loopback only"
redis_mb=$(($(awk '$1 == "MemTotal:" {print $2}' /proc/meminfo) / 1024 / 16))
redis_mb=$((redis_mb < 32 ? 32 : redis_mb > 256 ? 256 : redis_mb))
sandbox_config() { REDISCLI_AUTH=$SANDBOX_PASSWORD redis-cli --no-auth-warning -p "$SANDBOX_PORT" config get "$1" | tail -n 1; }
expect_eq "$(sandbox_config maxmemory) $(sandbox_config maxmemory-policy)" "$((redis_mb * 1024 * 1024)) volatile-ttl" \
  "Redis is capped at a sixteenth of the RAM (${redis_mb} MB), keys nearest their expiry evicted first"
redis_step >"$WORK/redis-step2.log" 2>&1 || {
  cat "$WORK/redis-step2.log"
  fail "setup_redis failed the second time"
}
expect_eq "$(cat "$SANDBOX/url")" "redis://:$SANDBOX_PASSWORD@127.0.0.1:$SANDBOX_PORT/0" "a second run keeps the Redis password"
[[ $(cat "$WORK/redis-step2.log") != *changed:* ]] || fail "the second Redis step changed something"
ok "and changes nothing"
REDISCLI_AUTH=$SANDBOX_PASSWORD redis-cli --no-auth-warning -p "$SANDBOX_PORT" shutdown nosave >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------------------------------
say "first run: setup.sh --domain $HOST --instances 2"
INSTALLED=1
set +e
setup --domain "$HOST" --email ops@shop.test --yes --no-systemd --source "$ROOT" --port "$APP_PORT" --instances 2 \
  --db-name "$DB" --redis-url "redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0" \
  --acme-ca https://127.0.0.1:14000/dir --acme-ca-root "$WORK/pebble-cert.pem" >"$WORK/run1.log" 2>&1
status=$?
set -e
cat "$WORK/run1.log"
expect_eq "$status" 0 "setup.sh exits 0"
LOGIN=$(sed -n 's/^  login: *//p' "$WORK/run1.log")
PASSWORD=$(sed -n 's/^  password: *//p' "$WORK/run1.log")
[[ $LOGIN =~ ^[A-Za-z0-9._-]+$ && ${#PASSWORD} -ge 16 ]] || fail "no login/password printed"
ok "printed the panel login ($LOGIN) and a password"
expect_contains "$(cat "$WORK/run1.log")" "panel:          https://$HOST$BASE/" "printed the panel URL"
expect_contains "$(cat "$WORK/run1.log")" "https://$HOST$BASE/payments/anypay" "printed AnyPay's notification URL"

say "HTTPS from pebble over ACME"
[[ -n $(find "$CADDY_DATA/certificates/127.0.0.1-14000-dir/$HOST" -name "$HOST.crt" 2>/dev/null) ]] ||
  fail "Caddy stored no certificate from the pebble directory"
ok "Caddy stored a certificate for $HOST obtained from https://127.0.0.1:14000/dir"
issuer=$(openssl s_client -connect 127.0.0.1:443 -servername "$HOST" </dev/null 2>/dev/null | openssl x509 -noout -issuer)
expect_contains "$issuer" "Pebble" "the certificate served for $HOST is issued by pebble ($issuer)"
health=$(curl_shop "https://$HOST$BASE/healthz")
expect_contains "$health" '"ok":true' "https://$HOST$BASE/healthz verifies against pebble's root and is healthy"
expect_contains "$health" '"redis":"ok"' "the app reaches its Redis"

say "PostgreSQL sized for the machine"
pg_mb=$(($(awk '$1 == "MemTotal:" {print $2}' /proc/meminfo) / 1024 / 8))
pg_mb=$((pg_mb < 32 ? 32 : pg_mb > 1024 ? 1024 : pg_mb))
expect_eq "$(PSQL_DB=postgres psql_db -c "select setting::bigint * 8 / 1024 from pg_settings where name = 'shared_buffers'")" \
  "$pg_mb" "shared_buffers is an eighth of the RAM, 32 MB to 1 GB (${pg_mb} MB)"
expect_contains "$(cat "$WORK/run1.log")" "restarted PostgreSQL $PG_VERSION/$PG_CLUSTER for shared_buffers" \
  "setup.sh restarted PostgreSQL for it, and says so"
[[ -f /etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/50-morpheus-shop.conf ]] || fail "no conf.d/50-morpheus-shop.conf"
ok "the settings are in conf.d/50-morpheus-shop.conf"

say "two app processes behind Caddy"
expect_contains "$(cat "$WORK/run1.log")" "started the app on ports $APP_PORT $APP_PORT2" "setup.sh started two app processes"
for port in "$APP_PORT" "$APP_PORT2"; do
  pid=$(cat "/run/morpheus-shop/app@$port.pid")
  kill -0 "$pid" || fail "the app process on port $port (pid $pid) is not running"
  expect_contains "$(curl --noproxy '*' -sS --max-time 10 "http://127.0.0.1:$port$BASE/healthz")" '"ok":true' \
    "the process on 127.0.0.1:$port is healthy"
done
expect_contains "$(cat /etc/caddy/Caddyfile)" "reverse_proxy 127.0.0.1:$APP_PORT 127.0.0.1:$APP_PORT2 {" \
  "Caddy balances across both"
grep -q '^PORT=' /etc/morpheus-shop/env && fail "the env file still has a PORT line: $(grep '^PORT=' /etc/morpheus-shop/env)"
ok "the env file has no PORT: each process gets its own"
# Requests to a path of their own: each process logs the ones it answers.
marker="e2e-balance-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
for ((i = 0; i < 24; i++)); do curl_shop -o /dev/null "https://$HOST$BASE/$marker"; done
served=()
for port in "$APP_PORT" "$APP_PORT2"; do served+=("$(grep -c "\"path\":\"$BASE/$marker\"" "/var/log/morpheus-shop/app@$port.log" || true)"); done
((served[0] > 0 && served[1] > 0 && served[0] + served[1] == 24)) ||
  fail "24 requests through Caddy were not shared by both processes: ${served[*]}"
ok "24 requests through Caddy were shared by both processes (${served[0]} and ${served[1]})"

say "redirects and what is served outside the panel"
expect_eq "$(curl_shop -o /dev/null -w '%{http_code} %{redirect_url}' "https://$HOST/Morpheus%20Private")" \
  "308 https://$HOST$BASE/" "/Morpheus%20Private without the slash redirects to the panel"
expect_eq "$(curl_shop -o /dev/null -w '%{http_code}' "https://$HOST/")" 404 "nothing is served outside $BASE/"
expect_eq "$(curl --noproxy '*' -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://$HOST$BASE/healthz")" \
  "308 https://$HOST$BASE/healthz" "plain HTTP redirects to HTTPS"

say "security headers"
headers=$(curl_shop -o /dev/null -D - "https://$HOST$BASE/healthz" | tr -d '\r')
expect_contains "$headers" "strict-transport-security: max-age=31536000" "HSTS"
expect_contains "$headers" "content-security-policy: default-src 'self'; script-src 'self';" "CSP without unsafe-eval"
expect_contains "$headers" "x-frame-options: DENY" "X-Frame-Options DENY"
expect_contains "$headers" "x-content-type-options: nosniff" "nosniff"
expect_contains "$headers" "referrer-policy: same-origin" "Referrer-Policy"
[[ $headers != *"server: Caddy"* ]] || fail "the Server header is still sent"
ok "no Server header"

say "credentials"
verify_password() { # verify_password LOGIN PASSWORD → exit 0 when it is the account's password
  local hash
  hash=$(psql_db -c "select password_hash from panel_accounts where login = '$1'")
  [[ -n $hash ]] || return 1
  PW=$2 HASH=$hash bun -e 'process.exit((await Bun.password.verify(process.env.PW, process.env.HASH)) ? 0 : 1)'
}
verify_password "$LOGIN" "$PASSWORD" || fail "the printed password is not the panel account's"
ok "the printed password is the password of panel account $LOGIN"
expect_eq "$(stat -c '%a %U:%G' /etc/morpheus-shop/env)" "640 root:morpheus" "the env file is 0640 root:morpheus"

# ---------------------------------------------------------------------------------------------------------------
say "the operator CLI: setup.sh cli, with the env file's database, Redis and Redis prefix"
# Lines an operator adds to the env file (setup.sh keeps them): a Redis prefix of the shop's own, which the CLI must
# use too or running apps never hear of its changes, and AnyPay settings for the notification checks further down
# (127.0.0.2 stands in for AnyPay's address: it can reach Caddy on this machine without being Caddy).
SHOP_PREFIX=e2e-shop:
ANYPAY_MERCHANT=4242
ANYPAY_SECRET=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "REDIS_PREFIX=$SHOP_PREFIX" "ANYPAY_ALLOWED_IPS=127.0.0.2" "ANYPAY_MERCHANT_ID=$ANYPAY_MERCHANT" \
  "ANYPAY_SECRET_KEY=$ANYPAY_SECRET" >>/etc/morpheus-shop/env
"$ROOT/setup.sh" restart >"$WORK/restart-env.log" 2>&1 || {
  cat "$WORK/restart-env.log"
  fail "setup.sh restart after adding lines to the env file failed"
}
shop_cli() { "$ROOT/setup.sh" cli "$@"; }
out=$(shop_cli product:add "Sc 12345" --description e2e </dev/null)
expect_contains "$out" "auth API: https://$HOST$BASE/api/Sc%2012345/auth" "cli product:add prints the product's auth API URL"
expect_eq "$(psql_db -c "select description from products where name = 'Sc 12345'")" e2e \
  "the product is in the shop's database (not in an embedded one)"
PRODUCT_ID=$(psql_db -c "select id from products where name = 'Sc 12345'")
generated=$(shop_cli keys:generate "Sc 12345" 30 3 </dev/null)
expect_eq "$(grep -cE '^MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$' <<<"$generated")" 3 "cli keys:generate prints the keys"
shop_cli keys:generate "Sc 12345" 7 3 </dev/null >/dev/null
KEY=$(shop_cli keys:issue "Sc 12345" 30 </dev/null)
[[ $KEY =~ ^MPH-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$ ]] || fail "cli keys:issue printed no key: $KEY"
expect_eq "$(psql_db -c "select state from keys where key = '$KEY'")" sold "cli keys:issue sells a key ($KEY)"
expect_eq "$(printf 'E2E-IMPORTED-1\nE2E-IMPORTED-2\n' | shop_cli keys:import "Sc 12345" 90)" "imported 2, duplicates 0" \
  "cli keys:import reads the keys from stdin"
mkdir -m 700 "$WORK/operator"
printf 'PK\003\004small build' >"$WORK/operator/first build.zip"
out=$(cd "$WORK/operator" && shop_cli build:upload "Sc 12345" "./first build.zip" </dev/null)
expect_contains "$out" "build uploaded: first build.zip, 15 bytes" \
  "cli build:upload takes a path relative to the operator's directory, in a directory only root can read"
set +e
out=$(shop_cli keys:issue "Sc 12345" 31 </dev/null 2>&1)
status=$?
set -e
expect_eq "$status" 2 "a CLI usage error exits 2"
expect_contains "$out" "days must be one of" "and says why"
[[ $out != *FAILED* ]] || fail "a CLI error got setup.sh's step report as well: $out"
ok "without setup.sh's step report on top"
[[ ! -e /var/lib/morpheus-shop/pglite ]] || fail "a CLI call opened an embedded database in DATA_DIR"
ok "no CLI call opened an embedded database in DATA_DIR"

# ---------------------------------------------------------------------------------------------------------------
say "the panel through Caddy: the login page, a real login, the dashboard"
JAR=$WORK/cookies.txt
code=$(curl_shop -c "$JAR" -D "$WORK/login.headers" -o "$WORK/login.html" -w '%{http_code}' "https://$HOST$BASE/")
expect_eq "$code" 200 "https://$HOST$BASE/ answers 200 over pebble's certificate"
expect_contains "$(cat "$WORK/login.html")" 'id="login-form"' "it is the panel's login page"
expect_contains "$(cat "$WORK/login.html")" 'type="password"' "with a password field"
csrf_of() { grep -o 'name="_csrf" value="[^"]*"' "$1" | head -n 1 | sed 's/.*value="\([^"]*\)"/\1/'; }
LOGIN_CSRF=$(csrf_of "$WORK/login.html")
[[ -n $LOGIN_CSRF ]] || fail "the login page has no _csrf field"
panel_login() { # panel_login PASSWORD → "status redirect", headers in $WORK/login-post.headers
  curl_shop -b "$JAR" -c "$JAR" -D "$WORK/login-post.headers" -o "$WORK/login-post.html" \
    -w '%{http_code} %{redirect_url}' --data-urlencode "login=$LOGIN" --data-urlencode "password=$1" \
    --data-urlencode "_csrf=$LOGIN_CSRF" --data-urlencode "next=" "https://$HOST$BASE/login"
}
expect_eq "$(panel_login "not-$PASSWORD")" "401 " "a wrong password is refused (401)"
grep -qi '^set-cookie: mph_session=[^;]' "$WORK/login-post.headers" && fail "a wrong password got a session cookie"
LOGIN_CSRF=$(csrf_of "$WORK/login-post.html")
expect_eq "$(panel_login "$PASSWORD")" "303 https://$HOST$BASE/" "the printed credentials log in through Caddy (303 to the dashboard)"
session_cookie=$(tr -d '\r' <"$WORK/login-post.headers" | grep -i '^set-cookie: mph_session=' | tail -n 1)
cookie_attrs=$(tr '[:upper:]' '[:lower:]' <<<"${session_cookie#*;}" | tr ';' '\n' | sed 's/^ *//' | grep -v '^$' |
  grep -Ev '^(max-age|expires)=' | sort | paste -sd ' ')
expect_eq "$cookie_attrs" "httponly path=/morpheus%20private samesite=strict secure" \
  "the session cookie is Secure, HttpOnly, SameSite=Strict, Path=/Morpheus%20Private"
code=$(curl_shop -b "$JAR" -D "$WORK/dashboard.headers" -o "$WORK/dashboard.html" -w '%{http_code}' "https://$HOST$BASE/")
expect_eq "$code" 200 "with the session the dashboard answers 200"
dashboard=$(cat "$WORK/dashboard.html")
[[ $dashboard == *'class="topbar"'* && $dashboard == *"$LOGIN"* && $dashboard == *'<nav class="tabs"'* ]] ||
  fail "the dashboard is not the panel's page: ${dashboard:0:400}"
ok "it is the panel's dashboard, for $LOGIN"
PANEL_CSRF=$(csrf_of "$WORK/dashboard.html")
[[ -n $PANEL_CSRF ]] || fail "the dashboard has no CSRF token"
for tab in settings admins users products orders account "products/$PRODUCT_ID"; do
  code=$(curl_shop -b "$JAR" -o "$WORK/tab-${tab//\//-}.html" -w '%{http_code}' "https://$HOST$BASE/$tab")
  [[ $code == 200 ]] || fail "$BASE/$tab answered $code through Caddy"
done
ok "every tab, the account page and the product's page answer 200 through Caddy"

say "the panel under Caddy's Content-Security-Policy"
header_values() { tr -d '\r' <"$1" | grep -i "^$2:" | sed 's/^[^:]*: *//' || true; }
for page in login dashboard; do
  csp=$(header_values "$WORK/$page.headers" content-security-policy)
  [[ $(grep -c . <<<"$csp") == 1 ]] || fail "$page: expected one Content-Security-Policy, got: $csp"
  expect_eq "$(tr ';' '\n' <<<"$csp" | sed 's/^ *//' | grep '^script-src')" "script-src 'self'" \
    "$page page: one CSP, scripts from 'self' only"
  for name in x-frame-options x-content-type-options referrer-policy strict-transport-security; do
    [[ $(header_values "$WORK/$page.headers" "$name" | grep -c .) == 1 ]] ||
      fail "$page: $name is sent $(header_values "$WORK/$page.headers" "$name" | grep -c .) times (app and Caddy both?)"
  done
  ok "$page page: X-Frame-Options, nosniff, Referrer-Policy and HSTS once each"
done
pages=("$WORK/login.html" "$WORK/dashboard.html" "$WORK"/tab-*.html)
for f in "${pages[@]}"; do
  found=$(grep -oiE '<script[^>]*>' "$f" | grep -viE '[[:space:]]src=' || true)
  found+=$(grep -oiE '<style[[:space:]>]|[[:space:]]on[a-z]+=|hx-on|javascript:|="js:' "$f" || true)
  [[ -z $found ]] || fail "$(basename "$f") has what the CSP blocks (inline script or style, handlers, js: values): $found"
done
ok "no inline <script>, <style>, on…= handlers, hx-on or js: values in the ${#pages[@]} panel pages"
if grep -q ' style="' "${pages[@]}"; then
  expect_contains "$(header_values "$WORK/dashboard.headers" content-security-policy)" "style-src-attr 'unsafe-inline'" \
    "the pages' style attributes are allowed by the CSP"
fi
assets=$(grep -ohE '(src|href)="/Morpheus%20Private/static/[^"]*"' "$WORK/login.html" "$WORK/dashboard.html" |
  sed -E 's/^[a-z]+="(.*)"$/\1/' | sort -u)
for wanted in htmx.min.js panel.css; do
  [[ $assets == *"/static/$wanted"* ]] || fail "the panel's pages do not load static/$wanted: $assets"
done
while IFS= read -r asset; do
  name=${asset#*/static/}
  name=${name%%\?*}
  code=$(curl_shop -D "$WORK/asset.headers" -o "$WORK/asset" -w '%{http_code} %{content_type}' "https://$HOST$asset")
  [[ $code == "200 text/javascript"* || $code == "200 text/css"* || $code == "200 image/"* ]] || fail "$asset through Caddy: $code"
  cmp -s "$WORK/asset" "/opt/morpheus-shop/current/static/$name" || fail "$asset through Caddy is not the release's file"
  [[ $(header_values "$WORK/asset.headers" x-content-type-options | grep -c .) == 1 ]] || fail "$asset: nosniff twice"
done <<<"$assets"
ok "the pages' scripts, styles and icons load from 'self' through Caddy: $(sed 's|.*/static/||; s|?.*||' <<<"$assets" | paste -sd ' ')"
if [[ -x /usr/bin/chromium && -d $ROOT/node_modules/playwright-core ]]; then
  DESCRIPTION="Saved in chromium through Caddy $(date +%s)"
  (cd "$ROOT" && bun tests/setup/panel-browser.ts "https://$HOST$BASE/" "$LOGIN" "$PASSWORD" "Sc 12345" "$DESCRIPTION") \
    >"$WORK/browser.log" 2>&1 || {
    cat "$WORK/browser.log"
    fail "the panel in chromium through Caddy had problems"
  }
  cat "$WORK/browser.log"
  ok "in chromium: login, boosted tabs and an htmx post work under Caddy's CSP with no violation"
  expect_eq "$(psql_db -c "select description from products where name = 'Sc 12345'")" "$DESCRIPTION" \
    "the description saved in the browser is in the database"
else
  printf '# no chromium (or node_modules/playwright-core): the browser check under the CSP is skipped\n'
fi

# ---------------------------------------------------------------------------------------------------------------
say "the auth API through Caddy"
body=$(curl_shop -X POST -H 'content-type: application/json' -d '{"key":"K","uuid":"U"}' \
  -w ' %{http_code}' "https://$HOST$BASE/api/NoSuchProduct/auth")
expect_eq "$body" '{"success":false,"message":"Product not found"} 404' "unknown product → 404 Product not found"
body=$(curl_shop -X POST -H 'content-type: application/json' -H 'X-Forwarded-For: 203.0.113.9' \
  -d "{\"key\":\"$KEY\",\"uuid\":\"PC-1\"}" -w ' %{http_code}' "https://$HOST$BASE/api/Sc%2012345/auth")
expect_contains "$body" '"success":true,"message":"OK","days":29,"hours":23' "a sold key activates (product name with a space)"
expect_eq "${body##* }" 200 "activation answers 200"
expect_eq "$(psql_db -c "select last_auth_ip from keys where key = '$KEY'")" 127.0.0.1 \
  "the app sees the real client address, not a spoofed X-Forwarded-For"
body=$(curl_shop "https://$HOST$BASE/api/Sc%2012345/auth?key=$KEY&hwid=PC-2" -w ' %{http_code}')
expect_eq "$body" '{"success":false,"message":"HWID mismatch"} 403' "another PC → 403 HWID mismatch (GET with query)"
EXPIRES=$(psql_db -c "select expires_at from keys where key = '$KEY'")
[[ -n $(redis_shop --scan --pattern "$SHOP_PREFIX*") ]] || fail "the app keeps nothing under REDIS_PREFIX=$SHOP_PREFIX"
ok "the app's Redis keys are under the env file's REDIS_PREFIX ($SHOP_PREFIX)"

# The app keeps a loader's answer for 10 s; a CLI change reaches it only through Redis, under the same prefix. So
# right after `cli keys:reset-hwid`, a second PC must be able to bind: a CLI without REDIS_URL or REDIS_PREFIX would
# leave the app answering "HWID mismatch" from its memory. An attempt slower than those 10 s proves nothing; retried.
announced=""
for attempt in 1 2 3; do
  key=$(shop_cli keys:issue "Sc 12345" 7 </dev/null)
  start=$(date +%s%N)
  activate=$(curl_shop "https://$HOST$BASE/api/Sc%2012345/auth?key=$key&hwid=PC-A")
  mismatch=$(curl_shop "https://$HOST$BASE/api/Sc%2012345/auth?key=$key&hwid=PC-B")
  shop_cli keys:reset-hwid "$key" </dev/null >/dev/null
  rebind=$(curl_shop "https://$HOST$BASE/api/Sc%2012345/auth?key=$key&hwid=PC-B")
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  [[ $activate == *'"success":true'* && $mismatch == *'HWID mismatch'* ]] ||
    fail "setting up the announcement check: $activate / $mismatch"
  if ((elapsed_ms < 9000)); then
    announced="$rebind (${elapsed_ms} ms)"
    break
  fi
  printf '# attempt %d took %d ms, longer than the app keeps an answer; again\n' "$attempt" "$elapsed_ms"
done
[[ -n $announced ]] || fail "three attempts were slower than 9 s: the machine is too busy to prove the announcement"
expect_contains "$announced" '"success":true' "a CLI change reaches the running app at once through Redis (re-bound in $announced)"

# ---------------------------------------------------------------------------------------------------------------
say "AnyPay's notification URL through Caddy"
anypay_fields() { # anypay_fields SIGN → form fields of a paid notification for an order that does not exist
  printf '%s\n' merchant_id=$ANYPAY_MERCHANT transaction_id=e2e-1 pay_id=999999 amount=299.00 currency=RUB \
    profit=290.50 email=buyer@example.com method=card status=paid test=0 "sign=$1"
}
anypay() { # anypay SOURCE_ADDRESS SIGN [curl options] → "body status content-type"
  local from=$1 sign=$2 fields=() field
  shift 2
  while IFS= read -r field; do fields+=(--data-urlencode "$field"); done < <(anypay_fields "$sign")
  curl_shop --interface "$from" "${fields[@]}" "$@" -w ' %{http_code} %{content_type}' "https://$HOST$BASE/payments/anypay"
}
SIGN=$(printf '%s' "RUB:299.00:999999:$ANYPAY_MERCHANT:paid:$ANYPAY_SECRET" | sha256sum | cut -d' ' -f1)
expect_eq "$(anypay 127.0.0.2 "$SIGN")" "Rejected: no order with this pay_id 404 text/plain; charset=utf-8" \
  "a signed notification from an allowed address (127.0.0.2 via Caddy's X-Forwarded-For) gets to the order lookup"
expect_eq "$(anypay 127.0.0.2 "${SIGN//[0-9]/0}")" "Rejected: signature does not match 403 text/plain; charset=utf-8" \
  "a wrong signature from the allowed address is refused"
expect_eq "$(anypay 127.0.0.3 "$SIGN")" "Rejected: source address is not an AnyPay address 403 text/plain; charset=utf-8" \
  "a notification from an address outside the allow-list is refused with 403 plain text"
expect_eq "$(anypay 127.0.0.1 "$SIGN" -H 'X-Forwarded-For: 127.0.0.2')" \
  "Rejected: source address is not an AnyPay address 403 text/plain; charset=utf-8" \
  "claiming an allowed address in X-Forwarded-For does not help"

# ---------------------------------------------------------------------------------------------------------------
say "a 50 MB build uploaded through the panel, and the body limit"
BUILD_BYTES=$((50 * 1024 * 1024))
{
  printf 'PK\003\004'
  head -c $((BUILD_BYTES - 4)) /dev/urandom
} >"$WORK/loader.zip"
upload() { # upload FILE → "status redirect" of the panel's build form, posted through Caddy
  curl_shop -b "$JAR" -H "X-CSRF-Token: $PANEL_CSRF" -F "build=@$1;type=application/zip" -o "$WORK/upload.html" \
    -w '%{http_code} %{redirect_url}' "https://$HOST$BASE/products/$PRODUCT_ID/build" || true
}
start=$(date +%s%N)
code=$(upload "$WORK/loader.zip")
expect_eq "$code" "303 https://$HOST$BASE/products/$PRODUCT_ID" \
  "a 50 MB zip posted to the panel's build form is accepted ($((($(date +%s%N) - start) / 1000000)) ms)"
expect_eq "$(psql_db -c "select build_size || ' ' || build_sha256 from products where id = $PRODUCT_ID")" \
  "$BUILD_BYTES $(sha256sum <"$WORK/loader.zip" | cut -d' ' -f1)" "the shop recorded its size and SHA-256"
BUILD_PATH=$(psql_db -c "select build_path from products where id = $PRODUCT_ID")
cmp -s "$BUILD_PATH" "$WORK/loader.zip" || fail "the stored build differs from the uploaded file"
ok "the stored file is the uploaded one ($BUILD_PATH)"
printf 'x' >>"$WORK/loader.zip"
expect_eq "$(upload "$WORK/loader.zip")" "422 " "one byte over 50 MiB still reaches the app, which refuses it (422)"
expect_contains "$(cat "$WORK/upload.html")" "Файл больше 50 МБ" "and says why"
head -c $((8 * 1024 * 1024)) /dev/urandom >>"$WORK/loader.zip"
expect_eq "$(upload "$WORK/loader.zip")" "413 " "a 58 MiB upload is refused by Caddy with 413"
head -c $((2 * 1024 * 1024)) /dev/zero >"$WORK/big-call"
expect_eq "$(curl_shop -o /dev/null -w '%{http_code}' --data-binary "@$WORK/big-call" -H 'content-type: application/json' \
  "https://$HOST$BASE/api/Sc%2012345/auth")" 413 "a 2 MiB auth call is refused by Caddy with 413 (calls are kept whole up to 1 MiB)"
rm -f "$WORK/loader.zip"

# ---------------------------------------------------------------------------------------------------------------
say "second run: no options, everything kept"
env_before=$(sha256sum </etc/morpheus-shop/env)
set +e
setup >"$WORK/run2.log" 2>&1
status=$?
set -e
cat "$WORK/run2.log"
expect_eq "$status" 0 "the second run exits 0"
run2=$(cat "$WORK/run2.log")
grep -q '^  password: ' "$WORK/run2.log" && fail "the second run printed a new password"
expect_contains "$run2" "login:          $LOGIN (password unchanged" "the second run keeps the panel password"
expect_contains "$run2" "Nothing to change" "the second run says it changed nothing"
expect_eq "$(sha256sum </etc/morpheus-shop/env)" "$env_before" "secrets and settings kept"
verify_password "$LOGIN" "$PASSWORD" || fail "the password changed on the second run"
ok "the first password still logs in"
body=$(curl_shop -X POST -d "key=$KEY" -d 'uuid=PC-1' "https://$HOST$BASE/api/Sc%2012345/auth")
expect_contains "$body" '"success":true' "the activated key still answers (form body)"
expect_eq "$(psql_db -c "select expires_at from keys where key = '$KEY'")" "$EXPIRES" \
  "its expiry is unchanged"

say "status and restart"
status_out=$("$ROOT/setup.sh" status 2>&1)
printf '%s\n' "$status_out"
expect_contains "$status_out" "app:      running (2 processes on 127.0.0.1:$APP_PORT-$APP_PORT2)" "status: both app processes run"
expect_contains "$status_out" "caddy:    running" "status: Caddy is running"
expect_eq "$(grep -c "^health:   [0-9]* {\"ok\":true" <<<"$status_out")" 2 "status: each process is healthy"
pids_before=$(cat /run/morpheus-shop/app@*.pid | sort | paste -sd ' ')
# While the processes restart one after the other, loaders keep calling through Caddy: none may see an error.
calls=$WORK/calls-during-restart
(
  while [[ ! -e $WORK/restart.done ]]; do
    curl_shop -o /dev/null -w '%{http_code}\n' -X POST -d "key=$KEY" -d 'uuid=PC-1' \
      "https://$HOST$BASE/api/Sc%2012345/auth" || printf 'curl-failed\n'
    curl_shop -o /dev/null -w '%{http_code}\n' "https://$HOST$BASE/healthz" || printf 'curl-failed\n'
  done
) >"$calls" 2>&1 &
caller=$!
"$ROOT/setup.sh" restart >"$WORK/restart.log" 2>&1 || {
  cat "$WORK/restart.log"
  fail "setup.sh restart failed"
}
touch "$WORK/restart.done"
wait "$caller"
for pid in $pids_before; do kill -0 "$pid" 2>/dev/null && fail "an old app process ($pid) still runs after restart"; done
[[ $(cat /run/morpheus-shop/app@*.pid | sort | paste -sd ' ') != "$pids_before" ]] || fail "restart started no new processes"
ok "restart replaced both app processes"
# Each stopping process serves on for SHUTDOWN_DRAIN_MS (3 s) and the next waits for Caddy's probe, so the restart
# takes a while and this loop calls one key faster than its limit (AUTH_LIMIT_PER_KEY, 120 a minute): a 429 is the
# app's own answer to that. A call lost on the way would be a 502 or 503 from Caddy, or curl-failed.
expect_eq "$(grep -cvE '^(200|429)$' "$calls" || true)" 0 \
  "the $(wc -l <"$calls") auth and health calls made through Caddy during the restart were all answered by the app: $(sort "$calls" | uniq -c | paste -sd ' ')"
for log in /var/log/morpheus-shop/app@*.log; do
  app_log=$(cat "$log")
  [[ $(grep -c '"msg":"shutting down"' <<<"$app_log") -ge 2 &&
    $(grep -c '"msg":"shutting down"' <<<"$app_log") == $(grep -c '"msg":"stopped"' <<<"$app_log") &&
    $app_log != *'exited with code'* ]] ||
    fail "$log: not stopped gracefully every time: $(grep -E 'shutting|stopped|exited' <<<"$app_log")"
done
ok "every restart so far stopped each process gracefully (one SIGTERM, requests finished, exit 0)"
expect_contains "$(curl_shop "https://$HOST$BASE/healthz")" '"ok":true' "after restart the shop answers again"

say "third run: morpheus-shop --reset-admin (the installed copy of setup.sh)"
/usr/local/sbin/morpheus-shop --reset-admin </dev/null >"$WORK/run3.log" 2>&1 || {
  cat "$WORK/run3.log"
  fail "morpheus-shop --reset-admin failed"
}
expect_contains "$(cat "$WORK/run3.log")" "code unchanged" "the installed copy reinstalls nothing"
NEW_PASSWORD=$(sed -n 's/^  password: *//p' "$WORK/run3.log")
expect_eq "$(sed -n 's/^  login: *//p' "$WORK/run3.log")" "$LOGIN" "--reset-admin keeps the login"
[[ -n $NEW_PASSWORD && $NEW_PASSWORD != "$PASSWORD" ]] || fail "--reset-admin printed no new password"
verify_password "$LOGIN" "$NEW_PASSWORD" || fail "the new password is not the account's"
! verify_password "$LOGIN" "$PASSWORD" || fail "the old password still works"
ok "--reset-admin: the new password works, the old one does not"

# ---------------------------------------------------------------------------------------------------------------
say "backup"
"$ROOT/setup.sh" backup >"$WORK/backup.log" 2>&1 || {
  cat "$WORK/backup.log"
  fail "setup.sh backup failed"
}
cat "$WORK/backup.log"
BACKUP=$(sed -n 's/^ *backup: \(.*\.tar\) (.*$/\1/p' "$WORK/backup.log")
[[ -f $BACKUP ]] || fail "backup printed no file"
expect_eq "$(stat -c %a "$BACKUP")" 600 "the backup file is readable by root only"
mkdir "$WORK/backup"
tar -C "$WORK/backup" -xf "$BACKUP"
[[ -f $WORK/backup/database.dump && -f $WORK/backup/data.tar ]] || fail "the backup lacks database.dump or data.tar"
expect_eq "$(tar -tf "$WORK/backup/data.tar" | sort | paste -sd ' ')" "./ ./builds/ ./builds/$(basename "$BUILD_PATH")" \
  "data.tar holds the uploaded build and nothing else"
ok "the backup holds the database dump and the uploaded builds"

PSQL_DB=postgres psql_db -c "create database ${DB}_restored"
chmod 644 "$WORK/backup/database.dump"
(cd / && runuser -u postgres -- pg_restore --no-owner --exit-on-error -d "${DB}_restored" "$WORK/backup/database.dump")
table_digest() { # every table's row count and content hash, in a stable order
  local t out=""
  # bot_instances is not the shop's data but the running processes' heartbeats: each app start adds its own row.
  for t in $(PSQL_DB=$1 psql_db -c "select tablename from pg_tables where schemaname = 'public' and tablename <> 'bot_instances' order by 1"); do
    out+="$t $(PSQL_DB=$1 psql_db -c "select count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '-') from $t x")"$'\n'
  done
  printf '%s' "$out"
}
live=$(table_digest "$DB")
restored=$(table_digest "${DB}_restored")
[[ $live == *"panel_accounts 1 "* && $live == *"products 1 "* && $live =~ (^|$'\n')keys\ [1-9] ]] ||
  fail "the live database does not hold the test's rows: $live"
expect_eq "$restored" "$live" "the dump restores into an empty database with the same rows in every table"

say "restore"
psql_db -c "delete from keys; delete from products; insert into products (name) values ('after-backup')"
rm -f "$BUILD_PATH"
# The shop's cached entries go with the restore; another application's keys in the same Redis stay.
redis_shop set "${SHOP_PREFIX}e2e-sentinel" 1 >/dev/null
redis_shop set other-app:e2e-sentinel 1 >/dev/null
"$ROOT/setup.sh" restore "$BACKUP" --yes >"$WORK/restore.log" 2>&1 || {
  cat "$WORK/restore.log"
  fail "setup.sh restore failed"
}
cat "$WORK/restore.log"
expect_eq "$(table_digest "$DB")" "$live" "restore brings back exactly the backed-up rows"
[[ -f $BUILD_PATH && $(sha256sum <"$BUILD_PATH" | cut -d' ' -f1) == "$(psql_db -c "select build_sha256 from products")" ]] ||
  fail "restore did not bring back the uploaded build"
ok "restore brings back the uploaded build"
expect_eq "$(redis_shop exists "${SHOP_PREFIX}e2e-sentinel") $(redis_shop exists other-app:e2e-sentinel)" "0 1" \
  "restore clears the shop's entries in Redis (REDIS_PREFIX $SHOP_PREFIX), not another application's"
body=$(curl_shop -X POST -d "key=$KEY" -d 'uuid=PC-1' "https://$HOST$BASE/api/Sc%2012345/auth")
expect_contains "$body" '"success":true' "after the restore the key answers through Caddy again"
verify_password "$LOGIN" "$NEW_PASSWORD" || fail "the panel password is not the backed-up one"
ok "the panel password is the one from the backup"
expect_contains "$(find /var/backups/morpheus-shop -name '*-pre-restore.tar')" pre-restore "restore kept a safety backup"

# ---------------------------------------------------------------------------------------------------------------
say "fourth run: --ip 127.0.0.1 (no domain: Caddy's own CA)"
setup --ip 127.0.0.1 >"$WORK/run4.log" 2>&1 || {
  cat "$WORK/run4.log"
  fail "setup.sh --ip failed"
}
cat "$WORK/run4.log"
run4=$(cat "$WORK/run4.log")
expect_contains "$run4" "env: PUBLIC_URL=https://127.0.0.1" "switching to an IP address says what it changed"
expect_contains "$run4" "restarted the app" "the app restarts for its new PUBLIC_URL"
expect_contains "$run4" "loader clients must trust this root certificate" "the run warns that clients must trust Caddy's CA"
expect_contains "$run4" "SHA-256 fingerprint:" "it prints the root's fingerprint"
grep -q '^  password: ' "$WORK/run4.log" && fail "switching to an IP address printed a new password"
LOCAL_ROOT=$CADDY_DATA/pki/authorities/local/root.crt
health=$(curl --noproxy '*' -sS --max-time 10 --cacert "$LOCAL_ROOT" "https://127.0.0.1$BASE/healthz")
expect_contains "$health" '"ok":true' "https://127.0.0.1$BASE/healthz verifies against Caddy's local root"
headers=$(curl --noproxy '*' -sS --max-time 10 --cacert "$LOCAL_ROOT" -o /dev/null -D - "https://127.0.0.1$BASE/healthz" |
  tr -d '\r')
[[ $headers != *strict-transport-security* ]] || fail "HSTS is sent for an IP address"
expect_contains "$headers" "x-frame-options: DENY" "security headers on the IP site, without HSTS"
verify_password "$LOGIN" "$NEW_PASSWORD" || fail "the password changed when switching to an IP address"
ok "the panel password is kept"

# ---------------------------------------------------------------------------------------------------------------
say "fifth run: an upgrade (new code with a new migration, from a source tree that is not a git checkout)"
UPGRADE_SRC=$WORK/upgrade-src
mkdir "$UPGRADE_SRC"
(cd "$ROOT" && git -c safe.directory='*' ls-files -z --cached --others --exclude-standard |
  xargs -0 cp --parents -t "$UPGRADE_SRC" --)
# A broken migration first: the run must stop at that step, say so, and leave the running shop alone.
printf 'create table e2e_upgrade (id integer primary key);\nthis is not sql;\n' >"$UPGRADE_SRC/sql/9999_e2e_upgrade.sql"
current_before=$(readlink -f /opt/morpheus-shop/current)
set +e
setup --source "$UPGRADE_SRC" >"$WORK/run5-broken.log" 2>&1
status=$?
set -e
sed -n '/==> Database migrations/,$p' "$WORK/run5-broken.log"
[[ $status != 0 ]] || fail "an upgrade with a broken migration succeeded"
expect_contains "$(cat "$WORK/run5-broken.log")" 'FAILED at step "Database migrations"' \
  "a failing migration stops the run and names the step"
expect_contains "$(cat "$WORK/run5-broken.log")" "hint: a migration failed (the error is above): the running shop still" \
  "with a hint"
expect_eq "$(readlink -f /opt/morpheus-shop/current)" "$current_before" "the previous code stays active"
expect_contains "$(curl --noproxy '*' -sS --max-time 10 --cacert "$CADDY_DATA/pki/authorities/local/root.crt" \
  "https://127.0.0.1$BASE/healthz")" '"ok":true' "and the shop keeps answering"
[[ -z $(psql_db -c "select 1 from pg_tables where tablename = 'e2e_upgrade'") ]] ||
  fail "the failed migration left a table behind"
ok "the failed migration left nothing behind"

printf 'create table e2e_upgrade (id integer primary key);\ninsert into e2e_upgrade values (1);\n' \
  >"$UPGRADE_SRC/sql/9999_e2e_upgrade.sql"
shop_rows() { table_digest "$DB" | grep -Ev '^(schema_migrations|e2e_upgrade) '; }
rows_before=$(shop_rows)
setup --source "$UPGRADE_SRC" >"$WORK/run5.log" 2>&1 || {
  cat "$WORK/run5.log"
  fail "the upgrade failed"
}
cat "$WORK/run5.log"
run5=$(cat "$WORK/run5.log")
expect_contains "$run5" "==> Backup before upgrading" "the upgrade takes a backup first"
[[ -n $(find /var/backups/morpheus-shop -name '*-pre-upgrade.tar') ]] || fail "no pre-upgrade backup file"
ok "the pre-upgrade backup is in /var/backups/morpheus-shop"
[[ $run5 =~ changed:\ code:\ [0-9]{8}-[0-9]{6}-[0-9a-f]{16}\ →\ [0-9]{8}-[0-9]{6}-[0-9a-f]{16} ]] ||
  fail "the upgrade does not say which code it replaced"
ok "the upgrade says which release replaced which"
expect_contains "$run5" "restarted the app" "the app restarts on the new code"
expect_eq "$(psql_db -c 'select count(*) from e2e_upgrade')" 1 "the new migration ran"
expect_eq "$(shop_rows)" "$rows_before" "the shop's data is kept across the upgrade"
for round in 1 2; do
  printf '%s\n' "-- e2e round $round" >>"$UPGRADE_SRC/sql/9999_e2e_upgrade.sql"
  setup --source "$UPGRADE_SRC" >"$WORK/run5-$round.log" 2>&1 || {
    cat "$WORK/run5-$round.log"
    fail "upgrade round $round failed"
  }
done
expect_eq "$(find /opt/morpheus-shop/releases -mindepth 1 -maxdepth 1 -type d | wc -l)" 3 \
  "after four releases the active one and the two before it are kept"
expect_eq "$(readlink -f /opt/morpheus-shop/current)" \
  "$(find /opt/morpheus-shop/releases -mindepth 1 -maxdepth 1 -type d | sort | tail -n 1)" "current is the newest release"
health=$(curl --noproxy '*' -sS --max-time 10 --cacert "$LOCAL_ROOT" "https://127.0.0.1$BASE/healthz")
expect_contains "$health" '"ok":true' "the upgraded shop answers through Caddy"
verify_password "$LOGIN" "$NEW_PASSWORD" || fail "the upgrade changed the panel password"
ok "the panel password survives the upgrade"

# ---------------------------------------------------------------------------------------------------------------
say "sixth run: --instances 1 (scaling down)"
setup --instances 1 >"$WORK/run6.log" 2>&1 || {
  cat "$WORK/run6.log"
  fail "setup.sh --instances 1 failed"
}
cat "$WORK/run6.log"
expect_contains "$(cat "$WORK/run6.log")" "stopped the app process on port $APP_PORT2" "the second process is stopped"
if [[ -e /run/morpheus-shop/app@$APP_PORT2.pid ]] || ! port_free "$APP_PORT2"; then fail "port $APP_PORT2 is still served"; fi
ok "nothing listens on $APP_PORT2 any more"
expect_contains "$(cat /etc/caddy/Caddyfile)" "reverse_proxy 127.0.0.1:$APP_PORT {" "Caddy balances over the one left"
grep -q '^INSTANCES=1$' /etc/morpheus-shop/setup.conf || fail "setup.conf does not keep INSTANCES=1"
ok "the next run keeps one process (setup.conf)"
health=$(curl --noproxy '*' -sS --max-time 10 --cacert "$LOCAL_ROOT" "https://127.0.0.1$BASE/healthz")
expect_contains "$health" '"ok":true' "the shop answers through Caddy with one process"

# ---------------------------------------------------------------------------------------------------------------
say "memory of the whole stack with one app process: idle, then under ${LOAD_SECONDS} s of auth calls"
# PSS (proportional set size): a page shared by n processes counts 1/n in each, so PostgreSQL's shared buffers
# count once and not once per backend, as a sum of RSS would. The stack: the app (bun run start and the app under
# it), this test's PostgreSQL cluster, the shop's Redis, Caddy. The shop is on https://127.0.0.1 since the fourth run.
curl_ip() { curl --noproxy '*' -sS --max-time 20 --cacert "$LOCAL_ROOT" "$@"; }
pss_kb() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || printf 0; }
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || printf 0; }
descendants() { # the process and all under it
  local child
  printf '%s\n' "$1"
  for child in $(ps -o pid= --ppid "$1"); do descendants "$child"; done
}
stack_pids() { # "part pid" lines
  local f pid
  for f in /run/morpheus-shop/app@*.pid; do
    for pid in $(descendants "$(cat "$f")"); do printf 'app %s\n' "$pid"; done
  done
  for pid in $(descendants "$(head -n 1 "/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER/postmaster.pid")"); do
    printf 'postgres %s\n' "$pid"
  done
  printf 'redis %s\n' "$REDIS_PID"
  printf 'caddy %s\n' "$(cat /run/morpheus-shop/caddy.pid)"
}
stack_memory() { # → "total app postgres redis caddy rss_total" in MB
  local part pid kb
  declare -A pss=([app]=0 [postgres]=0 [redis]=0 [caddy]=0)
  local rss=0
  while read -r part pid; do
    kb=$(pss_kb "$pid")
    pss[$part]=$((pss[$part] + ${kb:-0}))
    kb=$(rss_kb "$pid")
    rss=$((rss + ${kb:-0}))
  done < <(stack_pids)
  printf '%s %s %s %s %s %s\n' "$(((pss[app] + pss[postgres] + pss[redis] + pss[caddy]) / 1024))" \
    "$((pss[app] / 1024))" "$((pss[postgres] / 1024))" "$((pss[redis] / 1024))" "$((pss[caddy] / 1024))" \
    "$((rss / 1024))"
}
memory_line() { # memory_line "total app postgres redis caddy rss"
  local f
  read -r -a f <<<"$1"
  printf '%s MB = app %s + PostgreSQL %s + Redis %s + Caddy %s (sum of RSS: %s MB)' \
    "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}"
}
# The load comes from one address, which the default limits (600 calls a minute) would answer with 429 after a
# second: lines an operator may add to the env file lift them.
printf '%s\n' "AUTH_LIMIT_PER_IP=1000000000" "AUTH_LIMIT_PER_KEY=1000000000" >>/etc/morpheus-shop/env
"$ROOT/setup.sh" restart >"$WORK/restart-memory.log" 2>&1 || {
  cat "$WORK/restart-memory.log"
  fail "setup.sh restart for the memory figures failed"
}
# Idle as a shop that has served a little: a few auth calls, the panel's login page, then quiet.
for ((i = 0; i < 5; i++)); do
  curl_ip -o /dev/null -X POST -d "key=$KEY" -d 'uuid=PC-1' "https://127.0.0.1$BASE/api/Sc%2012345/auth"
  curl_ip -o /dev/null "https://127.0.0.1$BASE/"
done
sleep 5
idle=$(stack_memory)
printf '# idle: %s\n' "$(memory_line "$idle")"
read -r idle_total _ <<<"$idle"
((idle_total <= 400)) || fail "the stack takes $idle_total MB idle, over the 400 MB target: $(memory_line "$idle")"
ok "the whole stack takes $idle_total MB idle with one app process (target ≤ 400 MB)"
if ((LOAD_SECONDS > 0)); then
  # Loaders: half of the calls the activated key from its own PC (answered from memory), half keys that do not
  # exist (a database lookup each); every answer must be 200 or 403 Key mismatch.
  cat >"$WORK/auth-load.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0; n = 0 end
function request()
  n = n + 1
  if n % 2 == 0 then return wrk.format(nil, nil, nil, '{"key":"$KEY","uuid":"PC-1"}') end
  return wrk.format(nil, nil, nil, string.format('{"key":"E2E-LOAD-%d-%d","uuid":"PC-1"}', math.random(1e9), n))
end
function response(status, headers, body) if status ~= 200 and status ~= 403 then unexpected = unexpected + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("unexpected") end
  io.write(string.format("UNEXPECTED %d\\n", total))
end
LUA
  peak=$idle
  wrk -t2 -c64 -d"${LOAD_SECONDS}s" --timeout 5s -s "$WORK/auth-load.lua" "https://127.0.0.1$BASE/api/Sc%2012345/auth" \
    >"$WORK/wrk.log" 2>&1 &
  load_pid=$!
  while kill -0 "$load_pid" 2>/dev/null; do
    now=$(stack_memory)
    ((${now%% *} > ${peak%% *})) && peak=$now
    sleep 2
  done
  wait "$load_pid" || {
    cat "$WORK/wrk.log"
    fail "wrk failed"
  }
  rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$WORK/wrk.log")
  grep -q '^UNEXPECTED 0$' "$WORK/wrk.log" || fail "calls under load got other answers than 200 and 403: $(cat "$WORK/wrk.log")"
  printf '# under load (peak of samples every 2 s, %s calls/s through Caddy): %s\n' "${rate%.*}" "$(memory_line "$peak")"
  read -r peak_total _ <<<"$peak"
  ((peak_total <= 600)) || fail "the stack took $peak_total MB under load, over the 600 MB target: $(memory_line "$peak")"
  ok "the whole stack peaked at $peak_total MB under ${LOAD_SECONDS} s of auth calls (${rate%.*}/s; target ≤ 600 MB)"
fi

say "seventh run: --instances 3 (scaling up)"
setup --instances 3 >"$WORK/run7.log" 2>&1 || {
  cat "$WORK/run7.log"
  fail "setup.sh --instances 3 failed"
}
cat "$WORK/run7.log"
expect_contains "$(cat "$WORK/run7.log")" "started the app on ports $APP_PORT2 $((APP_PORT + 2))" \
  "two processes are added beside the running one"
[[ $(cat "$WORK/run7.log") != *"restarted the app"* ]] || fail "scaling up restarted the running process"
ok "the running process is left alone"
expect_contains "$(cat /etc/caddy/Caddyfile)" \
  "reverse_proxy 127.0.0.1:$APP_PORT 127.0.0.1:$APP_PORT2 127.0.0.1:$((APP_PORT + 2)) {" "Caddy balances over all three"
for ((i = 0; i < 12; i++)); do
  code=$(curl --noproxy '*' -sS --max-time 10 --cacert "$LOCAL_ROOT" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1$BASE/healthz")
  [[ $code == 200 ]] || fail "a call through Caddy after scaling up got $code"
done
ok "calls through Caddy keep answering 200"
