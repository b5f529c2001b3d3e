#!/usr/bin/env python3
"""Side-by-side Redis backup/restore benchmark (run by `make bench`, which starts Redis and S3).

On the same nano-graphrag text-chunk data in Redis, at two sizes (NGBAK_BENCH_KEYS, default
20000,200000), it runs in one go:
  - ngbak: backup with gzip and zstd on 1 and 2 threads (2 = this machine's cores, the default),
    and with the previous defaults (gzip level 1, one thread); ngbak as issue 13 measured it (commit
    370883b, built once by build-issue-baseline.sh: the reference for the backup-speed target);
    restore of the gzip and zstd archives;
  - the seed-style baseline (seed_baseline.py): per-key GET to JSON files, tar + gzip -9, upload;
    restore: download, read the files, SET per key;
  - native pipelines: `redis-cli --rdb -` through `gzip -1` or `pigz -1` into an S3 upload; and
    for the restore Redis's own mass insertion, `redis-cli --pipe` of the same SETs (kept as RESP
    when the data is loaded) into an emptied Redis, beside ngbak's restore with its defaults and
    without the read-back;
  - GNU `gzip -1` of ngbak's own tar stream (the size reference).
Every run is timed (wall, CPU = user + system of the whole process tree), its peak RSS is taken
(sampled tree sum, at least GNU time's maximum), and its RSS is sampled over time for the chart.
Writes tests/bench/results/redis.md (the table), redis.json and redis.png (the chart).
With NGBAK_BENCH_GRAPH_NODES / NGBAK_BENCH_POINTS set it then runs graph.py / vectors.py too.
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request

import measuring

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NGBAK = os.path.join(ROOT, "target", "release", "ngbak")
REDIS = os.environ["NGBAK_TEST_REDIS_URL"]
S3 = os.environ["NGBAK_TEST_S3_ENDPOINT"]
WORK = os.path.join(ROOT, ".run", "bench")
RESULTS = os.path.join(HERE, "results")
PY = sys.executable
CORES = os.cpu_count()
REPS = int(os.environ.get("NGBAK_BENCH_REPS", "3"))
# ngbak as issue 13 found it (gzip level 1, one core), built by build-issue-baseline.sh.
ISSUE_BASELINE = os.path.join(ROOT, ".tools", "bench", "ngbak-370883b")
ISSUE_ROW = "ngbak as issue 13 measured it (370883b: gzip level 1, 1 core)"


def measure(cmd, shell=False):
    return measuring.measure(cmd, WORK, shell)


def best(runs):
    """The fastest of REPS runs: the machine is shared, and the fastest run is the one least
    disturbed by other processes (the load average is recorded with the results)."""
    return min(runs, key=lambda r: r["wall"])


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-u", REDIS, *args], check=True, capture_output=True).stdout.decode().strip()


def resp(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def resp_file(keys):
    """Where load() keeps the RESP of its SETs, for the native restore row (redis-cli --pipe)."""
    return os.path.join(WORK, f"resp-{keys}.bin")


def load(keys):
    """Writes `keys` nano-graphrag text chunks (about 825 bytes of JSON each); returns their bytes.
    The same SETs are kept as RESP in resp_file(keys), outside any timing."""
    rng = random.Random(42)
    words = ["graph", "entity", "relation", "community", "report", "Lovelace", "Turing", "engine", "cipher",
             "vector", "embedding", "chunk", "document", "summary", "cluster", "weight", "source", "the", "of",
             "and", "a", "in", "to", "is", "was", "with", "for", "on", "by", "an", "ö", "—"]
    corpus = " ".join(rng.choice(words) + str(rng.randrange(1000)) * (rng.random() < 0.2) for _ in range(600_000))
    redis_cli("FLUSHALL")
    pipe = subprocess.Popen(["redis-cli", "-u", REDIS, "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    os.makedirs(WORK, exist_ok=True)
    saved = open(resp_file(keys), "wb")
    total, buf = 0, []
    for i in range(keys):
        n = max(100, int(rng.gauss(700, 150)))
        start = rng.randrange(len(corpus) - n)
        doc = json.dumps({"tokens": n // 5, "content": corpus[start:start + n], "chunk_order_index": i % 8,
                          "full_doc_id": f"doc-{i // 8:08d}"}, ensure_ascii=False).encode()
        buf.append(resp("SET", f"nano_graphrag:text_chunks:chunk-{i:09d}", doc))
        total += len(doc)
        if len(buf) >= 5000:
            pipe.stdin.write(b"".join(buf))
            saved.write(b"".join(buf))
            buf.clear()
    pipe.stdin.write(b"".join(buf))
    saved.write(b"".join(buf))
    saved.close()
    pipe.stdin.close()
    pipe.wait()
    assert int(redis_cli("DBSIZE")) == keys
    return total


def ngbak_backup(store, bid, codec=None, threads=None, level=None, binary=NGBAK, links=False, extra=()):
    """A backup of the Redis data; codec, threads and level only when given (the issue-13 binary
    has none of those flags). The rows compare the backup pipeline, so the consistency check that
    a backup runs by default (one more read of the key-value namespaces) is off unless `links`;
    one row measures it."""
    cmd = [binary, "--store", store, "backup", "--id", bid, "--redis-url", REDIS, "--json"]
    if binary == NGBAK and not links:
        cmd.append("--no-link-check")
    for flag, value in [("--compression", codec), ("--threads", threads), ("--compression-level", level)]:
        if value:
            cmd += [flag, str(value)]
    r = measure(cmd + list(extra))
    r["size"] = json.loads(r["out"])["size"]
    return r


def ngbak_restore(store, bid, keys, flush=True, read_back=True, extra=()):
    """A restore with the defaults: safety backup of what it overwrites, then the write, then the
    read-back check (unless not `read_back`). With `flush`, into an empty Redis (the safety backup
    then has nothing to save)."""
    if flush:
        redis_cli("FLUSHALL")
    extra_flags = extra
    extra = [] if read_back else ["--no-verify-restored"]
    r = measure([NGBAK, "--store", store, "restore", bid, "--redis-url", REDIS, "--json"] + extra + list(extra_flags))
    report = json.loads(r["out"])
    restored = report["backends"]["redis"]["restored"]["keys"]
    assert restored == keys == int(redis_cli("DBSIZE")), f"ngbak restored {restored} of {keys} keys"
    assert report["backends"]["redis"]["verified"] is (True if read_back else None), "the read-back check"
    r["verify_s"] = report["verify_restored_seconds"]
    r["safety_s"] = report["safety_backup_seconds"]
    r["verification_s"] = report.get("verification_pass_seconds", 0.0)
    r["total_s"] = report["seconds"]
    return r


NATIVE_RESTORE = "native: redis-cli --pipe of the same SETs into an emptied Redis"
ENCRYPTED_BACKUP = "ngbak gzip backup, 2 threads, encrypted (age, one recipient)"
ENCRYPTED_RESTORE = "ngbak restore (gzip archive, encrypted)"


def age_identity():
    """A fresh age identity file for the encrypted rows, and its recipient."""
    path = os.path.join(WORK, "bench-identity.txt")
    if os.path.exists(path):
        os.remove(path)
    subprocess.run(["age-keygen", "-o", path], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", path], check=True, capture_output=True).stdout.decode().strip()
    return path, recipient
LINKS_ROW = "ngbak gzip backup, 2 threads, with the consistency check (the default; the other rows: --no-link-check)"


def native_restore(keys):
    """Redis's own mass insertion of the same keys (the RESP load() kept), into an emptied Redis."""
    redis_cli("FLUSHALL")
    r = measure(["sh", "-c", f"redis-cli -u '{REDIS}' --pipe < '{resp_file(keys)}' > /dev/null"])
    assert int(redis_cli("DBSIZE")) == keys, "redis-cli --pipe did not load every key"
    return r


