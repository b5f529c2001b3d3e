#!/usr/bin/env bash
# Builds ngbak as it was when issue 13 measured it (commit 370883b: gzip level 1 on one core), once,
# into .tools/bench/, so that `make bench` compares today's backup with that one in the same run.
# Without the commit in this clone's history (a shallow clone) it says so and the row is left out.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=370883b
out=.tools/bench/ngbak-$rev
[ -x "$out" ] && exit 0
if ! git cat-file -e "$rev^{commit}" 2>/dev/null; then
  echo "bench: commit $rev is not in this clone (shallow?): the issue-13 baseline row is left out" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/src" "$rev" >/dev/null
echo "bench: building ngbak at $rev for the baseline row (once, several minutes) ..." >&2
(cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo build --locked --release --quiet --bin ngbak)
mkdir -p .tools/bench
cp "$work/target/release/ngbak" "$out"
