#!/usr/bin/env bash
# Round 2 on the GPU machine in one call (issues 12 and 13, after the merge of every branch): the
# GPU tests of the merged code (gated prefill on CUDA, cuDNN attention, the mem source's direct
# uploads), then llama-3-8b at 32K over mem and /dev/shm at 1-400 Gbps (x2) plus unlimited with
# compute, io, cake and oracle: meet_idle_ms and cake/min(compute, io) per point.
#
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_engine test_kernels_gpu test_loaders"
#       CARRY_DIR=.carry-r2 scripts/device_pack.sh
# There (device tool, carry [".carry-r2"]): bash scripts/device_round2.sh
# 1 and 2 Gbps run one repetition (io alone takes 34 s and 17 s a request there); the rest three
# with a warm-up. Logs and run folders come back in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-$PWD/.carry-r2}
OUT=${OUT:-/tmp/cake-r2-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-r2
SHM=/dev/shm/cake
mkdir -p "$RES" "$SHM"
source scripts/device_lib.sh

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; df -h /dev/shm | tail -1

run timeout 60 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*'
run timeout 90 "$CARRY/bin/test_kernels_gpu"
run timeout 40 "$CARRY/bin/test_loaders" --gtest_filter='*Direct*:*Gpu*:*Device*'
COMMON=(--quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source mem,file:$SHM --store "$SHM")
run timeout 150 "$B" run "${COMMON[@]}" --bandwidth 1gbps,2gbps --repeat 1 --warmup 0 --out "$RES/ctx32k-low"
pack ctx32k-low
run timeout 300 "$B" run "${COMMON[@]}" --bandwidth 4gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 \
  --out "$RES/ctx32k-high"
pack ctx32k-high
for d in ctx32k-low ctx32k-high; do cp "$RES/$d/results.md" "$OUT/$d.md" 2>/dev/null; done
exit $status
