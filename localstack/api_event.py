"""Prints a Lambda Function URL event (payload format 2.0) for the API function.

usage: api_event.py METHOD PATH [BODY]   e.g. api_event.py POST /api/v1/backups '{"id": "x"}'
PATH may carry a query string. The events/api-*.json files were made with it.
"""
import json
import sys

method, target = sys.argv[1], sys.argv[2]
body = sys.argv[3] if len(sys.argv) > 3 else None
path, _, query = target.partition("?")
domain = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
headers = {"host": domain, "user-agent": "ngbak-loop", "accept": "application/json"}
if body is not None:
    headers["content-type"] = "application/json"
print(json.dumps({
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": path,
    "rawQueryString": query,
    "headers": headers,
    "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "abcdefghijklmnopqrstuvwxyz012345",
        "authorizer": {"iam": {"accessKey": "AKIA...", "accountId": "123456789012", "callerId": "AIDA...",
                               "userArn": "arn:aws:iam::123456789012:user/operator", "userId": "AIDA..."}},
        "domainName": domain,
        "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                 "userAgent": "ngbak-loop"},
        "requestId": "00000000-0000-0000-0000-000000000000",
        "routeKey": "$default",
        "stage": "$default",
        "time": "05/Dec/2026:03:00:00 +0000",
        "timeEpoch": 1796439600000,
    },
    "body": body,
    "isBase64Encoded": False,
}, indent=2))
