#include "kernels/model_config.hpp"

#include "common/error.hpp"

namespace cake {

uint64_t ModelConfig::parameter_count() const {
  const uint64_t h = hidden;
  const uint64_t per_layer = h * static_cast<uint64_t>(qkv_width())           // wqkv
                             + static_cast<uint64_t>(q_heads) * head_dim * h  // wo
                             + 3ull * h * static_cast<uint64_t>(ffn)          // gate, up, down
                             + 2 * h;                                         // two norms
  const uint64_t bias = qkv_bias ? static_cast<uint64_t>(qkv_width()) : 0;
  const uint64_t vocab_matrices = tied_embeddings ? 1 : 2;                      // embedding (+ lm head)
  return (per_layer + bias) * static_cast<uint64_t>(layers) + vocab_matrices * vocab * h + h;  // + final norm
}

double ModelConfig::prefill_flops(int64_t tokens, int64_t cached) const {
  const double n = static_cast<double>(tokens);
  const double h = hidden;
  const double gemm_macs_per_token = h * qkv_width() + static_cast<double>(q_heads) * head_dim * h + 3.0 * h * ffn;
  // Causal attention: token j of the chunk sees cached + j + 1 keys; QK^T and PV are one MAC each
  // per (key, q head, head dim).
  const double keys_seen = n * static_cast<double>(cached) + n * (n + 1) / 2;
  const double attn_macs = keys_seen * 2.0 * q_heads * head_dim;
  return 2.0 * layers * (n * gemm_macs_per_token + attn_macs);
}

void ModelConfig::validate() const {
  auto require = [&](bool ok, const char* field, const std::string& why) {
    if (!ok) throw UsageError(cat("model '", name, "': ", field, " ", why));
  };
  require(layers > 0, "layers", "must be positive");
  require(hidden > 0, "hidden", "must be positive");
  require(q_heads > 0, "q_heads", "must be positive");
  require(kv_heads > 0, "kv_heads", "must be positive");
  require(q_heads % kv_heads == 0, "q_heads", cat("(", q_heads, ") must be a multiple of kv_heads (", kv_heads, ")"));
  require(head_dim > 0 && head_dim % 2 == 0, "head_dim", "must be positive and even (RoPE rotates pairs)");
  require(head_dim <= 256, "head_dim", "must be at most 256");
  require(ffn > 0, "ffn", "must be positive");
  require(vocab > 1, "vocab", "must be at least 2");
  require(rope_theta > 0, "rope_theta", "must be positive");
  require(norm_eps > 0, "norm_eps", "must be positive");
  require(max_context > 0, "max_context", "must be positive");
  require(sliding_window >= 0, "sliding_window", "must be >= 0 (0 = none)");
}

std::string ModelConfig::fingerprint() const {
  const std::string shape = cat("L", layers, "-H", hidden, "-q", q_heads, "-kv", kv_heads, "-d", head_dim, "-f", ffn,
                                "-V", vocab, "-theta", rope_theta, "-eps", norm_eps);
  // Seeded weights keep their historical key (existing stores stay valid); checkpoint weights are
  // named by their content, with the architecture flags that change the math.
  if (weights_fingerprint.empty()) return cat(shape, "-seed", weight_seed);
  return cat(shape, qkv_bias ? "-qkvb" : "", tied_embeddings ? "-tied" : "", "-ckpt", weights_fingerprint);
}

}  // namespace cake
