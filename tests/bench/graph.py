"""Graph half of the benchmark: a nano-graphrag-shaped graph of 100k nodes and 200k relationships
(NGBAK_BENCH_GRAPH_NODES), exported and restored by ngbak, against the server's own bulk path
(the same rows loaded with `UNWIND` batches of 5,000, timed: the graph's "redis-cli --pipe"), and
against a one-statement-per-row restore of the same rows (the approach of the Python tool ngbak
replaces), timed on a sample. The restore runs at three `--graph-batch-size`s (250, the default
1,000, 5,000), to see which size the server takes best."""
import json
import os
import random
import time

from neo4j import GraphDatabase

TYPES = ["PERSON", "ORGANIZATION", "EVENT", "GEO"]


def driver():
    return GraphDatabase.driver(os.environ["NGBAK_TEST_BOLT_URI"],
                                auth=(os.environ["NGBAK_TEST_BOLT_USER"], os.environ["NGBAK_TEST_BOLT_PASSWORD"]))


def rows(nodes):
    rng = random.Random(7)
    node_rows = [{"id": f"ENTITY-{i}", "type": TYPES[i % 4], "props": {
        "id": f"ENTITY-{i}", "entity_type": TYPES[i % 4], "source_id": f"chunk-{i // 3}",
        "description": f"Entity {i}: " + " ".join(rng.choice(["graph", "node", "Ada", "Turing", "engine"]) for _ in range(20)),
        "clusters": json.dumps([{"level": 0, "cluster": i % 97}])}} for i in range(nodes)]
    rel_rows = [{"a": f"ENTITY-{k % nodes}", "b": f"ENTITY-{(k % nodes + 1 + 7 * (k // nodes)) % nodes}",
                 "props": {"weight": float(k % 10) + 0.5, "description": f"link {k}", "source_id": "chunk-1",
                           "order": k % 3}} for k in range(2 * nodes)]
    return node_rows, rel_rows


def load(session, label, node_rows, rel_rows, batch=5000):
    session.run(f"CREATE INDEX `{label}_id` IF NOT EXISTS FOR (n:`{label}`) ON (n.id)").consume()
    for t in TYPES:
        typed = [r for r in node_rows if r["type"] == t]
        for i in range(0, len(typed), batch):
            session.run(f"UNWIND $rows AS row CREATE (n:`{label}`:{t}) SET n = row.props", rows=typed[i:i + batch]).consume()
    for i in range(0, len(rel_rows), batch):
        session.run(f"UNWIND $rows AS row MATCH (a:`{label}` {{id: row.a}}) MATCH (b:`{label}` {{id: row.b}}) "
                    f"CREATE (a)-[r:RELATED]->(b) SET r = row.props", rows=rel_rows[i:i + batch]).consume()


def clear(session, label):
    while session.run(f"MATCH (n:`{label}`) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS c").single()["c"]:
        pass


def per_row_rate(session, label, node_rows, rel_rows, sample):
    """Rows per second of one CREATE statement per row, as the old tool's Cypher script ran."""
    start = time.monotonic()
    for r in node_rows[:sample]:
        session.run(f"CREATE (n:`{label}`:{r['type']}) SET n = $props", props=r["props"]).consume()
    for r in rel_rows[:sample]:
        session.run(f"MATCH (a:`{label}` {{id: $a}}) MATCH (b:`{label}` {{id: $b}}) CREATE (a)-[r:RELATED]->(b) SET r = $props",
                    a=r["a"], b=r["b"], props=r["props"]).consume()
    return 2 * sample / (time.monotonic() - start)


def bench(run, ngbak, store):
    nodes = int(os.environ.get("NGBAK_BENCH_GRAPH_NODES", "100000"))
    label = f"GraphRAG_bench{int(time.time())}"
    node_rows, rel_rows = rows(nodes)
    d = driver()
    with d.session(database="neo4j") as s:
        print(f"bench: loading a graph of {nodes} nodes and {2 * nodes} relationships ...", flush=True)
        started = time.monotonic()
        load(s, label, node_rows, rel_rows)
        native_sec = time.monotonic() - started
    env = ["--neo4j-uri", os.environ["NGBAK_TEST_BOLT_URI"], "--neo4j-user", os.environ["NGBAK_TEST_BOLT_USER"],
           "--neo4j-password", os.environ["NGBAK_TEST_BOLT_PASSWORD"], "--neo4j-label", label]
    bid = f"bench_graph_{nodes}"
    out, b_sec, b_rss = run([ngbak, "--store", store, "backup", "--id", bid, "--json"] + env)
    stats = json.loads(out)["backends"]["neo4j"]["stats"]
    assert (stats["entities"], stats["relationships"]) == (nodes, 2 * nodes), stats
    by_batch = {}
    for batch in (250, 1000, 5000):
        with d.session(database="neo4j") as s:
            clear(s, label)
        print(f"bench: graph restore, --graph-batch-size {batch} ...", flush=True)
        out, sec, rss = run([ngbak, "--store", store, "restore", bid, "--graph-mode", "replace", "--json",
                             "--graph-batch-size", str(batch)] + env)
        restored = json.loads(out)["backends"]["neo4j"]["restored"]
        assert (restored["entities"], restored["relationships"]) == (nodes, 2 * nodes), restored
        by_batch[batch] = (sec, rss)
    r_sec, r_rss = by_batch[1000]
    sample = min(2000, nodes)
    with d.session(database="neo4j") as s:
        base_label = label + "_perrow"
        s.run(f"CREATE INDEX `{base_label}_id` IF NOT EXISTS FOR (n:`{base_label}`) ON (n.id)").consume()
        per_row = per_row_rate(s, base_label, node_rows, rel_rows, sample)
        clear(s, base_label)
        clear(s, label)
    d.close()
    rows_total = 3 * nodes
    print(f"\ngraph: {nodes} nodes, {2 * nodes} relationships")
    print(f"  export : {nodes / b_sec:>9.0f} nodes/s  {2 * nodes / b_sec:>9.0f} rels/s  {b_sec:6.1f} s  peak RSS {b_rss:6.1f} MiB")
    print(f"  restore: {nodes / r_sec:>9.0f} nodes/s  {2 * nodes / r_sec:>9.0f} rels/s  {r_sec:6.1f} s  peak RSS {r_rss:6.1f} MiB"
          f"  (replace mode, batched UNWIND, verify pass included)")
    for batch, (sec, rss) in by_batch.items():
        print(f"  restore, --graph-batch-size {batch:>5}: {sec:6.1f} s  peak RSS {rss:6.1f} MiB  "
              f"({sec / native_sec:4.2f}x the server's own UNWIND load)")
    print(f"  the server's own bulk path (UNWIND batches of 5,000, no verification, no read-back): {native_sec:6.1f} s")
    print(f"  one statement per row (the old tool's way, timed on {2 * sample} rows): {per_row:8.0f} rows/s "
          f"→ {rows_total / per_row:7.1f} s for this graph; ngbak restore is {rows_total / r_sec / per_row:5.1f}x faster")