def run_size(keys, bucket, store):
    print(f"bench: {keys} keys: loading ...", flush=True)
    data = load(keys)
    rows = {}
    tag = f"{keys}_{int(time.time())}"

    def rep(name, fn):
        print(f"bench: {keys} keys: {name} ...", flush=True)
        rows[name] = best([fn(i) for i in range(REPS)])

    for codec in ["gzip", "zstd"]:
        for threads in [1, 2]:
            rep(f"ngbak {codec} backup, {threads} thread{'s' * (threads > 1)}",
                lambda i, c=codec, t=threads: ngbak_backup(store, f"b{tag}_{c}_{t}_{i}", c, t))
    rep(LINKS_ROW, lambda i: ngbak_backup(store, f"b{tag}_links_{i}", "gzip", 2, links=True))
    identity, recipient = age_identity()
    rep(ENCRYPTED_BACKUP,
        lambda i: ngbak_backup(store, f"b{tag}_enc_{i}", "gzip", 2, extra=["--encrypt-to", recipient]))
    rep("ngbak backup, previous defaults (gzip 1, 1 thread)",
        lambda i: ngbak_backup(store, f"b{tag}_old_{i}", "gzip", 1, level=1))
    if os.path.exists(ISSUE_BASELINE):
        rep(ISSUE_ROW, lambda i: ngbak_backup(store, f"b{tag}_issue_{i}", binary=ISSUE_BASELINE))
    # Restores write into the same Redis; the data is put back afterwards by the last restore.
    rep("ngbak restore (gzip archive)", lambda i: ngbak_restore(store, f"b{tag}_gzip_2_0", keys))
    rep("ngbak restore (zstd archive)", lambda i: ngbak_restore(store, f"b{tag}_zstd_2_0", keys))
    rep("ngbak restore without the read-back (gzip; --no-verify-restored)",
        lambda i: ngbak_restore(store, f"b{tag}_gzip_2_0", keys, read_back=False))
    rep(ENCRYPTED_RESTORE, lambda i: ngbak_restore(store, f"b{tag}_enc_0", keys, extra=["--identity", identity]))
    rep(NATIVE_RESTORE, lambda i: native_restore(keys))
    # Over the live data: the safety backup first saves all of it.
    rep("ngbak restore over the live data (gzip; safety backup of every key first)",
        lambda i: ngbak_restore(store, f"b{tag}_gzip_2_0", keys, flush=False))

    # The compression stage alone: the same documents as one nano-graphrag JSON file on disk, backed
    # up into a directory (no Redis reads, no S3), so thread scaling is not hidden by the exporter.
    kv_dir, local = os.path.join(WORK, "kv"), os.path.join(WORK, "store")
    dump_json_kv(kv_dir)
    for codec in ["gzip", "zstd"]:
        for threads in [1, 2]:
            rep(f"ngbak {codec} backup of the same data as a JSON file, {threads} thread{'s' * (threads > 1)}",
                lambda i, c=codec, t=threads: file_backup(kv_dir, local, f"f{tag}_{c}_{t}_{i}", c, t))
    subprocess.run(["rm", "-rf", kv_dir, local], check=True)

    # redis-cli --rdb is served like a replica: without this Redis waits 5 s before sending.
    redis_cli("CONFIG", "SET", "repl-diskless-sync-delay", "0")
    for tool, compressor in [("gzip -1", "gzip -1"), ("pigz -1", f"pigz -1 -p {CORES}")]:
        rep(f"native: redis-cli --rdb | {tool} | upload", lambda i, c=compressor: native(bucket, f"native/{tag}_{i}", c))

    print(f"bench: {keys} keys: seed-style baseline backup ...", flush=True)
    r = measure([PY, os.path.join(HERE, "seed_baseline.py"), "backup", REDIS, bucket, f"seed/{tag}.tar.gz"])
    r["size"] = int(r["out"])
    rows["seed-style backup (GET per key, JSON files, tar.gz -9)"] = r
    redis_cli("FLUSHALL")
    print(f"bench: {keys} keys: seed-style baseline restore ...", flush=True)
    r = measure([PY, os.path.join(HERE, "seed_baseline.py"), "restore", REDIS, bucket, f"seed/{tag}.tar.gz"])
    assert int(r["out"]) == keys == int(redis_cli("DBSIZE")), "the baseline restored the wrong number of keys"
    rows["seed-style restore (files, SET per key)"] = r

    # GNU gzip -1 of exactly the tar stream ngbak wrote: the size reference.
    archive = os.path.join(WORK, "archive.ngbak")
    url = subprocess.run([NGBAK, "--store", store, "presign", f"b{tag}_gzip_2_0"], capture_output=True, check=True)
    urllib.request.urlretrieve(url.stdout.decode().strip(), archive)
    tar = os.path.join(WORK, "archive.tar")
    subprocess.run(f"gzip -dc {archive} > {tar}", shell=True, check=True)
    r = measure(f"gzip -1 -c {tar} | wc -c", shell=True)
    r["size"] = int(r["out"])
    rows["GNU gzip -1 of the same tar stream"] = r
    tar_bytes = os.path.getsize(tar)
    os.remove(tar)
    os.remove(archive)
    return dict(keys=keys, data=data, tar=tar_bytes, rows={k: {x: v for x, v in r.items() if x != "out"}
                                                            for k, r in rows.items()})


