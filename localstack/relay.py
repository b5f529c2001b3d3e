"""Relays the restore rule's deliveries from the SQS queue to the restore function served by
`cargo lambda watch` (`cargo lambda invoke`), as EventBridge would invoke it in AWS.
Stops after `--until-completed` once a restore completed (or `--until-failed` once one failed, as a
refused forgery must) and the queue stayed quiet for a while.
Usage: relay.py ENDPOINT QUEUE_URL WATCH_PORT [--until-completed | --until-failed] [--timeout SECONDS]"""
import json
import subprocess
import sys
import tempfile
import time

import boto3

endpoint, queue_url, port = sys.argv[1:4]
until_completed = "--until-completed" in sys.argv
until_failed = "--until-failed" in sys.argv
timeout = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 300
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                   aws_secret_access_key="test")
deadline = time.monotonic() + timeout
completed, failed, quiet_since = 0, 0, None
while time.monotonic() < deadline:
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not got and (completed or failed):
        quiet_since = quiet_since or time.monotonic()
        if (until_completed or until_failed) and time.monotonic() - quiet_since > 5:
            break
        continue
    quiet_since = None
    for m in got:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(m["Body"])
        out = subprocess.run(["cargo", "lambda", "invoke", "-A", "127.0.0.1", "-P", port, "ngbak-restore",
                              "--data-file", f.name, "--output-format", "json"], capture_output=True, text=True)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        try:
            result = json.loads(out.stdout)
        except json.JSONDecodeError:
            if not until_failed:
                sys.exit(f"relay: the restore function failed:\n{out.stdout}\n{out.stderr}")
            print(f"relay: the restore function failed, as it must:\n{out.stdout}{out.stderr}", flush=True)
            failed += 1
            continue
        event = json.loads(m["Body"])
        print(f"relay: {event['detail-type']} {event['detail']['object']['key']} -> {result.get('status')}"
              f" ({result.get('reason', '')})", flush=True)
        completed += result.get("status") == "completed"
print(f"relay: {completed} restore(s) completed, {failed} failed")
if until_failed:
    sys.exit(0 if failed == 1 and completed == 0 else 1)
sys.exit(0 if completed == 1 or not until_completed else 1)
