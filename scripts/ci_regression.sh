#!/usr/bin/env bash
# The project's own performance check (run by scripts/test.sh, so by CI): a short CPU sweep
# compared with results/baselines/cpu-tiny on within-run ratios only (absolute times do not hold
# across shared machines), then the same sweep with a compute lane slowed on purpose, which
# `compare` must flag. `scripts/ci_regression.sh --record` remakes the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CAKE_BENCH:-build/cli/cake-bench}
WORK=${CAKE_CI_WORK:-build/ci-regression}
BASELINE=results/baselines/cpu-tiny
# One compute thread leaves the other core to the load lane, so lanes do not fight for CPU.
SWEEP=(--quiet --backend cpu --model tiny --context 1k --suffix 16 --chunk 64 --mode compute,io,cake
       --bandwidth 0.02gbps --repeat 7 --warmup 1 --cpu-threads 1 --store "$WORK/store")
# Wide enough for a shared 2-core machine: same-code runs have moved cake/compute by up to ~17%.
COMPARE=(--ratios-only --threshold-pct 25)
rm -rf "$WORK/now" "$WORK/slow"
mkdir -p "$WORK"

if [[ "${1:-}" == "--record" ]]; then
  rm -rf "$BASELINE"
  "$B" run "${SWEEP[@]}" --out "$BASELINE"
  echo "recorded $BASELINE"
  exit 0
fi

echo "ci_regression: short CPU sweep vs $BASELINE (ratios only)"
"$B" run "${SWEEP[@]}" --out "$WORK/now" >/dev/null
"$B" compare "$BASELINE/results.json" "$WORK/now/results.json" "${COMPARE[@]}"

echo "ci_regression: the same sweep with the compute lane slowed by 200 ms a chunk must be flagged"
"$B" run "${SWEEP[@]}" --inject-compute-delay-ms 200 --out "$WORK/slow" >/dev/null
set +e
# --ignore-conditions: the slowed run records its injected delay, and compare matches injected
# with clean points only when told to (each such row then says so).
"$B" compare "$BASELINE/results.json" "$WORK/slow/results.json" "${COMPARE[@]}" --ignore-conditions
rc=$?
set -e
if [[ $rc -ne 1 ]]; then
  echo "ci_regression: FAILED: compare exited $rc on an injected slowdown (expected 1, a regression)"
  exit 1
fi
echo "ci_regression: injected slowdown caught (exit 1), as it must be"
