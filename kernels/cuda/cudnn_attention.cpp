// cuDNN fused flash attention through the backend (graph) C API. The graph is the one cuDNN's
// fused-attention engines recognise (the same operations cudnn_frontend lowers its SDPA node to
// for cuDNN 9.x before 9.21):
//
//   S  = matmul(Q, K^T)                        fp32, [1, Hq, n, s_kv]   (GQA: K has Hk heads)
//   S' = S * scale                             scale = 1/sqrt(head_dim), passed by value
//   keep = (row + s_kv - n) >= col             causal, aligned bottom-right: row i is position
//                                              first_pos + i because s_kv - n = first_pos
//   S'' = keep ? S' : -inf
//   M = max_col S'', E = exp(S'' - M), L = sum_col E, stats = M + log L (virtual, unused)
//   P = E / L                                  bf16 (the engine wants the I/O type here)
//   O = matmul(P, V)                           bf16, written in our [n][Hq][d] layout
//
// Every descriptor is owned by an RAII wrapper; every status is checked and reported with what
// was being built and cuDNN's own last error message.
#include "kernels/cuda/cudnn_attention.hpp"

#include "common/clock.hpp"
#include "common/cuda_check.hpp"
#include "common/error.hpp"

#if defined(CAKE_HAVE_CUDNN)

#include <cudnn.h>

#include <array>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/cuda_raii.hpp"

