#include "kernels/cpu/cpu_weights.hpp"

#include <algorithm>
#include <functional>

#include "kernels/cpu/host_buffer.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/seeded_weights.hpp"

namespace cake::cpu {
namespace {

constexpr int64_t kFillBlock = 1 << 16;

// Fills `count` elements with value(index) in parallel blocks, rounding to bf16 if asked.
template <typename Value>
std::vector<float> fill(int64_t count, bool round_to_bf16, ThreadPool* pool, const Value& value) {
  std::vector<float> out(static_cast<size_t>(count));
  const int64_t blocks = (count + kFillBlock - 1) / kFillBlock;
  const std::function<void(int64_t)> task = [&](int64_t b) {
    const int64_t end = std::min(count, (b + 1) * kFillBlock);
    for (int64_t i = b * kFillBlock; i < end; ++i) {
      const float w = value(static_cast<uint64_t>(i));
      out[static_cast<size_t>(i)] = round_to_bf16 ? cpu::round_to_bf16(w) : w;
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(blocks, task);
  } else {
    for (int64_t b = 0; b < blocks; ++b) task(b);
  }
  return out;
}

std::vector<float> linear_weight(const ModelConfig& m, uint32_t tensor, int64_t rows, int fan_in, bool bf16,
                                 ThreadPool* pool) {
  const uint64_t seed = m.weight_seed;
  return fill(rows * fan_in, bf16, pool,
              [&](uint64_t i) { return seeded_linear_weight(seed, tensor, i, fan_in); });
}

std::vector<float> norm_weight(const ModelConfig& m, uint32_t tensor, bool bf16, ThreadPool* pool) {
  const uint64_t seed = m.weight_seed;
  return fill(m.hidden, bf16, pool, [&](uint64_t i) { return seeded_norm_weight(seed, tensor, i); });
}

}  // namespace

uint64_t weight_bytes(const ModelConfig& model) { return model.parameter_count() * sizeof(float); }

ModelWeights generate_weights(const ModelConfig& m, bool bf16, ThreadPool* pool) {
  ModelWeights w;
  const uint64_t seed = m.weight_seed;
  w.embedding = fill(static_cast<int64_t>(m.vocab) * m.hidden, bf16, pool,
                     [&](uint64_t i) { return seeded_embedding(seed, i); });
  const int q_width = m.q_heads * m.head_dim;
  for (int l = 0; l < m.layers; ++l) {
    LayerWeights lw;
    lw.attn_norm = norm_weight(m, layer_tensor_id(l, WeightKind::attn_norm), bf16, pool);
    lw.wqkv = linear_weight(m, layer_tensor_id(l, WeightKind::wqkv), m.qkv_width(), m.hidden, bf16, pool);
    lw.wo = linear_weight(m, layer_tensor_id(l, WeightKind::wo), m.hidden, q_width, bf16, pool);
    lw.mlp_norm = norm_weight(m, layer_tensor_id(l, WeightKind::mlp_norm), bf16, pool);
    lw.w_gate_up =
        linear_weight(m, layer_tensor_id(l, WeightKind::w_gate_up), 2 * int64_t{m.ffn}, m.hidden, bf16, pool);
    lw.w_down = linear_weight(m, layer_tensor_id(l, WeightKind::w_down), m.hidden, m.ffn, bf16, pool);
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = norm_weight(m, kFinalNormTensor, bf16, pool);
  w.lm_head = linear_weight(m, kLmHeadTensor, m.vocab, m.hidden, bf16, pool);
  return w;
}

namespace {

class CpuSink final : public ckpt::WeightSink {
 public:
  CpuSink(const ModelConfig& m, bool round_to_bf16) : m_(m), round_(round_to_bf16) {
    const size_t h = m.hidden, q = size_t{1} * m.q_heads * m.head_dim;
    w.embedding.resize(size_t{1} * m.vocab * h);
    w.final_norm.resize(h);
    w.lm_head.resize(size_t{1} * m.vocab * h);
    for (int l = 0; l < m.layers; ++l) {
      LayerWeights lw;
      lw.attn_norm.resize(h);
      lw.wqkv.resize(size_t{1} * m.qkv_width() * h);
      if (m.qkv_bias) lw.bqkv.resize(m.qkv_width());
      lw.wo.resize(h * q);
      lw.mlp_norm.resize(h);
      lw.w_gate_up.resize(2 * h * m.ffn);
      lw.w_down.resize(h * m.ffn);
      w.layers.push_back(std::move(lw));
    }
  }

  std::byte* file_buffer(size_t bytes) override {
    if (buffer_.size() < bytes) buffer_ = HostBuffer(bytes, "reading a checkpoint file");
    return buffer_.data();
  }

  void tensor(const ckpt::TensorSlot& s, std::byte* bytes) override {
    const size_t h = m_.hidden, q = size_t{1} * m_.q_heads * m_.head_dim, kv = size_t{1} * m_.kv_heads * m_.head_dim;
    using ckpt::Role;
    float* dst = nullptr;
    LayerWeights* lw = s.layer >= 0 ? &w.layers.at(static_cast<size_t>(s.layer)) : nullptr;
    switch (s.role) {
      case Role::embedding: dst = w.embedding.data(); break;
      case Role::final_norm: dst = w.final_norm.data(); break;
      case Role::lm_head: dst = w.lm_head.data(); break;
      case Role::attn_norm: dst = lw->attn_norm.data(); break;
      case Role::q: dst = lw->wqkv.data(); break;
      case Role::k: dst = lw->wqkv.data() + q * h; break;
      case Role::v: dst = lw->wqkv.data() + (q + kv) * h; break;
      case Role::q_bias: dst = lw->bqkv.data(); break;
      case Role::k_bias: dst = lw->bqkv.data() + q; break;
      case Role::v_bias: dst = lw->bqkv.data() + q + kv; break;
      case Role::o: dst = lw->wo.data(); break;
      case Role::mlp_norm: dst = lw->mlp_norm.data(); break;
      case Role::gate: dst = lw->w_gate_up.data(); break;
      case Role::up: dst = lw->w_gate_up.data() + size_t{1} * m_.ffn * h; break;
      case Role::down: dst = lw->w_down.data(); break;
    }
    const uint64_t n = s.entry.elements();
    ckpt::convert_to_f32(s.entry.dtype, bytes, n, dst);
    if (round_)
      for (uint64_t i = 0; i < n; ++i) dst[i] = round_to_bf16(dst[i]);
  }

  void file_done() override {}

  ModelWeights w;

 private:
  const ModelConfig& m_;
  bool round_;
  HostBuffer buffer_;
};

}  // namespace

ModelWeights load_weights(const ckpt::Checkpoint& checkpoint, bool round_to_bf16, const ckpt::LoadOptions& options,
                          ckpt::LoadStats* stats) {
  CpuSink sink(checkpoint.model, round_to_bf16);
  const ckpt::LoadStats s = ckpt::load_checkpoint(checkpoint, sink, options);
  if (checkpoint.model.tied_embeddings) sink.w.lm_head = sink.w.embedding;
  if (stats != nullptr) *stats = s;
  return std::move(sink.w);
}

}  // namespace cake::cpu
