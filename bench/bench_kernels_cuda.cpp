// GPU micro-benchmarks of the CUDA backend: each op at llama-3-8b shapes, one whole llama-3-8b
// layer (the backend with layers = 1) at long contexts, and the whole model. Every iteration is
// timed with CUDA events on the stream that runs it, after warm-up (the whole model, which ends on
// the host, with the host clock); counters report the median iteration
// (median_ms) and the rate it implies (TFLOPs by ModelConfig::prefill_flops' counting, or GB/s of
// the fewest bytes the op must move). Each attention tiling is checked against the CPU reference
// on sampled query rows before it is timed (a wrong kernel is not timed); the memory-bound ops
// have the L2 cache overwritten before every timed iteration, so they read from HBM as in a
// layer, not from an L2 the previous iteration left warm (as llm.c's dev/cuda/common.h does).
#if defined(CAKE_HAVE_CUDA_BACKEND)

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/cuda_raii.hpp"
#include "common/sysinfo.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_backend_stream.hpp"
#include "kernels/cuda/cudnn_attention.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"
#include "kernels/presets.hpp"
#include "kernels/seeded_weights.hpp"

namespace cake {
namespace {

using cuda::bf16;

bool skip_without_gpu(benchmark::State& state) {
  const CudaInfo info = probe_cuda();
  if (!info.gpus.empty()) return false;
  state.SkipWithError(("no GPU: " + info.unavailable_reason).c_str());
  return true;
}

// Random bf16 tensor contents, uniform in [-bound, bound): never zeros (they run faster).
void fill_random(bf16* p, size_t count, float bound, uint32_t tensor, cudaStream_t s) {
  // seeded_linear_weight's bound is sqrt(3 / fan_in): fan_in = 3 / bound^2.
  cuda::fill_seeded_linear(p, count, 12345, tensor, std::max(1, static_cast<int>(3.0f / (bound * bound))), s);
}

// A buffer twice the size of the L2 cache; writing it evicts whatever an op left there.
class L2Scrubber {
 public:
  L2Scrubber() {
    int device = 0, l2_bytes = 0;
    CAKE_CUDA(cudaGetDevice(&device), "reading the current device");
    CAKE_CUDA(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "reading the L2 cache size");
    buffer_ = cuda::DeviceBuffer(2 * static_cast<size_t>(l2_bytes), "L2 scrub buffer");
  }
  void scrub(cudaStream_t stream) const {
    CAKE_CUDA(cudaMemsetAsync(buffer_.get(), 0, buffer_.bytes(), stream), "overwriting the L2 cache");
  }

