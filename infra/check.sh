#!/usr/bin/env bash
# Lints the deployment template offline: cfn-lint, SAM's own validation, then the template checks
# (infra/template_checks.py: what a first real deployment would hit, on SAM's expanded output).
# Tools come from .tools/pytools (tests/servers/install.sh --with-deploy-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
.tools/pytools/bin/cfn-lint infra/template.yaml
.tools/pytools/bin/sam validate --lint --region us-east-1 -t infra/template.yaml
.tools/pytools/bin/python infra/template_checks.py infra/template.yaml
echo "infra: template.yaml passes cfn-lint, sam validate --lint and infra/template_checks.py"
