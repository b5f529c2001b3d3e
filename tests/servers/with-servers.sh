#!/usr/bin/env bash
# Runs a command with the test servers up: installs what is missing, starts the servers, exports
# their addresses (.run/servers.env), runs the command, and stops the servers whatever happens.
# Usage: with-servers.sh [--servers "redis s3 bolt"] command...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
servers="redis s3 bolt"
if [ "${1:-}" = "--servers" ]; then servers=$2; shift 2; fi
"$here/install.sh" --with-deploy-tools
"$here/stop.sh"
trap '"$here/stop.sh"' EXIT INT TERM
# shellcheck disable=SC2086
"$here/start.sh" $servers
set -a
# shellcheck disable=SC1091
. "$here/../../.run/servers.env"
set +a
"$@"