namespace cake::cuda {
namespace {

std::string cudnn_last_error() {
  char text[2048] = {0};
  cudnnGetLastErrorString(text, sizeof text);
  return text;
}

[[noreturn]] void throw_cudnn(cudnnStatus_t status, const char* call, std::string_view context, const char* file,
                              int line) {
  const std::string detail = cudnn_last_error();
  throw Error(cat(context, context.empty() ? "" : ": ", call, " failed: ", cudnnGetErrorString(status),
                  detail.empty() ? "" : cat(" (", detail, ")"), " at ", file, ":", line));
}

#define CAKE_CUDNN(call, context)                                                      \
  do {                                                                                 \
    const cudnnStatus_t cake_status_ = (call);                                         \
    if (cake_status_ != CUDNN_STATUS_SUCCESS)                                          \
      ::cake::cuda::throw_cudnn(cake_status_, #call, (context), __FILE__, __LINE__);   \
  } while (0)

std::string version_string(size_t v) { return cat(v / 10000, ".", (v / 100) % 100, ".", v % 100); }

class Handle {
 public:
  explicit Handle(int device) {
    CAKE_CUDA(cudaSetDevice(device), cat("selecting GPU ", device, " for cuDNN"));
    CAKE_CUDNN(cudnnCreate(&h_), cat("creating a cuDNN handle on GPU ", device));
  }
  ~Handle() {
    if (h_ != nullptr) cudnnDestroy(h_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  cudnnHandle_t get() const { return h_; }

 private:
  cudnnHandle_t h_ = nullptr;
};

// One backend descriptor. `what` names it in every error ("tensor S", "operation graph").
class Descriptor {
 public:
  Descriptor(cudnnBackendDescriptorType_t type, std::string what) : what_(std::move(what)) {
    CAKE_CUDNN(cudnnBackendCreateDescriptor(type, &d_), cat("creating cuDNN descriptor ", what_));
  }
  ~Descriptor() {
    if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
  }
  Descriptor(Descriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)), what_(std::move(o.what_)) {}
  Descriptor& operator=(Descriptor&& o) noexcept {
    if (this != &o) {
      if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
      d_ = std::exchange(o.d_, nullptr);
      what_ = std::move(o.what_);
    }
    return *this;
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  const std::string& what() const { return what_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values,
           const char* attribute) {
    CAKE_CUDNN(cudnnBackendSetAttribute(d_, name, type, count, values), cat("setting ", attribute, " of ", what_));
  }
  void set_int64(cudnnBackendAttributeName_t name, int64_t v, const char* attribute) {
    set(name, CUDNN_TYPE_INT64, 1, &v, attribute);
  }
  void set_type(cudnnBackendAttributeName_t name, cudnnDataType_t v, const char* attribute) {
    set(name, CUDNN_TYPE_DATA_TYPE, 1, &v, attribute);
  }
  void set_desc(cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t v, const char* attribute) {
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v, attribute);
  }
  void finalize() { CAKE_CUDNN(cudnnBackendFinalize(d_), cat("finalizing ", what_)); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
  std::string what_;
};

using Dims = std::array<int64_t, 4>;

// Everything baked into a plan: the shape and the strides of the caller's buffers.
struct PlanKey {
  int n;
  int64_t first_pos;
  int64_t q_row_stride;
  int64_t out_row_stride;
  int q_heads;
  int kv_heads;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : {static_cast<int64_t>(k.n), k.first_pos, k.q_row_stride, k.out_row_stride,
                      static_cast<int64_t>(k.q_heads), static_cast<int64_t>(k.kv_heads)})
      h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

// Unique ids of the tensors the caller provides at execution time.
enum Uid : int64_t { kQ = 1, kK = 2, kV = 3, kO = 4, kScale = 5, kNegInf = 6, kSeqQ = 7, kSeqKv = 8, kFirstVirtual = 100 };

// A finalized plan with everything it references kept alive, and the host scalars it reads by value.
struct Plan {
  std::vector<Descriptor> descriptors;  // tensors, operations, graph, engine config, plan
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace_bytes = 0;
  int64_t engine_global_index = -1;
  float scale = 0;
  float neg_inf = -std::numeric_limits<float>::infinity();
  int32_t seq_q = 0;
  int32_t seq_kv = 0;
};

// Builds the operation graph of one shape into a Plan.
class GraphBuilder {
 public:
  GraphBuilder(Plan& plan, cudnnHandle_t handle) : plan_(plan), handle_(handle) {}

  cudnnBackendDescriptor_t tensor(const char* name, cudnnDataType_t type, const Dims& dims, const Dims& strides,
                                  bool is_virtual, bool by_value = false, int64_t uid = 0) {
    Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, cat("tensor ", name));
    const int64_t id = uid != 0 ? uid : next_virtual_uid_++;
    t.set_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type, "CUDNN_ATTR_TENSOR_DATA_TYPE");
    t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "CUDNN_ATTR_TENSOR_DIMENSIONS");
    t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "CUDNN_ATTR_TENSOR_STRIDES");
    t.set_int64(CUDNN_ATTR_TENSOR_UNIQUE_ID, id, "CUDNN_ATTR_TENSOR_UNIQUE_ID");
    t.set_int64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16, "CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT");
    t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "CUDNN_ATTR_TENSOR_IS_VIRTUAL");
    if (by_value) t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "CUDNN_ATTR_TENSOR_IS_BY_VALUE");
    t.finalize();
    return keep(std::move(t));
  }

  cudnnBackendDescriptor_t scalar(const char* name, cudnnDataType_t type, int64_t uid) {
    return tensor(name, type, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true, uid);
  }

  // y = mode(x [, b [, t]]); axis for GEN_INDEX (and, as cudnn_frontend does, the index arithmetic).
  void pointwise(const char* name, cudnnPointwiseMode_t mode, cudnnDataType_t math, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y, int64_t axis = -1) {
    Descriptor pw(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, cat("pointwise descriptor ", name));
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "CUDNN_ATTR_POINTWISE_MODE");
    pw.set_type(CUDNN_ATTR_POINTWISE_MATH_PREC, math, "CUDNN_ATTR_POINTWISE_MATH_PREC");
    if (axis >= 0) pw.set_int64(CUDNN_ATTR_POINTWISE_AXIS, axis, "CUDNN_ATTR_POINTWISE_AXIS");
    pw.finalize();
    Descriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, cat("pointwise operation ", name));
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw.get(), "CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR");
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "CUDNN_ATTR_OPERATION_POINTWISE_XDESC");
    if (b != nullptr) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, "CUDNN_ATTR_OPERATION_POINTWISE_BDESC");
    if (t != nullptr) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t, "CUDNN_ATTR_OPERATION_POINTWISE_TDESC");
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "CUDNN_ATTR_OPERATION_POINTWISE_YDESC");
    op.finalize();
    keep(std::move(pw));
    ops_.push_back(keep(std::move(op)));
  }

  void matmul(const char* name, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    Descriptor mm(CUDNN_BACKEND_MATMUL_DESCRIPTOR, cat("matmul descriptor ", name));
    mm.set_type(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT, "CUDNN_ATTR_MATMUL_COMP_TYPE");
    mm.finalize();
    Descriptor op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, cat("matmul operation ", name));
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "CUDNN_ATTR_OPERATION_MATMUL_ADESC");
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, "CUDNN_ATTR_OPERATION_MATMUL_BDESC");
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "CUDNN_ATTR_OPERATION_MATMUL_CDESC");
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, mm.get(), "CUDNN_ATTR_OPERATION_MATMUL_DESC");
    op.finalize();
    keep(std::move(mm));
    ops_.push_back(keep(std::move(op)));
  }

  void reduction(const char* name, cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    Descriptor red(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, cat("reduction descriptor ", name));
    red.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "CUDNN_ATTR_REDUCTION_OPERATOR");
    red.set_type(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT, "CUDNN_ATTR_REDUCTION_COMP_TYPE");
    red.finalize();
    Descriptor op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, cat("reduction operation ", name));
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "CUDNN_ATTR_OPERATION_REDUCTION_XDESC");
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "CUDNN_ATTR_OPERATION_REDUCTION_YDESC");
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, red.get(), "CUDNN_ATTR_OPERATION_REDUCTION_DESC");
    op.finalize();
    keep(std::move(red));
    ops_.push_back(keep(std::move(op)));
  }

  // The operation graph, the heuristics' engine configs in order, and the first that finalizes
  // into an execution plan. Throws EnvironmentError listing why each config was refused.
  void finish(const std::string& shape) {
    Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, cat("operation graph (", shape, ")"));
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops_.size()),
              ops_.data(), "CUDNN_ATTR_OPERATIONGRAPH_OPS");
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "CUDNN_ATTR_OPERATIONGRAPH_HANDLE");
    graph.finalize();
    const cudnnBackendDescriptor_t graph_desc = keep(std::move(graph));

    std::string refusals;
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, cat("engine heuristics (", shape, ")"));
      heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph_desc, "CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH");
      heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "CUDNN_ATTR_ENGINEHEUR_MODE");
      const cudnnStatus_t heur_status = cudnnBackendFinalize(heur.get());
      if (heur_status != CUDNN_STATUS_SUCCESS) {
        refusals += cat("\n  heuristics mode ", static_cast<int>(mode), ": ", cudnnGetErrorString(heur_status), " ",
                        cudnn_last_error());
        continue;
      }
      int64_t count = 0;
      CAKE_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                          &count, nullptr),
                 cat("counting the engine configs of ", heur.what()));
      std::vector<Descriptor> configs;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (int64_t i = 0; i < count; ++i) {
        configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, cat("engine config ", i, " (", shape, ")"));
        raw.push_back(configs.back().get());
      }
      int64_t returned = 0;
      if (count > 0)
        CAKE_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            count, &returned, raw.data()),
                   cat("reading the engine configs of ", heur.what()));
      for (int64_t i = 0; i < returned; ++i) {
        Descriptor exec(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, cat("execution plan ", i, " (", shape, ")"));
        exec.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "CUDNN_ATTR_EXECUTION_PLAN_HANDLE");
        exec.set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, raw[i], "CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG");
        const cudnnStatus_t status = cudnnBackendFinalize(exec.get());
        const int64_t engine = engine_index(raw[i]);
        if (status != CUDNN_STATUS_SUCCESS) {
          refusals += cat("\n  mode ", static_cast<int>(mode), " config ", i, " (engine ", engine,
                          "): ", cudnnGetErrorString(status), " ", cudnn_last_error());
          continue;
        }
        int64_t got = 0;
        CAKE_CUDNN(cudnnBackendGetAttribute(exec.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                            &got, &plan_.workspace_bytes),
                   cat("reading the workspace size of ", exec.what()));
        plan_.engine_global_index = engine;
        plan_.plan = exec.get();
        keep(std::move(heur));
        keep(std::move(configs[static_cast<size_t>(i)]));
        keep(std::move(exec));
        return;
      }
    }
    throw EnvironmentError(cat("cuDNN found no engine for fused attention (", shape, "):", refusals));
  }

 private:
  cudnnBackendDescriptor_t keep(Descriptor d) {
    const cudnnBackendDescriptor_t raw = d.get();
    plan_.descriptors.push_back(std::move(d));
    return raw;
  }

  // The engine behind a config, for the report; -1 when cuDNN does not say (not an error).
  static int64_t engine_index(cudnnBackendDescriptor_t config) {
    cudnnBackendDescriptor_t engine = nullptr;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) != CUDNN_STATUS_SUCCESS) return -1;
    int64_t count = 0, index = -1;
    if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count,
                                 &engine) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &count, &index) !=
            CUDNN_STATUS_SUCCESS)
      index = -1;
    cudnnBackendDestroyDescriptor(engine);
    return index;
  }

  Plan& plan_;
  cudnnHandle_t handle_;
  std::vector<cudnnBackendDescriptor_t> ops_;
  int64_t next_virtual_uid_ = kFirstVirtual;
};

