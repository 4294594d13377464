// Tiny HuggingFace checkpoints written by the tests themselves (config.json + safetensors, the
// format written out by hand: 8-byte little-endian header length, JSON header, raw data), and a
// float64 forward pass over the same weights written plainly from the math, independent of
// kernels/: the oracle for checkpoint loading through the CPU backend.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cake::test {

struct TinyArch {
  std::string model_type = "llama";
  int layers = 2, hidden = 64, q_heads = 4, kv_heads = 2, head_dim = 16, ffn = 96, vocab = 97;
  double rope_theta = 500000.0, eps = 1e-5;
  int max_positions = 256;
  bool tied = false;
  bool qkv_bias = false;  // qwen2
};

struct TinyTensor {
  std::vector<int64_t> shape;
  std::vector<double> values;  // exactly representable in F32, BF16 and F16
};

// name -> tensor, HF names.
using TinyWeights = std::map<std::string, TinyTensor>;

// Values k / 128 * 2^-s with |k| < 128: 8 significant bits at most, so F32, BF16 and F16 all
// store them exactly and a checkpoint gives the same logits in any of the three dtypes.
inline double exact_value(std::mt19937_64& rng, double scale_pow2) {
  const int k = static_cast<int>(rng() % 255) - 127;
  return k / 128.0 * scale_pow2;
}

inline TinyWeights make_tiny_weights(const TinyArch& a, std::mt19937_64& rng) {
  TinyWeights w;
  auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    // Uniform with a power-of-two bound near sqrt(3 / in): unit-scale activations.
    const double bound = std::exp2(std::round(std::log2(std::sqrt(3.0 / in))));
    TinyTensor t{{out, in}, {}};
    for (int64_t i = 0; i < out * in; ++i) t.values.push_back(exact_value(rng, bound));
    w[name] = t;
  };
  // Norm scales 1 + j/64 (|j| <= 8) and biases k/128 * spread: exact in BF16 and F16 too.
  auto vec = [&](const std::string& name, int64_t n, double center, double spread) {
    TinyTensor t{{n}, {}};
    for (int64_t i = 0; i < n; ++i)
      t.values.push_back(center != 0 ? center + (static_cast<int>(rng() % 17) - 8) / 64.0 : exact_value(rng, spread));
    w[name] = t;
  };
  const int64_t q = int64_t{a.q_heads} * a.head_dim, kv = int64_t{a.kv_heads} * a.head_dim;
  {
    TinyTensor e{{a.vocab, a.hidden}, {}};
    for (int64_t i = 0; i < int64_t{a.vocab} * a.hidden; ++i) e.values.push_back(exact_value(rng, 1.0));
    w["model.embed_tokens.weight"] = e;
  }
  for (int l = 0; l < a.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    vec(p + "input_layernorm.weight", a.hidden, 1.0, 0.125);
    linear(p + "self_attn.q_proj.weight", q, a.hidden);
    linear(p + "self_attn.k_proj.weight", kv, a.hidden);
    linear(p + "self_attn.v_proj.weight", kv, a.hidden);
    if (a.qkv_bias) {
      vec(p + "self_attn.q_proj.bias", q, 0.0, 0.5);
      vec(p + "self_attn.k_proj.bias", kv, 0.0, 0.5);
      vec(p + "self_attn.v_proj.bias", kv, 0.0, 0.5);
    }
    linear(p + "self_attn.o_proj.weight", a.hidden, q);
    vec(p + "post_attention_layernorm.weight", a.hidden, 1.0, 0.125);
    linear(p + "mlp.gate_proj.weight", a.ffn, a.hidden);
    linear(p + "mlp.up_proj.weight", a.ffn, a.hidden);
    linear(p + "mlp.down_proj.weight", a.hidden, a.ffn);
  }
  vec("model.norm.weight", a.hidden, 1.0, 0.125);
  if (!a.tied) linear("lm_head.weight", a.vocab, a.hidden);
  return w;
}

