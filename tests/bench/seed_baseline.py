#!/usr/bin/env python3
"""The seed-style baseline: how the Python backup system that ngbak replaces moved Redis data.

backup:  SCAN the keys, GET each one (one round trip per key), write one JSON file per
         nano-graphrag namespace into a temporary directory, tar + gzip it with Python's tarfile
         (default level 9), upload the file to S3 with boto3.
restore: download the file, extract it, read every JSON file, SET each key (one round trip each).

Usage: seed_baseline.py backup|restore REDIS_URL BUCKET KEY
"""
import json
import os
import shutil
import sys
import tarfile
import tempfile

import boto3
import redis

PATTERN = "nano_graphrag:*"


def s3():
    return boto3.client("s3", endpoint_url=os.environ["NGBAK_TEST_S3_ENDPOINT"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def backup(url, bucket, key):
    r = redis.Redis.from_url(url)
    work = tempfile.mkdtemp(prefix="seed-backup-")
    try:
        stores = {}
        for k in r.scan_iter(PATTERN, count=1000):
            _, ns, ident = k.decode().split(":", 2)
            value = r.get(k)
            if value is not None:
                stores.setdefault(ns, {})[ident] = json.loads(value)
        data = os.path.join(work, "data")
        os.mkdir(data)
        for ns, docs in stores.items():
            with open(os.path.join(data, f"kv_store_{ns}.json"), "w", encoding="utf-8") as f:
                json.dump(docs, f, ensure_ascii=False, indent=2)
        archive = os.path.join(work, "backup.tar.gz")
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(data, arcname="data")
        s3().upload_file(archive, bucket, key)
        print(os.path.getsize(archive))
    finally:
        shutil.rmtree(work)


def restore(url, bucket, key):
    r = redis.Redis.from_url(url)
    work = tempfile.mkdtemp(prefix="seed-restore-")
    try:
        archive = os.path.join(work, "backup.tar.gz")
        s3().download_file(bucket, key, archive)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(work, filter="data")
        data = os.path.join(work, "data")
        n = 0
        for name in sorted(os.listdir(data)):
            ns = name[len("kv_store_"):-len(".json")]
            with open(os.path.join(data, name), encoding="utf-8") as f:
                docs = json.load(f)
            for ident, doc in docs.items():
                r.set(f"nano_graphrag:{ns}:{ident}", json.dumps(doc, ensure_ascii=False))
                n += 1
        print(n)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    {"backup": backup, "restore": restore}[sys.argv[1]](*sys.argv[2:5])