std::unique_ptr<Plan> build_plan(cudnnHandle_t handle, const PlanKey& k, int head_dim) {
  auto plan = std::make_unique<Plan>();
  const int64_t n = k.n, d = head_dim, hq = k.q_heads, hk = k.kv_heads;
  const int64_t s_kv = k.first_pos + n;
  const int64_t kv_row = hk * d;  // the cache's token stride
  plan->scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  plan->seq_q = static_cast<int32_t>(n);
  plan->seq_kv = static_cast<int32_t>(s_kv);
  const std::string shape = cat("n ", n, " first_pos ", k.first_pos, " heads ", hq, "/", hk, " head_dim ", d);

  GraphBuilder g(*plan, handle);
  const auto bf16 = CUDNN_DATA_BFLOAT16;
  const auto f32 = CUDNN_DATA_FLOAT;
  // Caller tensors, in our layouts: Q rows of the fused qkv buffer, K/V cache rows, O rows.
  const auto q = g.tensor("Q", bf16, {1, hq, n, d}, {n * k.q_row_stride, d, k.q_row_stride, 1}, false, false, kQ);
  const auto kt = g.tensor("K^T", bf16, {1, hk, d, s_kv}, {s_kv * kv_row, d, 1, kv_row}, false, false, kK);
  const auto v = g.tensor("V", bf16, {1, hk, s_kv, d}, {s_kv * kv_row, d, kv_row, 1}, false, false, kV);
  const auto o = g.tensor("O", bf16, {1, hq, n, d}, {n * k.out_row_stride, d, k.out_row_stride, 1}, false, false, kO);
  const auto scale = g.scalar("attention scale", f32, kScale);
  const auto neg_inf = g.scalar("-inf", f32, kNegInf);
  const auto seq_q = g.scalar("s_q", CUDNN_DATA_INT32, kSeqQ);
  const auto seq_kv = g.scalar("s_kv", CUDNN_DATA_INT32, kSeqKv);

  const Dims sd{1, hq, n, s_kv}, ss{hq * n * s_kv, n * s_kv, s_kv, 1};
  const Dims rd{1, hq, n, 1}, rs{hq * n, n, 1, 1};
  const auto s = g.tensor("S", f32, sd, ss, true);
  g.matmul("Q K^T", q, kt, s);
  const auto s_scaled = g.tensor("S scaled", f32, sd, ss, true);
  g.pointwise("scale", CUDNN_POINTWISE_MUL, f32, s, scale, nullptr, s_scaled);

  const auto row = g.tensor("row index", CUDNN_DATA_INT32, sd, ss, true);
  g.pointwise("row index", CUDNN_POINTWISE_GEN_INDEX, f32, s_scaled, nullptr, nullptr, row, 2);
  const auto col = g.tensor("column index", CUDNN_DATA_INT32, sd, ss, true);
  g.pointwise("column index", CUDNN_POINTWISE_GEN_INDEX, f32, s_scaled, nullptr, nullptr, col, 3);
  const auto row_plus_kv = g.tensor("row + s_kv", CUDNN_DATA_INT32, sd, ss, true);
  g.pointwise("row + s_kv", CUDNN_POINTWISE_ADD, CUDNN_DATA_INT32, row, seq_kv, nullptr, row_plus_kv, 3);
  const auto diagonal = g.tensor("row + s_kv - s_q", CUDNN_DATA_INT32, sd, ss, true);
  g.pointwise("row + s_kv - s_q", CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32, row_plus_kv, seq_q, nullptr, diagonal, 3);
  const auto keep = g.tensor("causal keep", CUDNN_DATA_BOOLEAN, sd, ss, true);
  g.pointwise("diagonal >= column", CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, diagonal, col, nullptr, keep);
  const auto masked = g.tensor("S masked", f32, sd, ss, true);
  g.pointwise("causal select", CUDNN_POINTWISE_BINARY_SELECT, f32, s_scaled, neg_inf, keep, masked);

  const auto row_max = g.tensor("row max", f32, rd, rs, true);
  g.reduction("row max", CUDNN_REDUCE_TENSOR_MAX, masked, row_max);
  const auto centered = g.tensor("S - max", f32, sd, ss, true);
  g.pointwise("S - max", CUDNN_POINTWISE_SUB, f32, masked, row_max, nullptr, centered);
  const auto exps = g.tensor("exp", f32, sd, ss, true);
  g.pointwise("exp", CUDNN_POINTWISE_EXP, f32, centered, nullptr, nullptr, exps);
  const auto row_sum = g.tensor("row sum", f32, rd, rs, true);
  g.reduction("row sum", CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  const auto log_sum = g.tensor("log sum", f32, rd, rs, true);
  g.pointwise("log sum", CUDNN_POINTWISE_LOG, f32, row_sum, nullptr, nullptr, log_sum);
  const auto stats = g.tensor("stats", f32, rd, rs, true);
  g.pointwise("stats", CUDNN_POINTWISE_ADD, f32, row_max, log_sum, nullptr, stats);
  const auto probs = g.tensor("P", bf16, sd, ss, true);
  g.pointwise("P", CUDNN_POINTWISE_DIV, f32, exps, row_sum, nullptr, probs);
  g.matmul("P V", probs, v, o);

  g.finish(shape);
  return plan;
}

}  // namespace

