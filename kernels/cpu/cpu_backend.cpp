// The CPU backend: one layer of a llama-family decoder is
//   h   = rmsnorm(x, attn_norm)
//   q,k,v = h Wq^T, h Wk^T, h Wv^T        k and v are written straight into the KV cache rows
//   q,k = rope(q), rope(k)                 at the chunk's absolute positions
//   x  += attention(q, K[0, p+n), V[0, p+n)) Wo^T
//   h   = rmsnorm(x, mlp_norm)
//   x  += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
// and the first token is argmax(rmsnorm(x_last, final_norm) Wlm^T).
#include "kernels/cpu/cpu_backend.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "common/error.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "kernels/cpu/cpu_weights.hpp"
#include "kernels/cpu/host_buffer.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace cake {
namespace {

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_bytes = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_bytes <= 0) throw EnvironmentError(cat("sysconf(_SC_PHYS_PAGES): ", errno_text(errno)));
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_bytes);
}

void validate_options(const ModelConfig& model, const BackendOptions& options) {
  model.validate();
  if (options.max_context_tokens < 1 || options.max_context_tokens > model.max_context)
    throw UsageError(cat("CPU backend: max_context_tokens ", options.max_context_tokens, " must be in [1, ",
                         model.max_context, "] (the model '", model.name, "' supports ", model.max_context,
                         " positions)"));
  if (options.max_chunk_tokens < 1 || options.max_chunk_tokens > options.max_context_tokens)
    throw UsageError(cat("CPU backend: max_chunk_tokens ", options.max_chunk_tokens, " must be in [1, ",
                         options.max_context_tokens, "]"));
  if (options.cpu_threads < 0) throw UsageError(cat("CPU backend: cpu_threads ", options.cpu_threads, " must be >= 0"));
  if (model.sliding_window > 0 && options.max_context_tokens > model.sliding_window)
    throw UsageError(cat("CPU backend: model '", model.name, "' uses sliding-window attention over ", model.sliding_window,
                         " tokens, which is not implemented; contexts up to the window (", model.sliding_window,
                         " tokens) are exact, ", options.max_context_tokens, " were asked for"));
  if (options.checkpoint != nullptr && options.checkpoint->model.fingerprint() != model.fingerprint())
    throw UsageError(cat("CPU backend: the model '", model.name, "' is not the checkpoint's ('",
                         options.checkpoint->model.name, "'): shapes given with a checkpoint must be its own"));
}

class CpuBackend final : public ComputeBackend {
 public:
  CpuBackend(const ModelConfig& model, const BackendOptions& options, const CpuBackendOptions& cpu_options)
      : model_(model), options_(options), pool_(options.cpu_threads, cpu::ThreadPool::LoadLane::share_cores) {
    const int64_t capacity = options.max_context_tokens;
    const size_t tensor_bytes = static_cast<size_t>(capacity) * model.kv_heads * model.head_dim * sizeof(float);
    const uint64_t kv_bytes = 2ull * model.layers * tensor_bytes;
    const uint64_t needed = cpu::weight_bytes(model) + kv_bytes;
    const uint64_t memory = physical_memory_bytes();
    if (needed > memory)
      throw EnvironmentError(cat("CPU backend: model '", model.name, "' needs ", needed, " bytes (fp32 weights ",
                                 cpu::weight_bytes(model), " + KV cache ", kv_bytes, " for ", capacity,
                                 " tokens) but this machine has ", memory, " bytes of memory"));

    if (options.checkpoint != nullptr) {
      ckpt::LoadOptions load;
      load.progress = options.load_progress;
      ckpt::LoadStats stats;
      weights_ = cpu::load_weights(*options.checkpoint, cpu_options.round_weights_to_bf16, load, &stats);
      model_.weights_fingerprint = stats.content_fingerprint;
      weights_note_ = cat("checkpoint ", options.checkpoint->dir, " (", options.checkpoint->dtypes, "): ",
                          ckpt::load_summary(stats), " into host memory, converted to fp32 (F32 copied, BF16/F16 widened exactly)",
                          cpu_options.round_weights_to_bf16 ? ", then rounded to bf16" : "",
                          options.checkpoint->model.tied_embeddings ? "; LM head tied to the embedding" : "",
                          "; content fingerprint ", stats.content_fingerprint);
    } else {
      weights_ = cpu::generate_weights(model, cpu_options.round_weights_to_bf16, &pool_);
    }

    view_.memory = MemoryKind::host;
    view_.dtype = DType::f32;
    view_.layers = model.layers;
    view_.kv_heads = model.kv_heads;
    view_.head_dim = model.head_dim;
    view_.capacity_tokens = capacity;
    for (int l = 0; l < model.layers; ++l) {
      k_.emplace_back(tensor_bytes, cat("the K cache of layer ", l));
      v_.emplace_back(tensor_bytes, cat("the V cache of layer ", l));
      view_.k.push_back(k_.back().data());
      view_.v.push_back(v_.back().data());
    }

    const size_t n = static_cast<size_t>(options.max_chunk_tokens);
    x_.resize(n * model.hidden);
    h_.resize(n * model.hidden);
    q_.resize(n * model.q_heads * model.head_dim);
    attn_.resize(n * model.q_heads * model.head_dim);
    gate_.resize(n * model.ffn);
    up_.resize(n * model.ffn);
  }

