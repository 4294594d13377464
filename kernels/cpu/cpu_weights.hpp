// The model's seeded weights materialised in host memory as fp32 (internal to kernels/cpu).
#pragma once

#include <string>
#include <vector>

#include "kernels/checkpoint/checkpoint.hpp"
#include "kernels/model_config.hpp"

namespace cake::cpu {

class ThreadPool;

struct LayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  std::vector<float> wqkv;       // [(q_heads + 2 kv_heads) head_dim][hidden]: Q rows, K rows, V rows
  std::vector<float> bqkv;       // [(q_heads + 2 kv_heads) head_dim] when model.qkv_bias, else empty
  std::vector<float> wo;         // [hidden][q_heads head_dim]
  std::vector<float> mlp_norm;   // [hidden]
  std::vector<float> w_gate_up;  // [2 ffn][hidden]: gate rows, then up rows
  std::vector<float> w_down;     // [hidden][ffn]
};

struct ModelWeights {
  std::vector<float> embedding;   // [vocab][hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // [hidden]
  std::vector<float> lm_head;     // [vocab][hidden]
};

// Every element exactly as kernels/seeded_weights.hpp defines it (index = row * in + col),
// optionally rounded to the nearest bf16 value.
ModelWeights generate_weights(const ModelConfig& model, bool round_to_bf16, ThreadPool* pool);

// Bytes generate_weights will allocate.
uint64_t weight_bytes(const ModelConfig& model);

// The checkpoint's tensors converted to fp32 (F32 copied, BF16 and F16 widened exactly), optionally
// rounded to bf16 afterwards; a tied LM head is a copy of the embedding. Files are read into plain
// page-aligned host memory (load_checkpoint). Throws what load_checkpoint throws; nothing is
// returned then.
ModelWeights load_weights(const ckpt::Checkpoint& checkpoint, bool round_to_bf16, const ckpt::LoadOptions& options,
                          ckpt::LoadStats* stats);

}  // namespace cake::cpu