struct CudnnAttention::Impl {
  int device;
  int head_dim;
  Handle handle;
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans;
  DeviceBuffer workspace;
  CudnnPlanStats stats;

  Impl(int dev, int hd) : device(dev), head_dim(hd), handle(dev) {}

  const Plan& plan_for(const PlanKey& key, cudaStream_t stream) {
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    const int64_t start_ns = now_ns();
    std::unique_ptr<Plan> plan = build_plan(handle.get(), key, head_dim);
    const double ms = ns_to_ms(now_ns() - start_ns);
    stats.plans_built += 1;
    stats.plan_build_ms_total += ms;
    stats.plan_build_ms_max = std::max(stats.plan_build_ms_max, ms);
    stats.engine_global_index = plan->engine_global_index;
    stats.workspace_bytes_max = std::max(stats.workspace_bytes_max, plan->workspace_bytes);
    if (static_cast<size_t>(plan->workspace_bytes) > workspace.bytes()) {
      // Earlier launches on the stream may still use the old workspace.
      CAKE_CUDA(cudaStreamSynchronize(stream), "waiting for attention before growing cuDNN's workspace");
      workspace = DeviceBuffer(static_cast<size_t>(plan->workspace_bytes), "cuDNN attention workspace");
    }
    return *plans.emplace(key, std::move(plan)).first->second;
  }
};

