# Shared helpers for the local-infrastructure scripts. Sourced, not run.
# Every server binds 127.0.0.1 on the project's own ports and keeps its data, logs and pid files
# under $VE_DATA (default: <repo>/.data, git-ignored).
set -euo pipefail

VE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VE_DATA="${VE_DATA:-$VE_ROOT/.data}"
PG_PORT="${VE_PG_PORT:-55432}"
REDIS_PORT="${VE_REDIS_PORT:-56379}"
KAFKA_PORT="${VE_KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${VE_KAFKA_CONTROLLER_PORT:-59093}"
KAFKA_SASL_SSL_PORT="${VE_KAFKA_SASL_SSL_PORT:-59094}"
mkdir -p "$VE_DATA"

log() { printf '[infra] %s\n' "$*" >&2; }
fail() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# pid_alive FILE [COMMAND_PART] -> true when FILE names a running process (whose command line
# contains COMMAND_PART, if given: a pid recycled by an unrelated process after a crash is not ours).
pid_alive() {
  local file="$1" expected="${2:-}"
  [[ -s "$file" ]] || return 1
  local pid
  pid="$(head -n1 "$file" | tr -d '[:space:]')"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "$expected" ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expected"
}

# port_open PORT -> true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION COMMAND... -> polls COMMAND every 0.2 s.
wait_until() {
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || fail "apt-get not found; install $* by hand"
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || fail "apt-get update failed"
    APT_UPDATED=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || fail "apt-get install $* failed"
}

# process_gone PID -> true when PID has exited (a zombie waiting for its parent counts as exited).
process_gone() {
  kill -0 "$1" 2>/dev/null || return 0
  [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]]
}

# wait_gone PID SECONDS -> waits until PID has exited; false if it is still there after SECONDS.
wait_gone() {
  local deadline=$((SECONDS + $2))
  until process_gone "$1"; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
}

# stop_pidfile NAME FILE [COMMAND_PART] -> TERM the process in FILE (if ours and alive), wait, then KILL.
stop_pidfile() {
  local name="$1" file="$2" expected="${3:-}"
  if ! pid_alive "$file" "$expected"; then rm -f "$file"; log "$name: not running"; return 0; fi
  local pid; pid="$(head -n1 "$file" | tr -d '[:space:]')"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 30; then
    log "$name: did not stop on TERM, killing $pid"; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true
  fi
  rm -f "$file"
  log "$name: stopped (pid $pid)"
}

# refuse_foreign_port NAME PORT -> fail when something that is not ours already listens on PORT.
refuse_foreign_port() {
  if port_open "$2"; then
    fail "$1: 127.0.0.1:$2 is already in use by a process these scripts did not start; stop it or choose another port (VE_*_PORT)"
  fi
}
