#!/usr/bin/env bash
# Stops every server start.sh started, and leaves none running; never fails, except with --check
# when a process under .run/ survives.
# A pid file may name a wrapper rather than the server: ArcadeDB's pid file holds the subshell of
# `cd … && setsid nohup java … &`, and java, under setsid, leads its own session, so signalling
# the recorded pid (or its group) alone left java running. So the whole process tree of each
# recorded pid is ended (a group leader with its group), and then any process still working in
# or naming this checkout's .run/ directory (a server orphaned by an earlier run).
cd "$(dirname "$0")/../.." || exit 0
RUN=$PWD/.run

# tree PID: the pid and all its descendants.
tree() {
  echo "$1"
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$child"; done
}

# orphans: processes whose working directory or command line is under .run/ (not this script).
orphans() {
  local dir pid cmd
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = $$ ] && continue
    cmd=$(tr "\\0" " " 2>/dev/null < "$dir/cmdline") || continue
    if [[ "$cmd" == *"$RUN/"* || "$(readlink "$dir/cwd" 2>/dev/null)/" == "$RUN/"* ]]; then echo "$pid"; fi
  done
}

# signal SIG PID...: a process group leader with its whole group, any other process alone.
signal() {
  local sig=$1 pid; shift
  for pid in "$@"; do
    if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
      kill "-$sig" -- "-$pid" 2>/dev/null || true
    else
      kill "-$sig" "$pid" 2>/dev/null || true
    fi
  done
}

# end PID...: TERM, up to 10 s to exit, then KILL.
end() {
  [ $# -gt 0 ] || return 0
  signal TERM "$@"
  local pid
  for _ in $(seq 1 40); do
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
    [ -z "$pid" ] && return 0
    sleep 0.25
  done
  signal KILL "$@"
}

pids=()
for pidfile in "$RUN"/*.pid; do
  [ -f "$pidfile" ] || continue
  # shellcheck disable=SC2207
  pids+=($(tree "$(cat "$pidfile")"))
  rm -f "$pidfile"
done
end "${pids[@]}"
# shellcheck disable=SC2207
left=($(orphans))
if [ ${#left[@]} -gt 0 ]; then
  echo "stop: ending ${#left[@]} leftover process(es) under $RUN: ${left[*]}" >&2
  end "${left[@]}"
fi
# --check (make test): fail when anything survived all that.
if [ "${1:-}" = --check ]; then
  # shellcheck disable=SC2207
  left=($(orphans))
  if [ ${#left[@]} -gt 0 ]; then
    echo "stop: FAILED: processes still running under $RUN:" >&2
    ps -o pid,cmd -p "$(IFS=,; echo "${left[*]}")" >&2 || true
    exit 1
  fi
  echo "stop: no test server left running"
fi
exit 0
