#!/usr/bin/env bash
# The CLI end to end on the CPU (issue 19's cases): a bandwidth-trace run is labelled with its
# trace everywhere and never matches an unlimited run in `compare`; an injected-fault run never
# matches a clean one unless --ignore-conditions, and then every row says so.
# Usage: trace_and_conditions.sh CAKE_BENCH WORK_DIR
set -euo pipefail
B=$1
W=$2
rm -rf "$W"
mkdir -p "$W"
printf 't_ms,gbps\n0,0.2\n150,0\n600,0.2\n' > "$W/bt.csv"
RUN=(run --backend cpu --model tiny --context 512 --suffix 8 --chunk 64 --mode compute,io,cake --repeat 1 --warmup 0
     --cpu-threads 1 --verify token --store "$W/store" --quiet)
fail() { echo "FAILED: $*"; exit 1; }

"$B" "${RUN[@]}" --bandwidth-trace "$W/bt.csv" --out "$W/trace" > "$W/trace.txt" 2>&1
"$B" "${RUN[@]}" --bandwidth unlimited --out "$W/clean" > "$W/clean.txt" 2>&1
"$B" "${RUN[@]}" --bandwidth unlimited --inject-fault 5 --out "$W/fault" > "$W/fault.txt" 2>&1

label=$(grep -o 'trace:bt.csv@[0-9a-f]\{8\}' "$W/trace.txt" | head -1 || true)
[[ -n "$label" ]] || fail "the table has no trace label: $(cat "$W/trace.txt")"
grep -q "$label (mean 0.05, min 0)" "$W/trace.txt" || fail "the trace row lacks its mean and minimum"
grep -q "unlimited" "$W/trace.txt" && fail "a trace run reads as unlimited"
grep -q "\"bandwidth_trace\": \"$label\"" "$W/trace/results.json" || fail "results.json lacks the trace label"
grep -q ",0.05,$label,0,io," "$W/trace/results.csv" || fail "results.csv lacks the trace label, mean and minimum"

set +e
"$B" compare "$W/clean/results.json" "$W/trace/results.json" --fail-on-missing > "$W/cmp_trace.txt" 2>&1
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "compare of unlimited vs trace exited $rc, expected 1 (points on one side only)"
grep -q "0 regressed, 0 improved, 0 unchanged; 3 point(s) only in base, 3 only in new" "$W/cmp_trace.txt" ||
  fail "unlimited and trace points matched: $(cat "$W/cmp_trace.txt")"

grep -q "INJECTED: inject_fault=5" "$W/fault.txt" || fail "the injected run's table does not say so"
"$B" compare "$W/clean/results.json" "$W/fault/results.json" > "$W/cmp_fault.txt" 2>&1
grep -q "3 point(s) only in base, 3 only in new" "$W/cmp_fault.txt" || fail "clean and faulted points matched"
grep -q "conditions differ" "$W/cmp_fault.txt" || fail "no note on why clean and faulted did not match"
"$B" compare "$W/clean/results.json" "$W/fault/results.json" --ignore-conditions --json > "$W/cmp_fault.json" 2>&1 || true
python3 - "$W/cmp_fault.json" <<'PY' || fail "with --ignore-conditions, a row lacks its note"
import json, sys
result = json.load(open(sys.argv[1]))
assert result["rows"], "no rows matched"
assert all("conditions differ: base clean, new inject_fault=5" in r["note"] for r in result["rows"]), result["rows"]
PY
echo "trace_and_conditions: ok"
