#!/usr/bin/env python3
"""Backup/restore benchmark for ngbak (run by `make bench`, which starts Redis and the S3 server).

Generates a nano-graphrag-shaped Redis data set at two sizes (default 300 MB and 3 GB of
values), backs each up into S3 and restores it with the release `ngbak` binary, and prints
throughput (MB/s of uncompressed archive content, keys/s), the peak RSS of every run, and the
ratio against `gzip -1` compressing the same uncompressed bytes, measured in the same go.
Sizes can be changed with NGBAK_BENCH_SIZES_MB="300,3000". With a Bolt server it then runs the
graph benchmark in graph.py (NGBAK_BENCH_GRAPH_NODES, 0 to skip), then the vector benchmark in
vectors.py (NGBAK_BENCH_POINTS, 0 to skip).
"""
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGBAK = os.path.join(ROOT, "target", "release", "ngbak")
REDIS = os.environ["NGBAK_TEST_REDIS_URL"]
S3 = os.environ["NGBAK_TEST_S3_ENDPOINT"]
WORK = os.path.join(ROOT, ".run", "bench")

# Share of bytes and typical value size per nano-graphrag namespace.
NAMESPACES = [("full_docs", 0.35, 8000), ("text_chunks", 0.40, 1200), ("community_reports", 0.10, 4000),
              ("llm_response_cache", 0.15, 600)]


def run(cmd, stdout=subprocess.PIPE, stdin=None):
    """Runs a command; returns (stdout, seconds, peak RSS in MiB).

    The peak RSS comes from GNU time, whose child starts from a small process: a child forked
    from this Python process would report Python's own memory as its floor."""
    rss_file = os.path.join(WORK, "rss")
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, stdout=stdout, stdin=stdin,
                          stderr=subprocess.PIPE)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return proc.stdout or b"", seconds, rss_kib / 1024


