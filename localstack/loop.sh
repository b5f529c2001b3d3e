#!/usr/bin/env bash
# The whole event loop on one machine, no Docker: LocalStack (host mode) for S3, EventBridge and
# SQS; both functions served by `cargo lambda watch`; the scheduled event → backup into S3 →
# tag the archive → the EventBridge rule delivers Object Tags Added to a queue → relay.py hands
# it to the restore function → the restored Redis is compared with what was backed up.
# Run through `make lambda-loop` (which starts the servers and exports their addresses).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/pytools/bin:$PATH"
PY=.tools/localstack/bin/python
[ -x "$PY" ] || PY=.tools/moto/bin/python
BUCKET=ngbak-loop-$(date +%s)
PREFIX=ngbak/
ID=snapshot_2026-11-23T03-00-00Z
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

QUEUE_URL=$($PY localstack/init/ngbak-setup.py "$AWS_ENDPOINT_URL" "$BUCKET" "$PREFIX" "$BUCKET-restores")
echo "loop: bucket $BUCKET, rule → $QUEUE_URL"

# Signing (README, Authenticity): a minisign key pair, its secret key in Secrets Manager for the
# backup function, its public key trusted by the restore function.
cargo build -q --bin ngbak
mkdir -p .run/loop-keys && rm -f .run/loop-keys/*
./target/debug/ngbak keygen --secret-key .run/loop-keys/ngbak.key --public-key .run/loop-keys/ngbak.pub >/dev/null
TRUSTED=$(tail -1 .run/loop-keys/ngbak.pub)
SIGNING_ARN=$($PY - "$AWS_ENDPOINT_URL" "$BUCKET" <<'PYEOF'
import sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
print(sm.create_secret(Name=sys.argv[2] + "-signing", SecretString=open(".run/loop-keys/ngbak.key").read())["ARN"])
PYEOF
)

# Sample data: nano-graphrag-shaped keys, one with a TTL.
redis-cli -u "$NGBAK_TEST_REDIS_URL" FLUSHALL >/dev/null
for i in 1 2 3; do
  redis-cli -u "$NGBAK_TEST_REDIS_URL" SET "nano_graphrag:full_docs:doc-$i" "{\"content\": \"document $i\"}" >/dev/null
done
redis-cli -u "$NGBAK_TEST_REDIS_URL" SET nano_graphrag:llm_response_cache:x '{"return": "cached"}' EX 3600 >/dev/null
before=$(redis-cli -u "$NGBAK_TEST_REDIS_URL" --scan --pattern 'nano_graphrag:*' | sort | xargs -n1 redis-cli -u "$NGBAK_TEST_REDIS_URL" GET)

# The API function is served too; it hands jobs to the other two through the emulator's Invoke
# API (which has no aliases: writes are allowed through any URL here).
NGBAK_STORE="s3://$BUCKET/$PREFIX" REDIS_URL="$NGBAK_TEST_REDIS_URL" \
  NGBAK_SIGNING_KEY_SECRET_ARN="$SIGNING_ARN" NGBAK_TRUSTED_KEYS="$TRUSTED" \
  NGBAK_BACKUP_FUNCTION=ngbak-backup NGBAK_RESTORE_FUNCTION=ngbak-restore NGBAK_API_WRITES_THROUGH=any \
  AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$PORT" \
  cargo lambda watch -A 127.0.0.1 -P "$PORT" > .run/logs/cargo-lambda-watch.log 2>&1 &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.5; done

echo "loop: scheduled event → ngbak-backup"
cargo lambda invoke -A 127.0.0.1 -P "$PORT" ngbak-backup --data-file events/scheduled.json --output-format json \
  | tee .run/loop-backup.json
grep -Eq '"status": *"completed"' .run/loop-backup.json
grep -Eq '"signed_by": *"[0-9A-F]{16}"' .run/loop-backup.json || { echo "loop: the backup was not signed"; exit 1; }

redis-cli -u "$NGBAK_TEST_REDIS_URL" FLUSHALL >/dev/null
echo "loop: tagging $PREFIX$ID.ngbak ngbak-restore=requested"
$PY - "$AWS_ENDPOINT_URL" "$BUCKET" "$PREFIX$ID.ngbak" <<'PYEOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
s3.put_object_tagging(Bucket=sys.argv[2], Key=sys.argv[3], Tagging={"TagSet": [{"Key": "ngbak-restore", "Value": "requested"}]})
PYEOF
$PY localstack/relay.py "$AWS_ENDPOINT_URL" "$QUEUE_URL" "$PORT" --until-completed --timeout 300

after=$(redis-cli -u "$NGBAK_TEST_REDIS_URL" --scan --pattern 'nano_graphrag:*' | sort | xargs -n1 redis-cli -u "$NGBAK_TEST_REDIS_URL" GET)
[ "$before" = "$after" ] || { echo "loop: restored data differs"; diff <(echo "$before") <(echo "$after"); exit 1; }
echo "loop: restored Redis equals what was backed up — the event loop works end to end"

echo "loop: the HTTP API through the API function (Function URL events)"
$PY localstack/api_loop.py "$AWS_ENDPOINT_URL" "$BUCKET" "$PREFIX" "$PORT" "$ID" main
# The upload that succeeds: into another store, served by a watch that trusts no key (a bare
# archive carries no signature; under trusted keys only `ngbak import --sidecar` brings one in).
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NGBAK_STORE="s3://$BUCKET/uploads/" REDIS_URL="$NGBAK_TEST_REDIS_URL" \
  NGBAK_BACKUP_FUNCTION=ngbak-backup NGBAK_RESTORE_FUNCTION=ngbak-restore NGBAK_API_WRITES_THROUGH=any \
  AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$PORT2" \
  cargo lambda watch -A 127.0.0.1 -P "$PORT2" > .run/logs/cargo-lambda-watch-uploads.log 2>&1 &
WATCH2=$!
trap 'kill $WATCH $WATCH2 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT2/" && break; sleep 0.5; done
$PY localstack/api_loop.py "$AWS_ENDPOINT_URL" "$BUCKET" "uploads/" "$PORT2" "$ID" upload
kill $WATCH2 2>/dev/null || true

# A forgery by someone who can write to the bucket: their own backup of poisoned data under the
# same id (every hash consistent, no signature by the trusted key) laid over the genuine one. The
# tag fires the restore function, which must refuse it and leave Redis as it is.
redis-cli -u "$NGBAK_TEST_REDIS_URL" SET nano_graphrag:full_docs:doc-1 '{"content": "poisoned"}' >/dev/null
./target/debug/ngbak --store "s3://$BUCKET/attacker/" backup --redis-url "$NGBAK_TEST_REDIS_URL" --id "$ID" >/dev/null
redis-cli -u "$NGBAK_TEST_REDIS_URL" SET nano_graphrag:full_docs:doc-1 '{"content": "document 1"}' >/dev/null
$PY - "$AWS_ENDPOINT_URL" "$BUCKET" "$PREFIX" "$ID" <<'PYEOF'
import sys, boto3
endpoint, bucket, prefix, id_ = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
for suffix in (".ngbak", ".manifest.json"):
    s3.copy_object(Bucket=bucket, Key=prefix + id_ + suffix, CopySource={"Bucket": bucket, "Key": "attacker/" + id_ + suffix})
s3.put_object_tagging(Bucket=bucket, Key=prefix + id_ + ".ngbak", Tagging={"TagSet": [{"Key": "ngbak-restore", "Value": "requested"}]})
PYEOF
echo "loop: a forged archive tagged for restore"
$PY localstack/relay.py "$AWS_ENDPOINT_URL" "$QUEUE_URL" "$PORT" --until-failed --timeout 300
$PY - "$AWS_ENDPOINT_URL" "$BUCKET" "$PREFIX$ID.restore-report.json" <<'PYEOF'
import json, sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
report = json.loads(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read())
assert report["kind"] == "Unauthenticated", report
print("loop: the restore report says", report["kind"] + ":", report["error"][:120], "…")
PYEOF
refused=$(redis-cli -u "$NGBAK_TEST_REDIS_URL" --scan --pattern 'nano_graphrag:*' | sort | xargs -n1 redis-cli -u "$NGBAK_TEST_REDIS_URL" GET)
[ "$before" = "$refused" ] || { echo "loop: the refused restore changed Redis"; diff <(echo "$before") <(echo "$refused"); exit 1; }
echo "loop: the forged archive was refused before any write; Redis is as it was"
