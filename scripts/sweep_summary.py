#!/usr/bin/env python3
"""One markdown row per (source, bandwidth) of a sweep's results.json with compute/io/cake/oracle:
TTFT medians, cake/min(compute, io), cake/oracle, Cake's meet_idle_ms and meet chunk, the oracle's
split, the io point's load rate and whether it was loader-bound. Usage: sweep_summary.py RESULTS.json"""
import json
import sys


def main(path):
    d = json.load(open(path))
    rows = {}
    for p in d["points"]:
        bw = p["bandwidth_gbps"]
        rows.setdefault((p["source"], float("inf") if bw is None else bw), {})[p["mode"]] = p
    print("| source | bandwidth (Gbps) | compute (ms) | io (ms) | cake (ms) | oracle (ms) | cake/min(compute, io) | cake/oracle "
          "| cake meet_idle_ms | cake meet chunk | oracle split | io load_gbps | io loader-bound | reps |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    worst_min = worst_oracle = 0.0
    for (source, bw), r in sorted(rows.items()):
        if not all(m in r for m in ("compute", "io", "cake", "oracle")):
            continue
        c, i, k, o = (r[m]["ttft_ms"]["median"] for m in ("compute", "io", "cake", "oracle"))
        worst_min, worst_oracle = max(worst_min, k / min(c, i)), max(worst_oracle, k / o)
        io = r["io"]
        print(f"| {source} | {'unlimited' if bw == float('inf') else f'{bw:g}'} | {c:.1f} | {i:.1f} | {k:.1f} | {o:.1f} "
              f"| {k / min(c, i):.3f} | {k / o:.3f} | {r['cake']['meet_idle_ms'] or 0:.1f} | {r['cake']['meet_chunk']} "
              f"| {r['oracle']['oracle_split_chunk']} | {io['load_gbps'] or 0:.1f} | {'yes' if io['loader_bound'] else 'no'} "
              f"| {r['cake']['ttft_ms']['count']} |")
    print(f"\nworst cake/min(compute, io): {worst_min:.3f}; worst cake/oracle: {worst_oracle:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
