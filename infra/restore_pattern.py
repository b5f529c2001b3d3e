"""Prints the restore rule's EventBridge pattern from template.yaml as JSON, for a given bucket and
prefix, using cfn-lint's template decoder (so the test checks the template itself, not a copy).
Usage: restore_pattern.py BUCKET PREFIX"""
import json
import sys

from cfnlint.decode import decode

template, errors = decode(sys.argv[1] if len(sys.argv) > 3 else "infra/template.yaml")
if errors:
    sys.exit(f"template does not parse: {errors}")
bucket, prefix = sys.argv[-2], sys.argv[-1]
pattern = template["Resources"]["RestoreFunction"]["Properties"]["Events"]["ArchiveTagged"]["Properties"]["Pattern"]


def resolve(node):
    """Resolves the intrinsics the pattern uses: the bucket (Fn::If on CreateBucket) and Fn::Sub."""
    if isinstance(node, dict):
        if "Fn::If" in node:
            return bucket
        if "Fn::Sub" in node:
            return node["Fn::Sub"].replace("${ArchivePrefix}", prefix)
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


print(json.dumps(resolve(pattern)))
