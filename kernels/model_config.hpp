// The shape of a decoder-only transformer (llama family: RMSNorm, GQA, RoPE, SwiGLU).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cake {

struct ModelConfig {
  std::string name = "custom";  // preset name, or "custom" after overrides / config.json
  int layers = 0;
  int hidden = 0;               // model width
  int q_heads = 0;
  int kv_heads = 0;             // GQA: q_heads % kv_heads == 0
  int head_dim = 0;
  int ffn = 0;                  // SwiGLU intermediate width
  int vocab = 0;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  int64_t max_context = 131072; // positions the model supports
  uint64_t weight_seed = 1;     // seeded random weights (kernels/seeded_weights.hpp)
  // Architecture details real checkpoints need (kernels/checkpoint/); seeded presets leave them off.
  bool qkv_bias = false;        // Qwen2: q/k/v projections carry biases
  bool tied_embeddings = false; // tie_word_embeddings: the LM head is the embedding matrix
  int64_t sliding_window = 0;   // Mistral/Qwen2 sliding-window attention; 0 = none. Backends refuse
                                // contexts longer than the window (attention is full, which is only
                                // identical while every key is inside the window)
  // Content fingerprint of loaded checkpoint weights (kernels/checkpoint/); empty = seeded weights.
  std::string weights_fingerprint;

  int qkv_width() const { return (q_heads + 2 * kv_heads) * head_dim; }
  // Parameters in the weights (biases and tied embeddings included), for FLOP and memory estimates.
  uint64_t parameter_count() const;
  // FLOPs of prefilling `tokens` new tokens after `cached` tokens (GEMMs + attention, 2 per MAC).
  double prefill_flops(int64_t tokens, int64_t cached) const;
  // Throws UsageError naming the first inconsistent field.
  void validate() const;
  // Stable text that identifies the weights and shapes (not the name): stores are keyed on it.
  std::string fingerprint() const;
};

}  // namespace cake
