"""Vector half of the benchmark: a nano-graphrag hybrid collection (384-dimensional dense vector,
sparse vectors `sparse` and `sparse_name`, payloads) of 10k and 100k points (NGBAK_BENCH_POINTS),
served by the Qdrant test double, backed up and restored by ngbak in both modes."""
import json
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(ROOT, "target", "release", "examples", "qdrant_double")


def bench(run, ngbak, store):
    sizes = [int(s) for s in os.environ.get("NGBAK_BENCH_POINTS", "10000,100000").split(",") if s]
    rows = []
    for n in sizes:
        name = f"entities_{n}"
        proc = subprocess.Popen([DOUBLE, name, str(n), "384"], stdout=subprocess.PIPE, text=True)
        rest, grpc = proc.stdout.readline().split()
        try:
            common = ["--qdrant-url", rest, "--qdrant-grpc-url", grpc, "--qdrant-api-key", "bench-key",
                      "--qdrant-collection", name]
            for mode in ["snapshot", "points"]:
                bid = f"bench_vectors_{n}_{mode}_{int(time.time())}"
                out, b_sec, b_rss = run([ngbak, "--store", store, "backup", "--id", bid, "--json",
                                         "--qdrant-mode", mode] + common)
                summary = json.loads(out)
                assert summary["backends"]["qdrant"]["stats"]["vectors"] == n, summary["backends"]["qdrant"]
                out, r_sec, r_rss = run([ngbak, "--store", store, "restore", bid, "--json", "--vector-mode", "replace"]
                                        + common)
                assert json.loads(out)["backends"]["qdrant"]["restored"]["vectors"] == n
                rows.append((n, mode, summary["size"], b_sec, b_rss, r_sec, r_rss))
        finally:
            proc.kill()
    print(f"\nvectors (384-dim dense + 2 sparse + payload, Qdrant test double)")
    print(f"{'points':>8} {'mode':>9} {'archive MB':>10} | {'backup pts/s':>12} {'MB/s':>6} {'RSS MiB':>7} | "
          f"{'restore pts/s':>13} {'MB/s':>6} {'RSS MiB':>7}")
    for n, mode, size, b, brss, r, rrss in rows:
        print(f"{n:>8} {mode:>9} {size / 1e6:>10.1f} | {n / b:>12.0f} {size / 1e6 / b:>6.1f} {brss:>7.1f} | "
              f"{n / r:>13.0f} {size / 1e6 / r:>6.1f} {rrss:>7.1f}")
    for mode in ["snapshot", "points"]:
        m = [r for r in rows if r[1] == mode]
        if len(m) > 1:
            print(f"  {mode}: peak RSS at {m[-1][0] // m[0][0]}x the points: backup {m[-1][4] / m[0][4]:.2f}x, "
                  f"restore {m[-1][6] / m[0][6]:.2f}x")
