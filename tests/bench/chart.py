"""The benchmark chart: backup throughput by thread count, and RSS over time (matplotlib)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402


SEED = "seed-style backup (GET per key, JSON files, tar.gz -9)"


def draw(results, path):
    sizes = results["sizes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6))
    width = 0.8 / (2 * len(sizes))
    seeds = []
    for i, s in enumerate(sizes):
        mb = s["data"] / 1e6
        for j, codec in enumerate(["gzip", "zstd"]):
            values = [mb / s["rows"][f"ngbak {codec} backup, {t} thread{'s' * (t > 1)}"]["wall"] for t in (1, 2)]
            x = [t - 0.4 + width * (2 * i + j) + width / 2 for t in (1, 2)]
            bars = left.bar(x, values, width, label=f"ngbak {codec}, Redis → S3, {s['keys']:,} keys")
            left.bar_label(bars, fmt="%.0f", fontsize=7)
            stage = [mb / s["rows"][f"ngbak {codec} backup of the same data as a JSON file, {t} "
                                    f"thread{'s' * (t > 1)}"]["wall"] for t in (1, 2)]
            left.scatter(x, stage, marker="_", s=300, color="black", zorder=3,
                         label="same data as a file → directory (compression stage)" if i + j == 0 else None)
        seeds.append(f"{s['keys']:,} keys: {mb / s['rows'][SEED]['wall']:.1f} MB/s")
    left.set_xticks([1, 2])
    left.set_xlabel(f"compressing threads (machine: {results['cores']} cores)")
    left.set_ylabel("backup throughput, MB/s of JSON values")
    left.set_title("Backup throughput by thread count")
    left.set_ylim(0, left.get_ylim()[1] * 1.1)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    left.text(0.01, 0.98, "seed-style baseline: " + "; ".join(seeds), transform=left.transAxes, fontsize=7, va="top")

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
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    load = results.get("load")
    fig.suptitle(f"Redis backup and restore, {results['cores']} cores"
                 + (f" shared with other work (load average {load[0]:.1f}–{load[1]:.1f})" if load else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    # Redraws the chart from a results file: chart.py results/redis.json results/redis.png
    import json
    import sys

    with open(sys.argv[1]) as f:
        draw(json.load(f), sys.argv[2])