inline nlohmann::json tiny_config(const TinyArch& a) {
  nlohmann::json j = {{"architectures", {a.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                      {"model_type", a.model_type},
                      {"hidden_size", a.hidden},
                      {"num_hidden_layers", a.layers},
                      {"num_attention_heads", a.q_heads},
                      {"num_key_value_heads", a.kv_heads},
                      {"intermediate_size", a.ffn},
                      {"vocab_size", a.vocab},
                      {"rms_norm_eps", a.eps},
                      {"max_position_embeddings", a.max_positions},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", a.tied},
                      {"torch_dtype", "float32"}};
  // transformers 5 style for one model type, transformers 4 style for the other: both are read.
  if (a.model_type == "qwen2") j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", a.rope_theta}};
  else j["rope_theta"] = a.rope_theta;
  if (a.hidden / a.q_heads != a.head_dim) j["head_dim"] = a.head_dim;
  return j;
}

inline void append_value(std::string& out, double v, const std::string& dtype) {
  const float f = static_cast<float>(v);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (dtype == "F32") {
    out.append(reinterpret_cast<const char*>(&bits), 4);
  } else if (dtype == "BF16") {
    const uint16_t b = static_cast<uint16_t>(bits >> 16);  // exact values: truncation is exact
    out.append(reinterpret_cast<const char*>(&b), 2);
  } else if (dtype == "F16") {
    // Exact normal values only (make_tiny_weights guarantees it, or zero).
    uint16_t h = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;
    if ((bits & 0x7FFFFFFFu) != 0) h |= static_cast<uint16_t>(((exponent + 15) << 10) | ((bits >> 13) & 0x3FF));
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
}

inline size_t dtype_width(const std::string& dtype) { return dtype == "F32" ? 4 : 2; }

// Writes `names` of `w` to one safetensors file in the given dtype. Returns the header JSON.
// `other_dtype` names tensors written as zeros of that dtype instead (8 bytes an element: I64).
inline nlohmann::json write_safetensors(const std::string& path, const TinyWeights& w,
                                        const std::vector<std::string>& names, const std::string& dtype,
                                        const std::map<std::string, std::string>& other_dtype = {}) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const std::string& n : names) {
    const TinyTensor& t = w.at(n);
    const size_t begin = data.size();
    const auto other = other_dtype.find(n);
    if (other != other_dtype.end()) {
      data.append(t.values.size() * 8, '\0');
      header[n] = {{"dtype", other->second}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
      continue;
    }
    for (double v : t.values) append_value(data, v, dtype);
    header[n] = {{"dtype", dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << text << data;
  return header;
}

// Raw header + data: for hand-made bad files.
inline void write_raw_safetensors(const std::string& path, const std::string& header_text, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << header_text << data;
}

inline std::vector<std::string> tensor_names(const TinyWeights& w) {
  std::vector<std::string> names;
  for (const auto& [n, t] : w) names.push_back(n);
  return names;
}

// A folder with config.json and model.safetensors (shards == 1) or `shards` files plus
// model.safetensors.index.json.
inline void write_tiny_checkpoint(const std::string& dir, const TinyArch& a, const TinyWeights& w,
                                  const std::string& dtype, int shards = 1) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << tiny_config(a).dump(2);
  const std::vector<std::string> names = tensor_names(w);
  if (shards == 1) {
    write_safetensors(dir + "/model.safetensors", w, names, dtype);
    return;
  }
  nlohmann::json map = nlohmann::json::object();
  for (int s = 0; s < shards; ++s) {
    std::vector<std::string> part;
    for (size_t i = static_cast<size_t>(s); i < names.size(); i += static_cast<size_t>(shards)) part.push_back(names[i]);
    const std::string file = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    write_safetensors(dir + "/" + file, w, part, dtype);
    for (const std::string& n : part) map[n] = file;
  }
  std::ofstream(dir + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump(2);
}

struct Fp64Forward {
  std::vector<double> logits;                        // last position
  std::vector<std::vector<double>> k, v;             // per layer [tokens][kv_heads * head_dim], K after RoPE
};

// The Llama/Qwen2 decoder in float64, from the HF tensors by name.
inline Fp64Forward fp64_forward(const TinyArch& a, const TinyWeights& w, const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int H = a.hidden, d = a.head_dim, qh = a.q_heads, kvh = a.kv_heads;
  auto W = [&](const std::string& name) -> const std::vector<double>& { return w.at(name).values; };
  auto rmsnorm = [&](const std::vector<double>& x, const std::vector<double>& g) {
    std::vector<double> y(x.size());
    for (int64_t t = 0; t < n; ++t) {
      double ss = 0;
      for (int i = 0; i < H; ++i) ss += x[t * H + i] * x[t * H + i];
      const double r = 1.0 / std::sqrt(ss / H + a.eps);
      for (int i = 0; i < H; ++i) y[t * H + i] = x[t * H + i] * r * g[i];
    }
    return y;
  };
  auto matmul = [&](const std::vector<double>& x, int in, const std::vector<double>& m, int out) {
    std::vector<double> y(static_cast<size_t>(n) * out, 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int o = 0; o < out; ++o) {
        double s = 0;
        for (int i = 0; i < in; ++i) s += x[t * in + i] * m[static_cast<size_t>(o) * in + i];
        y[t * out + o] = s;
      }
    return y;
  };
  auto rope = [&](std::vector<double>& x, int heads) {
    for (int64_t t = 0; t < n; ++t)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < d / 2; ++i) {
          const double ang = static_cast<double>(t) / std::pow(a.rope_theta, 2.0 * i / d);
          double& x1 = x[(t * heads + h) * d + i];
          double& x2 = x[(t * heads + h) * d + i + d / 2];
          const double r1 = x1 * std::cos(ang) - x2 * std::sin(ang);
          const double r2 = x2 * std::cos(ang) + x1 * std::sin(ang);
          x1 = r1;
          x2 = r2;
        }
  };
  Fp64Forward out;
  std::vector<double> x(static_cast<size_t>(n) * H);
  const auto& emb = W("model.embed_tokens.weight");
  for (int64_t t = 0; t < n; ++t)
    for (int i = 0; i < H; ++i) x[t * H + i] = emb[static_cast<size_t>(tokens[t]) * H + i];
  for (int l = 0; l < a.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto h = rmsnorm(x, W(p + "input_layernorm.weight"));
    auto q = matmul(h, H, W(p + "self_attn.q_proj.weight"), qh * d);
    auto k = matmul(h, H, W(p + "self_attn.k_proj.weight"), kvh * d);
    auto v = matmul(h, H, W(p + "self_attn.v_proj.weight"), kvh * d);
    if (a.qkv_bias) {
      for (int64_t t = 0; t < n; ++t) {
        for (int o = 0; o < qh * d; ++o) q[t * qh * d + o] += W(p + "self_attn.q_proj.bias")[o];
        for (int o = 0; o < kvh * d; ++o) k[t * kvh * d + o] += W(p + "self_attn.k_proj.bias")[o];
        for (int o = 0; o < kvh * d; ++o) v[t * kvh * d + o] += W(p + "self_attn.v_proj.bias")[o];
      }
    }
    rope(q, qh);
    rope(k, kvh);
    out.k.push_back(k);
    out.v.push_back(v);
    std::vector<double> att(static_cast<size_t>(n) * qh * d, 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int hh = 0; hh < qh; ++hh) {
        const int g = hh / (qh / kvh);
        std::vector<double> s(static_cast<size_t>(t) + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int i = 0; i < d; ++i) dot += q[(t * qh + hh) * d + i] * k[(j * kvh + g) * d + i];
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (auto& e : s) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int i = 0; i < d; ++i) att[(t * qh + hh) * d + i] += s[j] / z * v[(j * kvh + g) * d + i];
      }
    const auto o = matmul(att, qh * d, W(p + "self_attn.o_proj.weight"), H);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    const auto h2 = rmsnorm(x, W(p + "post_attention_layernorm.weight"));
    const auto gate = matmul(h2, H, W(p + "mlp.gate_proj.weight"), a.ffn);
    const auto up = matmul(h2, H, W(p + "mlp.up_proj.weight"), a.ffn);
    std::vector<double> act(gate.size());
    for (size_t i = 0; i < act.size(); ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    const auto down = matmul(act, a.ffn, W(p + "mlp.down_proj.weight"), H);
    for (size_t i = 0; i < x.size(); ++i) x[i] += down[i];
  }
  const auto xn = rmsnorm(x, W("model.norm.weight"));
  const auto& head = a.tied ? emb : W("lm_head.weight");
  out.logits.resize(a.vocab);
  for (int o = 0; o < a.vocab; ++o) {
    double s = 0;
    for (int i = 0; i < H; ++i) s += xn[(n - 1) * H + i] * head[static_cast<size_t>(o) * H + i];
    out.logits[o] = s;
  }
  return out;
}

}  // namespace cake::test
