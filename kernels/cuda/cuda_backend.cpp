// The CUDA backend: owns the weights, the KV cache, the workspaces and one compute stream, and
// queues a chunk's whole forward pass on that stream without waiting. Nothing here touches the
// legacy default stream or synchronizes the device: the load lane copies into the same KV cache
// on its own stream at the same time.
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_backend_stream.hpp"
#include "kernels/cuda/tp_rank.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>

#include "common/cuda_check.hpp"
#include "common/cuda_raii.hpp"
#include "common/error.hpp"
#include "common/nvtx.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/cudnn_attention.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"
#include "kernels/seeded_weights.hpp"
#include "kernels/tp_shard.hpp"

namespace cake {
namespace {

using cuda::bf16;

constexpr uint16_t kBf16NaN = 0x7FC0;

struct LayerWeights {
  bf16* attn_norm = nullptr;
  bf16* wqkv = nullptr;
  bf16* bqkv = nullptr;  // [qkv_width] when the model has q/k/v biases
  bf16* wo = nullptr;
  bf16* mlp_norm = nullptr;
  bf16* w_gate_up = nullptr;
  bf16* w_down = nullptr;
};

void check_shapes(const ModelConfig& m, const BackendOptions& o, const TpRank& tp) {
  m.validate();
  if (tp.world > 1) {
    if (o.checkpoint != nullptr)
      throw UsageError("CUDA backend: tensor parallelism runs seeded weights only (checkpoints are not sharded yet)");
    const std::string problem = tp_split_problem(m, tp.world);
    if (!problem.empty()) throw UsageError(cat("CUDA backend: ", problem));
    if (tp.comm == nullptr) throw InternalError("CUDA backend: a tensor-parallel rank without a communicator");
  }
  auto require = [](bool ok, const std::string& why) {
    if (!ok) throw UsageError(cat("CUDA backend: ", why));
  };
  require(m.hidden % 8 == 0, cat("hidden (", m.hidden, ") must be a multiple of 8"));
  require(m.ffn % 8 == 0, cat("ffn (", m.ffn, ") must be a multiple of 8"));
  require(o.max_context_tokens > 0 && o.max_context_tokens <= m.max_context,
          cat("max_context_tokens (", o.max_context_tokens, ") must be in [1, ", m.max_context, "] (the model '", m.name,
              "' supports ", m.max_context, " positions)"));
  // Positions are ints inside the kernels.
  require(o.max_context_tokens <= INT_MAX / 2, cat("max_context_tokens (", o.max_context_tokens, ") is too large"));
  require(o.max_chunk_tokens > 0 && o.max_chunk_tokens <= o.max_context_tokens,
          cat("max_chunk_tokens (", o.max_chunk_tokens, ") must be in [1, max_context_tokens]"));
  require(m.sliding_window == 0 || o.max_context_tokens <= m.sliding_window,
          cat("model '", m.name, "' uses sliding-window attention over ", m.sliding_window,
              " tokens, which is not implemented; contexts up to the window are exact, ", o.max_context_tokens,
              " were asked for"));
  require(o.checkpoint == nullptr || o.checkpoint->model.fingerprint() == m.fingerprint(),
          cat("the model '", m.name, "' is not the checkpoint's: shapes given with a checkpoint must be its own"));
}

// Selects the GPU before any member allocates on it.
struct DeviceSelection {
  int device;
  std::string name;
  explicit DeviceSelection(int index) : device(index) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw EnvironmentError(cat("CUDA backend: no usable GPU (", cudaGetErrorString(err), ")"));
    }
    if (index < 0 || index >= count)
      throw EnvironmentError(cat("CUDA backend: GPU ", index, " requested, ", count, " present"));
    CAKE_CUDA(cudaSetDevice(index), cat("selecting GPU ", index));
    cudaDeviceProp prop{};
    CAKE_CUDA(cudaGetDeviceProperties(&prop, index), cat("reading the properties of GPU ", index));
    name = prop.name;
    if (prop.major < 8)
      throw EnvironmentError(cat("CUDA backend: GPU ", index, " (", name, ") has compute capability ", prop.major, ".",
                                 prop.minor, "; bf16 tensor cores need 8.0 or later"));
  }
};

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

