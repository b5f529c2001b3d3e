#!/usr/bin/env bash
# TLS in front of the test servers start.sh started, with a test CA made here (openssl): Redis with
# --tls-port and an ACL user, and socat TLS-terminating proxies before ArcadeDB's Bolt port and
# LocalStack, so each client's TLS path runs for real. Appends the addresses to .run/servers.env.
# Usage: start-tls.sh [redis] [s3] [bolt]  (the servers start.sh was asked for; needs servers.env).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=$PWD/.run
TLS=$RUN/tls
ENV_FILE=$RUN/servers.env
WANT=${*:-redis s3 bolt}
export_var() { echo "export $1=$2" >> "$ENV_FILE"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# shellcheck disable=SC1090
. "$ENV_FILE"

# A CA, a server certificate for 127.0.0.1/localhost signed by it, and an unrelated CA.
rm -rf "$TLS"; mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ngbak test CA" \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ngbak unrelated CA" \
  -keyout "$TLS/other-ca.key" -out "$TLS/other-ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$TLS/server.ext"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 2 \
  -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null
cat "$TLS/server.pem" "$TLS/server.key" > "$TLS/server-bundle.pem"
export_var NGBAK_TEST_CA_FILE "$TLS/ca.pem"
export_var NGBAK_TEST_OTHER_CA_FILE "$TLS/other-ca.pem"

# proxy NAME TARGET_PORT: a TLS listener on a free port forwarding to 127.0.0.1:TARGET_PORT.
proxy() {
  local name=$1 target=$2 port; port=$(free_port)
  setsid nohup socat "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,cert=$TLS/server-bundle.pem,verify=0" \
    "TCP:127.0.0.1:$target" > "$RUN/logs/tls-$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/tls-$name.pid"
  for _ in $(seq 1 40); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
    sleep 0.25
  done
  echo "start-tls: the $name proxy did not listen on $port" >&2; exit 1
}

for server in $WANT; do
  case $server in
    redis)
      port=$(free_port)
      mkdir -p "$RUN/redis-tls"
      redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --dir "$RUN/redis-tls" --save '' --appendonly no \
        --tls-cert-file "$TLS/server.pem" --tls-key-file "$TLS/server.key" --tls-ca-cert-file "$TLS/ca.pem" \
        --tls-auth-clients no --user ngbak-backup on '>ngbak-tls-pw-4711' '~*' '&*' '+@all' --user default off \
        --daemonize yes --pidfile "$RUN/redis-tls.pid" --logfile "$RUN/logs/redis-tls.log"
      for _ in $(seq 1 40); do
        redis-cli --tls --cacert "$TLS/ca.pem" -p "$port" --user ngbak-backup --pass ngbak-tls-pw-4711 ping \
          2>/dev/null | grep -q PONG && break
        sleep 0.25
      done
      export_var NGBAK_TEST_REDISS_URL "rediss://ngbak-backup:ngbak-tls-pw-4711@127.0.0.1:$port/0"
      ;;
    bolt) port=$(proxy bolt "${NGBAK_TEST_BOLT_URI##*:}"); export_var NGBAK_TEST_BOLTS_URI "bolt+s://127.0.0.1:$port" ;;
    s3) port=$(proxy s3 "${NGBAK_TEST_S3_ENDPOINT##*:}"); export_var NGBAK_TEST_S3_HTTPS_ENDPOINT "https://127.0.0.1:$port" ;;
  esac
done
echo "start-tls: TLS endpoints ready (test CA $TLS/ca.pem)"