def dump_json_kv(kv_dir):
    """Writes the keys in Redis as nano-graphrag's kv_store_text_chunks.json."""
    import redis
    r = redis.Redis.from_url(REDIS)
    docs = {}
    keys = list(r.scan_iter("nano_graphrag:*", count=5000))
    for i in range(0, len(keys), 5000):
        for k, v in zip(keys[i:i + 5000], r.mget(keys[i:i + 5000])):
            docs[k.decode().split(":", 2)[2]] = json.loads(v)
    os.makedirs(kv_dir, exist_ok=True)
    with open(os.path.join(kv_dir, "kv_store_text_chunks.json"), "w", encoding="utf-8") as f:
        json.dump(docs, f, ensure_ascii=False, indent=2)


def file_backup(kv_dir, local, bid, codec, threads):
    r = measure([NGBAK, "--store", local, "backup", "--id", bid, "--kv-dir", kv_dir, "--json",
                 "--compression", codec, "--threads", str(threads)])
    r["size"] = json.loads(r["out"])["size"]
    return r


def native(bucket, key, compressor):
    r = measure(f"redis-cli -u {REDIS} --rdb - 2>/dev/null | {compressor} | {PY} {HERE}/upload.py {bucket} {key}",
                shell=True)
    r["size"] = int(r["out"].split()[-1])
    return r