class CudaBackend final : public ComputeBackend {
 public:
  CudaBackend(const ModelConfig& model, const BackendOptions& options, const TpRank& tp);
  double last_collective_ms() const override;
  int kv_shard_device(int) const override { return gpu_.device; }
  std::string kv_shard_tag(int) const override {
    return tp_.world > 1 ? tp_store_suffix(tp_shard(model_, tp_.rank, tp_.world)) : "";
  }

  std::string name() const override { return "cuda"; }
  std::string details() const override { return attention_path_; }
  const ModelConfig& model() const override { return model_; }
  KvCacheView kv_cache() const override { return kv_view_; }
  std::string weights_note() const override { return weights_note_; }
  void prefill_chunk(std::span<const int32_t> tokens, int64_t first_pos) override;
  bool prefill_chunk_gated(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate& gate) override;
  void synchronize() override;
  FirstToken first_token(std::span<const int32_t> suffix, int64_t first_pos) override;
  void poison_kv_cache() override;

  cudaStream_t stream() const { return stream_.get(); }

 private:
  void use_device() const { CAKE_CUDA(cudaSetDevice(gpu_.device), cat("selecting GPU ", gpu_.device)); }
  void check_chunk(std::span<const int32_t> tokens, int64_t first_pos, const char* what) const;
  void upload_tokens(std::span<const int32_t> tokens);
  // Queues every layer; with a gate, asks it before each layer and returns false at the first it
  // refuses (the layers queued before it still run).
  bool forward(int n, int64_t first_pos, const LayerGate* gate = nullptr);
  void generate_weights();
  void choose_attention(AttentionChoice choice);
  cuda::AttentionArgs attention_args(int n, int64_t first_pos, const bf16* qkv, const bf16* k_cache,
                                     const bf16* v_cache, bf16* out) const;
  void load_weights(const ckpt::Checkpoint& checkpoint);
  // Tensor parallelism: the residual stream x holds this rank's partial sum; make it the sum over
  // every rank (in place, bf16). Timed with events when collective timing is on.
  void all_reduce_x(int n, int layer, int which);

  ModelConfig model_;  // the whole model (reports, fingerprints)
  TpRank tp_;
  ModelConfig local_;  // what this rank computes: model_ with q_heads, kv_heads, ffn divided by world
  BackendOptions options_;
  DeviceSelection gpu_;
  cuda::Stream stream_{"the CUDA backend's compute stream"};
  cuda::Gemm gemm_{stream_.get()};
  cuda::AttentionKernel attention_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_attention_;  // set when cuDNN's attention runs
  std::string attention_path_;                             // for reports: which attention and why

  cuda::DeviceBuffer weights_;
  std::vector<LayerWeights> layers_;
  bf16* embedding_ = nullptr;
  bf16* final_norm_ = nullptr;
  bf16* lm_head_ = nullptr;
  std::string weights_note_ = "seeded random weights (generated on the GPU in bf16)";

  cuda::DeviceBuffer kv_;
  KvCacheView kv_view_;

  cuda::DeviceBuffer x_;     // [chunk][hidden] residual stream
  cuda::DeviceBuffer act_;   // [chunk][max(hidden, q_heads head_dim, ffn)] GEMM inputs
  cuda::DeviceBuffer proj_;  // [chunk][max(qkv_width, 2 ffn)] GEMM outputs
  cuda::DeviceBuffer tokens_dev_;
  cuda::DeviceBuffer logits_dev_;
  cuda::DeviceBuffer argmax_dev_;

  // Token ids travel through pinned slots; a slot is reused once its copy has run.
  std::array<cuda::PinnedBuffer, 2> token_slots_;
  std::array<cuda::Event, 2> token_slot_free_{cuda::Event(false), cuda::Event(false)};
  int next_slot_ = 0;
  cuda::PinnedBuffer logits_host_;
  cuda::PinnedBuffer argmax_host_;
  // Gated prefills keep the host at most two layers ahead of the device, so a gate's "stop" takes
  // effect within a layer or two (an ungated prefill queues the whole model at once).
  std::array<cuda::Event, 2> layer_done_{cuda::Event(false), cuda::Event(false)};
  // Per all-reduce (2 a layer) a start and end event; the last forward's count of them.
  std::vector<cuda::Event> collective_start_, collective_end_;
  int collectives_recorded_ = 0;
};

