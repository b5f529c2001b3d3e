"""How the benchmarks time a command: wall and CPU seconds and peak RSS of its whole process tree
(bench.py, consistency.py)."""
import os
import subprocess
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid):
    """Resident bytes of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


def measure(cmd, work, shell=False):
    """Runs cmd (a list, or with `shell` a bash pipeline) under GNU time, its statistics file in
    `work`; returns stdout, wall s, CPU s (user + system of the tree), peak RSS MiB (the tree's,
    sampled every 50 ms, at least GNU time's maximum) and the RSS trace (for the chart)."""
    stats = os.path.join(work, "time")
    argv = ["/usr/bin/time", "-f", "%M %U %S", "-o", stats] + (["bash", "-o", "pipefail", "-c", cmd] if shell else cmd)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    trace, done = [], threading.Event()

    def sample():
        while not done.is_set():
            try:  # the time process itself (about 2 MiB) is left out: only its child is counted
                children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
                rss = sum(tree_rss(int(c)) for c in children)
            except (FileNotFoundError, ProcessLookupError):
                rss = 0
            trace.append((time.monotonic() - start, rss / 2**20))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed ({proc.returncode}):\n{out.decode(errors='replace')[-2000:]}\n"
                 f"{err.decode(errors='replace')[-3000:]}")
    max_kib, user, system = open(stats).read().split()[-3:]
    peak = max([int(max_kib) / 1024] + [r for _, r in trace])
    return dict(out=out.decode(), wall=wall, cpu=float(user) + float(system), rss=peak, trace=trace)
