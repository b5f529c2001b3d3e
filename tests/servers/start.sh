#!/usr/bin/env bash
# Starts the servers the integration tests use, each on a free loopback port, with all state in
# .run/: Redis, LocalStack (or moto) for S3/EventBridge/SQS/Secrets Manager, and ArcadeDB (Bolt). Writes
# .run/servers.env with the addresses. Usage: start.sh [redis] [s3] [bolt]  (default: all).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUN=$ROOT/.run
TOOLS=$ROOT/.tools
mkdir -p "$RUN/logs"
WANT=${*:-redis s3 bolt}
ENV_FILE=$RUN/servers.env
: > "$ENV_FILE"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export_var() { echo "export $1=$2" >> "$ENV_FILE"; }

# wait_for NAME LOGFILE COMMAND...: polls COMMAND for up to 60 s.
wait_for() {
  local name=$1 log=$2; shift 2
  for _ in $(seq 1 240); do
    if "$@" >/dev/null 2>&1; then echo "start: $name ready"; return 0; fi
    sleep 0.25
  done
  echo "start: $name did not become ready in 60 s; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

start_redis() {
  local port; port=$(free_port)
  mkdir -p "$RUN/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$RUN/redis" --save '' --appendonly no \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/logs/redis.log"
  wait_for redis "$RUN/logs/redis.log" redis-cli -p "$port" ping
  export_var NGBAK_TEST_REDIS_URL "redis://127.0.0.1:$port"
}

start_s3() {
  local port; port=$(free_port)
  if [ -f "$TOOLS/localstack/.ready" ]; then
    mkdir -p "$RUN/localstack"
    GATEWAY_LISTEN=127.0.0.1:$port SERVICES=s3,events,sqs,secretsmanager OVERRIDE_IN_DOCKER=0 \
      FILESYSTEM_ROOT=$RUN/localstack DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
      setsid nohup "$TOOLS/localstack/bin/python" -m localstack.runtime.main \
      > "$RUN/logs/localstack.log" 2>&1 < /dev/null &
    echo $! > "$RUN/s3.pid"
    wait_for localstack "$RUN/logs/localstack.log" curl -sf "http://127.0.0.1:$port/_localstack/health"
    export_var NGBAK_TEST_S3_SERVER localstack
  else
    echo "start: WARNING: LocalStack is not installed; using moto, which accepts wrong checksums and emits spurious Object Tags Added events" >&2
    setsid nohup "$TOOLS/moto/bin/moto_server" -H 127.0.0.1 -p "$port" > "$RUN/logs/moto.log" 2>&1 < /dev/null &
    echo $! > "$RUN/s3.pid"
    wait_for moto "$RUN/logs/moto.log" curl -sf "http://127.0.0.1:$port/moto-api/"
    export_var NGBAK_TEST_S3_SERVER moto
  fi
  export_var NGBAK_TEST_S3_ENDPOINT "http://127.0.0.1:$port"
  export_var AWS_ENDPOINT_URL "http://127.0.0.1:$port"
  export_var AWS_ACCESS_KEY_ID test
  export_var AWS_SECRET_ACCESS_KEY test
  export_var AWS_REGION us-east-1
}

start_bolt() {
  local bolt http password=ngbak-test-pw
  bolt=$(free_port); http=$(free_port)
  local jar_dir
  jar_dir=$("$TOOLS/arcadedb/bin/python" -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("arcadedb_embedded").origin))')
  rm -rf "$RUN/arcadedb"; mkdir -p "$RUN/arcadedb"
  (cd "$RUN/arcadedb" && setsid nohup "$jar_dir/jre/bin/java" -Xmx512m \
    -Darcadedb.server.rootPath="$RUN/arcadedb/root" -Darcadedb.server.logsDirectory="$RUN/arcadedb/log" \
    -Darcadedb.server.rootPassword=$password \
    -Darcadedb.server.httpIncomingHost=127.0.0.1 -Darcadedb.server.httpIncomingPort="$http" \
    -Darcadedb.bolt.host=127.0.0.1 -Darcadedb.bolt.port="$bolt" \
    -Darcadedb.server.defaultDatabases='neo4j[root]' \
    -Darcadedb.server.plugins='Bolt:com.arcadedb.bolt.BoltProtocolPlugin' \
    -cp "$jar_dir/jars/*" com.arcadedb.server.ArcadeDBServer > "$RUN/logs/arcadedb.log" 2>&1 < /dev/null &
    echo $! > "$RUN/bolt.pid")
  wait_for arcadedb "$RUN/logs/arcadedb.log" curl -sf "http://127.0.0.1:$http/api/v1/ready"
  export_var NGBAK_TEST_BOLT_URI "bolt://127.0.0.1:$bolt"
  export_var NGBAK_TEST_BOLT_USER root
  export_var NGBAK_TEST_BOLT_PASSWORD $password
  export_var NGBAK_TEST_BOLT_HTTP "http://127.0.0.1:$http"
}

for server in $WANT; do
  case $server in
    redis) start_redis & ;;
    s3) start_s3 & ;;
    bolt) start_bolt & ;;
    *) echo "start: unknown server $server (redis, s3, bolt)" >&2; exit 2 ;;
  esac
done
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
[ $fail = 0 ] || { "$(dirname "$0")/stop.sh"; exit 1; }
# shellcheck disable=SC2086
"$(dirname "$0")/start-tls.sh" $WANT || { "$(dirname "$0")/stop.sh"; exit 1; }
echo "start: addresses in $ENV_FILE"
