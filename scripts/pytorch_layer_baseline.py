#!/usr/bin/env python3
"""Times ONE llama-3-8b decoder layer's prefill in PyTorch (bf16) on EVERY scaled-dot-product
attention backend PyTorch offers (flash, cuDNN, memory-efficient; math where it fits), as the
baseline for the CUDA backend's layer: RMSNorm, fused QKV projection, RoPE (rotate-half, cos/sin
tables built before timing, as HF caches them), SDPA causal with GQA, O projection + residual,
RMSNorm, gate_up, SwiGLU, down + residual. Also times SDPA alone.

Two ways per backend:
  unchunked  the whole context as one prefill from position 0 (is_causal);
  chunked    the context in chunks of C tokens with a preallocated KV cache, each chunk's queries
             over every key so far (causal aligned to the bottom right, causal_lower_right), as
             our compute lane prefills.
CUDA-event timing after warm-up; the median of the repetitions. FLOPs are counted exactly as
ModelConfig::prefill_flops(tokens, 0) with layers = 1 (GEMMs + causal attention, 2 per MAC), so
TFLOP/s compare directly. GQA: enable_gqa where the backend takes it, else K/V heads repeated
(a copy, timed: that is what that backend costs here); the path is recorded per row.

With --ours BENCH_JSON (Google Benchmark JSON from cake_bench_micro: BM_CudaLayer,
BM_CudaAttention, BM_CudnnAttention, BM_CudaModel), writes a markdown table of ours against the
FASTEST PyTorch backend of the same shape, measured in this same device call, and says which won.
"""
import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F

HIDDEN, Q_HEADS, KV_HEADS, HEAD_DIM, FFN, THETA, EPS = 4096, 32, 8, 128, 14336, 500000.0, 1e-5
LAYERS = 32


def gemm_flops(n):
    qkv_width = (Q_HEADS + 2 * KV_HEADS) * HEAD_DIM
    return 2.0 * n * (HIDDEN * qkv_width + Q_HEADS * HEAD_DIM * HIDDEN + 3 * HIDDEN * FFN)


def attention_flops(n, first_pos=0):
    keys_seen = n * first_pos + n * (n + 1) / 2
    return 2.0 * keys_seen * 2 * Q_HEADS * HEAD_DIM


def layer_flops(n):
    return gemm_flops(n) + attention_flops(n)


def linear_weight(out_features, in_features, device):
    bound = math.sqrt(3.0 / in_features)
    return ((torch.rand(out_features, in_features, device=device) * 2 - 1) * bound).to(torch.bfloat16)


def rms_norm(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, EPS)