CudaBackend::CudaBackend(const ModelConfig& model, const BackendOptions& options, const TpRank& tp)
    : model_((check_shapes(model, options, tp), model)),
      tp_(tp),
      local_(tp.world > 1 ? tp_local_model(model, tp.world) : model),
      options_(options),
      gpu_(options.device),
      attention_(options.device, model.head_dim) {
  const ModelConfig& m = local_;
  const size_t h = m.hidden;
  const size_t q_width = static_cast<size_t>(m.q_heads) * m.head_dim;
  const size_t chunk = options.max_chunk_tokens;
  const size_t capacity = options.max_context_tokens;
  const size_t token_row = static_cast<size_t>(m.kv_heads) * m.head_dim;
  const size_t layer_kv_elems = capacity * token_row;

  // Every weight tensor starts on a 256-byte boundary (cuBLAS and 16-byte vector access like
  // that); offsets below count bf16 elements, so that is 128 of them.
  const size_t align = 256 / sizeof(bf16);
  size_t weight_elems = 0;
  auto reserve = [&](size_t count) {
    const size_t at = weight_elems;
    weight_elems += round_up(count, align);
    return at;
  };
  struct Offsets {
    size_t attn_norm, wqkv, bqkv, wo, mlp_norm, w_gate_up, w_down;
  };
  std::vector<Offsets> offsets(m.layers);
  for (auto& o : offsets) {
    o.attn_norm = reserve(h);
    o.wqkv = reserve(static_cast<size_t>(m.qkv_width()) * h);
    o.bqkv = m.qkv_bias ? reserve(static_cast<size_t>(m.qkv_width())) : 0;
    o.wo = reserve(h * q_width);
    o.mlp_norm = reserve(h);
    o.w_gate_up = reserve(2 * static_cast<size_t>(m.ffn) * h);
    o.w_down = reserve(h * m.ffn);
  }
  const size_t emb_at = reserve(static_cast<size_t>(m.vocab) * h);
  const size_t final_norm_at = reserve(h);
  const size_t lm_head_at = m.tied_embeddings ? emb_at : reserve(static_cast<size_t>(m.vocab) * h);

  const size_t act_width = std::max({h, q_width, static_cast<size_t>(m.ffn)});
  const size_t proj_width = std::max(static_cast<size_t>(m.qkv_width()), 2 * static_cast<size_t>(m.ffn));
  const size_t need = weight_elems * 2 + 2 * m.layers * layer_kv_elems * 2 + chunk * (h + act_width + proj_width) * 2 +
                      chunk * 4 + static_cast<size_t>(m.vocab) * 4 + cuda::Gemm::kWorkspaceBytes;
  size_t free_bytes = 0, total_bytes = 0;
  CAKE_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes), "reading free GPU memory");
  if (need > free_bytes)
    throw EnvironmentError(cat("CUDA backend: model '", m.name, "' with a ", capacity, "-token KV cache and ", chunk,
                               "-token chunks needs ", need >> 20, " MiB; GPU ", gpu_.device, " (", gpu_.name,
                               ") has ", free_bytes >> 20, " MiB free"));

  weights_ = cuda::DeviceBuffer(weight_elems * sizeof(bf16), "weights");
  bf16* base = weights_.as<bf16>();
  for (const auto& o : offsets)
    layers_.push_back({base + o.attn_norm, base + o.wqkv, m.qkv_bias ? base + o.bqkv : nullptr, base + o.wo,
                       base + o.mlp_norm, base + o.w_gate_up, base + o.w_down});
  embedding_ = base + emb_at;
  final_norm_ = base + final_norm_at;
  lm_head_ = base + lm_head_at;

  kv_ = cuda::DeviceBuffer(2 * m.layers * layer_kv_elems * sizeof(bf16), "KV cache");
  kv_view_.memory = MemoryKind::device;
  kv_view_.dtype = DType::bf16;
  kv_view_.layers = m.layers;
  kv_view_.kv_heads = m.kv_heads;
  kv_view_.head_dim = m.head_dim;
  kv_view_.capacity_tokens = options.max_context_tokens;
  for (int l = 0; l < m.layers; ++l) {
    kv_view_.k.push_back(reinterpret_cast<std::byte*>(kv_.as<bf16>() + (2 * l) * layer_kv_elems));
    kv_view_.v.push_back(reinterpret_cast<std::byte*>(kv_.as<bf16>() + (2 * l + 1) * layer_kv_elems));
  }

  x_ = cuda::DeviceBuffer(chunk * h * sizeof(bf16), "residual stream");
  act_ = cuda::DeviceBuffer(chunk * act_width * sizeof(bf16), "GEMM inputs");
  proj_ = cuda::DeviceBuffer(chunk * proj_width * sizeof(bf16), "GEMM outputs");
  tokens_dev_ = cuda::DeviceBuffer(chunk * sizeof(int32_t), "token ids");
  logits_dev_ = cuda::DeviceBuffer(static_cast<size_t>(m.vocab) * sizeof(float), "logits");
  argmax_dev_ = cuda::DeviceBuffer(sizeof(int32_t), "argmax");
  for (auto& slot : token_slots_) slot = cuda::PinnedBuffer(chunk * sizeof(int32_t), "token staging");
  logits_host_ = cuda::PinnedBuffer(static_cast<size_t>(m.vocab) * sizeof(float), "logits (host)");
  argmax_host_ = cuda::PinnedBuffer(sizeof(int32_t), "argmax (host)");

  if (options.checkpoint != nullptr) {
    load_weights(*options.checkpoint);
  } else {
    if (m.qkv_bias || m.tied_embeddings)
      throw UsageError("CUDA backend: seeded weights have no q/k/v biases and no tied LM head");
    generate_weights();
    stream_.synchronize("generating weights");
  }
  choose_attention(options.attention);
  if (tp_.world > 1) {
    for (int i = 0; i < 2 * m.layers; ++i) {
      collective_start_.emplace_back(true);
      collective_end_.emplace_back(true);
    }
  }
}

