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

# The RoPE/KV-write kernel with and without Qwen2's q/k/v biases against the CPU reference
# (when the pack carries the GPU tests).
if [[ -x "$here/bin/test_kernels_gpu" ]]; then
  timeout 60 "$here/bin/test_kernels_gpu" --gtest_filter='GpuOps.Rope*' > "$OUT/gpu_rope_test.txt" 2>&1
  echo "gpu rope test rc=$?" >> "$OUT/gpu_rope_test.txt"
fi

timeout 200 python3 "$here/check_vs_transformers.py" --bin "$bin" --work "$work" --out "$OUT" > "$OUT/check_log.txt" 2>&1
echo "check rc=$?" >> "$OUT/check_log.txt"

cmd=("$bin" run --model "$work/tiny-llama" --backend cuda --context 2k --suffix 16 --chunk 256 --mode compute,cake
     --bandwidth unlimited --source mem --repeat 3 --warmup 1 --store "$work/store" --out "$work/run" -q)
{ echo "command: ${cmd[*]}"; timeout 60 "${cmd[@]}"; echo "run rc=$?"; } > "$OUT/run_log.txt" 2>&1
cp "$work/run/results.json" "$OUT/run_results.json" 2>/dev/null
# Load rate on a llama-3-8b-wide checkpoint cut to 2 layers (3.0 GB BF16, one file, written here
# just before, so it is read from the page cache): what reading + CRC + pinned copy + upload costs.
big=$work/big-llama
timeout 90 python3 - "$big" > "$OUT/load_log.txt" 2>&1 <<'PY'
import json, os, sys, time, torch
from safetensors.torch import save_file
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
h, q, kv, f, V, L = 4096, 4096, 1024, 14336, 128256, 2
names = {"model.embed_tokens.weight": (V, h), "model.norm.weight": (h,), "lm_head.weight": (V, h)}
for l in range(L):
    p = f"model.layers.{l}."
    names.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                  p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
                  p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
                  p + "mlp.gate_proj.weight": (f, h), p + "mlp.up_proj.weight": (f, h), p + "mlp.down_proj.weight": (h, f)})
t0 = time.time()
save_file({n: (torch.randn(s) * 0.02).to(torch.bfloat16) for n, s in names.items()}, os.path.join(d, "model.safetensors"))
json.dump({"model_type": "llama", "hidden_size": h, "num_hidden_layers": L, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": f, "vocab_size": V, "rms_norm_eps": 1e-5,
           "rope_theta": 500000.0, "max_position_embeddings": 8192, "hidden_act": "silu",
           "tie_word_embeddings": False}, open(os.path.join(d, "config.json"), "w"))
print("wrote", os.path.getsize(os.path.join(d, "model.safetensors")), "bytes in", round(time.time() - t0, 1), "s")
PY
for i in 1 2; do
  { echo "command: $bin logits --model $big --backend cuda --tokens 1,2,3,4,5,6,7,8 -q"
    TIMEFORMAT="wall %R s"; time timeout 60 "$bin" logits --model "$big" --backend cuda --tokens 1,2,3,4,5,6,7,8 -q; } >> "$OUT/load_log.txt" 2>&1
done
rm -rf "$big"

tail -n 3 "$OUT/gpu_rope_test.txt" 2>/dev/null
tail -n 30 "$OUT/check_log.txt"
cat "$OUT/load_log.txt"
tail -n 12 "$OUT/run_log.txt"