  std::string name() const override { return "cpu"; }
  const ModelConfig& model() const override { return model_; }
  KvCacheView kv_cache() const override { return view_; }
  std::string weights_note() const override { return weights_note_; }

  void prefill_chunk(std::span<const int32_t> tokens, int64_t first_pos) override {
    check_chunk("prefill_chunk", tokens.size(), first_pos);
    run_layers(tokens, first_pos, nullptr);
  }

  int gate_steps_per_layer() const override { return kGateStepsPerLayer; }

  bool prefill_chunk_gated(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate& gate) override {
    check_chunk("prefill_chunk", tokens.size(), first_pos);
    return run_layers(tokens, first_pos, &gate);
  }

  void synchronize() override {}  // prefill_chunk has finished when it returns

  FirstToken first_token(std::span<const int32_t> suffix, int64_t first_pos) override {
    check_chunk("first_token", suffix.size(), first_pos);
    run_layers(suffix, first_pos, nullptr);
    const int hidden = model_.hidden;
    const float* last = x_.data() + (suffix.size() - 1) * hidden;
    std::vector<float> normed(hidden);
    cpu::rmsnorm(last, weights_.final_norm.data(), 1, hidden, static_cast<float>(model_.norm_eps), normed.data());
    FirstToken result;
    result.logits.resize(model_.vocab);
    cpu::linear(normed.data(), 1, hidden, weights_.lm_head.data(), model_.vocab, result.logits.data(), &pool_);
    result.token_id = cpu::argmax(result.logits.data(), model_.vocab);
    return result;
  }

  void poison_kv_cache() override {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (auto* buffers : {&k_, &v_})
      for (auto& b : *buffers) {
        float* f = reinterpret_cast<float*>(b.data());
        std::fill(f, f + b.size() / sizeof(float), nan);
      }
  }

 private:
  void check_chunk(const char* what, size_t n, int64_t first_pos) const {
    if (n == 0) throw InternalError(cat("CPU backend ", what, ": empty token list at position ", first_pos));
    if (static_cast<int64_t>(n) > options_.max_chunk_tokens)
      throw InternalError(cat("CPU backend ", what, ": ", n, " tokens at position ", first_pos,
                           " exceed max_chunk_tokens ", options_.max_chunk_tokens));
    if (first_pos < 0 || first_pos + static_cast<int64_t>(n) > view_.capacity_tokens)
      throw InternalError(cat("CPU backend ", what, ": tokens [", first_pos, ", ", first_pos + static_cast<int64_t>(n),
                           ") do not fit the KV cache of ", view_.capacity_tokens, " tokens"));
  }

  // Runs every layer over tokens at [first_pos, first_pos + n), writing their KV; leaves the
  // last layer's output (the residual stream) in x_. With a gate, asks it before each layer and
  // returns false at the first layer it refuses.
  // Where run_layers asks a gate within a layer: its start, before attention, after it, after the
  // MLP's gate and up projections.
  static constexpr int kGateStepsPerLayer = 5;

