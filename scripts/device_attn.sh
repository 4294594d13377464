#!/usr/bin/env bash
# Issue 14's device run: cuDNN fused attention against the mma kernel and against every PyTorch
# SDPA backend, in ONE call on the GPU machine (device tool), after device_pack.sh here:
#   machine + cuDNN versions -> do the binaries load -> GPU tests (kernels, GpuEngine) ->
#   benchmarks (attention, plans, layer, model) -> compute-only TTFT through the engine ->
#   PyTorch baseline (all SDPA backends, same call) -> table -> memcheck of the cuDNN path.
# Usage there: bash $CARRY_DIR/scripts/device_attn.sh [probe|full]
#   probe: tests, cuDNN attention and plan cost, the 32K layer (a short first call; with cuDNN's
#          debug log when its tests fail)
#   full:  everything but the probe's debug log
# cuDNN: the binaries are linked to libcudnn.so.9 and find PyTorch's copy through
# LD_LIBRARY_PATH=$CUDNN_LIB_DIR (set here); the version loaded is printed by the binaries.
# Logs land in $OUT (at most 8 files come back).
set -uo pipefail
STAGE=${1:-full}
CARRY_DIR=${CARRY_DIR:-.carry-attn}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
OUT=${OUT:-/tmp/cake-attn-out}
mkdir -p "$OUT"
BIN=$PWD/$CARRY_DIR/bin
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$PWD/$CARRY_DIR/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:/opt/torch/.venv/bin:$PATH
export PYTHONUNBUFFERED=1
status=0
LOG=$OUT/attn.log
step() { echo; echo "=== $* ($(date +%T))"; }

{
step "machine ($STAGE)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
cat "$CARRY_DIR/commit"
ls "$CUDNN_LIB_DIR" | head -20
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"

step "do the binaries load"
for b in "$BIN"/*; do
  if ldd "$b" | grep -q "not found"; then echo "$b: missing libraries:"; ldd "$b" | grep "not found"; status=1; fi
done
ldd "$BIN/test_kernels_gpu" | grep -E "cudnn|cublas|cudart"
} 2>&1 | tee "$LOG"

step "GPU tests: kernels" | tee -a "$LOG"
timeout 300 "$BIN/test_kernels_gpu" --gtest_filter='Gpu*' --gtest_output="json:$OUT/gpu_tests.json" > "$OUT/gpu_tests.log" 2>&1
rc=$?
grep -E "^\[ *(OK|FAILED|SKIPPED|PASSED) *\]|Failure|rel err|error|Expected|Which is|actual|seed|cuDNN|attention:" "$OUT/gpu_tests.log" | head -120 | tee -a "$LOG"
echo "test_kernels_gpu exit $rc" | tee -a "$LOG"
[[ $rc -eq 0 ]] || status=1
if [[ $STAGE == probe && $rc -ne 0 ]]; then
  CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG="$OUT/cudnn_debug.log" timeout 60 "$BIN/test_kernels_gpu" \
    --gtest_filter='GpuCudnnAttention.SameLaunch*' > /dev/null 2>&1
  head -c 400000 "$OUT/cudnn_debug.log" > "$OUT/cudnn_debug.txt"; rm -f "$OUT/cudnn_debug.log"
fi

step "GPU tests: engine (every mode bit-exact with compute-only, default attention)" | tee -a "$LOG"
timeout 240 "$BIN/test_engine" --gtest_filter='GpuEngine.*' 2>&1 | tail -n 25 | tee -a "$LOG"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

if [[ $STAGE == probe ]]; then
  FILTER='BM_CudnnAttention|BM_CudnnPlans|BM_CudaAttention/32768/0/0|BM_CudaLayer/32768/0/'
else
  FILTER='BM_CudnnAttention|BM_CudnnPlans|BM_CudaAttention/(4096|16384|32768|65536)/0/0|BM_CudaLayer|BM_CudaGemm/32768/|BM_CudaElementwise/32768/'
fi
step "benchmarks ($FILTER)" | tee -a "$LOG"
timeout 420 "$BIN/cake_bench_micro" --benchmark_filter="$FILTER" --benchmark_format=console \
  --benchmark_out_format=json --benchmark_out="$OUT/bench.json" --benchmark_counters_tabular=true 2>&1 \
  | grep -vE "^\*\*\*|^-+$" | cut -c1-230 | tee -a "$LOG"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

if [[ $STAGE == full ]]; then
  step "compute-only TTFT through the engine (cake-bench run --mode compute)" | tee -a "$LOG"
  for attn in cudnn mma; do
    chunks=1024,2048,4096
    [[ $attn == mma ]] && chunks=1024
    timeout 200 "$BIN/cake-bench" run --model llama-3-8b --context 32k --suffix 128 --chunk $chunks --mode compute \
      --repeat 3 --warmup 1 --verify token --attention $attn --out /tmp/ttft-$attn -q 2>&1 | tail -n 20 | tee -a "$LOG"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  done
  timeout 120 "$BIN/cake-bench" run --model llama-3-8b --context 64k --suffix 128 --chunk 4096 --mode compute \
    --repeat 2 --warmup 1 --verify token --attention cudnn --out /tmp/ttft-64k -q 2>&1 | tail -n 12 | tee -a "$LOG"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  step "llama-3-8b at 32K: compute, io and cake bit-exact with cuDNN attention (mem source, --verify full)" | tee -a "$LOG"
  timeout 150 "$BIN/cake-bench" run --model llama-3-8b --context 32k --suffix 128 --chunk 1024 \
    --mode compute,io,cake --source mem --bandwidth 32gbps --repeat 1 --warmup 0 --verify full --attention cudnn \
    --store /dev/shm/cake-attn-store --out /tmp/exact-32k -q 2>&1 | tail -n 16 | tee -a "$LOG"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  rm -rf /dev/shm/cake-attn-store
  tar -czf "$OUT/ttft.tgz" -C /tmp ttft-cudnn ttft-mma ttft-64k exact-32k 2>/dev/null
fi

if [[ $STAGE == probe ]]; then
  step "done (probe), status $status" | tee -a "$LOG"
  exit $status
fi

step "PyTorch: every SDPA backend, same call" | tee -a "$LOG"
timeout 300 python3 "$CARRY_DIR/scripts/pytorch_layer_baseline.py" --reps 6 --ours "$OUT/bench.json" \
  --json "$OUT/pytorch_layer.json" --table "$OUT/layer_table.md" 2>&1 | tee -a "$LOG"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

step "compute-sanitizer memcheck of the cuDNN path (our strides and pointers)" | tee -a "$LOG"
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_kernels_gpu" \
  --gtest_filter='GpuCudnnAttention.MatchesReferenceWithOffsetsAndGqa' > "$OUT/memcheck.log" 2>&1
rc=$?
tail -n 4 "$OUT/memcheck.log" | tee -a "$LOG"
echo "memcheck exit code $rc" | tee -a "$LOG"
[[ $rc -eq 0 ]] || status=1

step "done, status $status" | tee -a "$LOG"
exit $status
