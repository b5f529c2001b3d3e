#!/usr/bin/env bash
# Installs what the integration tests need, into the project's .tools/ (idempotent; a no-op when
# everything is there): Debian's redis-server (and python3-venv, curl), LocalStack (S3, EventBridge,
# SQS, Secrets Manager) in host mode, ArcadeDB (a Bolt graph database) from PyPI, and Chromium with
# its driver (Debian) and Selenium (PyPI) for the operator page's browser test.
# `--with-deploy-tools` adds cfn-lint, the SAM CLI and cargo-lambda for the infra checks;
# `--with-bench` what `make bench` runs (pigz, and a venv with the neo4j driver, redis, boto3 and
# matplotlib).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS=.tools
mkdir -p "$TOOLS"

step() { echo "install: $*"; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1 || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "$@" >/dev/null; }
}

# python3-venv (Debian splits ensurepip out of python3) and curl (start.sh polls with it).
python3 -c 'import ensurepip' 2>/dev/null || { step "python3-venv (apt)"; apt_install python3-venv; }
command -v curl >/dev/null || { step "curl (apt)"; apt_install curl; }
# kill(1) from procps: the clean-stop tests signal the ngbak binary with it.
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || { step "procps (apt)"; apt_install procps; }

if ! command -v redis-server >/dev/null; then
  step "redis-server (apt)"
  apt_install redis-server
  # Debian starts a system instance; the tests run their own.
  (systemctl disable --now redis-server || service redis-server stop) >/dev/null 2>&1 || true
fi

# minisign: the signature test checks a stored backup with the standard tool, not with ngbak.
command -v minisign >/dev/null || { step "minisign (apt)"; apt_install minisign; }
# age: the encryption tests make keys with age-keygen and open archives with the standard age tool.
command -v age-keygen >/dev/null || { step "age (apt)"; apt_install age; }

# socat: the TLS-terminating proxies of start-tls.sh.
command -v socat >/dev/null || { step "socat (apt)"; apt_install socat; }

if [ ! -x "$TOOLS/uv/bin/uv" ]; then
  step "uv (pip)"
  python3 -m venv "$TOOLS/uv"
  "$TOOLS/uv/bin/pip" install -q uv==0.9.7
fi
UV="$TOOLS/uv/bin/uv"

# LocalStack 2026.3 needs Python 3.13: pyenv's, one on the PATH, or one uv downloads (that needs
# github.com, which machines limited to the package registries do not reach).
find_py313() {
  local p
  for p in "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python "$(command -v python3.13)"; do
    if [ -x "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  "$UV" python find 3.13 2>/dev/null && return 0
  timeout 120 "$UV" python install 3.13 >/dev/null 2>&1 && "$UV" python find 3.13 2>/dev/null
}

if [ ! -f "$TOOLS/localstack/.ready" ]; then
  if PY313=$(find_py313); then
    step "LocalStack 2026.3.0 (Python 3.13 venv: $PY313)"
    "$UV" venv -q -p "$PY313" "$TOOLS/localstack"
    VIRTUAL_ENV="$TOOLS/localstack" "$UV" pip install -q --exclude-newer 2026-03-24 \
      'localstack-core[base-runtime]==2026.3.0' moto-ext jsonpath-ng crontab
    touch "$TOOLS/localstack/.ready"
  elif [ ! -f "$TOOLS/moto/.ready" ]; then
    step "WARNING: no Python 3.13 (pyenv, PATH or uv): LocalStack cannot be installed;" \
      "falling back to moto 5.2.5's server (weaker checks, see README)"
    "$UV" venv -q "$TOOLS/moto"
    VIRTUAL_ENV="$TOOLS/moto" "$UV" pip install -q 'moto[s3,events,sqs,secretsmanager,server]==5.2.5' flask flask-cors
    touch "$TOOLS/moto/.ready"
  fi
fi

if [ ! -f "$TOOLS/arcadedb/.ready" ]; then
  step "ArcadeDB 26.10.2 (PyPI, bundles its JRE)"
  python3 -m venv "$TOOLS/arcadedb"
  "$TOOLS/arcadedb/bin/pip" install -q --no-deps arcadedb-embedded==26.10.2.post1
  touch "$TOOLS/arcadedb/.ready"
fi

if [[ " $* " == *" --with-deploy-tools "* ]] && [ ! -f "$TOOLS/pytools/.ready" ]; then
  step "cfn-lint, aws-sam-cli, cargo-lambda (pip)"
  "$UV" venv -q -p 3.11 "$TOOLS/pytools" 2>/dev/null || python3 -m venv "$TOOLS/pytools"
  VIRTUAL_ENV="$TOOLS/pytools" "$UV" pip install -q aws-sam-cli==1.170.0 cfn-lint==1.58.0 cargo-lambda==1.9.2
  touch "$TOOLS/pytools/.ready"
fi
# The operator page's test drives the real page in Debian's headless Chromium with Selenium.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  step "chromium, chromium-driver (apt)"
  apt_install chromium chromium-driver
fi
if [ ! -f "$TOOLS/browser/.ready" ]; then
  step "selenium (pip)"
  "$UV" venv -q -p 3.11 "$TOOLS/browser" 2>/dev/null || python3 -m venv "$TOOLS/browser"
  VIRTUAL_ENV="$TOOLS/browser" "$UV" pip install -q selenium==4.51.0
  touch "$TOOLS/browser/.ready"
fi
if [[ " $* " == *" --with-bench "* ]] && [ ! -f "$TOOLS/bench/.ready-2" ]; then
  step "bench: pigz (apt); neo4j driver, redis, boto3 (the seed-style baseline) and matplotlib (the chart) (pip)"
  command -v pigz >/dev/null || apt_install pigz
  [ -x "$TOOLS/bench/bin/python" ] || "$UV" venv -q "$TOOLS/bench"
  VIRTUAL_ENV="$TOOLS/bench" "$UV" pip install -q neo4j==5.28.2 redis==6.4.0 boto3==1.40.0 matplotlib==3.10.6
  touch "$TOOLS/bench/.ready-2"
fi
step "done"
