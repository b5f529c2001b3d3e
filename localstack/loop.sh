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

# Sample data: nano-graphrag-shaped keys, one with a TTL.
redis-cli -u "$NGBAK_TEST_REDIS_URL" FLUSHALL >/dev/null
for i in 1 2 3; do
  redis-cli -u "$NGBAK_TEST_REDIS_URL" SET "nano_graphrag:full_docs:doc-$i" "{\"content\": \"document $i\"}" >/dev/null
done
redis-cli -u "$NGBAK_TEST_REDIS_URL" SET nano_graphrag:llm_response_cache:x '{"return": "cached"}' EX 3600 >/dev/null
before=$(redis-cli -u "$NGBAK_TEST_REDIS_URL" --scan --pattern 'nano_graphrag:*' | sort | xargs -n1 redis-cli -u "$NGBAK_TEST_REDIS_URL" GET)

NGBAK_STORE="s3://$BUCKET/$PREFIX" REDIS_URL="$NGBAK_TEST_REDIS_URL" \
  cargo lambda watch -A 127.0.0.1 -P "$PORT" > .run/logs/cargo-lambda-watch.log 2>&1 &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.5; done

echo "loop: scheduled event → ngbak-backup"
cargo lambda invoke -A 127.0.0.1 -P "$PORT" ngbak-backup --data-file events/scheduled.json --output-format json \
  | tee .run/loop-backup.json
grep -Eq '"status": *"completed"' .run/loop-backup.json

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
