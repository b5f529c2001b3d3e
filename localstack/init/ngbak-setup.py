"""Creates what ngbak needs in LocalStack (idempotent): the archive bucket with EventBridge
notifications on, an SQS queue, and an EventBridge rule that sends the bucket's `Object Tags
Added` events for `<prefix>*.ngbak` to the queue — the host-mode stand-in for the deployed rule,
whose target (the restore function) LocalStack cannot run without Docker.
Usage: ngbak-setup.py ENDPOINT BUCKET PREFIX QUEUE   (prints the queue URL)"""
import json
import sys

import boto3

endpoint, bucket, prefix, queue = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
s3, sqs, events = boto3.client("s3", **kw), boto3.client("sqs", **kw), boto3.client("events", **kw)

if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
url = sqs.create_queue(QueueName=queue)["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [{
    "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": arn}]})})
pattern = {"source": ["aws.s3"], "detail-type": ["Object Tags Added"],
           "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"wildcard": f"{prefix}*.ngbak"}]}}}
events.put_rule(Name=f"{bucket}-restore", EventPattern=json.dumps(pattern))
events.put_targets(Rule=f"{bucket}-restore", Targets=[{"Id": "restore-queue", "Arn": arn}])
print(url)
