#!/usr/bin/env bash
# Lints the deployment template offline: cfn-lint, then SAM's own validation.
# Tools come from .tools/pytools (tests/servers/install.sh --with-deploy-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
.tools/pytools/bin/cfn-lint infra/template.yaml
.tools/pytools/bin/sam validate --lint --region us-east-1 -t infra/template.yaml
echo "infra: template.yaml passes cfn-lint and sam validate --lint"
