#!/usr/bin/env bash
# Stops every server start.sh started (by their pid files); never fails.
cd "$(dirname "$0")/../.." || exit 0
for pidfile in .run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  # The servers run in their own sessions: end the whole group (LocalStack has children).
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
done
exit 0
