#!/usr/bin/env bash
# Runs a command with the test servers up: installs what is missing, starts the servers, exports
# their addresses (.run/servers.env), runs the command, and stops the servers whatever happens.
# When LocalStack could not be installed (no Python 3.13) and moto stands in for it, says so at
# the start and again in the summary, so a green run against moto is not mistaken for the real one.
# Usage: with-servers.sh [--servers "redis s3 bolt"] command...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
servers="redis s3 bolt"
if [ "${1:-}" = "--servers" ]; then servers=$2; shift 2; fi
"$here/install.sh" --with-deploy-tools

moto_warning() {
  [[ " $servers " == *" s3 "* ]] && [ ! -f "$root/.tools/localstack/.ready" ] || return 0
  cat >&2 <<'MSG'

################################################################################################
# WARNING: LocalStack is NOT installed (it needs Python 3.13: pyenv, python3.13 on the PATH, or
# uv with access to github.com). S3, EventBridge, SQS and Secrets Manager run on moto instead,
# which accepts wrong checksums and emits extra tag events: a pass here is weaker than a pass on
# LocalStack. Install Python 3.13 and rerun: the install is retried on every run.
################################################################################################

MSG
}

summary() {
  local rc=$?
  "$here/stop.sh"
  moto_warning
  echo "with-servers: command exited with status $rc; servers stopped" >&2
}

moto_warning
"$here/stop.sh"
trap summary EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC2086
"$here/start.sh" $servers
set -a
# shellcheck disable=SC1091
. "$root/.run/servers.env"
set +a
"$@"
