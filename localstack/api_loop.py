"""The API function through `cargo lambda watch`: Function URL events for each route, sent to the
emulator's Invoke API as `cargo lambda invoke` sends them; jobs handed to the backup and restore
functions as asynchronous invokes; the presigned download and the presigned multipart upload
against LocalStack S3.

usage: api_loop.py ENDPOINT BUCKET PREFIX PORT ID MODE
  MODE main: every route on the store the loop backed up into (trusted keys configured: a bare
             upload is refused there, as it must be);
  MODE upload: the upload of a file into an empty store of a watch without trusted keys.
"""
import json
import os
import subprocess
import sys
import time

import boto3
import requests

endpoint, bucket, prefix, port, loop_id, mode = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
here = os.path.dirname(os.path.abspath(__file__))


def call(method, target, body=None):
    """One Function URL request to the API function; (status, headers, parsed body)."""
    args = [sys.executable, os.path.join(here, "api_event.py"), method, target]
    if body is not None:
        args.append(json.dumps(body))
    event = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/ngbak-api/invocations"
    answer = requests.post(url, data=event, timeout=300).json()
    text = answer.get("body") or ""
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return answer["statusCode"], {k.lower(): v for k, v in answer.get("headers", {}).items()}, parsed


def expect(status, got, what):
    if got[0] != status:
        sys.exit(f"api-loop: {what}: expected {status}, got {got[0]}: {got[2]}")
    print(f"api-loop: {what}: {status}")
    return got


def job_done(accepted, what, want="completed"):
    status, headers, body = accepted
    if status != 202:
        sys.exit(f"api-loop: {what}: expected 202, got {status}: {body}")
    assert headers["location"] == f"/api/v1/jobs/{body['job']}", headers
    deadline = time.time() + 240
    while time.time() < deadline:
        _, _, job = call("GET", f"/api/v1/jobs/{body['job']}")
        if job["status"] in ("completed", "failed", "stopped"):
            if job["status"] != want:
                sys.exit(f"api-loop: {what}: job {job['job']} ended {job['status']}, not {want}: {job.get('error')}")
            print(f"api-loop: {what}: job {job['job']} {job['status']} on {job['host']}")
            return job
        time.sleep(1)
    sys.exit(f"api-loop: {what}: job {body['job']} did not end in time")


def upload(backup_id, data, want):
    """The presigned multipart upload: parts PUT straight to S3, then complete → an import job."""
    _, _, plan = expect(200, call("POST", f"/api/v1/uploads?id={backup_id}&size={len(data)}"), f"presign an upload of {len(data)} bytes")
    etags = []
    for i, url in enumerate(plan["parts"]):
        part = data[i * plan["part_bytes"]:(i + 1) * plan["part_bytes"]]
        put = requests.put(url, data=part, timeout=60)
        put.raise_for_status()
        etags.append(put.headers["ETag"])
    return job_done(call("POST", plan["complete"], {"etags": etags}), f"import of the upload ({want})", want)


def keys():
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):] for o in listed}


if mode == "main":
    _, _, page = expect(200, call("GET", "/api/v1/backups"), "list")
    assert any(b["backup_id"] == loop_id for b in page["backups"]), page
    expect(200, call("GET", f"/api/v1/backups/{loop_id}"), "one backup")
    expect(200, call("GET", "/api/v1/openapi.json"), "the OpenAPI document")
    expect(404, call("GET", "/api/v1/backups/no_such_backup"), "an unknown id")
    expect(400, call("GET", "/api/v1/backups/bad.id"), "a malformed id")
    _, headers, _ = expect(302, call("GET", f"/api/v1/backups/{loop_id}/download"), "download")
    fetched = requests.get(headers["location"], timeout=60).content
    stored = s3.get_object(Bucket=bucket, Key=f"{prefix}{loop_id}.ngbak")["Body"].read()
    assert fetched == stored, "the presigned download differs from the stored archive"
    print(f"api-loop: the presigned download is the stored archive ({len(stored)} bytes)")

    job_done(call("POST", "/api/v1/backups", {"id": "api_loop"}), "backup (the backup function)")
    assert "api_loop.manifest.json" in keys()
    job_done(call("POST", "/api/v1/backups/api_loop/verify"), "verify (the restore function)")
    expect(400, call("POST", "/api/v1/backups/api_loop/restore", {}), "a restore without confirm")
    job = job_done(call("POST", "/api/v1/backups/api_loop/restore", {"confirm": "api_loop"}), "restore (the restore function)")
    assert all(b["verified"] for b in job["report"]["backends"].values()), job["report"]
    _, _, jobs = expect(200, call("GET", "/api/v1/jobs"), "the jobs")
    assert job["job"] in [j["job"] for j in jobs["jobs"]], jobs
    # A restore the tag fired earlier shows up too, seen through its report.
    assert any(j["source"] == "tag" and j["backup_id"] == loop_id for j in jobs["jobs"]), jobs
    _, headers, events = expect(200, call("GET", f"/api/v1/jobs/{job['job']}/events"), "the job's events")
    assert headers["content-type"] == "text/event-stream", headers
    assert "event: job" in events and '"status":"completed"' in events, events
    # The archive leaves through the presigned download, then comes back as an upload; here the
    # restore function trusts signed backups only, so a bare archive is refused, nothing stored.
    _, headers, _ = call("GET", "/api/v1/backups/api_loop/download")
    data = requests.get(headers["location"], timeout=60).content
    expect(204, call("DELETE", "/api/v1/backups/api_loop"), "delete")
    expect(404, call("DELETE", "/api/v1/backups/api_loop"), "delete again")
    open(os.environ.get("NGBAK_LOOP_FILE", ".run/api_loop.ngbak"), "wb").write(data)
    refused = upload("api_loop", data, "failed")
    assert refused["error"]["kind"] == "Unauthenticated", refused["error"]
    left = {k for k in keys() if k.startswith("api_loop.") and not k.endswith(".job.json")}
    assert not left, f"a refused upload left {left}"
    print("api-loop: the unsigned upload was refused; nothing stays")
elif mode == "upload":
    data = open(os.environ.get("NGBAK_LOOP_FILE", ".run/api_loop.ngbak"), "rb").read()
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x55
    upload("api_loop", bytes(tampered), "failed")
    assert not {k for k in keys() if k.startswith("api_loop.") and not k.endswith(".job.json")}
    print("api-loop: the tampered upload was refused; nothing stays")
    upload("api_loop", data, "completed")
    stored = s3.get_object(Bucket=bucket, Key=f"{prefix}api_loop.ngbak")["Body"].read()
    assert stored == data, "the imported archive differs from the uploaded file"
    assert "api_loop.manifest.json" in keys() and "api_loop.ngbak.upload" not in keys()
    print("api-loop: the uploaded archive was verified and stored byte for byte; the staged copy is gone")