bool cudnn_attention_built() { return true; }

std::string cudnn_version_text() {
  return cat("cuDNN ", version_string(cudnnGetVersion()), " (compiled against ", version_string(CUDNN_VERSION), ")");
}

CudnnAttention::CudnnAttention(int device, int head_dim) {
  const size_t runtime = cudnnGetVersion();
  if (runtime < 90300)
    throw EnvironmentError(cat("cuDNN attention needs cuDNN 9.3 or later at run time (causal masks aligned to the "
                               "bottom right); this process loaded ",
                               version_string(runtime)));
  if (head_dim <= 0 || head_dim > 256 || head_dim % 8 != 0)
    throw UsageError(cat("cuDNN fused attention takes head_dim a multiple of 8 up to 256; the model has ", head_dim));
  impl_ = std::make_unique<Impl>(device, head_dim);
}

CudnnAttention::~CudnnAttention() = default;

namespace {
PlanKey checked_key(const AttentionArgs& a, int head_dim) {
  if (a.head_dim != head_dim)
    throw UsageError(cat("cuDNN attention launched with head_dim ", a.head_dim, " on an instance for ", head_dim));
  if (a.kv_heads <= 0 || a.q_heads % a.kv_heads != 0)
    throw UsageError(cat("cuDNN attention: q_heads ", a.q_heads, " is not a multiple of kv_heads ", a.kv_heads));
  if (a.first_pos < 0 || a.first_pos + a.n > std::numeric_limits<int32_t>::max())
    throw UsageError(cat("cuDNN attention: positions [", a.first_pos, ", ", a.first_pos + a.n, ") outside int32"));
  return PlanKey{a.n, a.first_pos, a.q_row_stride, a.out_row_stride, a.q_heads, a.kv_heads};
}
}  // namespace

