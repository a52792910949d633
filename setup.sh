#!/usr/bin/env bash
# Morpheus Shop: a fresh Ubuntu 22.04/24.04 or Debian 12 server to a running shop with HTTPS, in one command.
#
#   sudo ./setup.sh --domain shop.example.com        install, or upgrade an existing install (safe to re-run)
#   sudo ./setup.sh backup | restore FILE | cli ...  operations; `./setup.sh --help` lists everything
#
# Everything it creates: the system user `morpheus`, /opt/morpheus-shop (code), /etc/morpheus-shop (settings and
# secrets), /var/lib/morpheus-shop (uploaded builds), /var/backups/morpheus-shop, a PostgreSQL database and role,
# a password on the local Redis, a tuning file for the local PostgreSQL, the systemd units of deploy/ (one
# morpheus-shop@PORT.service per app process, morpheus-shop.target, morpheus-shop-backup.timer), and
# /etc/caddy/Caddyfile (the one it replaces is kept as Caddyfile.before-morpheus-shop).
set -Eeuo pipefail
umask 022

# Plain globals, not readonly: the env file is exported in subshells (enter_app_env) and may hold the same names.
BUN_VERSION=1.4.5
APP=morpheus-shop
SERVICE_USER=morpheus
APP_DIR=/opt/morpheus-shop
CONF_DIR=/etc/morpheus-shop
ENV_FILE=$CONF_DIR/env
STATE_FILE=$CONF_DIR/setup.conf
DATA_DIR=/var/lib/morpheus-shop
# The service user's HOME: Bun keeps its transpiler cache there, which has no place in DATA_DIR's backups.
CACHE_DIR=/var/cache/morpheus-shop
BACKUP_DIR=/var/backups/morpheus-shop
LOG_DIR=/var/log/morpheus-shop
RUN_DIR=/run/morpheus-shop
CADDYFILE=/etc/caddy/Caddyfile
REDIS_CONF=/etc/redis/redis.conf
CADDYFILE_BEFORE=/etc/caddy/Caddyfile.before-morpheus-shop
CADDY_ACME_ROOT=/etc/caddy/morpheus-shop-acme-ca-root.pem
CADDY_HOME=/var/lib/caddy
CADDY_LOCAL_ROOT=$CADDY_HOME/.local/share/caddy/pki/authorities/local/root.crt
COMMAND_LINK=/usr/local/sbin/morpheus-shop
UNIT_DIR=/etc/systemd/system
BASE_PATH_URL="/Morpheus%20Private"
# What PostgreSQL, Redis, Caddy and the system need beside the app processes (MB): the rest of the RAM is theirs.
MEMORY_RESERVE_MB=384
MANAGED_MARK="# Managed by Morpheus Shop setup.sh"
# Keys of the env file that setup.sh owns; any other line an operator adds there is kept as it is.
MANAGED_ENV_KEYS=(DATABASE_URL REDIS_URL SESSION_SECRET HOST PUBLIC_URL DATA_DIR NODE_ENV)
# Keys earlier versions wrote there and this one removes: each app process now gets its PORT from its unit.
RETIRED_ENV_KEYS=(PORT)

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPT_DIR=$(dirname "$SCRIPT_PATH")
readonly SCRIPT_PATH SCRIPT_DIR

# ---------------------------------------------------------------------------------------------------------------
# Output, steps and failure
# ---------------------------------------------------------------------------------------------------------------

STEP="starting"
HINT=""
QUIET=0
CHANGES=()

