#!/usr/bin/env python3
"""Holds cake-bench's CUDA and CPU backends against `transformers` on real checkpoint files.

Builds a small random Llama (GQA, untied LM head, saved in bf16, one file) and a small random
Qwen2 (GQA, q/k/v biases, tied embeddings, saved in fp32 as several shards with an index) with
transformers, saves each with save_pretrained, and runs `cake-bench logits` on the same tokens:
CUDA and CPU backends, whole prefix in one call and in chunks. The reference is transformers'
forward pass in fp32 on the CPU over the saved weights (eager attention); its distance to an
fp64 forward is reported too, as the floor of what fp32 can agree on.

Pass: last-position logits and the KV cache (every layer, K after RoPE, V) within 2e-2 for the
bf16 CUDA backend and 1e-4 for the fp32 CPU backend, error = max|ours - ref| / max|ref|; the same
argmax; chunked prefill against unchunked within the same bounds. Writes checkpoint_check.json
and checkpoint_check.md to --out. Needs torch and transformers; no network.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import torch
import transformers

BOUNDS = {"cuda": 2e-2, "cpu": 1e-4}


def log(*a):
    print(*a, flush=True)


def make_config(cls, theta, **kw):
    # transformers 5 takes rope_parameters; 4 takes rope_theta (and keeps unknown kwargs as
    # attributes). Pass both spellings; the theta the model really uses is checked below.
    return cls(rope_theta=theta, rope_parameters={"rope_type": "default", "rope_theta": theta}, **kw)


def randomize(model, seed):
    """Unit-scale activations, norms and biases that are not identities (HF inits biases to 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def load_fp(cls, path, dtype):
    try:
        m = cls.from_pretrained(path, dtype=dtype, attn_implementation="eager")
    except TypeError:
        m = cls.from_pretrained(path, torch_dtype=dtype, attn_implementation="eager")
    return m.to(dtype).eval()


def kv_of(cache, layer):
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    if hasattr(cache, "key_cache"):
        return cache.key_cache[layer], cache.value_cache[layer]
    return cache[layer][0], cache[layer][1]


def reference(model, tokens, layers):
    with torch.no_grad():
        out = model(torch.tensor([tokens]), use_cache=True)
    logits = out.logits[0, -1].double()
    ks, vs = [], []
    for l in range(layers):
        k, v = kv_of(out.past_key_values, l)
        ks.append(k[0].permute(1, 0, 2).double())  # [tokens][kv_heads][head_dim]
        vs.append(v[0].permute(1, 0, 2).double())
    return logits, torch.stack(ks), torch.stack(vs)


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max())


