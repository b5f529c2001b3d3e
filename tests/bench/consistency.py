#!/usr/bin/env python3
"""`ngbak consistency` at a million entities, against the check an operator would write by hand.

What it measures: the wall time, CPU time and peak RSS of checking the links of one nano-graphrag
working directory (node <-> entity vector, source_id -> text chunk, chunk -> document, report
member -> node), by
  - ngbak: `ngbak consistency --kv-dir DIR --json`, which streams each file twice and keeps only
    16-byte hashes of the ids (fastest of NGBAK_BENCH_REPS runs, default 3), and
  - the baseline (consistency_baseline.py): `json.load` and `ElementTree.parse` of the whole
    files, the ids in Python sets (1 run: it takes minutes and gigabytes at a million).
Why: the check must run where the deployment lives (a container next to the stores, a Lambda),
so its memory has to stay bounded by the id sets, not by the size of the files.

Sizes: NGBAK_BENCH_ENTITIES (default 1000000; a comma list such as 100000,1000000 also gives the
RSS growth per entity between the sizes). For N entities the generated directory holds N graph
nodes (each from one or two chunks), N - 1 relationships (a chain), N text chunks, N/3 documents,
N/300 community reports of 300 members each (every node in one report) and N entity vectors of
dimension 8: a real deployment's vectors have 1536 dimensions, which would make vdb_entities.json
a base64 matrix of 8 GB that both tools only skip over. Chunk and document texts are short (about
100 bytes) for the same reason. The directory is written as a stream, outside the timing, to
.run/bench/consistency-<N>/ and reused when it is there.

Both tools must say consistent and agree, rule by rule, on how many links hold and are broken
(and with the counts the generator planted). Writes tests/bench/results/consistency.md and .json.
The binary: NGBAK_BIN, default target/release/ngbak (what `make bench` has just built).
"""
import array
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from xml.sax.saxutils import escape

import measuring

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NGBAK = os.environ.get("NGBAK_BIN", os.path.join(ROOT, "target", "release", "ngbak"))
BASELINE = os.path.join(HERE, "consistency_baseline.py")
WORK = os.path.join(ROOT, ".run", "bench")
RESULTS = os.path.join(HERE, "results")
PY = sys.executable
REPS = int(os.environ.get("NGBAK_BENCH_REPS", "3"))
DIM = 8
REPORT_SIZE = 300
RULES = ["node_has_entity_vector", "entity_vector_is_node", "source_id_is_chunk", "chunk_has_doc",
         "report_member_is_node"]

# ---------------------------------------------------------------------------------------------
# The working directory, written as a stream: entity i, chunk i and document i // 3 are
# computed from i whenever they are needed, never kept in a list.

# Entity names as nano-graphrag writes them: upper case, in double quotes (part of the id), some
# with characters that XML and JSON must escape.
KINDS = ["PERSON", "ORGANIZATION", "AT&T LAB", "CAFÉ", "EVENT <2024>", "GEO", "O'BRIEN"]


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def entity(i):
    return f'"{KINDS[i % len(KINDS)]} {i}"'


def chunk_id(i):
    return "chunk-" + md5(f"chunk {i}")


def doc_id(j):
    return "doc-" + md5(f"doc {j}")


def node_sources(i, n):
    """Node i comes from chunk i, and every odd one from chunk i + 1 too."""
    return [chunk_id(i)] + ([chunk_id(i + 1)] if i % 2 and i + 1 < n else [])


def attr(text):
    return escape(text, {'"': "&quot;"})


def write_lines(path, lines):
    """Writes an iterable of lines in blocks of 10000."""
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        block = []
        for line in lines:
            block.append(line)
            if len(block) == 10000:
                f.write("".join(block))
                block.clear()
        f.write("".join(block))


def json_object(entries):
    """A JSON object, one `"key": value` entry per line, from (key, value) pairs."""
    yield "{\n"
    first = True
    for key, value in entries:
        yield ("" if first else ",\n") + f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        first = False
    yield "\n}\n"


def graphml(n):
    yield ("<?xml version='1.0' encoding='utf-8'?>\n"
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
           '  <key id="d0" for="node" attr.name="entity_type" attr.type="string" />\n'
           '  <key id="d1" for="node" attr.name="description" attr.type="string" />\n'
           '  <key id="d2" for="node" attr.name="source_id" attr.type="string" />\n'
           '  <key id="d3" for="edge" attr.name="weight" attr.type="double" />\n'
           '  <key id="d4" for="edge" attr.name="description" attr.type="string" />\n'
           '  <key id="d5" for="edge" attr.name="source_id" attr.type="string" />\n'
           '  <key id="d6" for="edge" attr.name="order" attr.type="long" />\n'
           '  <graph edgedefault="undirected">\n')
    for i in range(n):
        yield (f'    <node id="{attr(entity(i))}">\n'
               f'      <data key="d0">"{escape(KINDS[i % len(KINDS)])}"</data>\n'
               f'      <data key="d1">"Entity {i}, as the extraction described it"</data>\n'
               f'      <data key="d2">{escape("<SEP>".join(node_sources(i, n)))}</data>\n'
               f'    </node>\n')
    for i in range(1, n):
        yield (f'    <edge source="{attr(entity(i - 1))}" target="{attr(entity(i))}">\n'
               f'      <data key="d3">{1 + i % 9}.0</data>\n'
               f'      <data key="d4">"Entity {i - 1} relates to entity {i}"</data>\n'
               f'      <data key="d5">{chunk_id(i)}</data>\n'
               f'      <data key="d6">1</data>\n'
               f'    </edge>\n')
    yield "  </graph>\n</graphml>\n"


