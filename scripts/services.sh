#!/usr/bin/env bash
# Local infrastructure for fraudscore's integration tests: real servers on loopback, no Docker.
#
#   scripts/services.sh up     [redis|kafka|redis-cluster|all]...   start (idempotent; default: all)
#   scripts/services.sh down   [redis|kafka|redis-cluster|all]...   stop (idempotent; default: all)
#   scripts/services.sh status [redis|kafka|redis-cluster|all]...   show what runs (always exits 0)
#   scripts/services.sh is-up  redis|kafka|redis-cluster            exit 0 if running, 1 if not (for scripts)
#   scripts/services.sh env                                         print the env lines
#
# "all" = redis + kafka + redis-cluster (the cluster is three small redis-server processes: cheap).
#
# State lives in .services/ (git-ignored): pid files, logs, data dirs, and .services/env, which holds
#   REDIS_URL=redis://127.0.0.1:6390
#   KAFKA_BROKERS=127.0.0.1:9192
#   REDIS_CLUSTER_NODES=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
# Source it with: set -a; . .services/env; set +a
#
# Ports (override with env vars when starting):
#   FRAUDSCORE_REDIS_PORT (6390), FRAUDSCORE_KAFKA_PORT (9192), FRAUDSCORE_KAFKA_CONTROLLER_PORT (9193),
#   FRAUDSCORE_REDIS_CLUSTER_PORTS ("7001 7002 7003", space- or comma-separated).
# Other knobs: FRAUDSCORE_KAFKA_START_TIMEOUT (90 s), FRAUDSCORE_KAFKA_HEAP ("-Xmx512m -Xms256m").
#
# Redis comes from Debian's redis-server package (installed with apt-get when missing). Kafka is a real
# Apache Kafka 3.9.1 broker in KRaft mode, assembled from Maven Central (scripts/kafka/pom.xml) into
# .cache/kafka-libs/ (git-ignored, reused; a marker file tells a finished download from a half one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
ENV_FILE="$STATE/env"
HOST=127.0.0.1

REDIS_PORT="${FRAUDSCORE_REDIS_PORT:-6390}"
KAFKA_PORT="${FRAUDSCORE_KAFKA_PORT:-9192}"
KAFKA_CONTROLLER_PORT="${FRAUDSCORE_KAFKA_CONTROLLER_PORT:-9193}"
_cluster_ports="${FRAUDSCORE_REDIS_CLUSTER_PORTS:-7001 7002 7003}"
read -r -a CLUSTER_PORTS <<<"${_cluster_ports//,/ }"
KAFKA_START_TIMEOUT="${FRAUDSCORE_KAFKA_START_TIMEOUT:-90}"
KAFKA_HEAP="${FRAUDSCORE_KAFKA_HEAP:--Xmx512m -Xms256m}"

KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
KAFKA_LIBS="$ROOT/.cache/kafka-libs"
KAFKA_LIBS_MARKER="$KAFKA_LIBS/.complete"

REDIS_DIR="$STATE/redis"
KAFKA_DIR="$STATE/kafka"
CLUSTER_DIR="$STATE/redis-cluster"