void CudaBackend::all_reduce_x(int n, int layer, int which) {
  const size_t count = static_cast<size_t>(n) * local_.hidden;
  const int slot = 2 * layer + which;
  const char* what = which == 0 ? "all-reduce after o_proj" : "all-reduce after the MLP";
  NvtxRange range(what);  // the host's enqueue; the NCCL kernel itself shows on the GPU's row
  collective_start_[slot].record(stream_.get());
  nccl::Library::get().all_reduce_sum(x_.get(), x_.get(), count, nccl::DataType::bf16, tp_.comm->get(), stream_.get(),
                                      what);
  collective_end_[slot].record(stream_.get());
  collectives_recorded_ = std::max(collectives_recorded_, slot + 1);
}

// GPU time inside the all-reduces of the last forward (they include waiting for the slowest rank:
// what the collectives cost this rank's compute lane). Call after synchronize().
double CudaBackend::last_collective_ms() const {
  double ms = 0;
  for (int i = 0; i < collectives_recorded_; ++i) ms += collective_end_[i].elapsed_ms_since(collective_start_[i]);
  return ms;
}

cuda::AttentionArgs CudaBackend::attention_args(int n, int64_t first_pos, const bf16* qkv, const bf16* k_cache,
                                                const bf16* v_cache, bf16* out) const {
  const ModelConfig& m = local_;
  cuda::AttentionArgs args;
  args.q = qkv;
  args.q_row_stride = m.qkv_width();
  args.k = k_cache;
  args.v = v_cache;
  args.out = out;
  args.out_row_stride = static_cast<int64_t>(m.q_heads) * m.head_dim;
  args.n = n;
  args.first_pos = first_pos;
  args.q_heads = m.q_heads;
  args.kv_heads = m.kv_heads;
  args.head_dim = m.head_dim;
  return args;
}

// auto takes cuDNN when it is built in and can plan this model's attention here (one plan of a
// small shape is built as the probe); the choice is fixed for the backend's lifetime, so prepare
// and every timed mode compute a chunk with the same kernel and its KV stays bit-identical.
void CudaBackend::choose_attention(AttentionChoice choice) {
  const std::string mma = cat("attention: mma (sm_80 mma.sync flash kernel, tiling ", attention_.tiling().name(), ")");
  if (choice == AttentionChoice::mma) {
    attention_path_ = cat(mma, ", as asked");
    return;
  }
  try {
    auto cudnn = std::make_unique<cuda::CudnnAttention>(gpu_.device, local_.head_dim);
    const int probe_n = static_cast<int>(std::min<int64_t>(64, options_.max_chunk_tokens));
    cudnn->prepare_plan(attention_args(probe_n, probe_n, proj_.as<bf16>(), kv_.as<bf16>(), kv_.as<bf16>(),
                                       act_.as<bf16>()),
                        stream_.get());
    cudnn_attention_ = std::move(cudnn);
    attention_path_ = cat("attention: cudnn (", cudnn_attention_->describe(), ")",
                          choice == AttentionChoice::cudnn ? ", as asked" : ", auto");
  } catch (const Error& e) {
    if (choice == AttentionChoice::cudnn)
      throw EnvironmentError(cat("--attention cudnn: cuDNN's fused attention cannot run here: ", e.what()));
    attention_path_ = cat(mma, ", auto: cuDNN unavailable (", e.what(), ")");
  }
}