def resp(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def load(total_mb):
    """Writes about total_mb MB of values into Redis; returns the number of keys."""
    rng = random.Random(42)
    words = ["graph", "entity", "relation", "community", "report", "Lovelace", "Turing", "engine", "cipher",
             "vector", "embedding", "chunk", "document", "summary", "cluster", "weight", "source", "the", "of",
             "and", "a", "in", "to", "is", "was", "with", "for", "on", "by", "an", "ö", "—"]
    corpus = " ".join(rng.choice(words) + str(rng.randrange(1000)) * (rng.random() < 0.2) for _ in range(600_000))
    subprocess.run(["redis-cli", "-u", REDIS, "FLUSHALL"], check=True, stdout=subprocess.DEVNULL)
    pipe = subprocess.Popen(["redis-cli", "-u", REDIS, "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    keys = 0
    for ns, share, size in NAMESPACES:
        budget = int(total_mb * 1e6 * share)
        i = 0
        buf = []
        while budget > 0:
            n = max(50, int(rng.gauss(size, size / 4)))
            start = rng.randrange(len(corpus) - n)
            doc = json.dumps({"content": corpus[start:start + n], "tokens": n // 5, "full_doc_id": f"doc-{i // 8}"},
                             ensure_ascii=False).encode()
            key = f"nano_graphrag:{ns}:{ns[:3]}-{i:09d}"
            if ns == "llm_response_cache":
                buf.append(resp("SET", key, doc, "EX", 86400))
            else:
                buf.append(resp("SET", key, doc))
            budget -= len(doc)
            i += 1
            if len(buf) >= 2000:
                pipe.stdin.write(b"".join(buf))
                buf.clear()
        pipe.stdin.write(b"".join(buf))
        keys += i
    pipe.stdin.close()
    pipe.wait()
    return keys


def main():
    sizes = [int(s) for s in os.environ.get("NGBAK_BENCH_SIZES_MB", "300,3000").split(",") if s]
    os.makedirs(WORK, exist_ok=True)
    bucket = f"ngbak-bench-{int(time.time())}"
    urllib.request.urlopen(urllib.request.Request(f"{S3}/{bucket}", method="PUT"))
    store = f"s3://{bucket}/bench"
    rows = []
    for mb in sizes:
        print(f"bench: loading {mb} MB of nano-graphrag-shaped keys into Redis ...", flush=True)
        keys = load(mb)
        bid = f"bench_{mb}mb"
        out, b_sec, b_rss = run([NGBAK, "--store", store, "backup", "--id", bid, "--redis-url", REDIS, "--json"])
        summary = json.loads(out)
        assert summary["backends"]["redis"]["stats"]["keys"] == keys, "backup lost keys"
        url, _, _ = run([NGBAK, "--store", store, "presign", bid])
        archive = os.path.join(WORK, f"{bid}.ngbak")
        urllib.request.urlretrieve(url.decode().strip(), archive)
        tar = os.path.join(WORK, f"{bid}.tar")
        with open(tar, "wb") as f:
            run(["gzip", "-dc", archive], stdout=f)
        raw = os.path.getsize(tar)
        gz = tar + ".gz"
        with open(tar, "rb") as src, open(gz, "wb") as sink:
            _, g_sec, g_rss = run(["gzip", "-1", "-c"], stdout=sink, stdin=src)
        gz_size = os.path.getsize(gz)
        os.remove(gz)
        subprocess.run(["redis-cli", "-u", REDIS, "FLUSHALL"], check=True, stdout=subprocess.DEVNULL)
        out, r_sec, r_rss = run([NGBAK, "--store", store, "restore", bid, "--redis-url", REDIS, "--json"])
        restored = json.loads(out)["backends"]["redis"]["restored"]["keys"]
        dbsize = int(subprocess.run(["redis-cli", "-u", REDIS, "DBSIZE"], capture_output=True).stdout)
        assert restored == keys == dbsize, f"restore wrote {restored} keys, Redis holds {dbsize}, expected {keys}"
        rows.append(dict(mb=mb, keys=keys, raw=raw, archive=summary["size"], b_sec=b_sec, b_rss=b_rss, r_sec=r_sec,
                         r_rss=r_rss, g_sec=g_sec, g_rss=g_rss, gz=gz_size))
        os.remove(tar)
        os.remove(archive)

    print()
    if rows:
        print_kv(rows)
    if os.environ.get("NGBAK_TEST_BOLT_URI") and os.environ.get("NGBAK_BENCH_GRAPH_NODES", "1") != "0":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import graph
        graph.bench(run, NGBAK, store)
    if os.environ.get("NGBAK_BENCH_POINTS", "1") != "0":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import vectors
        vectors.bench(run, NGBAK, store)


def print_kv(rows):
    print(f"{'data':>8} {'keys':>9} {'tar MB':>8} {'ngbak MB':>9} {'gzip-1 MB':>9} | "
          f"{'backup MB/s':>11} {'keys/s':>8} {'RSS MiB':>7} | {'restore MB/s':>12} {'keys/s':>8} {'RSS MiB':>7} | "
          f"{'gzip -1 MB/s':>12} {'RSS MiB':>7} {'backup/gzip':>11}")
    for r in rows:
        gzip_mbs = r["raw"] / 1e6 / r["g_sec"]
        backup_mbs = r["raw"] / 1e6 / r["b_sec"]
        print(f"{r['mb']:>6}MB {r['keys']:>9} {r['raw'] / 1e6:>8.1f} {r['archive'] / 1e6:>9.1f} {r['gz'] / 1e6:>9.1f} | "
              f"{backup_mbs:>11.1f} {r['keys'] / r['b_sec']:>8.0f} {r['b_rss']:>7.1f} | "
              f"{r['raw'] / 1e6 / r['r_sec']:>12.1f} {r['keys'] / r['r_sec']:>8.0f} {r['r_rss']:>7.1f} | "
              f"{gzip_mbs:>12.1f} {r['g_rss']:>7.1f} {backup_mbs / gzip_mbs:>10.2f}x")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(f"\npeak RSS, largest vs smallest data set ({large['raw'] / small['raw']:.1f}x the data): "
              f"backup {large['b_rss'] / small['b_rss']:.2f}x, restore {large['r_rss'] / small['r_rss']:.2f}x")
    print("(MB/s is uncompressed archive content per wall-clock second; restore reads the archive twice: "
          "verify, then write)")


if __name__ == "__main__":
    main()
