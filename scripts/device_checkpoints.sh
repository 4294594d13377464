#!/usr/bin/env bash
# On the GPU machine: cake-bench against transformers on small random Llama and Qwen2
# checkpoints (scripts/check_vs_transformers.py), then one `cake-bench run` on the Llama
# checkpoint. Everything in one call; results under $OUT. Packed with its binary by
# scripts/pack_checkpoint_check.sh; run from the pack: bash PACK/device_checkpoints.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/bin/cake-bench
export LD_LIBRARY_PATH=$here/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/ckpt-out}
work=${WORK:-/tmp/ckpt-work}
mkdir -p "$OUT" "$work"
{
  echo "pack commit: $(cat "$here/commit")"
  echo "host: $(hostname)  date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
  ldd "$bin" | grep "not found" && echo "MISSING LIBRARIES"
  "$bin" info --store "$work/store"
} > "$OUT/machine.txt" 2>&1

timeout 200 python3 "$here/check_vs_transformers.py" --bin "$bin" --work "$work" --out "$OUT" > "$OUT/check_log.txt" 2>&1
echo "check rc=$?" >> "$OUT/check_log.txt"

cmd=("$bin" run --model "$work/tiny-llama" --backend cuda --context 2k --suffix 16 --chunk 256 --mode compute,cake
     --bandwidth unlimited --source mem --repeat 3 --warmup 1 --store "$work/store" --out "$work/run" -q)
{ echo "command: ${cmd[*]}"; timeout 60 "${cmd[@]}"; echo "run rc=$?"; } > "$OUT/run_log.txt" 2>&1
cp "$work/run/results.json" "$OUT/run_results.json" 2>/dev/null
tail -n 30 "$OUT/check_log.txt"
tail -n 12 "$OUT/run_log.txt"