// Checkpoint files are read whole into one pinned buffer (the largest file's size), each tensor
// converted to bf16 in place there (BF16 as is; F32 and F16 rounded to nearest even on the host)
// and copied straight to its place in the weight arena; the stream is drained before the buffer
// takes the next file.
namespace {
class CudaSink final : public ckpt::WeightSink {
 public:
  CudaSink(const ModelConfig& m, const std::vector<LayerWeights>& layers, bf16* embedding, bf16* final_norm,
           bf16* lm_head, cudaStream_t stream)
      : m_(m), layers_(layers), embedding_(embedding), final_norm_(final_norm), lm_head_(lm_head), stream_(stream) {}

  // cudaHostAlloc serves small requests from sub-page pools (seen on the H200: a 400 KB shard's
  // buffer was not 4 KiB aligned), so the buffer is over-allocated by a page and aligned here.
  std::byte* file_buffer(size_t bytes) override {
    constexpr size_t kPage = 4096;
    if (buffer_.bytes() < bytes + kPage) buffer_ = cuda::PinnedBuffer(bytes + kPage, "reading a checkpoint file");
    const uintptr_t at = reinterpret_cast<uintptr_t>(buffer_.get());
    return static_cast<std::byte*>(buffer_.get()) + (kPage - at % kPage) % kPage;
  }

  void tensor(const ckpt::TensorSlot& s, std::byte* bytes) override {
    const size_t h = m_.hidden, q = size_t{1} * m_.q_heads * m_.head_dim, kv = size_t{1} * m_.kv_heads * m_.head_dim;
    using ckpt::Role;
    const LayerWeights* lw = s.layer >= 0 ? &layers_.at(static_cast<size_t>(s.layer)) : nullptr;
    bf16* dst = nullptr;
    switch (s.role) {
      case Role::embedding: dst = embedding_; break;
      case Role::final_norm: dst = final_norm_; break;
      case Role::lm_head: dst = lm_head_; break;
      case Role::attn_norm: dst = lw->attn_norm; break;
      case Role::q: dst = lw->wqkv; break;
      case Role::k: dst = lw->wqkv + q * h; break;
      case Role::v: dst = lw->wqkv + (q + kv) * h; break;
      case Role::q_bias: dst = lw->bqkv; break;
      case Role::k_bias: dst = lw->bqkv + q; break;
      case Role::v_bias: dst = lw->bqkv + q + kv; break;
      case Role::o: dst = lw->wo; break;
      case Role::mlp_norm: dst = lw->mlp_norm; break;
      case Role::gate: dst = lw->w_gate_up; break;
      case Role::up: dst = lw->w_gate_up + size_t{1} * m_.ffn * h; break;
      case Role::down: dst = lw->w_down; break;
    }
    const uint64_t n = s.entry.elements();
    ckpt::convert_to_bf16_in_place(s.entry.dtype, bytes, n);
    CAKE_CUDA(cudaMemcpyAsync(dst, bytes, n * sizeof(bf16), cudaMemcpyHostToDevice, stream_),
              cat("uploading tensor '", s.entry.name, "'"));
  }

  void file_done() override { CAKE_CUDA(cudaStreamSynchronize(stream_), "uploading a checkpoint file's tensors"); }

 private:
  const ModelConfig& m_;
  const std::vector<LayerWeights>& layers_;
  bf16 *embedding_, *final_norm_, *lm_head_;
  cudaStream_t stream_;
  cuda::PinnedBuffer buffer_;
};
}  // namespace