def rope_tables(n, device):
    inv_freq = THETA ** (-torch.arange(0, HEAD_DIM, 2, dtype=torch.float64, device=device) / HEAD_DIM)
    angles = torch.arange(n, dtype=torch.float64, device=device)[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos().to(torch.bfloat16), emb.sin().to(torch.bfloat16)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


BACKENDS = ["flash", "cudnn", "efficient", "math"]


def sdpa_backend(name):
    from torch.nn.attention import SDPBackend

    return {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[name]


class Sdpa:
    """SDPA forced onto one backend. GQA natively (enable_gqa) when the backend takes it, else
    by repeating K/V heads; `path` says which ran. Chunked calls (q shorter than k) get the
    bottom-right causal mask."""

    def __init__(self, backend):
        self.backend = backend
        self.gqa = None  # "enable_gqa" or "repeat_kv" once known

    def _call(self, q, k, v, gqa):
        from torch.nn.attention import sdpa_kernel

        kwargs = {}
        if q.shape[2] == k.shape[2]:
            kwargs["is_causal"] = True
        else:
            from torch.nn.attention.bias import causal_lower_right

            kwargs["attn_mask"] = causal_lower_right(q.shape[2], k.shape[2])
        if gqa == "repeat_kv":
            rep = Q_HEADS // KV_HEADS
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        else:
            kwargs["enable_gqa"] = True
        with sdpa_kernel([sdpa_backend(self.backend)]):
            return F.scaled_dot_product_attention(q, k, v, **kwargs)

    def __call__(self, q, k, v):
        if self.gqa is not None:
            return self._call(q, k, v, self.gqa)
        try:
            out = self._call(q, k, v, "enable_gqa")
            self.gqa = "enable_gqa"
            return out
        except Exception:  # noqa: BLE001 - any refusal of enable_gqa: try the other GQA form
            out = self._call(q, k, v, "repeat_kv")
            self.gqa = "repeat_kv"
            return out

    @property
    def path(self):
        return f"{self.backend}+{self.gqa}"


def make_layer(device):
    return {
        "attn_norm": (1 + 0.1 * (torch.rand(HIDDEN, device=device) * 2 - 1)).to(torch.bfloat16),
        "wqkv": linear_weight((Q_HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN, device),
        "wo": linear_weight(HIDDEN, Q_HEADS * HEAD_DIM, device),
        "mlp_norm": (1 + 0.1 * (torch.rand(HIDDEN, device=device) * 2 - 1)).to(torch.bfloat16),
        "w_gate_up": linear_weight(2 * FFN, HIDDEN, device),
        "w_down": linear_weight(HIDDEN, FFN, device),
    }


def layer_chunk(x, w, cos, sin, sdpa, k_cache, v_cache, pos):
    """One layer over the chunk x at positions [pos, pos + n); with k_cache/v_cache None the
    chunk is the whole context (no cache)."""
    n = x.shape[0]
    h = rms_norm(x, w["attn_norm"])
    qkv = h @ w["wqkv"].t()
    q, k, v = qkv.split([Q_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], dim=-1)
    q = q.view(n, Q_HEADS, HEAD_DIM).transpose(0, 1)
    k = k.view(n, KV_HEADS, HEAD_DIM).transpose(0, 1)
    v = v.view(n, KV_HEADS, HEAD_DIM).transpose(0, 1)
    c, s = cos[pos : pos + n], sin[pos : pos + n]
    q = q * c + rotate_half(q) * s
    k = k * c + rotate_half(k) * s
    if k_cache is None:
        o = sdpa(q[None], k[None], v[None])
    else:
        k_cache[0, :, pos : pos + n] = k
        v_cache[0, :, pos : pos + n] = v
        o = sdpa(q[None], k_cache[:, :, : pos + n], v_cache[:, :, : pos + n])
    o = o[0].transpose(0, 1).reshape(n, Q_HEADS * HEAD_DIM)
    x = x + o @ w["wo"].t()
    h = rms_norm(x, w["mlp_norm"])
    gate, up = (h @ w["w_gate_up"].t()).split([FFN, FFN], dim=-1)
    return x + (F.silu(gate) * up) @ w["w_down"].t()


def time_median_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def fits(backend, n):
    # math materialises fp32 scores [32, n, n] and more: 4K is 2 GB, 16K would be 32 GB per copy.
    return backend != "math" or n <= 4096


def measure(args, device):
    torch.manual_seed(1)
    w = make_layer(device)
    rows = []
    contexts = [int(c) for c in args.contexts.split(",")]
    chunked = [tuple(int(v) for v in s.split(":")) for s in args.chunked.split(",") if s]
    for n in contexts:
        x = torch.randn(n, HIDDEN, device=device).to(torch.bfloat16)
        cos, sin = rope_tables(n, device)
        q = torch.randn(1, Q_HEADS, n, HEAD_DIM, device=device).to(torch.bfloat16)
        k = torch.randn(1, KV_HEADS, n, HEAD_DIM, device=device).to(torch.bfloat16)
        v = torch.randn(1, KV_HEADS, n, HEAD_DIM, device=device).to(torch.bfloat16)
        reps = args.reps if n <= 16384 else max(3, args.reps // 2)
        for backend in BACKENDS:
            if not fits(backend, n):
                continue
            sdpa = Sdpa(backend)
            row = {"context": n, "chunk": 0, "backend": backend}
            try:
                row["layer_ms"] = time_median_ms(
                    lambda: layer_chunk(x, w, cos, sin, sdpa, None, None, 0), args.warmup, reps
                )
                row["sdpa_ms"] = time_median_ms(lambda: sdpa(q, k, v), args.warmup, reps)
                row["layer_tflops"] = layer_flops(n) / (row["layer_ms"] * 1e-3) / 1e12
                row["sdpa_tflops"] = attention_flops(n) / (row["sdpa_ms"] * 1e-3) / 1e12
                row["path"] = sdpa.path
                print(
                    f"context {n:6d} unchunked {backend:9s}: layer {row['layer_ms']:9.3f} ms "
                    f"{row['layer_tflops']:6.1f} TFLOP/s | SDPA {row['sdpa_ms']:9.3f} ms "
                    f"{row['sdpa_tflops']:6.1f} TFLOP/s ({sdpa.path})"
                )
            except Exception as e:  # noqa: BLE001 - a backend that refuses this shape is recorded, not fatal
                row["error"] = (str(e).splitlines() or [type(e).__name__])[0][:200]
                print(f"context {n:6d} unchunked {backend:9s}: unavailable ({row['error']})")
            rows.append(row)
            torch.cuda.empty_cache()
        del x, q, k, v, cos, sin
        torch.cuda.empty_cache()

    for n, chunk in chunked:
        x = torch.randn(n, HIDDEN, device=device).to(torch.bfloat16)
        cos, sin = rope_tables(n, device)
        k_cache = torch.zeros(1, KV_HEADS, n, HEAD_DIM, device=device, dtype=torch.bfloat16)
        v_cache = torch.zeros_like(k_cache)
        for backend in BACKENDS:
            if not fits(backend, chunk) or backend == "math":
                continue
            sdpa = Sdpa(backend)

            def run_context():
                for pos in range(0, n, chunk):
                    layer_chunk(x[pos : pos + chunk], w, cos, sin, sdpa, k_cache, v_cache, pos)

            row = {"context": n, "chunk": chunk, "backend": backend}
            try:
                row["layer_ms"] = time_median_ms(run_context, 1, 3)
                row["layer_tflops"] = layer_flops(n) / (row["layer_ms"] * 1e-3) / 1e12
                row["path"] = sdpa.path
                print(
                    f"context {n:6d} chunk {chunk:5d} {backend:9s}: layer {row['layer_ms']:9.3f} ms "
                    f"{row['layer_tflops']:6.1f} TFLOP/s ({sdpa.path})"
                )
            except Exception as e:  # noqa: BLE001 - a backend that refuses this shape is recorded, not fatal
                row["error"] = (str(e).splitlines() or [type(e).__name__])[0][:200]
                print(f"context {n:6d} chunk {chunk:5d} {backend:9s}: unavailable ({row['error']})")
            rows.append(row)
        del x, cos, sin, k_cache, v_cache
        torch.cuda.empty_cache()
    return rows


def load_ours(path):
    """{(kind, context, chunk, attention): median_ms} from cake_bench_micro's JSON.
    kind: layer, model, attention_mma (default tiling), attention_cudnn; attention: mma, cudnn."""
    ours = {}
    with open(path) as f:
        for b in json.load(f).get("benchmarks", []):
            if "median_ms" not in b or b.get("error_occurred"):
                continue
            parts = b["name"].split("/")
            name, nums = parts[0], [int(p) for p in parts[1:] if p.isdigit()]
            attention = lambda i: "mma" if i == 0 else "cudnn"  # noqa: E731
            if name == "BM_CudaLayer" and len(nums) >= 3:
                ours[("layer", nums[0], nums[1], attention(nums[2]))] = b["median_ms"]
            elif name == "BM_CudaModel" and len(nums) >= 3:
                ours[("model", nums[0], nums[1], attention(nums[2]))] = b["median_ms"]
            elif name == "BM_CudaAttention" and len(nums) >= 3 and nums[1] == 0:
                ours.setdefault(("attention", nums[0], nums[2], "mma"), b["median_ms"])
            elif name == "BM_CudnnAttention" and len(nums) >= 2:
                ours.setdefault(("attention", nums[0], nums[1], "cudnn"), b["median_ms"])
    return ours


def fastest(rows, context, chunk, key):
    ok = [r for r in rows if r["context"] == context and r["chunk"] == chunk and key in r]
    return min(ok, key=lambda r: r[key]) if ok else None


def table(rows, ours, env):
    lines = [
        f"GPU: {env['gpu']}; PyTorch {env['torch']} (CUDA {env['cuda']}, cuDNN {env['cudnn']}). "
        "PyTorch: the fastest SDPA backend of each shape, measured in this call (every backend "
        "is in the JSON). speed = PyTorch's fastest time / ours (> 1: ours faster).",
        "",
        "### One llama-3-8b layer",
        "",
        "| context | chunk | ours cudnn ms | ours mma ms | PyTorch fastest ms (backend) | PyTorch flash ms "
        "| speed cudnn | speed mma | winner |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    shapes = sorted({(r["context"], r["chunk"]) for r in rows})
    for n, chunk in shapes:
        best = fastest(rows, n, chunk, "layer_ms")
        if best is None:
            continue
        flash = next((r for r in rows if r["context"] == n and r["chunk"] == chunk and r["backend"] == "flash"), {})
        oc = ours.get(("layer", n, chunk, "cudnn"))
        om = ours.get(("layer", n, chunk, "mma"))
        candidates = {f"PyTorch {best['backend']}": best["layer_ms"]}
        if oc:
            candidates["ours cudnn"] = oc
        if om:
            candidates["ours mma"] = om
        winner = min(candidates, key=candidates.get)
        cells = [
            str(n),
            str(chunk) if chunk else "whole",
            f"{oc:.2f}" if oc else "n/a",
            f"{om:.2f}" if om else "n/a",
            f"{best['layer_ms']:.2f} ({best['backend']})",
            f"{flash['layer_ms']:.2f}" if "layer_ms" in flash else "n/a",
            f"{best['layer_ms'] / oc:.2f}x" if oc else "n/a",
            f"{best['layer_ms'] / om:.2f}x" if om else "n/a",
            winner,
        ]
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "### Attention alone (causal, from position 0), TFLOP/s",
        "",
        "| context | ours cudnn | ours mma | " + " | ".join(f"PyTorch {b}" for b in BACKENDS) + " | winner |",
        "| ---: | ---: | ---: | " + " | ".join("---:" for _ in BACKENDS) + " | --- |",
    ]
    for n in sorted({r["context"] for r in rows if r["chunk"] == 0}):
        tf = lambda ms: attention_flops(n) / (ms * 1e-3) / 1e12  # noqa: E731
        cand = {}
        oc, om = ours.get(("attention", n, 0, "cudnn")), ours.get(("attention", n, 0, "mma"))
        if oc:
            cand["ours cudnn"] = tf(oc)
        if om:
            cand["ours mma"] = tf(om)
        cells = [str(n), f"{tf(oc):.0f}" if oc else "n/a", f"{tf(om):.0f}" if om else "n/a"]
        for b in BACKENDS:
            r = next((r for r in rows if r["context"] == n and r["chunk"] == 0 and r["backend"] == b), {})
            if "sdpa_ms" in r:
                cand[f"PyTorch {b}"] = r["sdpa_tflops"]
                cells.append(f"{r['sdpa_tflops']:.0f}")
            else:
                cells.append("n/a")
        cells.append(max(cand, key=cand.get) if cand else "n/a")
        lines.append("| " + " | ".join(cells) + " |")

    model_rows = sorted(k for k in ours if k[0] == "model")
    if model_rows:
        lines += [
            "",
            "### Whole model (32 layers, prefill + first token): ours against 32 x PyTorch's fastest layer",
            "",
            "| context | chunk | attention | ours ms | 32 x PyTorch fastest layer ms (same chunking, else whole) | ratio ours / that |",
            "| ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for _, n, chunk, attn in model_rows:
            best = fastest(rows, n, chunk, "layer_ms") or fastest(rows, n, 0, "layer_ms")
            ms = ours[("model", n, chunk, attn)]
            ref = f"{LAYERS * best['layer_ms']:.0f} ({best['backend']}, {'chunk ' + str(best['chunk']) if best['chunk'] else 'whole'})" if best else "n/a"
            ratio = f"{ms / (LAYERS * best['layer_ms']):.2f}" if best else "n/a"
            lines.append(f"| {n} | {chunk} | {attn} | {ms:.0f} | {ref} | {ratio} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contexts", default="4096,16384,32768,65536")
    ap.add_argument("--chunked", default="32768:1024,32768:2048,32768:4096,65536:4096",
                    help="context:chunk pairs timed with a KV cache")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--ours", help="cake_bench_micro JSON")
    ap.add_argument("--json", help="write PyTorch results here")
    ap.add_argument("--table", help="write the markdown comparison here")
    args = ap.parse_args()

    device = torch.device("cuda")
    env = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
    print(f"PyTorch {env['torch']} CUDA {env['cuda']} cuDNN {env['cudnn']} on {env['gpu']}")
    with torch.inference_mode():
        rows = measure(args, device)
    for n, chunk in sorted({(r["context"], r["chunk"]) for r in rows}):
        best = fastest(rows, n, chunk, "layer_ms")
        if best:
            print(f"fastest PyTorch layer at {n} ({'chunk ' + str(chunk) if chunk else 'whole'}): "
                  f"{best['backend']} {best['layer_ms']:.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=1)
    if args.ours:
        text = table(rows, load_ours(args.ours), env)
        print()
        print(text)
        if args.table:
            with open(args.table, "w") as f:
                f.write(text)


if __name__ == "__main__":
    sys.exit(main())
