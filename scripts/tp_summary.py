#!/usr/bin/env python3
"""Tensor-parallel figures of cake-bench results (results.json of a --tp run): the all-reduce time of
each compute run (collective_ms) against its duration, and the claim-agreement time of each loaded
chunk (claim_spread_ms: how long after rank 0 took a chunk the last rank took it), over the
timelines the report keeps (one per point, its median repetition).

Usage: scripts/tp_summary.py results.json [more.json ...]
"""
import json
import statistics
import sys


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


for path in sys.argv[1:]:
    report = json.load(open(path))
    spreads, allreduce_ms, compute_ms = [], [], []
    for timeline in report.get("timelines", []):
        for e in timeline["events"]:
            if e["lane"] == "load" and e["ok"]:
                spreads.append(e.get("claim_spread_ms", 0.0))
            if e["lane"] == "compute" and e.get("collective_ms", 0) > 0:
                allreduce_ms.append(e["collective_ms"])
                compute_ms.append(e["end_ms"] - e["start_ms"])
    print(path)
    if allreduce_ms:
        print("  all-reduce per compute run: median %.2f ms of a median %.1f ms run; %.1f%% of compute time (%d runs)"
              % (statistics.median(allreduce_ms), statistics.median(compute_ms),
                 100 * sum(allreduce_ms) / sum(compute_ms), len(allreduce_ms)))
    else:
        print("  no all-reduce times (not a --tp run, or no compute run kept)")
    if spreads:
        print("  claim agreement per loaded chunk: median %.3f ms, p90 %.3f ms, max %.3f ms (%d chunks)"
              % (statistics.median(spreads), percentile(spreads, 0.9), max(spreads), len(spreads)))
