#!/usr/bin/env bash
# The one script run on the GPU machine (device tool, after scripts/device_pack.sh here):
#   nvidia-smi -> do the carried binaries load -> GPU tests -> compute-sanitizer memcheck on small
#   GPU cases and racecheck on attention -> kernel, layer and model benchmarks -> PyTorch layer
#   baseline -> table (ours vs PyTorch).
# Logs and JSON land in $OUT (the device tool's output folder: at most 8 files come back, this
# writes 8); the table is printed last.
# Usage there: scripts/device_kernels.sh [--quick]   (--quick: tests and sanitizer only)
# CARRY_DIR (default .carry, relative to the repo root) holds what device_pack.sh packed; the
# script may run from $CARRY_DIR/scripts (it finds the repo root from CARRY_DIR's location).
set -uo pipefail
CARRY_DIR=${CARRY_DIR:-.carry}
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(basename "$here") == scripts && $(basename "$(dirname "$here")") == $(basename "$CARRY_DIR") ]]; then
  cd "$here/../.."
else
  cd "$here/.."
fi
OUT=${OUT:-/tmp/cake-device-out}
mkdir -p "$OUT"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
BIN=$CARRY_DIR/bin
# cuDNN comes from PyTorch's wheel on the GPU machine (the binaries are linked to libcudnn.so.9).
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$PWD/$CARRY_DIR/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:/opt/torch/.venv/bin:$PATH
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
cat "$CARRY_DIR/commit"
for lib in /usr/local/cuda/lib64/libcublas.so.13 /usr/local/cuda/lib64/libcublasLt.so.13; do readlink -f "$lib"; done

step "do the binaries load"
for b in "$BIN"/*; do
  if ldd "$b" | grep -q "not found"; then echo "$b: missing libraries:"; ldd "$b" | grep "not found"; status=1; fi
done

step "GPU tests"
timeout 300 "$BIN/test_kernels_gpu" --gtest_output="json:$OUT/gpu_tests.json" 2>&1 | tee "$OUT/gpu_tests.log" \
  | grep -E "^\[ *(OK|FAILED|SKIPPED|PASSED) *\]|Failure|rel err|error:|Expected|Which is|actual|seed" | head -150
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

step "compute-sanitizer memcheck on small GPU cases"
timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_kernels_gpu" \
  --gtest_filter='GpuOps.*:GpuAttention.RowsDoNotDependOnTheSplitIntoLaunches:GpuBackend.CopiedChunksServeLikeComputedOnes' \
  > "$OUT/memcheck.log" 2>&1
rc=$?
tail -n 5 "$OUT/memcheck.log"
echo "memcheck exit code $rc"
[[ $rc -eq 0 ]] || status=1

step "compute-sanitizer racecheck (shared-memory hazards) on the attention kernel"
timeout 240 compute-sanitizer --tool racecheck --error-exitcode 3 "$BIN/test_kernels_gpu" \
  --gtest_filter='GpuAttention.RowsDoNotDependOnTheSplitIntoLaunches' > "$OUT/racecheck.log" 2>&1
rc=$?
tail -n 3 "$OUT/racecheck.log"
echo "racecheck exit code $rc"
[[ $rc -eq 0 ]] || status=1

if [[ $QUICK -eq 0 ]]; then
  step "kernel and layer benchmarks"
  timeout 300 "$BIN/cake_bench_micro" --benchmark_filter="${BENCH_FILTER:-BM_Cuda}" --benchmark_format=console \
    --benchmark_out_format=json --benchmark_out="$OUT/bench_kernels_cuda.json" --benchmark_counters_tabular=true 2>&1 \
    | tee "$OUT/bench.log" | grep -vE "^\*\*\*|^-+$" | cut -c1-160
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

  step "PyTorch layer baseline"
  timeout 300 python3 "$CARRY_DIR/scripts/pytorch_layer_baseline.py" --ours "$OUT/bench_kernels_cuda.json" \
    --json "$OUT/pytorch_layer.json" --table "$OUT/layer_table.md" 2>&1
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
fi

step "done, status $status"
exit $status