void CudaBackend::load_weights(const ckpt::Checkpoint& c) {
  CudaSink sink(model_, layers_, embedding_, final_norm_, lm_head_, stream_.get());
  ckpt::LoadOptions load;
  load.progress = options_.load_progress;
  const ckpt::LoadStats stats = ckpt::load_checkpoint(c, sink, load);
  model_.weights_fingerprint = stats.content_fingerprint;
  local_.weights_fingerprint = stats.content_fingerprint;
  weights_note_ = cat("checkpoint ", c.dir, " (", c.dtypes, "): ", ckpt::load_summary(stats),
                      " into pinned memory; BF16 uploaded as is, F32/F16 rounded to bf16 (nearest even) on the host",
                      c.model.tied_embeddings ? "; LM head tied to the embedding (one copy)" : "",
                      "; content fingerprint ", stats.content_fingerprint);
}

void CudaBackend::generate_weights() {
  const ModelConfig& m = model_;
  const uint64_t seed = m.weight_seed;
  if (tp_.world > 1) {
    // This rank's slices of the unsplit seeded weights (kernels/tp_shard.hpp), element for element
    // the values the unsplit backend generates: TP=N computes the same model as TP=1.
    const TpShard shard = tp_shard(m, tp_.rank, tp_.world);
    const QkvRows qkv = tp_qkv_rows(m, shard);
    const GateUpRows gu = tp_gate_up_rows(m, shard);
    const Range o_cols = tp_o_columns(m, shard), down_cols = tp_down_columns(m, shard);
    const uint64_t h = m.hidden, q_full = static_cast<uint64_t>(m.q_heads) * m.head_dim;
    cudaStream_t s = stream_.get();
    for (int l = 0; l < m.layers; ++l) {
      const LayerWeights& w = layers_[l];
      cuda::fill_seeded_norm(w.attn_norm, h, seed, layer_tensor_id(l, WeightKind::attn_norm), s);
      const uint32_t t_qkv = layer_tensor_id(l, WeightKind::wqkv);
      bf16* dst = w.wqkv;
      for (const Range& r : {qkv.q, qkv.k, qkv.v}) {
        cuda::fill_seeded_linear_block(dst, r.count, h, h, r.begin, 0, seed, t_qkv, m.hidden, s);
        dst += static_cast<uint64_t>(r.count) * h;
      }
      cuda::fill_seeded_linear_block(w.wo, h, o_cols.count, q_full, 0, o_cols.begin, seed,
                                     layer_tensor_id(l, WeightKind::wo), static_cast<int>(q_full), s);
      cuda::fill_seeded_norm(w.mlp_norm, h, seed, layer_tensor_id(l, WeightKind::mlp_norm), s);
      const uint32_t t_gu = layer_tensor_id(l, WeightKind::w_gate_up);
      cuda::fill_seeded_linear_block(w.w_gate_up, gu.gate.count, h, h, gu.gate.begin, 0, seed, t_gu, m.hidden, s);
      cuda::fill_seeded_linear_block(w.w_gate_up + static_cast<uint64_t>(gu.gate.count) * h, gu.up.count, h, h,
                                     gu.up.begin, 0, seed, t_gu, m.hidden, s);
      cuda::fill_seeded_linear_block(w.w_down, h, down_cols.count, m.ffn, 0, down_cols.begin, seed,
                                     layer_tensor_id(l, WeightKind::w_down), m.ffn, s);
    }
    cuda::fill_seeded_embedding(embedding_, static_cast<uint64_t>(m.vocab) * h, seed, s);
    cuda::fill_seeded_norm(final_norm_, h, seed, kFinalNormTensor, s);
    cuda::fill_seeded_linear(lm_head_, static_cast<uint64_t>(m.vocab) * h, seed, kLmHeadTensor, m.hidden, s);
    return;
  }
  const uint64_t h = m.hidden;
  const uint64_t q_width = static_cast<uint64_t>(m.q_heads) * m.head_dim;
  cudaStream_t s = stream_.get();
  for (int l = 0; l < m.layers; ++l) {
    const LayerWeights& w = layers_[l];
    cuda::fill_seeded_norm(w.attn_norm, h, seed, layer_tensor_id(l, WeightKind::attn_norm), s);
    cuda::fill_seeded_linear(w.wqkv, static_cast<uint64_t>(m.qkv_width()) * h, seed,
                             layer_tensor_id(l, WeightKind::wqkv), m.hidden, s);
    cuda::fill_seeded_linear(w.wo, h * q_width, seed, layer_tensor_id(l, WeightKind::wo), static_cast<int>(q_width), s);
    cuda::fill_seeded_norm(w.mlp_norm, h, seed, layer_tensor_id(l, WeightKind::mlp_norm), s);
    cuda::fill_seeded_linear(w.w_gate_up, 2 * static_cast<uint64_t>(m.ffn) * h, seed,
                             layer_tensor_id(l, WeightKind::w_gate_up), m.hidden, s);
    cuda::fill_seeded_linear(w.w_down, h * m.ffn, seed, layer_tensor_id(l, WeightKind::w_down), m.ffn, s);
  }
  cuda::fill_seeded_embedding(embedding_, static_cast<uint64_t>(m.vocab) * h, seed, s);
  cuda::fill_seeded_norm(final_norm_, h, seed, kFinalNormTensor, s);
  cuda::fill_seeded_linear(lm_head_, static_cast<uint64_t>(m.vocab) * h, seed, kLmHeadTensor, m.hidden, s);
}