void CudnnAttention::prepare_plan(const AttentionArgs& a, cudaStream_t stream) {
  if (a.n <= 0) return;
  impl_->plan_for(checked_key(a, impl_->head_dim), stream);
}

void CudnnAttention::launch(const AttentionArgs& a, cudaStream_t stream) {
  if (a.n <= 0) return;
  Impl& im = *impl_;
  const Plan& plan = im.plan_for(checked_key(a, im.head_dim), stream);

  const std::string what = cat("cuDNN attention n=", a.n, " first_pos=", a.first_pos);
  std::array<int64_t, 8> uids{kQ, kK, kV, kO, kScale, kNegInf, kSeqQ, kSeqKv};
  std::array<void*, 8> pointers{const_cast<__nv_bfloat16*>(a.q),     const_cast<__nv_bfloat16*>(a.k),
                                const_cast<__nv_bfloat16*>(a.v),     a.out,
                                const_cast<float*>(&plan.scale),     const_cast<float*>(&plan.neg_inf),
                                const_cast<int32_t*>(&plan.seq_q),   const_cast<int32_t*>(&plan.seq_kv)};
  void* workspace = plan.workspace_bytes > 0 ? im.workspace.get() : nullptr;
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, cat("variant pack of ", what));
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.size(), uids.data(),
           "CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS");
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.size(), pointers.data(),
           "CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS");
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "CUDNN_ATTR_VARIANT_PACK_WORKSPACE");
  pack.finalize();
  CAKE_CUDNN(cudnnSetStream(im.handle.get(), stream), cat("setting the stream of ", what));
  CAKE_CUDNN(cudnnBackendExecute(im.handle.get(), plan.plan, pack.get()), cat("executing ", what));
}

const CudnnPlanStats& CudnnAttention::stats() const { return impl_->stats; }

std::string CudnnAttention::describe() const {
  return cat(cudnn_version_text(), " fused flash attention (graph API), engine ", impl_->stats.engine_global_index);
}

}  // namespace cake::cuda

#else  // built without cuDNN

namespace cake::cuda {

namespace {
constexpr const char* kWhyNot =
    "this binary was built without cuDNN (CMake option CAKE_ENABLE_CUDNN=OFF, or cudnn_graph.h / libcudnn.so "
    "not found at configure time)";
}

bool cudnn_attention_built() { return false; }
std::string cudnn_version_text() { return kWhyNot; }

struct CudnnAttention::Impl {};

CudnnAttention::CudnnAttention(int, int) { throw EnvironmentError(cat("cuDNN attention unavailable: ", kWhyNot)); }
CudnnAttention::~CudnnAttention() = default;
void CudnnAttention::launch(const AttentionArgs&, cudaStream_t) { throw EnvironmentError(kWhyNot); }
void CudnnAttention::prepare_plan(const AttentionArgs&, cudaStream_t) { throw EnvironmentError(kWhyNot); }
const CudnnPlanStats& CudnnAttention::stats() const {
  static const CudnnPlanStats none;
  return none;
}
std::string CudnnAttention::describe() const { return kWhyNot; }

}  // namespace cake::cuda

#endif