log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------- helpers

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# pid_alive PIDFILE PATTERN: true when the pid file names a live (non-zombie) process whose command line
# contains PATTERN. A stale pid file (crash, kill -9, reboot, pid reused by something else) reads as dead.
pid_alive() {
  local pidfile=$1 pattern=$2 pid state
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [[ $state != Z && -n $state ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

read_pid() { tr -dc '0-9' <"$1" 2>/dev/null || true; }

# stop_pid PIDFILE PATTERN GRACE_SECONDS: SIGTERM, wait, then SIGKILL. Removes the pid file.
stop_pid() {
  local pidfile=$1 pattern=$2 grace=$3 pid i
  if pid_alive "$pidfile" "$pattern"; then
    pid=$(read_pid "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      pid_alive "$pidfile" "$pattern" || break
      sleep 0.1
    done
    if pid_alive "$pidfile" "$pattern"; then
      log "pid $pid did not stop within ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        pid_alive "$pidfile" "$pattern" || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$pidfile"
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

# apt_install PKG...: install Debian packages; refresh the package lists only when the install fails.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -q --no-install-recommends "$@" >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update -q >&2
    as_root apt-get install -y -q --no-install-recommends "$@" >&2
  fi
}

ensure_redis_installed() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
    command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
  fi
}

ensure_java() {
  command -v java >/dev/null 2>&1 || apt_install default-jre-headless
  command -v java >/dev/null 2>&1 || die "java missing after apt-get install"
}

ensure_kafka_libs() {
  local want have
  want=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  have=$(cat "$KAFKA_LIBS_MARKER" 2>/dev/null || true)
  if [[ $want == "$have" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || apt_install maven
  ensure_java
  log "assembling Apache Kafka from Maven Central into ${KAFKA_LIBS#"$ROOT"/} (first time only)"
  local t0=$SECONDS tmp="$KAFKA_LIBS.partial"
  rm -rf "$tmp" "$KAFKA_LIBS"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  local mvn_log="$ROOT/.cache/kafka-libs.mvn.log"
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    tail -n 40 "$mvn_log" >&2
    rm -rf "$tmp"
    die "mvn could not resolve org.apache.kafka:kafka_2.13 (full output: $mvn_log)"
  fi
  mv "$tmp" "$KAFKA_LIBS"
  printf '%s\n' "$want" >"$KAFKA_LIBS_MARKER"
  log "kafka libs ready: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

redis_ping() { # PORT -> true when redis answers PONG
  [[ $(timeout 3 redis-cli -h "$HOST" -p "$1" ping 2>/dev/null || true) == PONG ]]
}

wait_redis() { # PORT PIDFILE LOGFILE
  local i
  for ((i = 0; i < 100; i++)); do
    redis_ping "$1" && return 0
    sleep 0.1
  done
  tail -n 20 "$3" >&2 2>/dev/null || true
  die "redis on $HOST:$1 did not answer PING within 10s (log: $3)"
}

# Redis with no persistence, daemonized, pid + log under DIR. Args: PORT DIR [extra redis-server args...]
start_redis_server() {
  local port=$1 dir=$2
  shift 2
  if port_open "$port"; then
    die "port $HOST:$port is already in use by a process not started by this script (pid file: $dir/redis.pid)"
  fi
  mkdir -p "$dir"
  : >"$dir/redis.log"
  redis-server --bind "$HOST" --port "$port" --protected-mode yes \
    --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    "$@" >/dev/null 9>&-
  wait_redis "$port" "$dir/redis.pid" "$dir/redis.log"
  printf '%s\n' "$port" >"$dir/port"
}

# Stop one redis-server: SHUTDOWN NOSAVE, then SIGTERM/SIGKILL fallback.
stop_redis_server() { # DIR
  local dir=$1 port pid i
  local pidfile="$dir/redis.pid"
  port=$(cat "$dir/port" 2>/dev/null || true)
  if pid_alive "$pidfile" redis-server; then
    pid=$(read_pid "$pidfile")
    if [[ -n $port ]]; then
      timeout 5 redis-cli -h "$HOST" -p "$port" shutdown nosave >/dev/null 2>&1 || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
      done
    fi
    # The pid file is gone after a clean shutdown; put it back for the fallback if the process lingers.
    if kill -0 "$pid" 2>/dev/null; then
      printf '%s\n' "$pid" >"$pidfile"
      stop_pid "$pidfile" redis-server 10
    fi
  fi
  rm -f "$pidfile"
}

# ------------------------------------------------------------------------------------------------ redis

redis_running() { pid_alive "$REDIS_DIR/redis.pid" redis-server; }

redis_up() {
  ensure_redis_installed
  if redis_running; then
    log "redis: already running (pid $(read_pid "$REDIS_DIR/redis.pid"), $HOST:$(cat "$REDIS_DIR/port"))"
    return 0
  fi
  rm -f "$REDIS_DIR/redis.pid"
  start_redis_server "$REDIS_PORT" "$REDIS_DIR"
  log "redis: started on $HOST:$REDIS_PORT (pid $(read_pid "$REDIS_DIR/redis.pid"))"
}

redis_down() {
  if redis_running; then
    stop_redis_server "$REDIS_DIR"
    log "redis: stopped"
  else
    rm -f "$REDIS_DIR/redis.pid"
    log "redis: not running"
  fi
}

redis_status() {
  if redis_running; then
    printf '%-14s running  pid %-8s %s:%s\n' redis "$(read_pid "$REDIS_DIR/redis.pid")" "$HOST" "$(cat "$REDIS_DIR/port")"
  else
    printf '%-14s stopped\n' redis
  fi
}

# ------------------------------------------------------------------------------------------------ kafka

kafka_running() { pid_alive "$KAFKA_DIR/kafka.pid" kafka.Kafka; }

kafka_java_args() { # JVM flags + classpath for the broker and its tools, into the array KAFKA_JAVA
  # shellcheck disable=SC2206 # KAFKA_HEAP is a list of JVM flags
  KAFKA_JAVA=(java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$ROOT/scripts/kafka/log4j.properties"
    "-Dkafka.logs.dir=$KAFKA_DIR/logs"
    -cp "$KAFKA_LIBS/*")
}

kafka_up() {
  if kafka_running; then
    log "kafka: already running (pid $(read_pid "$KAFKA_DIR/kafka.pid"), $HOST:$(cat "$KAFKA_DIR/port"))"
    return 0
  fi
  rm -f "$KAFKA_DIR/kafka.pid"
  ensure_java
  ensure_kafka_libs
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $HOST:$p is already in use by a process not started by this script"
  done

  kafka_java_args
  local data="$KAFKA_DIR/data" props="$KAFKA_DIR/server.properties" out="$KAFKA_DIR/kafka.out"
  mkdir -p "$data" "$KAFKA_DIR/logs"
  sed -e "s|@HOST@|$HOST|g" -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$data|g" \
    "$ROOT/scripts/kafka/server.properties" >"$props"

  # Format the KRaft storage once; a formatted dir has meta.properties. A dir formatted for other ports
  # (controller.quorum.voters changed) is wiped: the data is disposable test data.
  if [[ -f $data/meta.properties && $(cat "$KAFKA_DIR/formatted-for" 2>/dev/null) != "$KAFKA_CONTROLLER_PORT" ]]; then
    log "kafka: controller port changed; re-formatting the data dir"
    rm -rf "$data"
    mkdir -p "$data"
  fi
  if [[ ! -f $data/meta.properties ]]; then
    local cluster_id
    cluster_id=$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_DIR/format.log" | tail -n 1)
    [[ -n $cluster_id ]] || die "kafka: StorageTool random-uuid failed (see $KAFKA_DIR/format.log)"
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >>"$KAFKA_DIR/format.log" 2>&1 ||
      {
        tail -n 20 "$KAFKA_DIR/format.log" >&2
        die "kafka: formatting $data failed"
      }
    printf '%s\n' "$KAFKA_CONTROLLER_PORT" >"$KAFKA_DIR/formatted-for"
    log "kafka: formatted storage (cluster id $cluster_id)"
  fi

  local t0=$SECONDS
  : >"$out"
  # setsid: own session, so a Ctrl-C in the terminal that started it does not kill the broker; the
  # scripts that started it stop it cleanly. exec keeps the pid written to the pid file.
  (
    cd "$KAFKA_DIR"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_DIR/kafka.pid" \
      "${KAFKA_JAVA[@]}" kafka.Kafka "$props" >"$out" 2>&1 </dev/null 9>&- &
  )
  local i
  for ((i = 0; i < 20; i++)); do
    [[ -s $KAFKA_DIR/kafka.pid ]] && break
    sleep 0.05
  done
  printf '%s\n' "$KAFKA_PORT" >"$KAFKA_DIR/port"

  # Ready when the broker logs "Kafka Server started"; an open port alone (it binds before it serves)
  # counts only after a 5 s grace.
  local port_since=""
  while :; do
    if grep -q 'Kafka Server started' "$out" 2>/dev/null; then break; fi
    if ! kafka_running; then
      sleep 0.2
      if ! kafka_running; then
        log "kafka: the broker exited during startup; last lines of $out:"
        tail -n 40 "$out" >&2 || true
        rm -f "$KAFKA_DIR/kafka.pid"
        die "kafka did not start"
      fi
    fi
    if port_open "$KAFKA_PORT"; then
      port_since=${port_since:-$SECONDS}
      ((SECONDS - port_since >= 5)) && break
    fi
    if ((SECONDS - t0 >= KAFKA_START_TIMEOUT)); then
      log "kafka: not ready after ${KAFKA_START_TIMEOUT}s; last lines of $out:"
      tail -n 40 "$out" >&2 || true
      stop_pid "$KAFKA_DIR/kafka.pid" kafka.Kafka 10
      die "kafka broker did not become ready on $HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s"
    fi
    sleep 0.25
  done
  log "kafka: started on $HOST:$KAFKA_PORT (pid $(read_pid "$KAFKA_DIR/kafka.pid"), ready in $((SECONDS - t0))s)"
}

kafka_down() {
  if kafka_running; then
    stop_pid "$KAFKA_DIR/kafka.pid" kafka.Kafka 30
    log "kafka: stopped"
  else
    rm -f "$KAFKA_DIR/kafka.pid"
    log "kafka: not running"
  fi
}

kafka_status() {
  if kafka_running; then
    printf '%-14s running  pid %-8s %s:%s\n' kafka "$(read_pid "$KAFKA_DIR/kafka.pid")" "$HOST" "$(cat "$KAFKA_DIR/port")"
  else
    printf '%-14s stopped\n' kafka
  fi
}

# ---------------------------------------------------------------------------------------- redis-cluster

cluster_node_dirs() { find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 -type d -name 'node-*' 2>/dev/null | sort; }

cluster_running() { # all recorded nodes alive, and the cluster says ok
  local dir n=0 first=""
  while read -r dir; do
    [[ -n $dir ]] || continue
    pid_alive "$dir/redis.pid" redis-server || return 1
    first=${first:-$(cat "$dir/port")}
    n=$((n + 1))
  done < <(cluster_node_dirs)
  ((n >= 3)) || return 1
  timeout 3 redis-cli -h "$HOST" -p "$first" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

cluster_nodes_csv() {
  local dir out=""
  while read -r dir; do
    [[ -n $dir ]] || continue
    out+="${out:+,}$HOST:$(cat "$dir/port")"
  done < <(cluster_node_dirs)
  printf '%s' "$out"
}

cluster_up() {
  ensure_redis_installed
  if cluster_running; then
    log "redis-cluster: already running ($(cluster_nodes_csv))"
    return 0
  fi
  # Anything half there (a node killed, a create that never finished) is torn down and rebuilt from
  # scratch: there is no persistence, so nothing is lost.
  cluster_down quiet
  rm -rf "$CLUSTER_DIR"
  ((${#CLUSTER_PORTS[@]} >= 3)) || die "a Redis Cluster needs at least 3 masters (FRAUDSCORE_REDIS_CLUSTER_PORTS)"
  local port addrs=()
  for port in "${CLUSTER_PORTS[@]}"; do
    start_redis_server "$port" "$CLUSTER_DIR/node-$port" \
      --cluster-enabled yes --cluster-config-file "$CLUSTER_DIR/node-$port/nodes.conf" \
      --cluster-node-timeout 5000
    addrs+=("$HOST:$port")
  done
  if ! timeout 60 redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$CLUSTER_DIR/create.log" 2>&1; then
    cat "$CLUSTER_DIR/create.log" >&2
    die "redis-cli --cluster create failed"
  fi
  local i ok
  for ((i = 0; i < 300; i++)); do
    ok=1
    for port in "${CLUSTER_PORTS[@]}"; do
      timeout 3 redis-cli -h "$HOST" -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
    done
    ((ok)) && break
    sleep 0.1
  done
  ((ok)) || die "redis-cluster: cluster_state is not ok after 30s (see $CLUSTER_DIR/node-*/redis.log)"
  log "redis-cluster: started, cluster_state:ok ($(cluster_nodes_csv))"
}

cluster_down() {
  local dir stopped=0
  while read -r dir; do
    [[ -n $dir ]] || continue
    if pid_alive "$dir/redis.pid" redis-server; then
      stop_redis_server "$dir"
      stopped=1
    fi
    rm -f "$dir/redis.pid"
  done < <(cluster_node_dirs)
  [[ ${1:-} == quiet ]] && return 0
  if ((stopped)); then log "redis-cluster: stopped"; else log "redis-cluster: not running"; fi
}

cluster_status() {
  local dir line="" all=1 any=0
  while read -r dir; do
    [[ -n $dir ]] || continue
    if pid_alive "$dir/redis.pid" redis-server; then
      any=1
      line+=" $(cat "$dir/port"):$(read_pid "$dir/redis.pid")"
    else
      all=0
    fi
  done < <(cluster_node_dirs)
  if ((any)) && ((all)) && cluster_running; then
    printf '%-14s running  nodes(port:pid)%s  cluster_state:ok\n' redis-cluster "$line"
  elif ((any)); then
    printf '%-14s degraded nodes(port:pid)%s  (run: up redis-cluster)\n' redis-cluster "$line"
  else
    printf '%-14s stopped\n' redis-cluster
  fi
}

# ------------------------------------------------------------------------------------------------- main

env_lines() {
  local redis_port kafka_port nodes
  redis_port=$(cat "$REDIS_DIR/port" 2>/dev/null || echo "$REDIS_PORT")
  kafka_port=$(cat "$KAFKA_DIR/port" 2>/dev/null || echo "$KAFKA_PORT")
  nodes=$(cluster_nodes_csv)
  if [[ -z $nodes ]]; then
    local p
    for p in "${CLUSTER_PORTS[@]}"; do nodes+="${nodes:+,}$HOST:$p"; done
  fi
  printf 'REDIS_URL=redis://%s:%s\n' "$HOST" "$redis_port"
  printf 'KAFKA_BROKERS=%s:%s\n' "$HOST" "$kafka_port"
  printf 'REDIS_CLUSTER_NODES=%s\n' "$nodes"
}

write_env() {
  local tmp="$ENV_FILE.tmp.$$"
  {
    echo "# Written by scripts/services.sh; source with: set -a; . .services/env; set +a"
    env_lines
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

expand_targets() { # args -> one target per line, "all" expanded, default all
  local t
  [[ $# -gt 0 ]] || set -- all
  for t in "$@"; do
    case $t in
    all) printf '%s\n' redis kafka redis-cluster ;;
    redis | kafka | redis-cluster) printf '%s\n' "$t" ;;
    *) die "unknown service '$t' (redis, kafka, redis-cluster, all)" ;;
    esac
  done | awk '!seen[$0]++'
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  mkdir -p "$STATE"
  local targets t
  case $cmd in
  up | start)
    targets=$(expand_targets "$@")
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die "another services.sh is holding $STATE/.lock"
    for t in $targets; do
      case $t in
      redis) redis_up ;;
      kafka) kafka_up ;;
      redis-cluster) cluster_up ;;
      esac
    done
    write_env
    log "env (also in ${ENV_FILE#"$ROOT"/}):"
    env_lines
    ;;
  down | stop)
    targets=$(expand_targets "$@")
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die "another services.sh is holding $STATE/.lock"
    for t in $targets; do
      case $t in
      redis) redis_down ;;
      kafka) kafka_down ;;
      redis-cluster) cluster_down ;;
      esac
    done
    ;;
  status)
    targets=$(expand_targets "$@")
    for t in $targets; do
      case $t in
      redis) redis_status ;;
      kafka) kafka_status ;;
      redis-cluster) cluster_status ;;
      esac
    done
    ;;
  is-up)
    [[ $# -eq 1 ]] || usage
    case $1 in
    redis) redis_running ;;
    kafka) kafka_running ;;
    redis-cluster) cluster_running ;;
    *) die "unknown service '$1'" ;;
    esac
    ;;
  env) env_lines ;;
  -h | --help | help) usage ;;
  *) usage ;;
  esac
}

main "$@"