  bool run_layers(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate* gate) {
    const ModelConfig& m = model_;
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int hidden = m.hidden;
    const int q_width = m.q_heads * m.head_dim;
    const int kv_width = m.kv_heads * m.head_dim;
    const float eps = static_cast<float>(m.norm_eps);
    cpu::ThreadPool* pool = &pool_;

    cpu::embedding(weights_.embedding.data(), m.vocab, hidden, tokens.data(), n, x_.data());
    // A gate is asked before each layer and between its steps (a tiny model's layer can take
    // milliseconds), so a taken-over chunk stops within one step and its progress is known early.
    int step = 0;
    const auto go_on = [&](int) { return gate == nullptr || !*gate || (*gate)(step++); };
    for (int l = 0; l < m.layers; ++l) {
      if (!go_on(l)) return false;
      const cpu::LayerWeights& w = weights_.layers[l];
      float* k_cache = reinterpret_cast<float*>(view_.k[l]);
      float* v_cache = reinterpret_cast<float*>(view_.v[l]);
      float* k_rows = k_cache + first_pos * kv_width;
      float* v_rows = v_cache + first_pos * kv_width;

      cpu::rmsnorm(x_.data(), w.attn_norm.data(), n, hidden, eps, h_.data());
      // Wqkv's rows are Q heads, then K heads, then V heads: three GEMMs over row ranges of it.
      const float* wq = w.wqkv.data();
      const float* wk = wq + static_cast<size_t>(q_width) * hidden;
      const float* wv = wk + static_cast<size_t>(kv_width) * hidden;
      cpu::linear(h_.data(), n, hidden, wq, q_width, q_.data(), pool);
      cpu::linear(h_.data(), n, hidden, wk, kv_width, k_rows, pool);
      cpu::linear(h_.data(), n, hidden, wv, kv_width, v_rows, pool);
      if (!w.bqkv.empty()) {
        cpu::add_bias(q_.data(), n, q_width, w.bqkv.data());
        cpu::add_bias(k_rows, n, kv_width, w.bqkv.data() + q_width);
        cpu::add_bias(v_rows, n, kv_width, w.bqkv.data() + q_width + kv_width);
      }
      cpu::rope(q_.data(), n, m.q_heads, m.head_dim, first_pos, m.rope_theta);
      cpu::rope(k_rows, n, m.kv_heads, m.head_dim, first_pos, m.rope_theta);
      if (!go_on(l)) return false;
      cpu::attention(q_.data(), n, first_pos, m.q_heads, k_cache, v_cache, m.kv_heads, m.head_dim, attn_.data(), pool);
      if (!go_on(l)) return false;
      cpu::linear(attn_.data(), n, q_width, w.wo.data(), hidden, h_.data(), pool);
      cpu::residual_add(x_.data(), h_.data(), n * hidden);

      cpu::rmsnorm(x_.data(), w.mlp_norm.data(), n, hidden, eps, h_.data());
      const float* w_gate = w.w_gate_up.data();
      const float* w_up = w_gate + static_cast<size_t>(m.ffn) * hidden;
      cpu::linear(h_.data(), n, hidden, w_gate, m.ffn, gate_.data(), pool);
      if (!go_on(l)) return false;
      cpu::linear(h_.data(), n, hidden, w_up, m.ffn, up_.data(), pool);
      if (!go_on(l)) return false;
      cpu::swiglu(gate_.data(), up_.data(), n * m.ffn, gate_.data());
      cpu::linear(gate_.data(), n, m.ffn, w.w_down.data(), hidden, h_.data(), pool);
      cpu::residual_add(x_.data(), h_.data(), n * hidden);
    }
    return true;
  }

  ModelConfig model_;
  BackendOptions options_;
  cpu::ThreadPool pool_;
  cpu::ModelWeights weights_;
  std::string weights_note_ = "seeded random weights (fp32)";
  std::vector<cpu::HostBuffer> k_;
  std::vector<cpu::HostBuffer> v_;
  KvCacheView view_;
  // Activations of one chunk: residual stream, normed/projected scratch, Q, attention output,
  // MLP gate and up.
  std::vector<float> x_, h_, q_, attn_, gate_, up_;
};

}  // namespace

std::unique_ptr<ComputeBackend> make_cpu_backend(const ModelConfig& model, const BackendOptions& options,
                                                 const CpuBackendOptions& cpu_options) {
  validate_options(model, options);
  return std::make_unique<CpuBackend>(model, options, cpu_options);
}

}  // namespace cake