def entity_vectors(n):
    """NanoVectorDB's file: the entities' ids and names, then the float32 matrix as base64,
    encoded in blocks of 12000 vectors (a multiple of 3 bytes, so the blocks join)."""
    yield f'{{"embedding_dim": {DIM}, "data": ['
    for i in range(n):
        name = entity(i)
        yield ("" if i == 0 else ", ") + json.dumps({"__id__": "ent-" + md5(name), "entity_name": name},
                                                   ensure_ascii=False)
    yield '], "matrix": "'
    rng = random.Random(42)
    for start in range(0, n, 12000):
        count = min(12000, n - start)
        yield base64.b64encode(array.array("f", [rng.random() for _ in range(count * DIM)]).tobytes()).decode()
    yield '"}\n'


def chunks(n):
    for i in range(n):
        yield chunk_id(i), {"tokens": 24, "content": f"Chunk {i}: what entity {i} did, in about a hundred bytes "
                                                     "of text.", "chunk_order_index": i % 3,
                            "full_doc_id": doc_id(i // 3)}


def docs(n):
    for j in range((n + 2) // 3):
        yield doc_id(j), {"content": f"Document {j}: its three chunks' text, shortened to a line."}


def reports(n):
    for r, start in enumerate(range(0, n, REPORT_SIZE)):
        members = range(start, min(start + REPORT_SIZE, n))
        yield str(r), {"report_string": f"# Community {r}\nEntities {start} to {members[-1]}.",
                       "report_json": {"title": f"Community {r}", "rating": 5.0, "findings": []},
                       "level": 0, "title": f"Cluster {r}",
                       "edges": [[entity(i - 1), entity(i)] for i in members if i > start],
                       "nodes": [entity(i) for i in members],
                       "chunk_ids": [chunk_id(i) for i in members],
                       "occurrence": 1.0, "sub_communities": []}


def expected(n):
    """The links the generator planted, per rule (all of them hold)."""
    return {"node_has_entity_vector": n, "entity_vector_is_node": n,
            "source_id_is_chunk": n + (n - 1) // 2 + (n - 1),
            "chunk_has_doc": n, "report_member_is_node": n}


def workdir(n):
    """The cached working directory of n entities, written first if absent."""
    final = os.path.join(WORK, f"consistency-{n}")
    if os.path.exists(os.path.join(final, "expected.json")):
        print(f"consistency: {n} entities: reusing {os.path.relpath(final, ROOT)}", flush=True)
        return final, None
    partial = final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    os.makedirs(partial)
    started = time.monotonic()
    for name, lines in [("graph_chunk_entity_relation.graphml", graphml(n)),
                        ("vdb_entities.json", entity_vectors(n)),
                        ("kv_store_text_chunks.json", json_object(chunks(n))),
                        ("kv_store_full_docs.json", json_object(docs(n))),
                        ("kv_store_community_reports.json", json_object(reports(n)))]:
        print(f"consistency: {n} entities: writing {name} ...", flush=True)
        write_lines(os.path.join(partial, name), lines)
    with open(os.path.join(partial, "expected.json"), "w") as f:
        json.dump(expected(n), f)
    os.rename(partial, final)
    seconds = time.monotonic() - started
    print(f"consistency: {n} entities: generated in {seconds:.0f} s", flush=True)
    return final, seconds


def measure(cmd):
    return measuring.measure(cmd, WORK)


# ---------------------------------------------------------------------------------------------

def counts(report, tool):
    """{rule: (holds, broken)} of the checked rules of a report, which must say consistent
    (nano-graphrag keeps no relationship or chunk vectors, so LightRAG's rules are not checked)."""
    assert report["consistent"] is True, f"{tool} does not say consistent: {report}"
    return {r["rule"]: (r["holds"], r["broken"]) for r in report["rules"] if r.get("checked", True)}


def run_size(n):
    directory, generated = workdir(n)
    with open(os.path.join(directory, "expected.json")) as f:
        planted = {rule: (holds, 0) for rule, holds in json.load(f).items()}
    data = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory) if f != "expected.json")
    runs = []
    for i in range(REPS):
        print(f"consistency: {n} entities: ngbak, run {i + 1} of {REPS} ...", flush=True)
        runs.append(measure([NGBAK, "consistency", "--kv-dir", directory, "--json"]))
    ngbak = min(runs, key=lambda r: r["wall"])
    print(f"consistency: {n} entities: baseline (json.load, ElementTree.parse, Python sets) ...", flush=True)
    baseline = measure([PY, BASELINE, directory])
    ours, theirs = counts(json.loads(ngbak["out"]), "ngbak"), counts(json.loads(baseline["out"]), "the baseline")
    assert ours == theirs == planted, f"the counts differ:\nngbak    {ours}\nbaseline {theirs}\nplanted  {planted}"
    return dict(entities=n, data=data, generated_s=generated, counts={r: ours[r][0] for r in RULES},
                ngbak={k: v for k, v in ngbak.items() if k not in ("out", "trace")},
                ngbak_runs=[dict(wall=r["wall"], rss=r["rss"]) for r in runs],
                baseline={k: v for k, v in baseline.items() if k not in ("out", "trace")})


def id_sets_mib(n):
    """What ngbak's four id sets (nodes, vectors, chunks: n each; documents: n/3) take when full:
    a std HashSet<u128> of k ids has the smallest power of two of buckets whose 7/8 holds k, at
    16 bytes plus 1 control byte each."""
    def table(k):
        buckets = 16
        while buckets * 7 // 8 < k:
            buckets *= 2
        return buckets * 17
    return (3 * table(n) + table((n + 2) // 3)) / 2**20


def report(results):
    out = [f"Machine: {results['cores']} cores ({results['cpu']}), shared (1-min load average "
           f"{results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end); ngbak: fastest of "
           f"{results['reps']} runs, the baseline: 1 run; the files in the page cache (just written or read). "
           f"Binary: `{results['binary']}` ({results['version']}, sha256 {results['sha256'][:12]}).", "",
           "| entities | files MB | tool | wall s | CPU s | peak RSS MiB | entities/s | time ngbak/baseline "
           "| RSS ngbak/baseline |",
           "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in results["sizes"]:
        ng, base = s["ngbak"], s["baseline"]
        n, mb = s["entities"], s["data"] / 1e6
        out.append(f"| {n:,} | {mb:.0f} | ngbak consistency | {ng['wall']:.2f} | {ng['cpu']:.2f} | {ng['rss']:.0f} | "
                   f"{n / ng['wall']:,.0f} | {ng['wall'] / base['wall']:.3f} | {ng['rss'] / base['rss']:.3f} |")
        out.append(f"| {n:,} | {mb:.0f} | baseline (json.load, ElementTree, sets) | {base['wall']:.2f} | "
                   f"{base['cpu']:.2f} | {base['rss']:.0f} | {n / base['wall']:,.0f} | | |")
    out += ["", "ngbak's runs, wall s: " + "; ".join(
        f"{s['entities']:,}: " + ", ".join(f"{r['wall']:.2f}" for r in s["ngbak_runs"]) for s in results["sizes"]) + "."]
    out += ["", "Links checked (identical for both tools and as planted; all hold): " + "; ".join(
        f"{s['entities']:,} entities: " + ", ".join(f"{r} {c:,}" for r, c in s["counts"].items())
        for s in results["sizes"]), ""]
    out.append("ngbak's id sets when full (four std `HashSet<u128>`, 17 bytes a bucket, power-of-two tables): " +
               ", ".join(f"{id_sets_mib(s['entities']):.0f} MiB at {s['entities']:,}" for s in results["sizes"]) + ".")
    sizes = results["sizes"]
    for small, large in zip(sizes, sizes[1:]):
        grown = large["entities"] - small["entities"]
        for tool in ["ngbak", "baseline"]:
            per = (large[tool]["rss"] - small[tool]["rss"]) * 2**20 / grown
            out.append(f"RSS growth per entity, {small['entities']:,} -> {large['entities']:,}, {tool}: {per:,.0f} bytes.")
        model = (id_sets_mib(large["entities"]) - id_sets_mib(small["entities"])) * 2**20 / grown
        out.append(f"(ngbak's id sets alone, same step: {model:,.0f} bytes per entity.)")
    out += ["", "Per entity the directory holds a graph node, a relationship, a text chunk, a third of a document, "
            "an entity vector of dimension 8 and a three-hundredth of a community report (see consistency.py). "
            "Peak RSS: the process tree's, sampled every 50 ms, at least GNU time's maximum. CPU: user + system."]
    return "\n".join(out) + "\n"


def main():
    sizes = [int(s) for s in os.environ.get("NGBAK_BENCH_ENTITIES", "1000000").split(",") if s]
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    version = subprocess.run([NGBAK, "--version"], capture_output=True, check=True).stdout.decode().strip()
    with open(NGBAK, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    load_before = os.getloadavg()[0]
    measured = [run_size(n) for n in sizes]
    results = dict(cores=os.cpu_count(), cpu=cpu_model(), reps=REPS, binary=os.path.relpath(NGBAK, ROOT),
                   version=version, sha256=sha256, dim=DIM, sizes=measured,
                   load=[load_before, os.getloadavg()[0]])
    with open(os.path.join(RESULTS, "consistency.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = report(results)
    with open(os.path.join(RESULTS, "consistency.md"), "w") as f:
        f.write(table)
    print()
    print(table)


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