step() {
  STEP=$1
  HINT=${2:-}
  ((QUIET)) || printf '\n==> %s\n' "$STEP"
}
info() { ((QUIET)) || printf '    %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*" >&2; }
changed() {
  CHANGES+=("$*")
  info "changed: $*"
}

die() {
  printf '\nFAILED at step "%s": %s\n' "$STEP" "$1" >&2
  [[ -n ${2:-$HINT} ]] && printf 'hint: %s\n' "${2:-$HINT}" >&2
  exit 1
}

on_error() {
  local status=$1 line=$2 command=$3
  # In a subshell the command's own message is already out; the top level reports the step once.
  ((BASH_SUBSHELL == 0)) || exit "$status"
  printf '\nFAILED at step "%s" (exit status %s, setup.sh line %s: %s)\n' "$STEP" "$status" "$line" "$command" >&2
  [[ -n $HINT ]] && printf 'hint: %s\n' "$HINT" >&2
  printf 'Fix the cause and run the same command again: every step is safe to repeat.\n' >&2
  exit "$status"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

usage() {
  cat <<'EOF'
Morpheus Shop installer and operations (run as root).

Install or upgrade (re-running is safe: it keeps data, secrets and the panel password):
  setup.sh [install] [options]
    --domain NAME        the shop's domain; Caddy gets a Let's Encrypt certificate for it
    --ip ADDRESS         no domain: serve https://ADDRESS with a certificate from Caddy's own CA
    --email ADDRESS      e-mail for the certificate authority (expiry notices); optional
    --instances N        how many app processes Caddy balances across (default: the number of CPU cores, at
                         most 8); a later run with another N adds or stops processes
    --port N             loopback port of the first app process; the others take the next ones (default 3000)
    --source DIR         install the code from DIR (default: the directory setup.sh is in)
    --repo URL [--ref R] install the code from a git repository (cloned to /opt/morpheus-shop/source)
    --admin-login NAME   the panel login to create (default: admin-XXXXXX, generated)
    --reset-admin        give the panel account a new password (printed at the end)
    --redis-url URL      use this Redis instead of installing and configuring the local one
    --db-name NAME       PostgreSQL database and role (default morpheus_shop)
    --backups-keep N     how many daily backups to keep (default 14)
    --acme-ca URL        ACME directory instead of Let's Encrypt (e.g. its staging, or a test CA);
                         'default' goes back to Let's Encrypt
    --acme-ca-root FILE  CA certificate that signs that ACME server's own HTTPS certificate
    --bun-from SOURCE    where Bun comes from if it is missing: github (default; falls back to npm) or npm
    --no-systemd         start processes directly (containers; chosen automatically when systemd is not running)
    --yes                do not ask for confirmation
  Questions are asked only for what is missing, and never when stdin is not a terminal.

Operations:
  setup.sh backup [--output FILE] [--keep N]   database + uploaded builds into one file (default in
                                                /var/backups/morpheus-shop, keeping the newest N there)
  setup.sh restore FILE [--yes]                replace the shop's data with a backup (a safety backup is taken first)
  setup.sh cli COMMAND [ARGS...]               the operator CLI (bun run cli) as the service user, e.g. admin:reset
  setup.sh status                              services, address, health
  setup.sh start | stop | restart              the app processes (and Caddy when there is no systemd); restart
                                                takes them one at a time, so the shop keeps answering
  setup.sh caddyfile --domain NAME | --ip IP   print the Caddyfile setup.sh would write, change nothing
  setup.sh uninstall [--purge] [--yes]         remove services and code; --purge also deletes the database, data,
                                                secrets and backups
After installation the same script is also available as `morpheus-shop` (e.g. `sudo morpheus-shop backup`).
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

is_tty() { [[ -t 0 ]]; }

ask() { # ask VAR "question" [default]
  local ask_reply
  read -r -p "$2${3:+ [$3]}: " ask_reply || true
  printf -v "$1" '%s' "${ask_reply:-${3:-}}"
}

have() { command -v "$1" >/dev/null 2>&1; }

pkg_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

valid_domain() { [[ $1 =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$ ]]; }
valid_ipv4() {
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  local part
  for part in "${BASH_REMATCH[@]:1}"; do ((10#$part <= 255)) || return 1; done
}
valid_ipv6() { [[ $1 == *:* && $1 =~ ^[0-9a-fA-F:.]{2,45}$ ]]; }
valid_email() { [[ $1 =~ ^[^[:space:]@\"\'\`\\]+@[^[:space:]@\"\'\`\\]+\.[^[:space:]@\"\'\`\\]+$ ]]; }
valid_url() { [[ $1 =~ ^https?://[^[:space:]\"\'\`\\]+$ ]]; }
valid_redis_url() { [[ $1 =~ ^rediss?://[^[:space:]\"\'\`\\]+$ ]]; }
valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
valid_db_name() { [[ $1 =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; }
valid_login() { [[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]]; }
MAX_INSTANCES=32
valid_instances() { [[ $1 =~ ^[0-9]{1,2}$ ]] && ((10#$1 >= 1 && 10#$1 <= MAX_INSTANCES)); }
# One app process per core uses every core for JavaScript; past 8 PostgreSQL, not the app, is what limits.
default_instances() {
  local cores
  cores=$(nproc 2>/dev/null || printf 1)
  printf '%s' "$((cores > 8 ? 8 : cores))"
}
memory_total_mb() { printf '%s' "$(($(awk '$1 == "MemTotal:" {print $2}' /proc/meminfo) / 1024))"; }

# Reads KEY=VALUE lines (no shell evaluation: these files hold secrets and are never sourced).
file_get() { # file_get FILE KEY
  [[ -r $1 ]] || return 0
  local line value=""
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line == "$2="* ]] || continue
    value=${line#*=}
  done <"$1"
  value=${value%\"}
  printf '%s' "${value#\"}"
}

# Writes CONTENT to PATH with MODE and OWNER when it differs; succeeds only if it wrote something.
write_if_changed() { # write_if_changed PATH MODE OWNER CONTENT
  local path=$1 mode=$2 owner=$3 content=$4 tmp
  if [[ -f $path ]] && [[ "$(cat "$path")" == "$content" ]] &&
    [[ $(stat -c '%a %U:%G' "$path") == "$mode $owner" ]]; then
    return 1
  fi
  tmp=$(mktemp "$path.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  mv -f "$tmp" "$path"
}

port_listeners() { ss -Hltnp "sport = :$1" 2>/dev/null || true; }

local_curl() { curl --noproxy '*' -fsS --max-time "${CURL_TIME:-3}" "$@"; }

as_postgres() { (cd / && runuser -u postgres -- "$@"); }
psql_admin() { as_postgres psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

systemd_running() { [[ -d /run/systemd/system ]]; }

# ---------------------------------------------------------------------------------------------------------------
# Settings: command line, then what the last run saved in setup.conf, then defaults
# ---------------------------------------------------------------------------------------------------------------

COMMAND=install
OPT_DOMAIN="" OPT_IP="" OPT_EMAIL="" OPT_PORT="" OPT_SOURCE="" OPT_REPO="" OPT_REF="" OPT_ADMIN_LOGIN=""
OPT_REDIS_URL="" OPT_DB_NAME="" OPT_KEEP="" OPT_ACME_CA="" OPT_ACME_CA_ROOT="" OPT_OUTPUT="" OPT_BUN_FROM=""
OPT_INSTANCES=""
RESET_ADMIN=0 ASSUME_YES=0 NO_SYSTEMD=0 PURGE=0
CLI_ARGS=()
RESTORE_FILE=""

parse_args() {
  if (($#)); then
    case $1 in
      install | backup | restore | cli | status | start | stop | restart | caddyfile | uninstall)
        COMMAND=$1
        shift
        ;;
      help)
        COMMAND=help
        shift
        ;;
    esac
  fi
  if [[ $COMMAND == cli ]]; then
    CLI_ARGS=("$@")
    return
  fi
  while (($#)); do
    local opt=$1
    case $opt in
      -h | --help) COMMAND=help ;;
      --yes | -y) ASSUME_YES=1 ;;
      --reset-admin) RESET_ADMIN=1 ;;
      --no-systemd) NO_SYSTEMD=1 ;;
      --purge) PURGE=1 ;;
      --quiet) QUIET=1 ;;
      --domain | --ip | --email | --port | --instances | --source | --repo | --ref | --admin-login | --redis-url | --db-name | \
        --backups-keep | --keep | --acme-ca | --acme-ca-root | --output | --bun-from)
        (($# >= 2)) || die "$opt needs a value" "see setup.sh --help"
        case $opt in
          --domain) OPT_DOMAIN=${2,,} ;;
          --ip) OPT_IP=$2 ;;
          --email) OPT_EMAIL=$2 ;;
          --port) OPT_PORT=$2 ;;
          --instances) OPT_INSTANCES=$2 ;;
          --source) OPT_SOURCE=$2 ;;
          --repo) OPT_REPO=$2 ;;
          --ref) OPT_REF=$2 ;;
          --admin-login) OPT_ADMIN_LOGIN=$2 ;;
          --redis-url) OPT_REDIS_URL=$2 ;;
          --db-name) OPT_DB_NAME=$2 ;;
          --backups-keep | --keep) OPT_KEEP=$2 ;;
          --acme-ca) OPT_ACME_CA=$2 ;;
          --acme-ca-root) OPT_ACME_CA_ROOT=$2 ;;
          --output) OPT_OUTPUT=$2 ;;
          --bun-from) OPT_BUN_FROM=$2 ;;
        esac
        shift
        ;;
      -*) die "unknown option $opt" "see setup.sh --help" ;;
      *)
        if [[ $COMMAND == restore && -z $RESTORE_FILE ]]; then
          RESTORE_FILE=$opt
        else
          die "unexpected argument '$opt'" "see setup.sh --help"
        fi
        ;;
    esac
    shift
  done
}

# The saved settings of the last successful run (setup.conf), so `setup.sh` alone upgrades without questions.
DOMAIN="" IP="" EMAIL="" PORT="" INSTANCES="" REPO="" REF="" REDIS_MODE="" DB_NAME="" BACKUPS_KEEP="" ACME_CA="" SERVICE_MODE="" BUN=""
load_state() {
  DOMAIN=$(file_get "$STATE_FILE" DOMAIN)
  IP=$(file_get "$STATE_FILE" IP)
  EMAIL=$(file_get "$STATE_FILE" EMAIL)
  PORT=$(file_get "$STATE_FILE" PORT)
  INSTANCES=$(file_get "$STATE_FILE" INSTANCES)
  REPO=$(file_get "$STATE_FILE" REPO)
  REF=$(file_get "$STATE_FILE" REF)
  REDIS_MODE=$(file_get "$STATE_FILE" REDIS_MODE)
  DB_NAME=$(file_get "$STATE_FILE" DB_NAME)
  BACKUPS_KEEP=$(file_get "$STATE_FILE" BACKUPS_KEEP)
  ACME_CA=$(file_get "$STATE_FILE" ACME_CA)
  SERVICE_MODE=$(file_get "$STATE_FILE" SERVICE_MODE)
  BUN=$(file_get "$STATE_FILE" BUN)
  DB_NAME=${DB_NAME:-morpheus_shop}
  BACKUPS_KEEP=${BACKUPS_KEEP:-14}
  PORT=${PORT:-3000}
  # Installs made before --instances saved none: they ran one process, which an upgrade turns into the default.
  if [[ -z $INSTANCES ]]; then
    if [[ $COMMAND == install ]]; then INSTANCES=$(default_instances); else INSTANCES=1; fi
  fi
  valid_instances "$INSTANCES" || die "$STATE_FILE: INSTANCES=$INSTANCES is not a number from 1 to $MAX_INSTANCES"
  if [[ -z $SERVICE_MODE ]]; then
    if systemd_running; then SERVICE_MODE=systemd; else SERVICE_MODE=direct; fi
  fi
  if ((NO_SYSTEMD)); then SERVICE_MODE=direct; fi
}

save_state() {
  local content
  content=$(
    printf '%s\n' "$MANAGED_MARK: the settings of the last run; the next run reuses them. Not sourced by any shell."
    printf '%s=%s\n' DOMAIN "$DOMAIN" IP "$IP" EMAIL "$EMAIL" PORT "$PORT" INSTANCES "$INSTANCES" REPO "$REPO" REF "$REF" \
      REDIS_MODE "$REDIS_MODE" DB_NAME "$DB_NAME" BACKUPS_KEEP "$BACKUPS_KEEP" ACME_CA "$ACME_CA" \
      SERVICE_MODE "$SERVICE_MODE" BUN "$BUN"
  )
  write_if_changed "$STATE_FILE" 600 root:root "$content" || true
}

installed() { [[ -f $STATE_FILE ]]; }

require_root() {
  ((EUID == 0)) || die "setup.sh must run as root" "run it with sudo: sudo $0 $*"
}

require_installed() {
  installed || die "Morpheus Shop is not installed on this server ($STATE_FILE is missing)" \
    "install it first: sudo ./setup.sh --domain your.domain"
}

# ---------------------------------------------------------------------------------------------------------------
# Environment file and running things as the service user
# ---------------------------------------------------------------------------------------------------------------

ENV_VARS=()
load_env_file() {
  ENV_VARS=()
  local line key value
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    # systemd's EnvironmentFile strips one pair of surrounding quotes; do the same.
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    ENV_VARS+=("$key=$value")
  done <"$ENV_FILE"
}

bun_path() {
  local bun=$BUN
  [[ -x $bun ]] || bun=$(command -v bun || true)
  [[ -n $bun ]] || die "bun is not installed" "re-run the installation: sudo ./setup.sh"
  printf '%s' "$bun"
}

# Runs a command as the service user in DIR with exactly the app's environment. Secrets travel in the environment,
# never on a command line that `ps` would show to every user.
run_as_app() { # run_as_app DIR COMMAND...
  local dir=$1
  shift
  load_env_file
  (
    cd "$dir"
    enter_app_env
    exec setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups -- "$@"
  )
}

# Called in a subshell: leaves exactly the app's environment (the env file, PATH with Bun, HOME), as systemd gives it.
enter_app_env() {
  local bun_dir name kv
  bun_dir=$(dirname "$(bun_path)")
  size_app_memory
  while IFS= read -r name; do unset "$name" 2>/dev/null || true; done < <(compgen -e)
  export PATH="$bun_dir:/usr/local/bin:/usr/bin:/bin" HOME="$CACHE_DIR" LANG=C.UTF-8 BUN_JSC_forceRAMSize="$JSC_RAM_SIZE"
  for kv in "${ENV_VARS[@]}"; do export "${kv?}"; done
}

# The memory of each app process: MemoryMax of its unit (APP_MEMORY_MAX_MB) and the RAM its garbage collector is
# told the machine has (JSC_RAM_SIZE, bytes). JavaScriptCore sizes its heap growth by the RAM: told 512 MB it collects
# sooner and keeps the app near 130 MB under a flood of auth calls instead of 170+, at the same throughput
# (bench/auth); told four fifths of the limit at most, it collects hard well before the limit ends the process. The
# limit: the machine's RAM less MEMORY_RESERVE_MB, shared by the instances; never under 256 MB (the app's own peak
# under load is ~200 MB) nor over 1 GB (more only lets a leak grow longer). A line BUN_JSC_forceRAMSize=… in the env
# file overrides the size.
APP_MEMORY_MAX_MB="" JSC_RAM_SIZE=""
size_app_memory() {
  local gc_mb
  APP_MEMORY_MAX_MB=$((($(memory_total_mb) - MEMORY_RESERVE_MB) / ${INSTANCES:-1}))
  ((APP_MEMORY_MAX_MB >= 256)) || APP_MEMORY_MAX_MB=256
  ((APP_MEMORY_MAX_MB <= 1024)) || APP_MEMORY_MAX_MB=1024
  gc_mb=$((APP_MEMORY_MAX_MB * 4 / 5))
  ((gc_mb <= 512)) || gc_mb=512
  JSC_RAM_SIZE=$((gc_mb * 1024 * 1024))
}

env_value() { # env_value KEY: its value in the env file as the app gets it (after load_env_file)
  local kv value=""
  for kv in "${ENV_VARS[@]}"; do [[ $kv == "$1="* ]] && value=${kv#*=}; done
  printf '%s' "$value"
}

# The operator CLI (docs/operator.md#cli), with exactly the app's environment (DATABASE_URL, REDIS_URL, REDIS_PREFIX and the
# rest of the env file). Without DATABASE_URL the CLI would quietly open an empty embedded development database in
# DATA_DIR, and without REDIS_URL running apps would not hear of its changes, so both must be there.
run_cli() { # run_cli [--in DIR] ARGS...
  local dir="$APP_DIR/current"
  if [[ ${1:-} == --in ]]; then
    dir=$2
    shift 2
  fi
  load_env_file
  [[ -n $(env_value DATABASE_URL) ]] || die "$ENV_FILE has no DATABASE_URL" "re-run the installation: sudo ./setup.sh"
  [[ -n $(env_value REDIS_URL) ]] || die "$ENV_FILE has no REDIS_URL" "re-run the installation: sudo ./setup.sh"
  run_as_app "$dir" "$(bun_path)" run --silent cli "$@"
}

# ---------------------------------------------------------------------------------------------------------------
# Services: systemd, or processes started directly where no systemd runs (containers, CI)
# ---------------------------------------------------------------------------------------------------------------

pid_alive() { # pid_alive NAME
  local file="$RUN_DIR/$1.pid" pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

direct_start() { # direct_start NAME COMMAND...
  local name=$1 pid
  shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # setsid: its own session and process group, so stopping it reaches the children too (bun run → bun).
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$RUN_DIR/$name.pid"
}

direct_stop() { # direct_stop NAME
  local file="$RUN_DIR/$1.pid" pid target i
  pid_alive "$1" || {
    rm -f "$file"
    return 0
  }
  pid=$(<"$file")
  # SIGTERM to the started process alone: `bun run start` passes it on to the app once. Sent to the whole group as
  # well, the app would get it twice, and a second signal means "exit now" (exit 1, requests in flight cut off).
  kill -TERM -- "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  # Whatever is left after 30 s (systemd's TimeoutStopSec too; the app exits within 25 s on its own), children
  # included: the group, when the process leads its own (direct_start's do).
  target=$pid
  [[ $(ps -o pgid= -p "$pid" | tr -d ' ') == "$pid" ]] && target=-$pid
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "$target" 2>/dev/null
  rm -f "$file"
}

# --- App processes: INSTANCES of them, on the loopback ports PORT … PORT+INSTANCES-1 ---------------------------------
# Under systemd each is morpheus-shop@PORT.service (deploy/morpheus-shop@.service). Without systemd each is started
# directly, its pid in $RUN_DIR/app@PORT.pid and its output in $LOG_DIR/app@PORT.log.

app_ports() {
  local i
  for ((i = 0; i < INSTANCES; i++)); do printf '%s\n' "$((PORT + i))"; done
}
app_ports_text() { ((INSTANCES == 1)) && printf '%s' "$PORT" || printf '%s-%s' "$PORT" "$((PORT + INSTANCES - 1))"; }
instance_unit() { printf '%s@%s.service' "$APP" "$1"; }

# The instances there are now, wanted or not (enabled or running units; pid files): what a smaller --instances stops.
existing_instance_ports() {
  if [[ $SERVICE_MODE == systemd ]]; then
    {
      find "$UNIT_DIR/$APP.target.wants" -maxdepth 1 -name "$APP@*.service" -printf '%f\n' 2>/dev/null || true
      systemctl list-units --plain --no-legend --state=active,activating,deactivating,reloading "$APP@*.service" \
        2>/dev/null | awk '{print $1}' || true
    } | sed -n "s/^$APP@\([0-9]\{1,5\}\)\.service\$/\1/p" | sort -un
  else
    find "$RUN_DIR" -maxdepth 1 -name 'app@*.pid' -printf '%f\n' 2>/dev/null |
      sed -n 's/^app@\([0-9]\{1,5\}\)\.pid$/\1/p' | sort -un
  fi
}

instance_running() { # instance_running PORT
  if [[ $SERVICE_MODE == systemd ]]; then systemctl is-active --quiet "$(instance_unit "$1")"; else pid_alive "app@$1"; fi
}

# Every wanted instance is running.
app_running() {
  local port
  for port in $(app_ports); do instance_running "$port" || return 1; done
}

start_instance() { # start_instance PORT
  if [[ $SERVICE_MODE == systemd ]]; then
    systemctl start "$(instance_unit "$1")"
    return 0
  fi
  load_env_file
  local bun port=$1
  bun=$(bun_path)
  (
    cd "$APP_DIR/current"
    enter_app_env
    direct_start "app@$port" env PORT="$port" setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups -- \
      "$bun" run start
  )
}

stop_instance() { # stop_instance PORT
  if [[ $SERVICE_MODE == systemd ]]; then systemctl stop "$(instance_unit "$1")"; else direct_stop "app@$1"; fi
}

# Starts the wanted instances that are not running and waits until every one answers.
start_app() {
  local port
  [[ $SERVICE_MODE == systemd ]] && systemctl start "$APP.target"
  for port in $(app_ports); do instance_running "$port" || start_instance "$port"; done
  for port in $(app_ports); do wait_app_healthy "$port"; done
}

# One instance after another (every wanted one, or those given), each healthy before the next goes: with two or
# more, Caddy sends the requests to the others meanwhile, so an upgrade or a restart loses none. A stopping process
# serves on while it tells Caddy's probe it is leaving (SHUTDOWN_DRAIN_MS); the next one is stopped only once Caddy
# has probed the restarted one (every 2 s, the Caddyfile's health_interval), or for a moment Caddy would see neither
# and answer 503.
restart_app() { # restart_app [PORT...]
  local port ports=("$@") i
  ((${#ports[@]})) || mapfile -t ports < <(app_ports)
  for ((i = 0; i < ${#ports[@]}; i++)); do
    port=${ports[i]}
    if [[ $SERVICE_MODE == systemd ]]; then
      systemctl restart "$(instance_unit "$port")"
    else
      direct_stop "app@$port"
      start_instance "$port"
    fi
    wait_app_healthy "$port"
    ((i + 1 == ${#ports[@]})) || sleep 3
  done
}

# Every instance there is, wanted or not, all at once: each serves on for SHUTDOWN_DRAIN_MS before it closes its port,
# which helps nothing when the whole shop stops, and one after another it would take that many times as long.
stop_app() {
  local port ports=() units=()
  mapfile -t ports < <(existing_instance_ports)
  ((${#ports[@]})) || return 0
  if [[ $SERVICE_MODE == systemd ]]; then
    for port in "${ports[@]}"; do units+=("$(instance_unit "$port")"); done
    systemctl stop "${units[@]}"
  else
    for port in "${ports[@]}"; do direct_stop "app@$port" & done
    wait
  fi
}

# Instances beyond the wanted ones (a run with a smaller --instances or another --port): stopped for good. Caddy
# retries a request that finds one gone on another until its configuration drops it a moment later.
retire_extra_instances() {
  local port wanted
  wanted=" $(app_ports | paste -sd ' ') "
  for port in $(existing_instance_ports); do
    [[ $wanted == *" $port "* ]] && continue
    if [[ $SERVICE_MODE == systemd ]]; then
      systemctl disable --now --quiet "$(instance_unit "$port")"
    else
      direct_stop "app@$port"
    fi
    changed "stopped the app process on port $port"
  done
}

# Installs made before --instances ran one process as morpheus-shop.service (app.pid without systemd), its port in
# the env file: it makes way for the instances.
retire_single_app() {
  if [[ $SERVICE_MODE == systemd ]]; then
    [[ -f $UNIT_DIR/$APP.service ]] || return 0
    systemctl disable --now --quiet "$APP.service" 2>/dev/null || true
    rm -f "$UNIT_DIR/$APP.service"
    systemctl daemon-reload
    changed "replaced $APP.service by $(instance_unit "$PORT") and the other instances"
  elif [[ -e $RUN_DIR/app.pid ]]; then
    direct_stop app
    changed "stopped the single app process of the previous version"
  fi
}

app_log_hint() {
  if [[ $SERVICE_MODE == systemd ]]; then
    printf "see the log: journalctl -u '%s@*' -n 50 --no-pager" "$APP"
  else
    printf 'see the logs: tail -n 50 %s/app@*.log' "$LOG_DIR"
  fi
}

# The program listening on PORT is this instance (the app under its `bun run start`), not another one that took the
# port while the instance was restarting: that one would answer healthz too.
listener_is_ours() { # listener_is_ours PORT
  local main pid i
  if [[ $SERVICE_MODE == systemd ]]; then
    main=$(systemctl show -p MainPID --value "$(instance_unit "$1")")
  else
    main=$(cat "$RUN_DIR/app@$1.pid" 2>/dev/null || true)
  fi
  pid=$(port_listeners "$1" | sed -n 's/.*pid=\([0-9]\{1,10\}\),.*/\1/p' | head -n 1)
  [[ $main =~ ^[1-9][0-9]*$ ]] || return 1
  for ((i = 0; i < 8; i++)); do
    [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
    [[ $pid == "$main" ]] && return 0
    pid=$(ps -o ppid= -p "$pid" | tr -d ' ')
  done
  return 1
}

wait_app_healthy() { # wait_app_healthy PORT
  local port=$1 i body=""
  for ((i = 0; i < 60; i++)); do
    if body=$(CURL_TIME=2 local_curl "http://127.0.0.1:$port$BASE_PATH_URL/healthz" 2>/dev/null) &&
      listener_is_ours "$port"; then
      [[ $body == *'"redis":"ok"'* ]] || warn "the app answers but reports Redis as not reachable: $body"
      return 0
    fi
    if ! instance_running "$port"; then
      [[ -z $(port_listeners "$port") ]] ||
        die "port $port on this server is taken by another program: $(port_listeners "$port")" \
          "stop that program, or choose other ports for the app: sudo ./setup.sh --port 3100"
      [[ $SERVICE_MODE == direct ]] && break
    fi
    sleep 0.5
  done
  if [[ $SERVICE_MODE == systemd ]]; then
    journalctl -u "$(instance_unit "$port")" -n 30 --no-pager >&2 || true
  else
    tail -n 30 "$LOG_DIR/app@$port.log" >&2 || true
  fi
  die "the app did not become healthy on 127.0.0.1:$port" "$(app_log_hint)"
}

caddy_running() {
  if [[ $SERVICE_MODE == systemd ]]; then systemctl is-active --quiet caddy; else pid_alive caddy; fi
}

start_caddy_direct() {
  direct_start caddy setpriv --reuid=caddy --regid=caddy --init-groups \
    --inh-caps=+net_bind_service --ambient-caps=+net_bind_service --bounding-set=-all,+net_bind_service -- \
    env -i HOME="$CADDY_HOME" PATH=/usr/bin:/bin caddy run --environ --config "$CADDYFILE"
}

# ---------------------------------------------------------------------------------------------------------------
# Install: the steps
# ---------------------------------------------------------------------------------------------------------------

check_system() {
  step "Checking the system" "setup.sh supports Ubuntu 22.04/24.04 and Debian 12 on x86_64 or arm64"
  [[ -r /etc/os-release ]] || die "cannot read /etc/os-release"
  local id version
  id=$(file_get /etc/os-release ID)
  version=$(file_get /etc/os-release VERSION_ID)
  case "$id $version" in
    "ubuntu 22.04" | "ubuntu 24.04" | "debian 12") info "$id $version, $(uname -m)" ;;
    ubuntu* | debian*) warn "$id $version is not a tested release; continuing" ;;
    *) die "unsupported system: $id $version" ;;
  esac
  have apt-get || die "apt-get is missing"
  case $(uname -m) in
    x86_64 | aarch64) ;;
    *) die "unsupported CPU architecture $(uname -m)" ;;
  esac
  info "services: $SERVICE_MODE$([[ $SERVICE_MODE == direct ]] && printf ' (no systemd: processes are started directly)')"
}

resolve_settings() {
  step "Settings" "see ./setup.sh --help"
  local first=1
  installed && first=0

  if [[ -n $OPT_PORT ]]; then
    valid_port "$OPT_PORT" || die "--port must be 1-65535"
    PORT=$OPT_PORT
  fi
  if [[ -n $OPT_INSTANCES ]]; then
    valid_instances "$OPT_INSTANCES" || die "--instances must be a number from 1 to $MAX_INSTANCES"
    INSTANCES=$((10#$OPT_INSTANCES))
  fi
  ((PORT + INSTANCES - 1 <= 65535)) || die "ports $PORT to $((PORT + INSTANCES - 1)) do not fit below 65536" \
    "choose a lower --port"
  if [[ -n $OPT_DB_NAME ]]; then
    valid_db_name "$OPT_DB_NAME" || die "--db-name: lowercase letters, digits and _ (starting with a letter or _)"
    if ! ((first)) && [[ $OPT_DB_NAME != "$DB_NAME" ]]; then
      die "this shop already uses the database $DB_NAME" "moving data between databases is a backup and restore"
    fi
    DB_NAME=$OPT_DB_NAME
  fi
  if [[ -n $OPT_KEEP ]]; then
    if ! [[ $OPT_KEEP =~ ^[0-9]+$ ]] || ((OPT_KEEP < 1)); then die "--backups-keep must be a number ≥ 1"; fi
    BACKUPS_KEEP=$OPT_KEEP
  fi
  if [[ -n $OPT_REDIS_URL ]]; then
    valid_redis_url "$OPT_REDIS_URL" || die "--redis-url must look like redis://:password@host:port"
    REDIS_MODE=external
  fi
  REDIS_MODE=${REDIS_MODE:-local}
  if [[ $OPT_ACME_CA == default ]]; then
    ACME_CA=""
  elif [[ -n $OPT_ACME_CA ]]; then
    valid_url "$OPT_ACME_CA" || die "--acme-ca must be an https:// URL of an ACME directory (or 'default')"
    ACME_CA=$OPT_ACME_CA
  fi
  if [[ -n $OPT_ACME_CA_ROOT && ! -r $OPT_ACME_CA_ROOT ]]; then die "cannot read --acme-ca-root $OPT_ACME_CA_ROOT"; fi
  if [[ -n $OPT_ADMIN_LOGIN ]] && ! valid_login "$OPT_ADMIN_LOGIN"; then
    die "--admin-login: 1-64 of A-Z a-z 0-9 . _ -"
  fi
  if [[ -n $OPT_DOMAIN && -n $OPT_IP ]]; then die "give either --domain or --ip, not both"; fi
  if [[ -n $OPT_DOMAIN ]]; then
    valid_domain "$OPT_DOMAIN" || die "'$OPT_DOMAIN' is not a domain name" "e.g. --domain shop.example.com"
    DOMAIN=$OPT_DOMAIN IP=""
  elif [[ -n $OPT_IP ]]; then
    valid_ipv4 "$OPT_IP" || valid_ipv6 "$OPT_IP" || die "'$OPT_IP' is not an IP address"
    IP=$OPT_IP DOMAIN=""
  fi
  if [[ -z $DOMAIN && -z $IP ]]; then
    is_tty || die "no address given" "pass --domain NAME (or --ip ADDRESS when the server has no domain)"
    local detected answer
    detected=$(detect_ip)
    printf '\nThe shop needs an address. A domain (its DNS A record pointing at this server) gets a certificate\n'
    printf 'from Let'"'"'s Encrypt; without one the shop is served on the IP address with a self-made certificate.\n'
    while [[ -z $DOMAIN && -z $IP ]]; do
      ask answer "Domain name (leave empty to use the IP address)"
      answer=${answer,,}
      if [[ -z $answer ]]; then
        ask answer "IP address" "$detected"
        if valid_ipv4 "$answer" || valid_ipv6 "$answer"; then IP=$answer; else printf 'Not an IP address.\n'; fi
      elif valid_domain "$answer"; then
        DOMAIN=$answer
      else
        printf 'Not a domain name (e.g. shop.example.com).\n'
      fi
    done
  fi

  if [[ -n $OPT_EMAIL ]]; then
    valid_email "$OPT_EMAIL" || die "'$OPT_EMAIL' is not an e-mail address"
    EMAIL=$OPT_EMAIL
  elif ((first)) && [[ -n $DOMAIN && -z $EMAIL ]] && is_tty && ((!ASSUME_YES)); then
    local answer
    ask answer "E-mail for certificate expiry notices (optional)"
    if [[ -n $answer ]]; then
      if valid_email "$answer"; then EMAIL=$answer; else warn "'$answer' is not an e-mail address; none used"; fi
    fi
  fi

  case $OPT_BUN_FROM in "" | github | npm) ;; *) die "--bun-from must be github or npm" ;; esac
  [[ -n $OPT_REPO ]] && REPO=$OPT_REPO
  [[ -n $OPT_REF ]] && REF=$OPT_REF

  PUBLIC_URL="https://$(site_host)"
  info "address:   $PUBLIC_URL$BASE_PATH_URL/"
  [[ -n $EMAIL ]] && info "e-mail:    $EMAIL"
  [[ -n $ACME_CA ]] && info "ACME CA:   $ACME_CA"
  info "app:       $INSTANCES process$( ((INSTANCES > 1)) && printf 'es') on 127.0.0.1:$(app_ports_text)"
  size_app_memory
  local fits=$((($(memory_total_mb) - MEMORY_RESERVE_MB) / 256))
  if ((INSTANCES > fits)); then
    warn "$INSTANCES app processes of at least 256 MB each are more than this server's memory holds: each may be"
    warn "ended for want of memory under load; --instances $((fits > 1 ? fits : 1)) is what it holds"
  fi
  info "memory:    up to ${APP_MEMORY_MAX_MB} MB for each app process (of $(memory_total_mb) MB)"
  info "database:  $DB_NAME (local PostgreSQL)"
  info "redis:     $([[ $REDIS_MODE == local ]] && printf 'local, with a password' || printf 'given by --redis-url')"
  if ((first)) && is_tty && ((!ASSUME_YES)); then
    local answer
    ask answer "Install Morpheus Shop with these settings? [Y/n]"
    [[ -z $answer || $answer =~ ^[Yy] ]] || die "cancelled" "nothing was changed"
  fi
}

site_host() {
  if [[ -n $DOMAIN ]]; then printf '%s' "$DOMAIN"; elif valid_ipv6 "$IP"; then printf '[%s]' "$IP"; else printf '%s' "$IP"; fi
}

detect_ip() {
  local ip=""
  if have ip; then ip=$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true); fi
  [[ -n $ip ]] || ip=$(hostname -I 2>/dev/null | awk '{print $1}' || true)
  printf '%s' "$ip"
}

install_packages() {
  step "Installing system packages" "check the network and apt sources (apt-get update must work), then re-run"
  local packages=(ca-certificates curl postgresql) missing=() pkg
  [[ $REDIS_MODE == local ]] && packages+=(redis-server)
  [[ -n $REPO ]] && packages+=(git)
  for pkg in "${packages[@]}"; do pkg_installed "$pkg" || missing+=("$pkg"); done
  have setpriv || missing+=(util-linux)
  have ss || missing+=(iproute2)
  if [[ $REDIS_MODE == local ]] && ! pkg_installed redis-server && ! redis_candidate_ok; then add_redis_repo; fi
  if ((${#missing[@]})); then
    info "apt-get install ${missing[*]}"
    apt_install "${missing[@]}"
    changed "installed packages: ${missing[*]}"
  else
    info "PostgreSQL$([[ $REDIS_MODE == local ]] && printf ', Redis') and tools already installed"
  fi
  if [[ $REDIS_MODE == local ]] && ! redis_version_ok "$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')"; then
    add_redis_repo
    apt_install redis-server
    changed "upgraded Redis to $(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p') (the shop needs 6.2 or newer)"
  fi
  install_caddy
  install_bun
}

APT_UPDATED=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ((!APT_UPDATED)); then
    apt-get update -qq
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ioredis 6 needs Redis 6.2+; Ubuntu 22.04 ships 6.0, so there the official Redis repository is added.
redis_version_ok() { # redis_version_ok 7.0.15
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  ((major > 6 || (major == 6 && minor >= 2)))
}
redis_candidate_ok() {
  local candidate
  candidate=$(apt-cache policy redis-server 2>/dev/null | sed -n 's/^ *Candidate: \(.*\)$/\1/p')
  [[ -n $candidate && $candidate != "(none)" ]] || return 1
  candidate=${candidate#*:}
  redis_version_ok "${candidate%%-*}"
}
add_redis_repo() {
  [[ -f /etc/apt/sources.list.d/redis.list ]] && return 0
  HINT="could not add packages.redis.io (Redis 6.2+ is needed); check the network"
  info "adding the official Redis apt repository (this release's Redis is older than 6.2)"
  apt_install gnupg lsb-release
  curl -fsSL --connect-timeout 15 https://packages.redis.io/gpg | gpg --dearmor --yes -o /usr/share/keyrings/redis-archive-keyring.gpg
  printf 'deb [signed-by=/usr/share/keyrings/redis-archive-keyring.gpg] https://packages.redis.io/deb %s main\n' \
    "$(lsb_release -cs)" >/etc/apt/sources.list.d/redis.list
  APT_UPDATED=0
  changed "added the packages.redis.io apt repository"
}

install_caddy() {
  if have caddy; then
    info "Caddy $(caddy version | awk '{print $1}') already installed"
    return 0
  fi
  HINT="Caddy comes from its official apt repository (dl.cloudsmith.io) or the distribution; check the network"
  info "installing Caddy from its official apt repository"
  if apt_install debian-keyring debian-archive-keyring apt-transport-https gnupg &&
    curl -fsSL --connect-timeout 15 https://dl.cloudsmith.io/public/caddy/stable/gpg.key |
    gpg --dearmor --yes -o /usr/share/keyrings/caddy-stable-archive-keyring.gpg &&
      curl -fsSL --connect-timeout 15 https://dl.cloudsmith.io/public/caddy/stable/debian.deb.txt -o /etc/apt/sources.list.d/caddy-stable.list; then
    APT_UPDATED=0
  else
    warn "the official Caddy repository is not reachable; trying the distribution's package"
    rm -f /etc/apt/sources.list.d/caddy-stable.list
    APT_UPDATED=0
  fi
  apt_install caddy
  changed "installed Caddy $(caddy version | awk '{print $1}')"
}

install_bun() {
  HINT="Bun $BUN_VERSION comes from GitHub releases or the npm registry; check the network"
  local bun
  for bun in "$(command -v bun || true)" /usr/local/bin/bun /usr/bin/bun; do
    if [[ -n $bun && -x $bun && $("$bun" --version 2>/dev/null) == "$BUN_VERSION" ]]; then
      BUN=$bun
      info "Bun $BUN_VERSION already installed ($BUN)"
      return 0
    fi
  done
  if [[ $OPT_BUN_FROM != npm ]] && install_bun_from_github; then
    BUN=/usr/local/bin/bun
  else
    [[ $OPT_BUN_FROM == npm ]] || warn "GitHub is not reachable; installing Bun from the npm registry"
    have npm || apt_install npm
    npm install -g "bun@$BUN_VERSION" --no-fund --no-audit --loglevel=error
    BUN=$(command -v bun)
  fi
  [[ $("$BUN" --version) == "$BUN_VERSION" ]] || die "installed Bun reports $("$BUN" --version), not $BUN_VERSION"
  changed "installed Bun $BUN_VERSION ($BUN)"
}

install_bun_from_github() {
  local arch target dir tmp
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64) arch=aarch64 ;;
  esac
  # Bun's own installer does the same: CPUs without AVX2 need the baseline build.
  if [[ $arch == x64 ]] && ! grep -qw avx2 /proc/cpuinfo; then arch=x64-baseline; fi
  target="bun-linux-$arch"
  have unzip || apt_install unzip || return 1
  tmp=$(mktemp -d)
  local base="https://github.com/oven-sh/bun/releases/download/bun-v$BUN_VERSION"
  if ! curl -fsSL --connect-timeout 15 --max-time 300 -o "$tmp/$target.zip" "$base/$target.zip" ||
    ! curl -fsSL --connect-timeout 15 --max-time 60 -o "$tmp/SHASUMS256.txt" "$base/SHASUMS256.txt"; then
    rm -rf "$tmp"
    return 1
  fi
  (cd "$tmp" && grep " $target.zip\$" SHASUMS256.txt | sha256sum -c --quiet -) ||
    die "the downloaded $target.zip does not match the release's SHASUMS256.txt"
  unzip -q "$tmp/$target.zip" -d "$tmp"
  dir=/usr/local/lib/bun-$BUN_VERSION
  mkdir -p "$dir"
  install -m 755 "$tmp/$target/bun" "$dir/bun"
  ln -sfn "$dir/bun" /usr/local/bin/bun
  rm -rf "$tmp"
}

create_user_and_dirs() {
  step "System user and directories" "useradd/mkdir failed: check the disk and /etc/passwd"
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin \
      --comment "Morpheus Shop" "$SERVICE_USER"
    changed "created system user $SERVICE_USER"
  else
    info "system user $SERVICE_USER exists"
  fi
  install -d -m 755 -o root -g root "$APP_DIR" "$APP_DIR/releases"
  install -d -m 750 -o root -g "$SERVICE_USER" "$CONF_DIR"
  install -d -m 750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$DATA_DIR" "$CACHE_DIR"
  install -d -m 700 -o root -g root "$BACKUP_DIR"
  info "code $APP_DIR, settings $CONF_DIR, data $DATA_DIR, backups $BACKUP_DIR"
}

setup_postgres() {
  step "PostgreSQL: database, role, memory" "is PostgreSQL running? (pg_lsclusters; systemctl status postgresql)"
  if [[ $SERVICE_MODE == systemd ]]; then
    systemctl enable --now postgresql >/dev/null 2>&1 || systemctl start postgresql
  fi
  local i
  for ((i = 0; i < 30; i++)); do
    psql_admin -c 'select 1' >/dev/null 2>&1 && break
    if ((i == 0)) && [[ $SERVICE_MODE == direct ]] && have pg_lsclusters; then
      # No systemd: start every cluster that is down (a fresh install in a container leaves them down).
      while read -r version cluster _ status _; do
        [[ $status == down ]] && pg_ctlcluster "$version" "$cluster" start
      done < <(pg_lsclusters -h)
    fi
    sleep 1
  done
  psql_admin -c 'select 1' >/dev/null || die "PostgreSQL does not answer"
  PG_PORT=$(psql_admin -c 'show port')
  info "PostgreSQL $(psql_admin -c 'show server_version' | awk '{print $1}') on 127.0.0.1:$PG_PORT"

  local password
  password=$(db_password_from_env)
  if [[ -z $password ]]; then
    password=$(rand_hex 24)
  fi
  DB_PASSWORD=$password
  if [[ -z $(psql_admin -c "select 1 from pg_roles where rolname = '$DB_NAME'") ]]; then
    psql_admin -v role="$DB_NAME" -v password="$password" <<<'create role :"role" login password :'"'"'password'"';"
    changed "created PostgreSQL role $DB_NAME"
  else
    # Keeps role and env file in step even if one of them was edited by hand.
    psql_admin -v role="$DB_NAME" -v password="$password" <<<'alter role :"role" login password :'"'"'password'"';"
    info "role $DB_NAME exists"
  fi
  if [[ -z $(psql_admin -c "select 1 from pg_database where datname = '$DB_NAME'") ]]; then
    psql_admin -v db="$DB_NAME" <<<'create database :"db" owner :"db" encoding '"'UTF8'"' template template0;'
    psql_admin -v db="$DB_NAME" <<<'revoke all on database :"db" from public;'
    changed "created database $DB_NAME"
  else
    info "database $DB_NAME exists (its data is kept)"
  fi
  tune_postgres
}

# PostgreSQL sized for a server it shares with the app, Redis and Caddy: a file in the cluster's conf.d (Debian's
# postgresql.conf includes that directory), applied by a reload, or a restart when a setting takes effect only then.
# shared_buffers is an eighth of the RAM, 32 MB to 1 GB (a 1 GB VPS keeps PostgreSQL's 128 MB; it is what PostgreSQL
# holds once the shop's rows have been read); max_connections leaves room for every app process's pool of 10, the
# CLI and backups; effective_cache_size tells the planner what the OS caches. An operator's own settings in a later
# conf.d file or in postgresql.auto.conf (ALTER SYSTEM) win over these.
tune_postgres() {
  local config_file conf_dir file content ram shared version cluster pending
  config_file=$(psql_admin -c 'show config_file')
  conf_dir=$(dirname "$config_file")/conf.d
  file=$conf_dir/50-morpheus-shop.conf
  if [[ ! -d $conf_dir ]] || ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf\.d'" "$config_file"; then
    info "$config_file does not include conf.d: PostgreSQL's memory settings are left as they are"
    return 0
  fi
  ram=$(memory_total_mb)
  shared=$((ram / 8))
  shared=$((shared < 32 ? 32 : shared > 1024 ? 1024 : shared))
  content="$MANAGED_MARK: PostgreSQL sized for this server (${ram} MB of RAM); rewritten on every run.
# Your own settings belong in a file that sorts after this one (e.g. conf.d/90-local.conf).
shared_buffers = ${shared}MB
effective_cache_size = $((ram / 2))MB
max_connections = $((INSTANCES * 10 + 20 > 100 ? INSTANCES * 10 + 20 : 100))"
  write_if_changed "$file" 644 postgres:postgres "$content" || return 0
  changed "wrote $file (shared_buffers ${shared}MB)"
  psql_admin -c 'select pg_reload_conf()' >/dev/null
  sleep 1
  pending=$(psql_admin -c "select string_agg(name, ', ') from pg_settings where pending_restart")
  [[ -n $pending ]] || return 0
  # /etc/postgresql/VERSION/CLUSTER/postgresql.conf names the cluster to restart.
  version=$(basename "$(dirname "$(dirname "$config_file")")")
  cluster=$(basename "$(dirname "$config_file")")
  if [[ $SERVICE_MODE == systemd ]]; then
    systemctl restart "postgresql@$version-$cluster"
  else
    pg_ctlcluster "$version" "$cluster" restart
  fi
  local i
  for ((i = 0; i < 30; i++)); do
    psql_admin -c 'select 1' >/dev/null 2>&1 && break
    sleep 1
  done
  psql_admin -c 'select 1' >/dev/null || die "PostgreSQL did not come back after its restart for $pending"
  changed "restarted PostgreSQL $version/$cluster for $pending"
}

db_password_from_env() {
  local url
  url=$(file_get "$ENV_FILE" DATABASE_URL)
  [[ $url =~ ^postgres(ql)?://[^:/@]+:([0-9a-f]+)@ ]] && printf '%s' "${BASH_REMATCH[2]}"
  return 0
}

setup_redis() {
  if [[ $REDIS_MODE == external ]]; then
    step "Redis" "check --redis-url"
    REDIS_URL=${OPT_REDIS_URL:-$(file_get "$ENV_FILE" REDIS_URL)}
    [[ -n $REDIS_URL ]] || die "no Redis URL saved" "pass --redis-url again"
    info "using the Redis given by --redis-url (not configured by setup.sh)"
    return 0
  fi
  step "Redis: password, loopback only, a memory cap" "check $REDIS_CONF and: systemctl status redis-server"
  local conf=$REDIS_CONF password restart=0 port
  [[ -f $conf ]] || die "$conf is missing" "reinstall the package: apt-get install --reinstall redis-server"
  port=$(awk '$1 == "port" {p = $2} END {print p ? p : 6379}' "$conf")
  password=$(sed -n 's/^[[:space:]]*requirepass[[:space:]]\{1,\}"\{0,1\}\([^[:space:]"]*\).*/\1/p' "$conf" | tail -n 1)
  local before=$password
  if [[ -z $password ]]; then
    password=$(rand_hex 24)
    printf '\n%s\nrequirepass %s\n' "$MANAGED_MARK" "$password" >>"$conf"
    changed "set a Redis password"
    restart=1
  else
    info "Redis already has a password (kept)"
  fi
  if ! grep -Eq '^[[:space:]]*bind[[:space:]]+127\.0\.0\.1([[:space:]]+-?::1)?[[:space:]]*$' "$conf"; then
    sed -i -E 's/^([[:space:]]*bind[[:space:]].*)$/# \1  (replaced by Morpheus Shop setup.sh)/' "$conf"
    printf 'bind 127.0.0.1 -::1\n' >>"$conf"
    changed "Redis listens on loopback only"
    restart=1
  fi
  if ! grep -Eq '^[[:space:]]*protected-mode[[:space:]]+yes' "$conf"; then
    sed -i -E 's/^([[:space:]]*protected-mode[[:space:]].*)$/# \1/' "$conf"
    printf 'protected-mode yes\n' >>"$conf"
    restart=1
  fi
  # Redis holds only what can be lost or rebuilt: rate-limit windows, cached answers, short leases, the bot's drafts.
  # A cap keeps a flood of addresses (each one a rate-limit key) from eating the server's memory; when it is reached,
  # the keys nearest to their expiry go first (a minute's rate-limit window before a cached catalogue). An operator's
  # own maxmemory line is left alone.
  if ! grep -Eq '^[[:space:]]*maxmemory[[:space:]]' "$conf"; then
    printf 'maxmemory %smb\nmaxmemory-policy volatile-ttl\n' "$(redis_memory_mb)" >>"$conf"
    changed "Redis memory capped at $(redis_memory_mb) MB (maxmemory-policy volatile-ttl)"
    restart=1
  fi
  REDIS_URL="redis://:$password@127.0.0.1:$port/0"
  if [[ $SERVICE_MODE == systemd ]]; then
    systemctl enable redis-server >/dev/null 2>&1 || true
    if ((restart)) || ! systemctl is-active --quiet redis-server; then systemctl restart redis-server; fi
  else
    # No systemd: restart by hand (shut down with the password it runs with), then start it as the redis user.
    if ((restart)); then
      redis_answers "$port" "$before" && redis_cli "$port" "$before" shutdown >/dev/null 2>&1
      local i
      for ((i = 0; i < 20; i++)); do
        redis_answers "$port" "$before" || break
        sleep 0.5
      done
    fi
    redis_ping "$port" "$password" ||
      setpriv --reuid=redis --regid=redis --init-groups -- redis-server "$conf" --daemonize yes
  fi
  local i
  for ((i = 0; i < 20; i++)); do
    redis_ping "$port" "$password" && break
    sleep 0.5
  done
  redis_ping "$port" "$password" || die "Redis does not answer on port $port with the password from $conf"
  info "Redis $(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p') on 127.0.0.1:$port with a password"
}

# A sixteenth of the RAM, 32 to 256 MB: the shop's keys take a few MB even under a flood of auth calls.
redis_memory_mb() {
  local mb=$(($(memory_total_mb) / 16))
  printf '%s' "$((mb < 32 ? 32 : mb > 256 ? 256 : mb))"
}

redis_cli() { # redis_cli PORT PASSWORD ARGS... (the password travels in the environment, not on the command line)
  local port=$1 password=$2
  shift 2
  REDISCLI_AUTH=$password redis-cli --no-auth-warning -h 127.0.0.1 -p "$port" "$@"
}
redis_ping() { [[ $(redis_cli "$1" "$2" ping 2>/dev/null) == PONG ]]; }
# Something answers on the port, with or without the password it wants.
redis_answers() { [[ -n $(redis_cli "$1" "$2" ping 2>&1) && $(redis_cli "$1" "$2" ping 2>&1) != *"Connection refused"* ]]; }

write_env_file() {
  step "Environment file $ENV_FILE" "check that $CONF_DIR exists and is writable"
  local secret
  secret=$(file_get "$ENV_FILE" SESSION_SECRET)
  [[ ${#secret} -ge 32 ]] || secret=$(rand_hex 32)
  declare -A want=(
    [DATABASE_URL]="postgres://$DB_NAME:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
    [REDIS_URL]="$REDIS_URL"
    [SESSION_SECRET]="$secret"
    [HOST]=127.0.0.1
    [PUBLIC_URL]="$PUBLIC_URL"
    [DATA_DIR]="$DATA_DIR"
    [NODE_ENV]=production
  )
  local lines=() line key seen=" " content existed=""
  [[ -f $ENV_FILE ]] && existed=1
  if [[ -n $existed ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      key=${line%%=*}
      if [[ $line == *=* && " ${RETIRED_ENV_KEYS[*]} " == *" $key "* ]]; then
        changed "env: $key removed (each app process has its own, from its unit)"
      elif [[ $line == *=* && -n ${want[$key]+x} ]]; then
        lines+=("$key=${want[$key]}")
        seen+="$key "
        [[ $line == "$key=${want[$key]}" ]] || env_changed "$key"
      else
        lines+=("$line")
      fi
    done <"$ENV_FILE"
  else
    lines+=("$MANAGED_MARK. The keys it writes are rewritten on every run; add your own (e.g."
      "# BOT_TOKEN, LOG_LEVEL, ANYPAY_ALLOWED_IPS) below and restart: morpheus-shop restart. PORT is each app"
      "# process's own (its unit's instance name; setup.sh --port and --instances).")
  fi
  for key in "${MANAGED_ENV_KEYS[@]}"; do
    [[ $seen == *" $key "* ]] && continue
    lines+=("$key=${want[$key]}")
    [[ -n $existed ]] && env_changed "$key"
  done
  content=$(printf '%s\n' "${lines[@]}")
  if write_if_changed "$ENV_FILE" 640 "root:$SERVICE_USER" "$content"; then
    ENV_CHANGED=1
    [[ -n $existed ]] || changed "wrote $ENV_FILE with new secrets (mode 0640 root:$SERVICE_USER)"
  else
    info "unchanged (secrets kept)"
  fi
}
ENV_CHANGED=0
env_changed() {
  case $1 in
    SESSION_SECRET | DATABASE_URL | REDIS_URL) changed "env: $1 replaced" ;;
    *) changed "env: $1=${want[$1]}" ;;
  esac
}

# --- Code --------------------------------------------------------------------------------------------------------

SOURCE_DIR=""
resolve_source() {
  if [[ -n $OPT_SOURCE ]]; then
    SOURCE_DIR=$(readlink -f "$OPT_SOURCE")
  elif [[ -n $OPT_REPO ]]; then
    fetch_repo
  elif [[ $SCRIPT_DIR != "$APP_DIR"/* && -f $SCRIPT_DIR/package.json ]]; then
    SOURCE_DIR=$SCRIPT_DIR
  elif [[ -n $REPO ]]; then
    fetch_repo
  else
    SOURCE_DIR=$(readlink -f "$APP_DIR/current")
  fi
  [[ -f $SOURCE_DIR/package.json && -f $SOURCE_DIR/src/main.ts ]] ||
    die "$SOURCE_DIR is not a Morpheus Shop source tree" "run setup.sh from a clone, or pass --source DIR / --repo URL"
}

fetch_repo() {
  HINT="git could not fetch $REPO; check the URL, --ref and the network"
  SOURCE_DIR=$APP_DIR/source
  if [[ -d $SOURCE_DIR/.git ]]; then
    git -C "$SOURCE_DIR" remote set-url origin "$REPO"
    git -C "$SOURCE_DIR" fetch --quiet --tags origin
  else
    rm -rf "$SOURCE_DIR"
    git clone --quiet "$REPO" "$SOURCE_DIR"
  fi
  local ref=${REF:-$(git -C "$SOURCE_DIR" symbolic-ref --short refs/remotes/origin/HEAD 2>/dev/null || printf 'origin/main')}
  git -C "$SOURCE_DIR" -c advice.detachedHead=false checkout --quiet --force "$ref" 2>/dev/null ||
    git -C "$SOURCE_DIR" -c advice.detachedHead=false checkout --quiet --force "origin/$ref"
}

# The files that make up the shop: what git tracks (and new files it does not ignore), or everything but
# node_modules, data and .git when the source is not a git checkout.
source_files() {
  if have git && git -c safe.directory='*' -C "$SOURCE_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -c safe.directory='*' -C "$SOURCE_DIR" ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [[ -e $SOURCE_DIR/$f || -L $SOURCE_DIR/$f ]] && printf '%s\0' "$f"; done
  else
    (cd "$SOURCE_DIR" && find . \( -path ./node_modules -o -path ./data -o -path ./.git \) -prune -o \
      \( -type f -o -type l \) ! -name .source-fingerprint ! -name .source-version -printf '%P\0')
  fi
}

source_version() {
  if have git && git -c safe.directory='*' -C "$SOURCE_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -c safe.directory='*' -C "$SOURCE_DIR" describe --always --dirty --tags 2>/dev/null || printf 'git'
  else
    cat "$SOURCE_DIR/.source-version" 2>/dev/null || printf 'not a git checkout'
  fi
}

CODE_CHANGED=0
UPGRADING=0
NEW_RELEASE=""
RELEASE_NAME=""
install_code() {
  step "Installing the code into $APP_DIR" "bun install failed: check the network to the npm registry and bun.lock"
  resolve_source
  local list fingerprint current_fp="" release version
  list=$(mktemp)
  source_files | sort -z >"$list"
  fingerprint=$(cd "$SOURCE_DIR" && xargs -0 -r sha256sum -- <"$list" | sha256sum | cut -c1-16)
  version=$(source_version)
  if [[ -L $APP_DIR/current && -f $APP_DIR/current/.source-fingerprint ]]; then
    current_fp=$(<"$APP_DIR/current/.source-fingerprint")
    UPGRADING=1
  fi
  info "source: $SOURCE_DIR ($version)"
  # Run as `morpheus-shop` (the installed copy) with no other source: the installed release is the code.
  if [[ $SOURCE_DIR == "$(readlink -f "$APP_DIR/current" 2>/dev/null)" ]]; then fingerprint=$current_fp; fi
  if [[ $fingerprint == "$current_fp" && -d $APP_DIR/current/node_modules ]]; then
    info "code unchanged ($(basename "$(readlink -f "$APP_DIR/current")"))"
    rm -f "$list"
    return 0
  fi

  # Built and migrated under a hidden name; only a release that got through its migrations gets a real one.
  rm -rf "$APP_DIR"/releases/.staging-*
  RELEASE_NAME=$(date -u +%Y%m%d-%H%M%S)-$fingerprint
  release=$APP_DIR/releases/.staging-$RELEASE_NAME
  mkdir -p "$release"
  tar -C "$SOURCE_DIR" --null -T "$list" -cf - | tar -C "$release" -xf - --no-same-owner
  rm -f "$list"
  printf '%s\n' "$fingerprint" >"$release/.source-fingerprint"
  printf '%s\n' "$version" >"$release/.source-version"
  info "bun install --frozen-lockfile --production"
  if ! (cd "$release" && "$BUN" install --frozen-lockfile --production --no-progress) >"$release.install.log" 2>&1; then
    sed 's/^/    | /' "$release.install.log" >&2
    die "bun install failed in $release" "check the network to the npm registry, then re-run setup.sh"
  fi
  rm -f "$release.install.log"
  [[ -f $release/static/htmx.min.js ]] || warn "static/htmx.min.js was not produced by postinstall"
  chmod -R go-w "$release"
  chmod -R a+rX "$release"
  NEW_RELEASE=$release
  CODE_CHANGED=1
}

migrate_and_activate() {
  [[ -n ${NEW_RELEASE:-} ]] || return 0
  if ((UPGRADING)); then
    step "Backup before upgrading" "the backup failed, so the upgrade was not applied; see the error above"
    do_backup "$BACKUP_DIR/$APP-$(date -u +%Y%m%d-%H%M%S)-pre-upgrade.tar"
  fi
  step "Database migrations" "a migration failed (the error is above): the running shop still has the previous code"
  local output line
  if ! output=$(run_cli --in "$NEW_RELEASE" migrate 2>&1); then
    while IFS= read -r line; do printf '    | %s\n' "$line"; done <<<"$output" >&2
    die "bun run cli migrate failed"
  fi
  while IFS= read -r line; do info "$line"; done <<<"$output"
  step "Activating the new code" "check $APP_DIR/releases"
  local previous=""
  [[ -L $APP_DIR/current ]] && previous=$(basename "$(readlink -f "$APP_DIR/current")")
  mv -T "$NEW_RELEASE" "$APP_DIR/releases/$RELEASE_NAME"
  NEW_RELEASE=$APP_DIR/releases/$RELEASE_NAME
  ln -sfn "$NEW_RELEASE" "$APP_DIR/current.new"
  mv -Tf "$APP_DIR/current.new" "$APP_DIR/current"
  changed "code: ${previous:-none} → $(basename "$NEW_RELEASE") ($(<"$NEW_RELEASE/.source-version"))"
  ln -sfn "$APP_DIR/current/setup.sh" "$COMMAND_LINK"
  # Keep the active release and the two before it, for a quick look back.
  local old
  while IFS= read -r old; do
    [[ $old == "$NEW_RELEASE" ]] && continue
    rm -rf "$old"
  done < <(find "$APP_DIR/releases" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' | sort -r | tail -n +4)
}

# --- Services ----------------------------------------------------------------------------------------------------

UNITS_CHANGED=0
UNITS=("$APP@.service" "$APP.target" "$APP-backup.service" "$APP-backup.timer")
install_units() {
  step "Services" "systemctl failed: see systemctl status $APP.target"
  if [[ $SERVICE_MODE == direct ]]; then
    info "no systemd: the app and Caddy are started directly (logs in $LOG_DIR); they do not start at boot —"
    info "run 'morpheus-shop start' after a reboot; schedule 'morpheus-shop backup' with cron for daily backups"
    return 0
  fi
  local rendered unit
  rendered=$(mktemp -d)
  render_units "$rendered"
  for unit in "${UNITS[@]}"; do
    if write_if_changed "$UNIT_DIR/$unit" 644 root:root "$(<"$rendered/$unit")"; then
      [[ $unit == "$APP@.service" ]] && UNITS_CHANGED=1
      changed "wrote $UNIT_DIR/$unit$([[ $unit == *.timer ]] && printf ' (daily, keeps %s)' "$BACKUPS_KEEP")"
    fi
  done
  rm -rf "$rendered"
  systemctl daemon-reload
  local instances=()
  mapfile -t instances < <(app_ports | while read -r port; do instance_unit "$port"; printf '\n'; done)
  systemctl enable --quiet "$APP.target" "$APP-backup.timer" "${instances[@]}"
  systemctl start "$APP-backup.timer"
  info "$APP.target enabled with ${instances[*]} (MemoryMax=${APP_MEMORY_MAX_MB}M each)"
  info "backups daily via $APP-backup.timer"
}

# The units of deploy/ (templates in the release being installed) filled for this installation, as files in DIR:
# what install_units puts in /etc/systemd/system, and what tests/deploy-units.test.ts checks with systemd-analyze.
render_units() { # render_units DIR
  local unit
  size_app_memory
  for unit in "${UNITS[@]}"; do render_unit "$APP_DIR/current/deploy/$unit" >"$1/$unit"; done
}

# A unit template of deploy/ filled with this installation's paths and settings.
render_unit() { # render_unit TEMPLATE → stdout
  [[ -n $APP_MEMORY_MAX_MB ]] || size_app_memory
  render_template "$1" MANAGED="$MANAGED_MARK" README="$APP_DIR/current/README.md" USER="$SERVICE_USER" \
    APP_DIR="$APP_DIR" ENV_FILE="$ENV_FILE" BUN="$BUN" BUN_DIR="$(dirname "$BUN")" CACHE_DIR="$CACHE_DIR" \
    DATA_DIR="$DATA_DIR" JSC_RAM_SIZE="$JSC_RAM_SIZE" MEMORY_MAX="${APP_MEMORY_MAX_MB}M"
}

# Fills a template (deploy/*, the Caddyfile): its opening comment, which documents the template, is left out, and
# each {{NAME}} takes the VALUE of a NAME=VALUE argument. A field alone on its line may fill to several lines (each
# indented as the field) or to nothing (the blank line after it then goes too, as `caddy fmt` wants). A field without
# a value is an error, so a template and this script cannot drift apart unnoticed.
render_template() { # render_template TEMPLATE NAME=VALUE... → stdout
  local template=$1 kv line name indent header=1 dropped=0 part
  shift
  local -A fields=()
  for kv in "$@"; do fields[${kv%%=*}]=${kv#*=}; done
  [[ -r $template ]] || die "cannot read the template $template"
  while IFS= read -r line || [[ -n $line ]]; do
    if ((header)) && [[ $line == "#"* || -z $line ]]; then continue; fi
    header=0
    if ((dropped)) && [[ -z $line ]]; then
      dropped=0
      continue
    fi
    dropped=0
    if [[ $line =~ ^([[:space:]]*)\{\{([A-Z_]+)\}\}[[:space:]]*$ ]]; then
      indent=${BASH_REMATCH[1]}
      name=${BASH_REMATCH[2]}
      [[ -n ${fields[$name]+x} ]] || die "unknown field {{$name}} in $template"
      if [[ -z ${fields[$name]} ]]; then
        dropped=1
      else
        while IFS= read -r part; do printf '%s%s\n' "$indent" "$part"; done <<<"${fields[$name]}"
      fi
      continue
    fi
    for name in "${!fields[@]}"; do line=${line//"{{$name}}"/"${fields[$name]}"}; done
    [[ $line =~ \{\{([A-Z_]+)\}\} ]] && die "unknown field {{${BASH_REMATCH[1]}}} in $template"
    printf '%s\n' "$line"
  done <"$template"
  return 0
}

start_or_restart_app() {
  step "Starting the app" "$(app_log_hint)"
  retire_single_app
  retire_extra_instances
  local port running=() missing=()
  for port in $(app_ports); do
    if instance_running "$port"; then running+=("$port"); else missing+=("$port"); fi
  done
  for port in "${missing[@]}"; do
    [[ -z $(port_listeners "$port") ]] ||
      die "port $port on this server is taken by another program: $(port_listeners "$port")" \
        "choose other ports for the app: sudo ./setup.sh --port 3100 (it uses $INSTANCES from there)"
  done
  # The new processes first: with the code changed they run it already, and they carry the load while the running
  # ones restart one at a time.
  if ((${#missing[@]})); then
    [[ $SERVICE_MODE == systemd ]] && systemctl start "$APP.target"
    for port in "${missing[@]}"; do start_instance "$port"; done
    for port in "${missing[@]}"; do wait_app_healthy "$port"; done
    changed "started the app on port$( ((${#missing[@]} > 1)) && printf 's') ${missing[*]}"
  fi
  if ((${#running[@]})) && ((CODE_CHANGED || ENV_CHANGED || UNITS_CHANGED)); then
    restart_app "${running[@]}"
    changed "restarted the app$( ((${#running[@]} > 1)) && printf ' (%s processes, one at a time)' "${#running[@]}")"
  elif ((!${#missing[@]})); then
    info "already running, nothing to restart"
  fi
  for port in $(app_ports); do wait_app_healthy "$port"; done
  info "healthy: http://127.0.0.1:$(app_ports_text)$BASE_PATH_URL/healthz"
}

ADMIN_LOGIN="" ADMIN_PASSWORD="" EXISTING_LOGINS=""
ensure_panel_account() {
  step "Panel account" "the CLI failed; try: sudo morpheus-shop cli admin:reset"
  local logins
  logins=$(psql_admin -d "$DB_NAME" -c 'select login from panel_accounts order by id')
  EXISTING_LOGINS=$(paste -sd, <<<"$logins")
  if [[ -n $logins ]] && ((!RESET_ADMIN)); then
    info "panel account exists ($(paste -sd, <<<"$logins")); password unchanged (--reset-admin makes a new one)"
    return 0
  fi
  local login=${OPT_ADMIN_LOGIN:-$(head -n 1 <<<"$logins")}
  login=${login:-admin-$(rand_hex 3)}
  local output
  output=$(run_cli admin:reset "$login")
  ADMIN_LOGIN=$(sed -n 's/^login: //p' <<<"$output")
  ADMIN_PASSWORD=$(sed -n 's/^password: //p' <<<"$output")
  [[ -n $ADMIN_LOGIN && -n $ADMIN_PASSWORD ]] || die "admin:reset printed no login/password"
  if [[ -n $logins ]]; then
    changed "new password for panel account $ADMIN_LOGIN"
  else
    changed "created panel account $ADMIN_LOGIN"
  fi
}

# --- Caddy -------------------------------------------------------------------------------------------------------

render_caddyfile() { # render_caddyfile TEMPLATE → stdout
  local global=() tls="" hsts="" site
  # skip_install_trust: Caddy never touches the system's trust store (nothing here needs its local CA trusted).
  global+=("admin localhost:2019" "skip_install_trust")
  [[ -n $EMAIL ]] && global+=("email $EMAIL")
  if [[ -n $DOMAIN ]]; then
    [[ -n $ACME_CA ]] && global+=("acme_ca $ACME_CA")
    [[ -n $ACME_CA && -f $CADDY_ACME_ROOT ]] && global+=("acme_ca_root $CADDY_ACME_ROOT")
    hsts='Strict-Transport-Security "max-age=31536000"'
    site=$DOMAIN
  else
    # Clients that send no server name (an IP address in the URL) still get the IP's certificate.
    global+=("default_sni $IP")
    tls="tls internal"
    site="https://$(site_host)"
  fi
  render_template "$1" GLOBAL="$(printf '%s\n' "${global[@]}")" SITE="$site" TLS="$tls" HSTS="$hsts" \
    UPSTREAMS="$(app_ports | sed 's/^/127.0.0.1:/' | paste -sd ' ')" HEALTH_URI="$BASE_PATH_URL/healthz?scope=process"
}

setup_caddy() {
  step "Caddy: HTTPS and the /Morpheus Private/ route" "check the Caddyfile and: $(caddy_log_hint)"
  [[ -n $ACME_CA ]] || rm -f "$CADDY_ACME_ROOT"
  if [[ -n $OPT_ACME_CA_ROOT ]]; then
    if write_if_changed "$CADDY_ACME_ROOT" 644 root:root "$(cat "$OPT_ACME_CA_ROOT")"; then
      changed "installed the ACME server's CA certificate $CADDY_ACME_ROOT"
    fi
  fi
  local content tmp
  content=$(render_caddyfile "$APP_DIR/current/Caddyfile")
  content="$MANAGED_MARK from $APP_DIR/current/Caddyfile: edit the template in the repository and re-run setup.sh.
$content"
  tmp=$(mktemp /tmp/Caddyfile.XXXXXX)
  printf '%s\n' "$content" >"$tmp"
  chmod 644 "$tmp"
  if ! setpriv --reuid=caddy --regid=caddy --init-groups -- env -i HOME="$CADDY_HOME" PATH=/usr/bin:/bin \
    caddy validate --adapter caddyfile --config "$tmp" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -f "$tmp" "$tmp.log"
    die "the generated Caddyfile does not validate; $CADDYFILE was left as it was"
  fi
  rm -f "$tmp" "$tmp.log"
  if [[ -f $CADDYFILE && ! -f $CADDYFILE_BEFORE ]] && ! grep -qF "$MANAGED_MARK" "$CADDYFILE"; then
    cp -p "$CADDYFILE" "$CADDYFILE_BEFORE"
    info "kept the previous Caddyfile as $CADDYFILE_BEFORE"
  fi
  local caddy_changed=0
  if write_if_changed "$CADDYFILE" 644 root:root "$content"; then
    caddy_changed=1
    changed "wrote $CADDYFILE for $(site_host)"
  fi

  if caddy_running; then
    if ((caddy_changed)); then
      if [[ $SERVICE_MODE == systemd ]]; then systemctl reload caddy; else caddy_reload; fi
      changed "reloaded Caddy"
    else
      info "Caddy running, configuration unchanged"
    fi
  else
    check_web_ports_free
    if [[ $SERVICE_MODE == systemd ]]; then
      systemctl enable --quiet caddy
      systemctl restart caddy
    else
      start_caddy_direct
    fi
    changed "started Caddy"
  fi
}

caddy_reload() {
  env -i HOME="$CADDY_HOME" PATH=/usr/bin:/bin caddy reload --config "$CADDYFILE" --force >/dev/null 2>&1 ||
    die "caddy reload failed" "$(caddy_log_hint)"
}

caddy_log_hint() {
  if [[ $SERVICE_MODE == systemd ]]; then printf 'journalctl -u caddy -n 50 --no-pager'; else printf 'tail -n 50 %s/caddy.log' "$LOG_DIR"; fi
}

check_web_ports_free() {
  local port listeners
  for port in 80 443; do
    listeners=$(port_listeners "$port")
    [[ -z $listeners ]] && continue
    [[ $listeners == *'"caddy"'* ]] && continue
    die "port $port is taken by another program: $listeners" \
      "stop it (e.g. systemctl disable --now nginx apache2) so Caddy can serve HTTPS, then re-run setup.sh"
  done
}

open_firewall() {
  step "Firewall" "ufw failed; open ports 80 and 443 by hand: ufw allow 80/tcp && ufw allow 443/tcp"
  # Whole outputs into variables: `cmd | grep -q` fails under pipefail when grep stops reading early.
  local status=""
  have ufw && status=$(ufw status 2>/dev/null || true)
  if [[ $status == *"Status: active"* ]]; then
    local rule
    for rule in 80/tcp 443/tcp 443/udp; do
      if ! grep -Eq "^${rule}[[:space:]]+ALLOW" <<<"$status"; then
        ufw allow "$rule" >/dev/null
        changed "ufw: allowed $rule"
      fi
    done
    info "ufw is active; 80/tcp and 443 are open"
  else
    info "ufw is not active; nothing to open (make sure your provider's firewall lets 80 and 443 in)"
  fi
}

check_https() {
  step "Checking HTTPS" ""
  local host url i code
  host=$(site_host)
  url="https://$host$BASE_PATH_URL/healthz"
  if [[ -n $DOMAIN ]]; then
    for ((i = 0; i < 60; i++)); do
      code=$(curl --noproxy '*' -sk --max-time 5 --connect-to "$host:443:127.0.0.1:443" -o /dev/null \
        -w '%{http_code}' "$url" || true)
      [[ $code == 200 ]] && break
      sleep 1
    done
    if [[ $code != 200 ]]; then
      warn "Caddy has no certificate for $DOMAIN yet. Check that the DNS A/AAAA record of $DOMAIN points at"
      warn "this server and that ports 80 and 443 are reachable from the internet; Caddy keeps retrying"
      warn "($(caddy_log_hint))."
      HTTPS_OK=0
      return 0
    fi
    HTTPS_ISSUER=$(cert_issuer "$DOMAIN" 127.0.0.1)
    if curl --noproxy '*' -fsS --max-time 5 --connect-to "$host:443:127.0.0.1:443" -o /dev/null "$url" 2>/dev/null; then
      info "certificate for $DOMAIN from ${HTTPS_ISSUER:-?}, trusted by this system"
    else
      info "certificate for $DOMAIN from ${HTTPS_ISSUER:-?} (not in this system's trust store: a test or staging CA)"
    fi
  else
    for ((i = 0; i < 30; i++)); do
      [[ -s $CADDY_LOCAL_ROOT ]] && local_curl --cacert "$CADDY_LOCAL_ROOT" --connect-to "$host:443:127.0.0.1:443" \
        -o /dev/null "$url" 2>/dev/null && break
      sleep 1
    done
    [[ -s $CADDY_LOCAL_ROOT ]] || die "Caddy did not create its local CA ($CADDY_LOCAL_ROOT)" "$(caddy_log_hint)"
    info "certificate for $IP from Caddy's local CA"
  fi
  HTTPS_OK=1
}
HTTPS_OK=0
HTTPS_ISSUER=""

cert_issuer() { # cert_issuer SERVERNAME ADDRESS
  have openssl || return 0
  openssl s_client -connect "$2:443" -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -issuer 2>/dev/null | sed 's/^issuer= *//'
}

print_summary() {
  local url
  url="https://$(site_host)$BASE_PATH_URL/"
  printf '\n'
  if ((${#CHANGES[@]})); then
    printf 'What this run changed:\n'
    printf '  - %s\n' "${CHANGES[@]}"
  else
    printf 'Nothing to change: the shop was already installed and up to date.\n'
  fi
  cat <<EOF

Morpheus Shop is running.
  panel:          $url
EOF
  if [[ -n $ADMIN_PASSWORD ]]; then
    printf '  login:          %s\n  password:       %s\n' "$ADMIN_LOGIN" "$ADMIN_PASSWORD"
    printf '                  (shown once; store it now. A new one: sudo morpheus-shop cli admin:reset %s)\n' "$ADMIN_LOGIN"
  else
    printf '  login:          %s (password unchanged; a new one: sudo morpheus-shop --reset-admin)\n' "$EXISTING_LOGINS"
  fi
  cat <<EOF
  licence API:    https://$(site_host)$BASE_PATH_URL/api/<product>/auth
  AnyPay:         notification URL https://$(site_host)$BASE_PATH_URL/payments/anypay
  Telegram bot:   paste the token from @BotFather in the panel (Основные настройки), then switch the bot on
  app processes:  $INSTANCES on 127.0.0.1:$(app_ports_text) (another number: sudo morpheus-shop --instances N)
  logs:           $([[ $SERVICE_MODE == systemd ]] && printf "journalctl -u '%s@*' -f" "$APP" || printf 'tail -f %s/app@*.log' "$LOG_DIR")
  backups:        $BACKUP_DIR ($([[ $SERVICE_MODE == systemd ]] && printf 'daily, keeps %s' "$BACKUPS_KEEP" || printf 'run: morpheus-shop backup'))
  operations:     sudo morpheus-shop backup | restore FILE | cli ... | status | restart
EOF
  if [[ -n $IP ]]; then
    cat <<EOF

WARNING: there is no domain, so the certificate comes from Caddy's own CA, which no browser or loader trusts
by default. Browsers will warn once; loader clients must trust this root certificate (or pin it):
  $CADDY_LOCAL_ROOT
EOF
    if have openssl && [[ -s $CADDY_LOCAL_ROOT ]]; then
      printf '  SHA-256 fingerprint: %s\n' "$(openssl x509 -in "$CADDY_LOCAL_ROOT" -noout -fingerprint -sha256 | cut -d= -f2)"
    fi
    printf 'With a domain later: sudo ./setup.sh --domain shop.example.com\n'
  fi
  if [[ -n $DOMAIN ]] && ((!HTTPS_OK)); then
    printf '\nHTTPS is not ready yet (see the warning above); the panel answers once Caddy has the certificate.\n'
  fi
}

cmd_install() {
  require_root "$@"
  load_state
  check_system
  resolve_settings
  install_packages
  create_user_and_dirs
  setup_postgres
  setup_redis
  write_env_file
  save_state
  install_code
  migrate_and_activate
  install_units
  start_or_restart_app
  ensure_panel_account
  setup_caddy
  open_firewall
  check_https
  print_summary
}

# ---------------------------------------------------------------------------------------------------------------
# Other commands
# ---------------------------------------------------------------------------------------------------------------

cmd_cli() {
  require_root
  require_installed
  load_state
  local args=("${CLI_ARGS[@]}") status=0 upload=""
  # The CLI runs as the service user inside the release directory: a build given by a path the operator typed
  # (relative to where they are, in a home only root can read) is handed over as a copy it can read.
  if [[ ${args[0]:-} == build:upload && ${#args[@]} -eq 3 && ${args[2]} != --* ]]; then
    [[ -f ${args[2]} && -r ${args[2]} ]] || die "cannot read ${args[2]}" "give the path of the build's zip file"
    upload=$(mktemp -d "${TMPDIR:-/tmp}/morpheus-upload.XXXXXX")
    cp -- "${args[2]}" "$upload/$(basename -- "${args[2]}")"
    chown -R "$SERVICE_USER:" "$upload"
    args[2]="$upload/$(basename -- "${args[2]}")"
  fi
  # The CLI's exit status is the answer (0 done, 1 failed, 2 wrong usage) and it has said why: no step report.
  run_cli "${args[@]}" || status=$?
  [[ -z $upload ]] || rm -rf "$upload"
  exit "$status"
}

cmd_status() {
  require_root
  require_installed
  load_state
  QUIET=0
  printf 'address:  https://%s%s/\n' "$(site_host)" "$BASE_PATH_URL"
  printf 'code:     %s (%s)\n' "$(basename "$(readlink -f "$APP_DIR/current")")" "$(cat "$APP_DIR/current/.source-version" 2>/dev/null)"
  printf 'app:      %s (%s process%s on 127.0.0.1:%s)\n' "$(app_running && printf running || printf stopped)" \
    "$INSTANCES" "$( ((INSTANCES > 1)) && printf es)" "$(app_ports_text)"
  printf 'caddy:    %s\n' "$(caddy_running && printf running || printf stopped)"
  local port
  for port in $(app_ports); do
    printf 'health:   %s %s\n' "$port" "$(local_curl "http://127.0.0.1:$port$BASE_PATH_URL/healthz" 2>&1 || true)"
  done
  printf 'backups:  %s\n' "$(find "$BACKUP_DIR" -maxdepth 1 -name "$APP-*.tar" | wc -l) in $BACKUP_DIR"
}

cmd_start_stop() {
  require_root
  require_installed
  load_state
  step "${COMMAND^} the shop" "$(app_log_hint)"
  case $COMMAND in
    stop)
      stop_app
      [[ $SERVICE_MODE == direct ]] && direct_stop caddy
      ;;
    start | restart)
      if [[ $COMMAND == restart ]]; then restart_app; else start_app; fi
      if ! caddy_running; then
        if [[ $SERVICE_MODE == systemd ]]; then systemctl start caddy; else start_caddy_direct; fi
      fi
      ;;
  esac
  info "done"
}

cmd_caddyfile() {
  load_state
  DOMAIN=${OPT_DOMAIN:-$DOMAIN} IP=${OPT_IP:-$IP}
  [[ -n $OPT_DOMAIN ]] && IP=""
  [[ -n $OPT_IP ]] && DOMAIN=""
  EMAIL=${OPT_EMAIL:-$EMAIL} PORT=${OPT_PORT:-$PORT} ACME_CA=${OPT_ACME_CA:-$ACME_CA}
  INSTANCES=${OPT_INSTANCES:-$INSTANCES}
  [[ -n $DOMAIN || -n $IP ]] || die "give --domain NAME or --ip ADDRESS"
  valid_instances "$INSTANCES" || die "--instances must be a number from 1 to $MAX_INSTANCES"
  if [[ -n $DOMAIN ]]; then valid_domain "$DOMAIN" || die "'$DOMAIN' is not a domain name"; fi
  if [[ -n $IP ]]; then valid_ipv4 "$IP" || valid_ipv6 "$IP" || die "'$IP' is not an IP address"; fi
  valid_port "$PORT" || die "--port must be 1-65535"
  render_caddyfile "$SCRIPT_DIR/Caddyfile"
}

cmd_uninstall() {
  require_root
  require_installed
  load_state
  if ((!ASSUME_YES)); then
    is_tty || die "uninstall removes the shop" "pass --yes to confirm"
    local answer
    ask answer "Remove Morpheus Shop$( ((PURGE)) && printf ' AND ALL ITS DATA, SECRETS AND BACKUPS'). Type yes"
    [[ $answer == yes ]] || die "cancelled" "nothing was changed"
  fi
  step "Stopping services" ""
  local port
  if [[ $SERVICE_MODE == systemd ]]; then
    for port in $(existing_instance_ports); do systemctl disable --now --quiet "$(instance_unit "$port")" || true; done
    systemctl disable --now --quiet "$APP.target" "$APP.service" "$APP-backup.timer" 2>/dev/null || true
    rm -f "$UNIT_DIR/$APP@.service" "$UNIT_DIR/$APP.target" "$UNIT_DIR/$APP.service" "$UNIT_DIR/$APP-backup.service" \
      "$UNIT_DIR/$APP-backup.timer"
    rm -rf "$UNIT_DIR/$APP.target.wants"
    systemctl daemon-reload
  else
    stop_app
    direct_stop app
    direct_stop caddy
  fi
  step "Caddy configuration" ""
  if [[ -f $CADDYFILE_BEFORE ]]; then
    mv -f "$CADDYFILE_BEFORE" "$CADDYFILE"
    info "restored the previous $CADDYFILE"
  elif grep -qF "$MANAGED_MARK" "$CADDYFILE" 2>/dev/null; then
    rm -f "$CADDYFILE"
    info "removed $CADDYFILE"
  fi
  rm -f "$CADDY_ACME_ROOT"
  if [[ $SERVICE_MODE == systemd ]] && systemctl is-active --quiet caddy; then
    if [[ -f $CADDYFILE ]]; then systemctl reload caddy || true; else systemctl stop caddy || true; fi
  fi
  step "PostgreSQL settings" ""
  local pg_conf
  pg_conf=$(psql_admin -c 'show config_file' 2>/dev/null || true)
  pg_conf=$(dirname "${pg_conf:-/nonexistent/postgresql.conf}")/conf.d/50-morpheus-shop.conf
  if [[ -f $pg_conf ]] && grep -qF "$MANAGED_MARK" "$pg_conf"; then
    rm -f "$pg_conf"
    psql_admin -c 'select pg_reload_conf()' >/dev/null || true
    info "removed $pg_conf (shared_buffers is PostgreSQL's own again from its next restart)"
  fi
  step "Removing the code" ""
  rm -rf "$APP_DIR" "$COMMAND_LINK" "$RUN_DIR"
  if ((PURGE)); then
    step "Purging data, secrets and backups" ""
    psql_admin -v db="$DB_NAME" <<<'drop database if exists :"db" with (force);'
    psql_admin -v role="$DB_NAME" <<<'drop role if exists :"role";'
    rm -rf "$DATA_DIR" "$CACHE_DIR" "$CONF_DIR" "$BACKUP_DIR" "$LOG_DIR"
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then userdel "$SERVICE_USER"; fi
    info "removed database and role $DB_NAME, $DATA_DIR, $CONF_DIR, $BACKUP_DIR and user $SERVICE_USER"
    info "left installed: packages (PostgreSQL, Redis with its password and memory cap, Caddy, Bun)"
  else
    info "kept: database $DB_NAME, $DATA_DIR, $CONF_DIR, $BACKUP_DIR (setup.sh reinstalls onto them)"
  fi
}

# Backup and restore (`setup.sh backup`, `setup.sh restore FILE`) are in their own file, beside the unit templates.
# shellcheck source=deploy/backup.sh
source "$SCRIPT_DIR/deploy/backup.sh"

main() {
  parse_args "$@"
  case $COMMAND in
    help) usage ;;
    install) cmd_install "$@" ;;
    backup) cmd_backup ;;
    restore) cmd_restore ;;
    cli) cmd_cli ;;
    status) cmd_status ;;
    start | stop | restart) cmd_start_stop ;;
    caddyfile) cmd_caddyfile ;;
    uninstall) cmd_uninstall ;;
  esac
}

# Sourced (the e2e test checks single steps in a sandbox) it only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