 private:
  cuda::DeviceBuffer buffer_;
};

// Runs `work` twice to warm up, then once per benchmark iteration between two events; sets
// median_ms and the rate counters from the median. With `scrub`, the L2 is overwritten before
// each iteration, outside the events. Benchmarks fix their iteration counts, so each runs once
// (device time is scarce) rather than being re-run to fill a minimum time.
void time_iterations(benchmark::State& state, cudaStream_t stream, const std::function<void()>& work, double flops,
                     double bytes, const L2Scrubber* scrub = nullptr) {
  cuda::Event start, stop;
  for (int i = 0; i < 2; ++i) work();
  CAKE_CUDA(cudaStreamSynchronize(stream), "warm-up");
  std::vector<double> ms;
  for (auto _ : state) {
    if (scrub) scrub->scrub(stream);
    start.record(stream);
    work();
    stop.record(stream);
    stop.synchronize();
    const double t = stop.elapsed_ms_since(start);
    ms.push_back(t);
    state.SetIterationTime(t / 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const double median_ms = ms[ms.size() / 2];
  state.counters["median_ms"] = median_ms;
  if (flops > 0) state.counters["TFLOPs"] = flops / (median_ms * 1e-3) / 1e12;
  if (bytes > 0) state.counters["GBps"] = bytes / (median_ms * 1e-3) / 1e9;
}

std::vector<float> download_bf16(const bf16* device, size_t count, size_t offset, cudaStream_t stream) {
  std::vector<uint16_t> bits(count);
  CAKE_CUDA(cudaMemcpyAsync(bits.data(), device + offset, count * sizeof(uint16_t), cudaMemcpyDeviceToHost, stream),
            "downloading for the reference check");
  CAKE_CUDA(cudaStreamSynchronize(stream), "downloading for the reference check");
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t word = static_cast<uint32_t>(bits[i]) << 16;  // bf16 is the top half of a float
    std::memcpy(&out[i], &word, sizeof word);
  }
  return out;
}

// The kernel's output for a few query rows (the first, a middle one, the last: fewest to most
// keys) against the CPU reference on the same bf16 inputs. Returns the worst relative L2 error
// over those rows; NaN if any output is not finite.
double attention_error(const cuda::AttentionArgs& a, int64_t qkv_width, cudaStream_t stream) {
  const int64_t q_width = static_cast<int64_t>(a.q_heads) * a.head_dim;
  const int64_t kv_width = static_cast<int64_t>(a.kv_heads) * a.head_dim;
  double worst = 0;
  for (int64_t row : {int64_t{0}, static_cast<int64_t>(a.n) / 2, static_cast<int64_t>(a.n) - 1}) {
    const int64_t pos = a.first_pos + row;
    const std::vector<float> q = download_bf16(a.q, static_cast<size_t>(q_width), static_cast<size_t>(row * qkv_width), stream);
    const std::vector<float> k = download_bf16(a.k, static_cast<size_t>((pos + 1) * kv_width), 0, stream);
    const std::vector<float> v = download_bf16(a.v, static_cast<size_t>((pos + 1) * kv_width), 0, stream);
    const std::vector<float> got =
        download_bf16(a.out, static_cast<size_t>(q_width), static_cast<size_t>(row * a.out_row_stride), stream);
    std::vector<float> want(static_cast<size_t>(q_width));
    cpu::attention(q.data(), 1, pos, a.q_heads, k.data(), v.data(), a.kv_heads, a.head_dim, want.data());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (!std::isfinite(got[i])) return NAN;
      diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
      norm += static_cast<double>(want[i]) * want[i];
    }
    worst = std::max(worst, std::sqrt(diff / std::max(norm, 1e-30)));
  }
  return worst;
}

ModelConfig llama_layer() {
  ModelConfig m = preset_model("llama-3-8b");
  apply_model_override(m, "layers", "1");
  return m;
}

// ---- attention: ctx queries over [0, first_pos + ctx), llama-3-8b heads ----
// Args: context, tiling index, chunk (0 = the whole context from position 0; else the last
// `chunk` tokens at first_pos = context - chunk, as the compute lane's late chunks see it).
void BM_CudaAttention(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int64_t context = state.range(0);
  const auto tilings = cuda::attention_tilings(m.head_dim);
  const cuda::AttentionTiling tiling = tilings.at(static_cast<size_t>(state.range(1)));
  const int64_t n = state.range(2) == 0 ? context : state.range(2);
  const int64_t first_pos = context - n;
  state.SetLabel(tiling.name());
  cuda::Stream stream;
  const cuda::AttentionKernel kernel(0, m.head_dim, tiling);
  const size_t qkv_width = m.qkv_width();
  const size_t kv_row = static_cast<size_t>(m.kv_heads) * m.head_dim;
  cuda::DeviceBuffer q(n * qkv_width * sizeof(bf16)), k(context * kv_row * sizeof(bf16)),
      v(context * kv_row * sizeof(bf16)), out(n * static_cast<size_t>(m.q_heads) * m.head_dim * sizeof(bf16));
  fill_random(q.as<bf16>(), n * qkv_width, 2.0f, 1, stream.get());
  fill_random(k.as<bf16>(), context * kv_row, 1.0f, 2, stream.get());
  fill_random(v.as<bf16>(), context * kv_row, 1.0f, 3, stream.get());
  cuda::AttentionArgs a;
  a.q = q.as<bf16>();
  a.q_row_stride = static_cast<int64_t>(qkv_width);
  a.k = k.as<bf16>();
  a.v = v.as<bf16>();
  a.out = out.as<bf16>();
  a.out_row_stride = static_cast<int64_t>(m.q_heads) * m.head_dim;
  a.n = static_cast<int>(n);
  a.first_pos = first_pos;
  a.q_heads = m.q_heads;
  a.kv_heads = m.kv_heads;
  a.head_dim = m.head_dim;
  // The attention share of prefill_flops: 2 FLOPs per MAC, QK^T and PV, per key seen per head.
  const double keys_seen = static_cast<double>(n) * first_pos + static_cast<double>(n) * (n + 1) / 2;
  const double flops = 2.0 * 2.0 * keys_seen * m.q_heads * m.head_dim;
  // Check before timing: outputs poisoned (0xFF bytes are bf16 NaN), one launch, sampled rows
  // against the reference. The tolerance is the unit test's (tests/kernels/gpu_attention.cpp).
  CAKE_CUDA(cudaMemsetAsync(out.get(), 0xFF, out.bytes(), stream.get()), "poisoning the attention output");
  kernel.launch(a, stream.get());
  const double err = attention_error(a, static_cast<int64_t>(qkv_width), stream.get());
  state.counters["ref_rel_err"] = err;
  if (!(err < 1e-2)) {
    state.SkipWithError(cat("attention ", tiling.name(), " differs from the CPU reference: relative error ", err,
                            " (not timed)").c_str());
    return;
  }
  time_iterations(state, stream.get(), [&] { kernel.launch(a, stream.get()); }, flops, 0);
}

void attention_args(benchmark::internal::Benchmark* b) {
  const int tilings = static_cast<int>(cuda::attention_tilings(128).size());
  for (int64_t ctx : {4096, 16384, 32768, 65536})
    for (int t = 0; t < tilings; ++t) b->Args({ctx, t, 0});
  for (int64_t ctx : {16384, 32768, 65536}) b->Args({ctx, 0, 4096});
  // The default tiling again: the spread between two runs of one version in one process.
  for (int64_t ctx : {32768, 65536}) b->Args({ctx, 0, 0});
}
BENCHMARK(BM_CudaAttention)->Apply(attention_args)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(10);

// ---- cuDNN's fused attention, same shapes and buffers: Args: context, chunk (0 = whole) ----
// The first launch builds the shape's plan (counted apart: plan_build_ms); then timed as above.
void BM_CudnnAttention(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int64_t context = state.range(0);
  const int64_t n = state.range(1) == 0 ? context : state.range(1);
  const int64_t first_pos = context - n;
  cuda::Stream stream;
  std::unique_ptr<cuda::CudnnAttention> attention;
  try {
    attention = std::make_unique<cuda::CudnnAttention>(0, m.head_dim);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const size_t qkv_width = m.qkv_width();
  const size_t kv_row = static_cast<size_t>(m.kv_heads) * m.head_dim;
  cuda::DeviceBuffer q(n * qkv_width * sizeof(bf16)), k(context * kv_row * sizeof(bf16)),
      v(context * kv_row * sizeof(bf16)), out(n * static_cast<size_t>(m.q_heads) * m.head_dim * sizeof(bf16));
  fill_random(q.as<bf16>(), n * qkv_width, 2.0f, 1, stream.get());
  fill_random(k.as<bf16>(), context * kv_row, 1.0f, 2, stream.get());
  fill_random(v.as<bf16>(), context * kv_row, 1.0f, 3, stream.get());
  cuda::AttentionArgs a;
  a.q = q.as<bf16>();
  a.q_row_stride = static_cast<int64_t>(qkv_width);
  a.k = k.as<bf16>();
  a.v = v.as<bf16>();
  a.out = out.as<bf16>();
  a.out_row_stride = static_cast<int64_t>(m.q_heads) * m.head_dim;
  a.n = static_cast<int>(n);
  a.first_pos = first_pos;
  a.q_heads = m.q_heads;
  a.kv_heads = m.kv_heads;
  a.head_dim = m.head_dim;
  const double keys_seen = static_cast<double>(n) * first_pos + static_cast<double>(n) * (n + 1) / 2;
  const double flops = 2.0 * 2.0 * keys_seen * m.q_heads * m.head_dim;
  attention->prepare_plan(a, stream.get());
  state.SetLabel(cat("engine ", attention->stats().engine_global_index));
  state.counters["plan_build_ms"] = attention->stats().plan_build_ms_total;
  state.counters["workspace_MB"] = static_cast<double>(attention->stats().workspace_bytes_max) / 1e6;
  time_iterations(state, stream.get(), [&] { attention->launch(a, stream.get()); }, flops, 0);
}
BENCHMARK(BM_CudnnAttention)
    ->Args({4096, 0})
    ->Args({16384, 0})
    ->Args({32768, 0})
    ->Args({65536, 0})
    ->Args({32768, 1024})
    ->Args({32768, 4096})
    ->Args({65536, 4096})
    ->Args({32768, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(10);

// ---- what a chunked run's plans cost: every chunk shape of a context, built once: Args: context, chunk ----
void BM_CudnnPlans(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int64_t context = state.range(0);
  const int64_t chunk = state.range(1);
  cuda::Stream stream;
  for (auto _ : state) {
    std::unique_ptr<cuda::CudnnAttention> attention;
    try {
      attention = std::make_unique<cuda::CudnnAttention>(0, m.head_dim);
    } catch (const Error& e) {
      state.SkipWithError(e.what());
      return;
    }
    cuda::AttentionArgs a;
    a.q_row_stride = m.qkv_width();
    a.out_row_stride = static_cast<int64_t>(m.q_heads) * m.head_dim;
    a.q_heads = m.q_heads;
    a.kv_heads = m.kv_heads;
    a.head_dim = m.head_dim;
    const int64_t start_ns = now_ns();
    for (int64_t pos = 0; pos < context; pos += chunk) {
      a.n = static_cast<int>(std::min(chunk, context - pos));
      a.first_pos = pos;
      attention->prepare_plan(a, stream.get());
    }
    const double ms = ns_to_ms(now_ns() - start_ns);
    state.SetIterationTime(ms / 1e3);
    state.counters["plans"] = static_cast<double>(attention->stats().plans_built);
    state.counters["total_ms"] = ms;
    state.counters["per_plan_ms"] = ms / static_cast<double>(attention->stats().plans_built);
    state.counters["max_plan_ms"] = attention->stats().plan_build_ms_max;
  }
}
BENCHMARK(BM_CudnnPlans)->Args({32768, 1024})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

// ---- the four GEMMs of a llama-3-8b layer: Args: tokens, which ----
void BM_CudaGemm(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int n = static_cast<int>(state.range(0));
  struct Shape {
    const char* name;
    int in, out;
    bool residual;
  };
  const Shape shapes[] = {{"qkv", m.hidden, m.qkv_width(), false},
                          {"wo+residual", m.q_heads * m.head_dim, m.hidden, true},
                          {"gate_up", m.hidden, 2 * m.ffn, false},
                          {"down+residual", m.ffn, m.hidden, true}};
  const Shape& sh = shapes[state.range(1)];
  state.SetLabel(sh.name);
  cuda::Stream stream;
  cuda::Gemm gemm(stream.get());
  cuda::DeviceBuffer x(static_cast<size_t>(n) * sh.in * sizeof(bf16)), w(static_cast<size_t>(sh.out) * sh.in * sizeof(bf16)),
      y(static_cast<size_t>(n) * sh.out * sizeof(bf16));
  fill_random(x.as<bf16>(), static_cast<size_t>(n) * sh.in, 1.0f, 4, stream.get());
  fill_random(w.as<bf16>(), static_cast<size_t>(sh.out) * sh.in, 0.05f, 5, stream.get());
  fill_random(y.as<bf16>(), static_cast<size_t>(n) * sh.out, 1.0f, 6, stream.get());
  time_iterations(
      state, stream.get(),
      [&] { gemm.linear(x.as<bf16>(), n, sh.in, w.as<bf16>(), sh.out, y.as<bf16>(), sh.residual, sh.name); },
      2.0 * n * sh.in * sh.out, 0);
}
BENCHMARK(BM_CudaGemm)
    ->ArgsProduct({{4096, 16384, 32768, 65536}, {0, 1, 2, 3}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(20);

// ---- the memory-bound ops at n tokens (GB/s of bytes read + written once) ----
void BM_CudaElementwise(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int n = static_cast<int>(state.range(0));
  const int op = static_cast<int>(state.range(1));
  cuda::Stream stream;
  cudaStream_t s = stream.get();
  const size_t h = m.hidden;
  const size_t width = std::max<size_t>(m.qkv_width(), 2 * static_cast<size_t>(m.ffn));
  cuda::DeviceBuffer a(n * width * sizeof(bf16)), b(n * width * sizeof(bf16)), w(h * sizeof(bf16)),
      kc(static_cast<size_t>(n) * m.kv_heads * m.head_dim * sizeof(bf16)),
      vc(static_cast<size_t>(n) * m.kv_heads * m.head_dim * sizeof(bf16)), tokens(n * sizeof(int32_t)),
      table(static_cast<size_t>(m.vocab) * h * sizeof(bf16));
  fill_random(a.as<bf16>(), n * width, 1.0f, 7, s);
  fill_random(w.as<bf16>(), h, 1.0f, 8, s);
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(splitmix64(i) % m.vocab);
  CAKE_CUDA(cudaMemcpyAsync(tokens.get(), ids.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, s), "tokens");
  fill_random(table.as<bf16>(), m.vocab * h, 1.0f, 9, s);
  const cuda::HeadShape shape{m.q_heads, m.kv_heads, m.head_dim};
  const double tok = n;
  const L2Scrubber scrubber;  // memory-bound: each iteration reads from HBM
  switch (op) {
    case 0:
      state.SetLabel("rmsnorm");
      time_iterations(state, s, [&] { cuda::rmsnorm(a.as<bf16>(), w.as<bf16>(), b.as<bf16>(), n, m.hidden, 1e-5f, s); },
                      0, 2.0 * tok * h * 2, &scrubber);
      break;
    case 1:
      state.SetLabel("rope+kv");
      // Reads Q,K,V, writes Q, K, V (Q in place).
      time_iterations(state, s,
                      [&] { cuda::rope_write_kv(a.as<bf16>(), nullptr, n, 0, shape, m.rope_theta, kc.as<bf16>(), vc.as<bf16>(), s); },
                      0, 2.0 * tok * m.qkv_width() * 2, &scrubber);
      break;
    case 2:
      state.SetLabel("swiglu");
      time_iterations(state, s, [&] { cuda::swiglu(a.as<bf16>(), b.as<bf16>(), n, m.ffn, s); }, 0,
                      3.0 * tok * m.ffn * 2, &scrubber);
      break;
    default:
      state.SetLabel("embedding");
      time_iterations(state, s,
                      [&] { cuda::embedding_gather(tokens.as<int32_t>(), n, table.as<bf16>(), m.hidden, b.as<bf16>(), s); },
                      0, 2.0 * tok * h * 2, &scrubber);
      break;
  }
}
BENCHMARK(BM_CudaElementwise)
    ->ArgsProduct({{4096, 16384, 32768, 65536}, {0, 1, 2, 3}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(20);

// Args' attention index: 0 = mma, 1 = cudnn.
AttentionChoice attention_arg(int64_t index) { return index == 0 ? AttentionChoice::mma : AttentionChoice::cudnn; }

// ---- one whole llama-3-8b layer through the backend: Args: context, chunk (0 = one chunk), attention ----
// Embedding and the layer for every token (no LM head): prefill_flops(context, 0) with layers = 1.
// Warm-up builds cuDNN's plans of every chunk shape before timing.
void BM_CudaLayer(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = llama_layer();
  const int64_t context = state.range(0);
  const int64_t chunk = state.range(1) == 0 ? context : state.range(1);
  BackendOptions options;
  options.max_context_tokens = context;
  options.max_chunk_tokens = chunk;
  options.attention = attention_arg(state.range(2));
  auto backend = make_cuda_backend(m, options);
  state.SetLabel(backend->details().substr(0, 60));
  const cudaStream_t s = cuda_backend_stream(*backend);
  std::vector<int32_t> tokens(context);
  for (int64_t i = 0; i < context; ++i) tokens[i] = static_cast<int32_t>(splitmix64(i) % m.vocab);
  time_iterations(
      state, s,
      [&] {
        for (int64_t pos = 0; pos < context; pos += chunk)
          backend->prefill_chunk(std::span<const int32_t>(tokens.data() + pos, std::min(chunk, context - pos)), pos);
      },
      m.prefill_flops(context, 0), 0);
}
BENCHMARK(BM_CudaLayer)
    ->ArgsProduct({{4096, 16384, 32768, 65536}, {0}, {0, 1}})
    ->Args({1024, 0, 1})
    ->Args({32768, 1024, 1})
    ->Args({32768, 2048, 1})
    ->Args({32768, 4096, 1})
    ->Args({65536, 4096, 1})
    ->Args({32768, 4096, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

// ---- the whole llama-3-8b: backend creation (16 GB of weights generated on the GPU) and a
// 32K-token prefill in 4K chunks plus first_token of one more token. first_token returns to the
// host, so this one is timed on the host clock (from an idle stream to the token on the host).
void BM_CudaModel(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ModelConfig m = preset_model("llama-3-8b");
  const int64_t context = state.range(0);
  const int64_t chunk = state.range(1);
  BackendOptions options;
  options.max_context_tokens = context + 1;
  options.max_chunk_tokens = chunk;
  options.attention = attention_arg(state.range(2));
  const int64_t create_start_ns = now_ns();
  auto backend = make_cuda_backend(m, options);
  state.SetLabel(backend->details().substr(0, 60));
  state.counters["create_ms"] = ns_to_ms(now_ns() - create_start_ns);
  state.counters["weights_GB"] = static_cast<double>(m.parameter_count()) * sizeof(bf16) / 1e9;
  std::vector<int32_t> tokens(context + 1);
  for (int64_t i = 0; i <= context; ++i) tokens[i] = static_cast<int32_t>(splitmix64(i) % m.vocab);
  auto run = [&] {
    for (int64_t pos = 0; pos < context; pos += chunk)
      backend->prefill_chunk(std::span<const int32_t>(tokens.data() + pos, std::min(chunk, context - pos)), pos);
    return backend->first_token(std::span<const int32_t>(tokens.data() + context, 1), context);
  };
  const int64_t warm_start_ns = now_ns();
  run();  // warm-up (builds cuDNN's plans of every chunk shape)
  state.counters["warmup_ms"] = ns_to_ms(now_ns() - warm_start_ns);
  std::vector<double> ms;
  for (auto _ : state) {
    backend->synchronize();
    const int64_t start_ns = now_ns();
    benchmark::DoNotOptimize(run());
    const double t = ns_to_ms(now_ns() - start_ns);
    ms.push_back(t);
    state.SetIterationTime(t / 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const double median_ms = ms[ms.size() / 2];
  state.counters["median_ms"] = median_ms;
  state.counters["TFLOPs"] = (m.prefill_flops(context, 0) + m.prefill_flops(1, context)) / (median_ms * 1e-3) / 1e12;
}
BENCHMARK(BM_CudaModel)
    ->Args({32768, 1024, 1})
    ->Args({32768, 2048, 1})
    ->Args({32768, 4096, 1})
    ->Args({65536, 4096, 1})
    ->Args({32768, 4096, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace cake

#endif  // CAKE_HAVE_CUDA_BACKEND