def main():
    sizes = [int(s) for s in os.environ.get("NGBAK_BENCH_KEYS", "20000,200000").split(",") if s]
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    bucket = f"ngbak-bench-{int(time.time())}"
    urllib.request.urlopen(urllib.request.Request(f"{S3}/{bucket}", method="PUT"))
    store = f"s3://{bucket}/bench"
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    results = dict(cores=CORES, cpu=cpu_model(), reps=REPS, sizes=[run_size(k, bucket, store) for k in sizes])
    results["seconds"] = time.monotonic() - started
    results["load"] = [load_before, os.getloadavg()[0]]
    with open(os.path.join(RESULTS, "redis.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = report(results)
    with open(os.path.join(RESULTS, "redis.md"), "w") as f:
        f.write(table)
    print()
    print(table)
    sys.path.insert(0, HERE)
    import chart
    chart.draw(results, os.path.join(RESULTS, "redis.png"))
    print(f"chart: {os.path.relpath(os.path.join(RESULTS, 'redis.png'), ROOT)}")
    if os.environ.get("NGBAK_BENCH_GRAPH_NODES") and os.environ.get("NGBAK_TEST_BOLT_URI"):
        import graph
        graph.bench(run, NGBAK, store)
    if os.environ.get("NGBAK_BENCH_POINTS"):
        import vectors
        vectors.bench(run, NGBAK, store)


def run(cmd, stdout=subprocess.PIPE, stdin=None):
    """For graph.py and vectors.py: (stdout, seconds, peak RSS MiB)."""
    rss_file = os.path.join(WORK, "rss")
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, stdout=stdout, stdin=stdin,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    with open(rss_file) as f:
        rss_kib = int(f.read().split()[-1])
    return proc.stdout or b"", time.monotonic() - start, rss_kib / 1024


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def report(results):
    """The Markdown table, the ratios and the issue's targets, met or not."""
    out = [f"Machine: {results['cores']} cores ({results['cpu']}), shared (1-min load average "
           f"{results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end); fastest of "
           f"{results['reps']} runs (the seed-style baseline: 1 run); Redis, LocalStack (S3) and the tools all on "
           f"this machine; whole run {results['seconds']:.0f} s.", ""]
    for s in results["sizes"]:
        rows, mb = s["rows"], s["data"] / 1e6
        seed_b = rows["seed-style backup (GET per key, JSON files, tar.gz -9)"]
        seed_r = rows["seed-style restore (files, SET per key)"]
        gz1 = rows["GNU gzip -1 of the same tar stream"]
        out += [f"### {s['keys']:,} keys ({mb:.0f} MB of JSON values, tar stream {s['tar'] / 1e6:.0f} MB)", "",
                "| job | wall s | CPU s | peak RSS MiB | archive MB | MB/s | vs seed-style |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            ref = seed_r if "restore" in name else seed_b
            size = f"{r['size'] / 1e6:.1f}" if "size" in r else ""
            ratio = f"{ref['wall'] / r['wall']:.1f}x" if "GNU gzip" not in name else ""
            out.append(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} | {size} | "
                       f"{mb / r['wall']:.0f} | {ratio} |")
        g2, g1 = rows["ngbak gzip backup, 2 threads"], rows["ngbak gzip backup, 1 thread"]
        z2, old = rows["ngbak zstd backup, 2 threads"], rows["ngbak backup, previous defaults (gzip 1, 1 thread)"]
        rg, rz = rows["ngbak restore (gzip archive)"], rows["ngbak restore (zstd archive)"]
        default_rss = max(g2["rss"], rg["rss"])
        issue = rows.get(ISSUE_ROW)
        out += ["", "| target | measured | met |", "|---|---|---|"]
        if issue:
            out.append(f"| backup ≥ 1.7x the throughput of ngbak as issue 13 measured it, 2 threads | "
                       f"{issue['wall'] / g2['wall']:.2f}x (1 thread: {issue['wall'] / g1['wall']:.2f}x) | "
                       f"{yes(issue['wall'] / g2['wall'] >= 1.7)} |")
        out += [
                f"| backup ≥ 1.7x today's pipeline at the previous defaults (level 1, 1 thread), 2 threads | {old['wall'] / g2['wall']:.2f}x "
                f"(1 thread: {old['wall'] / g1['wall']:.2f}x; 2 vs 1 thread: {g1['wall'] / g2['wall']:.2f}x) | "
                f"{yes(old['wall'] / g2['wall'] >= 1.7)} |",
                f"| archive ≤ GNU gzip -1 of the same stream | {g2['size'] / 1e6:.1f} MB vs {gz1['size'] / 1e6:.1f} MB "
                f"({g2['size'] / gz1['size']:.2f}x) | {yes(g2['size'] <= gz1['size'])} |",
                f"| restore ≥ 10x the seed-style baseline | {seed_r['wall'] / rg['wall']:.1f}x (zstd: "
                f"{seed_r['wall'] / rz['wall']:.1f}x) | {yes(seed_r['wall'] / rg['wall'] >= 10)} |",
                f"| peak RSS ≤ 128 MiB, default settings | backup {g2['rss']:.0f} MiB, restore {rg['rss']:.0f} MiB | "
                f"{yes(default_rss <= 128)} |",
                f"| zstd backup ≥ 2x gzip's speed, smaller | {g2['wall'] / z2['wall']:.2f}x, {z2['size'] / 1e6:.1f} vs "
                f"{g2['size'] / 1e6:.1f} MB | {yes(g2['wall'] / z2['wall'] >= 2 and z2['size'] < g2['size'])} |",
                f"| zstd restore ≥ 1.5x gzip's | {rg['wall'] / rz['wall']:.2f}x | {yes(rg['wall'] / rz['wall'] >= 1.5)} |",
                f"| read-back check after the restore < 20% of its time | {rg['verify_s']:.2f} s of {rg['wall']:.2f} s "
                f"({rg['verify_s'] / rg['wall']:.0%}) | {yes(rg['verify_s'] / rg['wall'] < 0.2)} |",
                ""]
        pipe, bare = rows.get(NATIVE_RESTORE), rows.get("ngbak restore without the read-back (gzip; --no-verify-restored)")
        if pipe and bare:
            out.insert(-1, f"| restore within 1.5x of `redis-cli --pipe`, defaults | {rg['wall'] / pipe['wall']:.2f}x "
                           f"({rg['wall']:.2f} vs {pipe['wall']:.2f} s) | {yes(rg['wall'] / pipe['wall'] <= 1.5)} |")
            out.insert(-1, f"| restore within 1.2x of `redis-cli --pipe`, `--no-verify-restored` | "
                           f"{bare['wall'] / pipe['wall']:.2f}x | {yes(bare['wall'] / pipe['wall'] <= 1.2)} |")
        rest = rg["total_s"] - rg["verification_s"] - rg["safety_s"] - rg["verify_s"]
        out.insert(-1, f"| (where the default restore's {rg['total_s']:.2f} s go, as it reports them) | verification pass "
                       f"{rg['verification_s']:.2f} s, safety backup {rg['safety_s']:.2f} s, writing {rest:.2f} s, "
                       f"read-back {rg['verify_s']:.2f} s | — |")
        links = rows.get(LINKS_ROW)
        if links:
            out.insert(-1, f"| (what the consistency check adds to a backup) | {links['wall'] - g2['wall']:.2f} s of "
                           f"{links['wall']:.2f} s ({(links['wall'] - g2['wall']) / links['wall']:.0%}) | — |")
        enc, enc_r = rows.get(ENCRYPTED_BACKUP), rows.get(ENCRYPTED_RESTORE)
        if enc and enc_r:
            out.insert(-1, f"| encryption costs < 10% of the backup's time, nothing in peak RSS | backup "
                           f"{enc['wall'] / g2['wall'] - 1:+.1%} time, {enc['rss'] - g2['rss']:+.0f} MiB; restore "
                           f"{enc_r['wall'] / rg['wall'] - 1:+.1%} time, {enc_r['rss'] - rg['rss']:+.0f} MiB | "
                           f"{yes(enc['wall'] / g2['wall'] < 1.10 and enc['rss'] - g2['rss'] <= 4)} |")
        live = rows.get("ngbak restore over the live data (gzip; safety backup of every key first)")
        if live:
            out.insert(-1, f"| (what the safety backup adds over live data) | {live['safety_s']:.2f} s of "
                           f"{live['wall']:.2f} s ({live['safety_s'] / live['wall']:.0%}) | — |")
    out.append("MB/s: JSON value bytes per wall-clock second. CPU: user + system of the whole process tree. "
               "Peak RSS: the process tree's (sampled every 50 ms, at least GNU time's maximum). ngbak restore "
               "reads the archive twice (verify, then write). The native pipeline has no network restore "
               "(an RDB file is loaded by restarting Redis with it).")
    return "\n".join(out) + "\n"


def yes(ok):
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
