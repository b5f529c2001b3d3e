#!/usr/bin/env python3
"""Streams stdin into an S3 object (multipart, two parts in flight): the upload end of the
native pipeline `redis-cli --rdb - | gzip -1 | upload.py BUCKET KEY`. Prints the bytes sent."""
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig


class Counting:
    def __init__(self, raw):
        self.raw, self.n = raw, 0

    def read(self, size=-1):
        data = self.raw.read(size)
        self.n += len(data)
        return data


s3 = boto3.client("s3", endpoint_url=os.environ["NGBAK_TEST_S3_ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
body = Counting(sys.stdin.buffer)
s3.upload_fileobj(body, sys.argv[1], sys.argv[2], Config=TransferConfig(max_concurrency=2))
print(body.n)