def ours(binary, path, backend, tokens_file, chunk, n, work):
    out = os.path.join(work, f"{os.path.basename(path)}-{backend}-chunk{chunk}.json")
    cmd = [binary, "logits", "--model", path, "--backend", backend, "--tokens-file", tokens_file, "--chunk",
           str(chunk), "--kv-from", "0", "--kv-to", str(n), "--out", out, "--quiet"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    with open(out) as f:
        j = json.load(f)
    kv = j["kv"]
    shape = (kv["layers"], n, kv["kv_heads"], kv["head_dim"])
    return {
        "command": " ".join(cmd),
        "seconds": time.time() - t0,
        "weights": j["weights"],
        "fingerprint": j["weights_fingerprint"],
        "logits": torch.tensor(j["logits"], dtype=torch.float64),
        "k": torch.tensor(kv["k"], dtype=torch.float64).reshape(shape),
        "v": torch.tensor(kv["v"], dtype=torch.float64).reshape(shape),
        "first_token": j["first_token"],
        "stderr": r.stderr.strip(),
    }


def check_model(args, name, cls, cfg_cls, cfg_kw, save_dtype, shard, seed):
    path = os.path.join(args.work, name)
    torch.manual_seed(seed)
    cfg = make_config(cfg_cls, **cfg_kw)
    model = cls(cfg)
    randomize(model, seed)
    inv_freq = model.model.rotary_emb.inv_freq
    d = cfg_kw.get("head_dim") or cfg_kw["hidden_size"] // cfg_kw["num_attention_heads"]
    theta_used = float(inv_freq[1].double() ** (-d / 2))
    model = model.to(save_dtype)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(path, **kw)
    files = sorted(os.listdir(path))
    log(f"{name}: saved {files}")
    with open(os.path.join(path, "config.json")) as f:
        saved_config = json.load(f)

    info = json.loads(subprocess.run([args.bin, "info", "--json", "--store", os.path.join(args.work, "store"), "--model",
                                      path], capture_output=True, text=True, check=True).stdout)["model"]
    theta_read = info["rope_theta"]

    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, cfg_kw["vocab_size"], (args.tokens,), generator=g).tolist()
    tokens_file = os.path.join(args.work, f"{name}-tokens.txt")
    with open(tokens_file, "w") as f:
        f.write(",".join(map(str, tokens)))
    n = len(tokens)
    layers = cfg_kw["num_hidden_layers"]

    ref32 = reference(load_fp(cls, path, torch.float32), tokens, layers)
    ref64 = reference(load_fp(cls, path, torch.float64), tokens, layers)
    top2 = torch.topk(ref32[0], 2).values
    c = args.chunk
    chunk_rows = slice(c, 2 * c)  # the second chunk: its KV depends on the first chunk's
    result = {
        "model": name, "path": path, "files": files, "saved_dtype": str(save_dtype).replace("torch.", ""),
        "config": {k: saved_config.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers",
                                                      "num_attention_heads", "num_key_value_heads", "head_dim",
                                                      "intermediate_size", "vocab_size", "rope_theta",
                                                      "rope_parameters", "rms_norm_eps", "tie_word_embeddings")},
        "rope_theta_used_by_transformers": theta_used, "rope_theta_read_by_cake": theta_read,
        "tokens": n, "chunk": c, "reference": "transformers fp32 forward on the CPU, eager attention",
        "ref_argmax": int(ref32[0].argmax()), "ref_top2_gap": float(top2[0] - top2[1]),
        "transformers_fp32_vs_fp64": {"logits": rel(ref32[0], ref64[0]), "k": rel(ref32[1], ref64[1]),
                                      "v": rel(ref32[2], ref64[2])},
        "runs": [],
    }
    # theta from fp32 inv_freq: ~1e-5 relative rounding; a wrong theta is off by far more.
    ok = abs(theta_used - theta_read) <= 1e-3 * theta_used
    result["rope_theta_agrees"] = ok
    runs = {}
    for backend in args.backends:
        for chunk in (0, c):
            try:
                r = ours(args.bin, path, backend, tokens_file, chunk, n, args.work)
            except Exception as ex:  # recorded, and the check fails; the other runs still report
                log(f"{name} {backend} chunk={chunk}: ERROR {ex}")
                result["runs"].append({"backend": backend, "chunk": chunk, "error": str(ex), "pass": False})
                ok = False
                continue
            runs[(backend, chunk)] = r
            bound = BOUNDS[backend]
            e = {"backend": backend, "chunk": chunk if chunk else "none (one call)", "bound": bound,
                 "logits": rel(r["logits"], ref32[0]),
                 "k_all": rel(r["k"], ref32[1]), "v_all": rel(r["v"], ref32[2]),
                 "k_chunk1": rel(r["k"][:, chunk_rows], ref32[1][:, chunk_rows]),
                 "v_chunk1": rel(r["v"][:, chunk_rows], ref32[2][:, chunk_rows]),
                 "argmax": r["first_token"], "same_argmax": r["first_token"] == result["ref_argmax"],
                 "weights": r["weights"], "fingerprint": r["fingerprint"], "command": r["command"],
                 "seconds": round(r["seconds"], 2)}
            e["pass"] = e["same_argmax"] and all(e[k] < bound for k in ("logits", "k_all", "v_all", "k_chunk1", "v_chunk1"))
            ok = ok and e["pass"]
            result["runs"].append(e)
            log(f"{name} {backend} chunk={chunk}: logits {e['logits']:.3e} K {e['k_all']:.3e} V {e['v_all']:.3e} "
                f"argmax {e['argmax']} (ref {result['ref_argmax']}) {'PASS' if e['pass'] else 'FAIL'}")
        if (backend, 0) not in runs or (backend, c) not in runs:
            continue
        a, b = runs[(backend, 0)], runs[(backend, c)]
        cc = {"backend": backend, "bound": BOUNDS[backend], "logits": rel(b["logits"], a["logits"]),
              "k": rel(b["k"], a["k"]), "v": rel(b["v"], a["v"]), "same_argmax": a["first_token"] == b["first_token"]}
        cc["pass"] = cc["same_argmax"] and max(cc["logits"], cc["k"], cc["v"]) < cc["bound"]
        ok = ok and cc["pass"]
        result.setdefault("chunked_vs_unchunked", []).append(cc)
        log(f"{name} {backend} chunked vs unchunked: logits {cc['logits']:.3e} K {cc['k']:.3e} V {cc['v']:.3e}")
    fps = {r["fingerprint"] for r in runs.values()}
    result["one_fingerprint_across_backends"] = len(fps) == 1
    ok = ok and len(fps) == 1
    result["pass"] = ok
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", default="/tmp/cake-ckpt-check")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--backends", default="cuda,cpu")
    args = ap.parse_args()
    args.backends = args.backends.split(",")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    common = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=3, num_attention_heads=8,
                  num_key_value_heads=2, max_position_embeddings=4096, vocab_size=1000)
    specs = [
        ("tiny-llama", transformers.LlamaForCausalLM, transformers.LlamaConfig,
         dict(common, head_dim=32, theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False), torch.bfloat16, None, 11),
        ("tiny-qwen2", transformers.Qwen2ForCausalLM, transformers.Qwen2Config,
         dict(common, theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False),
         torch.float32, "400KB", 12),
    ]
    results = []
    for spec in specs:
        try:
            results.append(check_model(args, *spec))
        except Exception as ex:
            import traceback
            traceback.print_exc()
            results.append({"model": spec[0], "error": repr(ex), "pass": False, "runs": [],
                            "chunked_vs_unchunked": []})
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
              "error_measure": "max|ours - ref| / max|ref|", "bounds": BOUNDS, "models": results,
              "pass": all(r["pass"] for r in results)}
    with open(os.path.join(args.out, "checkpoint_check.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = [f"# cake-bench vs transformers {transformers.__version__} (torch {torch.__version__}, {report['gpu']})", "",
             "error = max|ours - ref| / max|ref|; ref = transformers fp32 forward (CPU, eager); "
             "chunk1 = KV rows of the second chunk", "",
             "| model | saved | backend | chunk | logits | K all | V all | K chunk1 | V chunk1 | argmax (ref) | bound | pass |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | ERROR: {r['error']} |")
            continue
        for e in r["runs"]:
            if "error" in e:
                lines.append(f"| {r['model']} | {r['saved_dtype']} | {e['backend']} | {e['chunk']} | ERROR: {e['error'][:300]} |")
                continue
            lines.append(f"| {r['model']} | {r['saved_dtype']} | {e['backend']} | {e['chunk']} | {e['logits']:.2e} | "
                         f"{e['k_all']:.2e} | {e['v_all']:.2e} | {e['k_chunk1']:.2e} | {e['v_chunk1']:.2e} | "
                         f"{e['argmax']} ({r['ref_argmax']}) | {e['bound']:g} | {'yes' if e['pass'] else 'NO'} |")
    lines += ["", "| model | backend | chunked vs unchunked: logits | K | V | same argmax |", "|---|---|---|---|---|---|"]
    for r in results:
        for cc in r["chunked_vs_unchunked"]:
            lines.append(f"| {r['model']} | {cc['backend']} | {cc['logits']:.2e} | {cc['k']:.2e} | {cc['v']:.2e} | "
                         f"{cc['same_argmax']} |")
    lines += ["", "| model | transformers fp32 vs fp64: logits | K | V | top-2 logit gap | rope_theta used / read |",
              "|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            continue
        t = r["transformers_fp32_vs_fp64"]
        lines.append(f"| {r['model']} | {t['logits']:.2e} | {t['k']:.2e} | {t['v']:.2e} | {r['ref_top2_gap']:.3f} | "
                     f"{r['rope_theta_used_by_transformers']:g} / {r['rope_theta_read_by_cake']:g} |")
    lines += ["", f"overall: {'PASS' if report['pass'] else 'FAIL'}"]
    with open(os.path.join(args.out, "checkpoint_check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log("\n".join(lines))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
