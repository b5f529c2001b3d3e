#!/usr/bin/env python3
"""The consistency check an operator would write by hand: the baseline of consistency.py.

    consistency_baseline.py WORKDIR

Loads every file of a nano-graphrag working directory whole (`json.load` of the key-value and
NanoVectorDB files, `xml.etree.ElementTree.parse` of the GraphML graph), keeps the ids in plain
Python sets and dicts of strings, and checks the same five rules as `ngbak consistency`. Prints
the same JSON shape as `ngbak consistency --json` (per rule: `holds` and `broken`), so the two
can be compared count by count.
"""
import hashlib
import json
import os
import sys
import xml.etree.ElementTree as ET

NS = "{http://graphml.graphdrawing.org/xmlns}"
SEP = "<SEP>"


def load_json(workdir, name):
    with open(os.path.join(workdir, name), encoding="utf-8") as f:
        return json.load(f)


def read_graph(workdir):
    """(nodes: name -> source_id, edges: [(source, target, source_id)])."""
    root = ET.parse(os.path.join(workdir, "graph_chunk_entity_relation.graphml")).getroot()
    # <key id="d2" for="node" attr.name="source_id">: which data key holds the source_id, per kind.
    source_keys = {(k.get("for"), k.get("id")) for k in root.iter(NS + "key") if k.get("attr.name") == "source_id"}

    def source_id(element, kind):
        for data in element.iter(NS + "data"):
            key = data.get("key")
            if (kind, key) in source_keys or ("all", key) in source_keys:
                return data.text or ""
        return ""

    nodes = {n.get("id"): source_id(n, "node") for n in root.iter(NS + "node")}
    edges = [(e.get("source"), e.get("target"), source_id(e, "edge")) for e in root.iter(NS + "edge")]
    return nodes, edges


def chunk_ids(source_id):
    return [c.strip() for c in source_id.split(SEP) if c.strip()]


def tally(rule, links):
    """A rule's outcome from its links (True: the link holds)."""
    holds = broken = 0
    for ok in links:
        if ok:
            holds += 1
        else:
            broken += 1
    return {"rule": rule, "holds": holds, "broken": broken}


def main(workdir):
    nodes, edges = read_graph(workdir)
    vdb = load_json(workdir, "vdb_entities.json")
    vector_ids = {v["__id__"] for v in vdb["data"]}
    chunks = load_json(workdir, "kv_store_text_chunks.json")
    docs = load_json(workdir, "kv_store_full_docs.json")
    reports = load_json(workdir, "kv_store_community_reports.json")

    sources = list(nodes.values()) + [source_id for _, _, source_id in edges]
    rules = [
        tally("node_has_entity_vector",
              ("ent-" + hashlib.md5(name.encode()).hexdigest() in vector_ids for name in nodes)),
        tally("entity_vector_is_node", (v.get("entity_name") in nodes for v in vdb["data"])),
        tally("source_id_is_chunk", (c in chunks for s in sources for c in chunk_ids(s))),
        tally("chunk_has_doc", (c.get("full_doc_id") in docs for c in chunks.values())),
        tally("report_member_is_node", (m in nodes for r in reports.values() for m in r.get("nodes", []))),
    ]
    json.dump({"consistent": all(r["broken"] == 0 for r in rules), "rules": rules}, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
