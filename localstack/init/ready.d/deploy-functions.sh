#!/usr/bin/env bash
# LocalStack "ready" hook for the docker compose stack (Docker users only): creates the archive
# bucket with EventBridge notifications, deploys both functions from the zips that
# `make lambda-build` writes (mounted at /ngbak/lambda), schedules the backup, and sends the
# bucket's Object Tags Added events for ngbak/*.ngbak to the restore function.
set -euo pipefail
BUCKET=${NGBAK_BUCKET:-ngbak-backups}
PREFIX=${NGBAK_PREFIX:-ngbak/}
ROLE=arn:aws:iam::000000000000:role/ngbak-local
ENVIRONMENT="Variables={NGBAK_STORE=s3://$BUCKET/$PREFIX,AWS_ENDPOINT_URL=http://localstack:4566,REDIS_URL=redis://redis:6379,NEO4J_URI=bolt://neo4j:7687,NEO4J_PASSWORD=ngbak-dev-pw,QDRANT_URL=http://qdrant:6333,QDRANT_API_KEY=ngbak-dev-key}"

awslocal s3api create-bucket --bucket "$BUCKET" >/dev/null 2>&1 || true
awslocal s3api put-bucket-notification-configuration --bucket "$BUCKET" \
  --notification-configuration '{"EventBridgeConfiguration": {}}'

for fn in backup restore; do
  zip=/ngbak/lambda/ngbak-$fn/bootstrap.zip
  if [ ! -f "$zip" ]; then
    echo "deploy-functions: $zip is missing; run 'make lambda-build' on the host first" >&2
    exit 1
  fi
  awslocal lambda delete-function --function-name "ngbak-$fn" >/dev/null 2>&1 || true
  awslocal lambda create-function --function-name "ngbak-$fn" --runtime provided.al2023 \
    --architectures arm64 --handler bootstrap --zip-file "fileb://$zip" --role "$ROLE" \
    --timeout 900 --memory-size 1024 --environment "$ENVIRONMENT" >/dev/null
done

backup_arn=$(awslocal lambda get-function --function-name ngbak-backup --query Configuration.FunctionArn --output text)
restore_arn=$(awslocal lambda get-function --function-name ngbak-restore --query Configuration.FunctionArn --output text)
awslocal events put-rule --name ngbak-nightly --schedule-expression 'cron(0 3 * * ? *)' >/dev/null
awslocal events put-targets --rule ngbak-nightly --targets "Id=backup,Arn=$backup_arn" >/dev/null
pattern=$(printf '{"source":["aws.s3"],"detail-type":["Object Tags Added"],"detail":{"bucket":{"name":["%s"]},"object":{"key":[{"wildcard":"%s*.ngbak"}]}}}' "$BUCKET" "$PREFIX")
awslocal events put-rule --name ngbak-restore --event-pattern "$pattern" >/dev/null
awslocal events put-targets --rule ngbak-restore --targets "Id=restore,Arn=$restore_arn" >/dev/null
echo "deploy-functions: ngbak-backup and ngbak-restore deployed; tag s3://$BUCKET/${PREFIX}<id>.ngbak ngbak-restore=requested to restore"
