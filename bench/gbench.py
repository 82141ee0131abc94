"""bench/gbench.py: reading a Google Benchmark JSON file, for bench/report.py and bench/ipc_report.py."""

import json


def iterations(path):
    """(context, [(key, benchmark), ...]): every repetition of every benchmark, in run order, with
    key = (group, subject, variant) from the name "<group>/<subject>[/<variant>...]" (bench/common.hpp),
    Google Benchmark's own suffixes (iterations:N, manual_time) left out."""
    with open(path) as f:
        doc = json.load(f)
    out = []
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        parts = [p for p in b["run_name"].split("/") if not p.startswith("iterations:") and p != "manual_time"]
        out.append(((parts[0], parts[1], "/".join(parts[2:])), b))
    return doc["context"], out