void CudaBackend::check_chunk(std::span<const int32_t> tokens, int64_t first_pos, const char* what) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 1 || n > options_.max_chunk_tokens)
    throw InternalError(cat(what, ": ", n, " tokens; the CUDA backend takes 1 to ", options_.max_chunk_tokens));
  if (first_pos < 0 || first_pos + n > options_.max_context_tokens)
    throw InternalError(cat(what, ": positions [", first_pos, ", ", first_pos + n, ") exceed the KV cache capacity ",
                         options_.max_context_tokens));
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= model_.vocab)
      throw UsageError(cat(what, ": token ", tokens[i], " at position ", first_pos + i, " is outside the vocabulary [0, ",
                           model_.vocab, ")"));
}

void CudaBackend::upload_tokens(std::span<const int32_t> tokens) {
  const int slot = next_slot_;
  next_slot_ ^= 1;
  token_slot_free_[slot].synchronize();  // that slot's previous copy has run (never recorded: returns at once)
  std::memcpy(token_slots_[slot].get(), tokens.data(), tokens.size_bytes());
  CAKE_CUDA(cudaMemcpyAsync(tokens_dev_.get(), token_slots_[slot].get(), tokens.size_bytes(), cudaMemcpyHostToDevice,
                            stream_.get()),
            "uploading token ids");
  token_slot_free_[slot].record(stream_.get());
}

bool CudaBackend::forward(int n, int64_t first_pos, const LayerGate* gate) {
  const ModelConfig& m = local_;
  const bool tp = tp_.world > 1;
  // Row-split GEMMs: rank 0 adds its partial sum to the residual, the others write theirs over
  // it; the all-reduce then leaves x + the sum of every rank's part on every rank.
  const bool residual_here = !tp || tp_.rank == 0;
  collectives_recorded_ = 0;
  cudaStream_t s = stream_.get();
  const int q_width = m.q_heads * m.head_dim;
  const float eps = static_cast<float>(m.norm_eps);
  const cuda::HeadShape shape{m.q_heads, m.kv_heads, m.head_dim};
  bf16* x = x_.as<bf16>();
  bf16* act = act_.as<bf16>();
  bf16* proj = proj_.as<bf16>();

  cuda::embedding_gather(tokens_dev_.as<int32_t>(), n, embedding_, m.hidden, x, s);
  const bool gated = gate != nullptr && *gate;
  for (int l = 0; l < m.layers; ++l) {
    if (gated) {
      if (l >= 2) layer_done_[l % 2].synchronize();  // layer l-2 has run
      if (!(*gate)(l)) return false;
    }
    const LayerWeights& w = layers_[l];
    bf16* k_cache = reinterpret_cast<bf16*>(kv_view_.k[l]);
    bf16* v_cache = reinterpret_cast<bf16*>(kv_view_.v[l]);
    cuda::rmsnorm(x, w.attn_norm, act, n, m.hidden, eps, s);
    gemm_.linear(act, n, m.hidden, w.wqkv, m.qkv_width(), proj, false, "qkv");
    cuda::rope_write_kv(proj, w.bqkv, n, first_pos, shape, m.rope_theta, k_cache, v_cache, s);
    const cuda::AttentionArgs args = attention_args(n, first_pos, proj, k_cache, v_cache, act);
    if (cudnn_attention_)
      cudnn_attention_->launch(args, s);
    else
      attention_.launch(args, s);
    gemm_.linear(act, n, q_width, w.wo, m.hidden, x, residual_here, "wo + residual");
    if (tp) all_reduce_x(n, l, 0);
    cuda::rmsnorm(x, w.mlp_norm, act, n, m.hidden, eps, s);
    gemm_.linear(act, n, m.hidden, w.w_gate_up, 2 * m.ffn, proj, false, "gate_up");
    cuda::swiglu(proj, act, n, m.ffn, s);
    gemm_.linear(act, n, m.ffn, w.w_down, m.hidden, x, residual_here, "down + residual");
    if (tp) all_reduce_x(n, l, 1);
    if (gated) layer_done_[l % 2].record(s);
  }
  return true;
}

