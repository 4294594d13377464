#!/usr/bin/env bash
# Second call of round 2 (after scripts/device_round2.sh): the checkpoint checks against
# transformers with the merged binary (Llama and Qwen2 on CUDA and CPU: scripts/device_checkpoints.sh)
# and llama-3-8b at 32K, mem source, 1-8 Gbps with compute, cake and oracle after the oracle fix
# (warm per-chunk costs). Pack: .carry-r2 (cake-bench, test_kernels_gpu, test_engine) plus
# scripts/check_vs_transformers.py and scripts/device_checkpoints.sh copied into it.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-$PWD/.carry-r2}
OUT=${OUT:-/tmp/cake-r2b-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
mkdir -p "$OUT/ckpt"
OUT="$OUT/ckpt" timeout 240 bash "$CARRY/device_checkpoints.sh"
echo "=== checkpoint checks exit $?"; tail -n 30 "$OUT/ckpt/check_log.txt"
SHM=/dev/shm/cake; mkdir -p "$SHM"
timeout 200 "$CARRY/bin/cake-bench" run --quiet --context 32k --suffix 128 --mode compute,cake,oracle --source mem \
  --store "$SHM" --bandwidth 1gbps,2gbps,4gbps,8gbps --repeat 2 --warmup 0 --out /tmp/oracle-fix
echo "=== oracle run exit $?"
tar -C /tmp -czf "$OUT/oracle-fix.tgz" oracle-fix
cd "$OUT" && tar -czf ckpt.tgz ckpt && rm -rf ckpt
