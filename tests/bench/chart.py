"""The benchmark chart: backup throughput by thread count, and RSS over time (matplotlib)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402


def draw(results, path):
    sizes = results["sizes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / (2 * len(sizes))
    for i, s in enumerate(sizes):
        mb = s["data"] / 1e6
        for j, codec in enumerate(["gzip", "zstd"]):
            values = [mb / s["rows"][f"ngbak {codec} backup, {t} thread{'s' * (t > 1)}"]["wall"] for t in (1, 2)]
            x = [t - 0.4 + width * (2 * i + j) + width / 2 for t in (1, 2)]
            bars = left.bar(x, values, width, label=f"ngbak {codec}, {s['keys']:,} keys")
            left.bar_label(bars, fmt="%.0f", fontsize=7)
        seed = mb / s["rows"]["seed-style backup (GET per key, JSON files, tar.gz -9)"]["wall"]
        left.axhline(seed, linestyle=":", color="grey")
        left.annotate(f"seed-style, {s['keys']:,} keys: {seed:.1f} MB/s", (0.55, seed), fontsize=7, va="bottom")
    left.set_xticks([1, 2])
    left.set_xlabel(f"compressing threads (machine: {results['cores']} cores)")
    left.set_ylabel("backup throughput, MB/s of JSON values")
    left.set_title("Backup throughput by thread count")
    left.legend(fontsize=7)

    largest = sizes[-1]
    for name, style in [("ngbak gzip backup, 2 threads", "-"), ("ngbak restore (gzip archive)", "-"),
                        ("ngbak zstd backup, 2 threads", "--"), ("native: redis-cli --rdb | pigz -1 | upload", "-."),
                        ("seed-style backup (GET per key, JSON files, tar.gz -9)", ":"),
                        ("seed-style restore (files, SET per key)", ":")]:
        trace = largest["rows"][name]["trace"]
        right.plot([t for t, _ in trace], [r for _, r in trace], style, label=name)
    right.axhline(128, color="red", linewidth=0.8)
    right.annotate("128 MiB target", (0.02, 130), fontsize=7, color="red")
    end = max(t for r in largest["rows"].values() for t, _ in r["trace"] or [(0, 0)])
    right.set_xscale("symlog", linthresh=2)
    right.set_xticks([t for t in (0, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if t <= end * 1.2])
    right.xaxis.set_major_formatter(ScalarFormatter())
    right.set_xlim(0, end * 1.2)
    right.set_xlabel("seconds since start (linear to 2 s, then log)")
    right.set_ylabel("RSS, MiB (process tree)")
    right.set_title(f"RSS over time, {largest['keys']:,} keys")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