void CudaBackend::prefill_chunk(std::span<const int32_t> tokens, int64_t first_pos) {
  use_device();
  check_chunk(tokens, first_pos, "prefill_chunk");
  NvtxRange range(cat("cuda prefill pos=", first_pos, " n=", tokens.size()));
  upload_tokens(tokens);
  forward(static_cast<int>(tokens.size()), first_pos);
}

bool CudaBackend::prefill_chunk_gated(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate& gate) {
  use_device();
  check_chunk(tokens, first_pos, "prefill_chunk");
  NvtxRange range(cat("cuda prefill pos=", first_pos, " n=", tokens.size(), " (gated)"));
  upload_tokens(tokens);
  return forward(static_cast<int>(tokens.size()), first_pos, &gate);
}

void CudaBackend::synchronize() {
  use_device();
  stream_.synchronize("the CUDA backend's compute stream");
}

FirstToken CudaBackend::first_token(std::span<const int32_t> suffix, int64_t first_pos) {
  use_device();
  check_chunk(suffix, first_pos, "first_token");
  NvtxRange range(cat("cuda first_token pos=", first_pos, " n=", suffix.size()));
  const ModelConfig& m = model_;
  cudaStream_t s = stream_.get();
  const int n = static_cast<int>(suffix.size());
  upload_tokens(suffix);
  forward(n, first_pos);
  bf16* act = act_.as<bf16>();
  cuda::rmsnorm(x_.as<bf16>() + static_cast<size_t>(n - 1) * m.hidden, final_norm_, act, 1, m.hidden,
                static_cast<float>(m.norm_eps), s);
  gemm_.linear_f32(act, 1, m.hidden, lm_head_, m.vocab, logits_dev_.as<float>(), "lm head");
  cuda::argmax(logits_dev_.as<float>(), m.vocab, argmax_dev_.as<int32_t>(), s);
  CAKE_CUDA(cudaMemcpyAsync(logits_host_.get(), logits_dev_.get(), logits_dev_.bytes(), cudaMemcpyDeviceToHost, s),
            "copying logits to the host");
  CAKE_CUDA(cudaMemcpyAsync(argmax_host_.get(), argmax_dev_.get(), sizeof(int32_t), cudaMemcpyDeviceToHost, s),
            "copying the first token to the host");
  stream_.synchronize("the first token");
  FirstToken out;
  out.token_id = *static_cast<const int32_t*>(argmax_host_.get());
  const float* logits = static_cast<const float*>(logits_host_.get());
  out.logits.assign(logits, logits + m.vocab);
  return out;
}

void CudaBackend::poison_kv_cache() {
  use_device();
  cuda::fill_bits(kv_.as<bf16>(), kv_.bytes() / sizeof(bf16), kBf16NaN, stream_.get());
  // Loaders write the cache on their own streams right after this returns.
  stream_.synchronize("poisoning the KV cache");
}

}  // namespace

std::unique_ptr<ComputeBackend> make_cuda_backend(const ModelConfig& model, const BackendOptions& options) {
  return std::make_unique<CudaBackend>(model, options, TpRank{});
}

std::unique_ptr<ComputeBackend> make_cuda_backend_rank(const ModelConfig& model, const BackendOptions& options,
                                                       const TpRank& tp) {
  return std::make_unique<CudaBackend>(model, options, tp);
}

cudaStream_t cuda_backend_stream(const ComputeBackend& backend) {
  const auto* cuda_backend = dynamic_cast<const CudaBackend*>(&backend);
  if (cuda_backend == nullptr) throw InternalError(cat("backend '", backend.name(), "' has no CUDA stream"));
  return cuda_backend->stream();
}

}  // namespace cake
