// Causal GQA attention of a chunk of queries over the KV cache through cuDNN's fused flash
// attention (the cuDNN graph/backend C API: matmul, scale, causal mask, softmax, matmul, which
// cuDNN fuses into one Hopper kernel). Same contract and layouts as AttentionKernel (attention.hpp):
// queries at positions [first_pos, first_pos + n) each attend to keys [0, first_pos + i].
//
// cuDNN needs an execution plan per shape; plans are built on the first launch of a shape and
// cached (key: n, first_pos, strides, heads), so a run's chunk shapes are built once, during the
// untimed reference prefill that precedes every timed repetition. stats() says how many were built
// and what that cost.
//
// Built only with CAKE_HAVE_CUDNN (CMake option CAKE_ENABLE_CUDNN and cuDNN 9 found); without it
// the constructor throws EnvironmentError saying so and cudnn_attention_built() is false.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cuda/attention.hpp"

namespace cake::cuda {

// True when this binary was compiled against cuDNN.
bool cudnn_attention_built();

// "cuDNN 9.19.0 (compiled against 9.19.0)", or why there is none. Loads the library when built
// with it.
std::string cudnn_version_text();

struct CudnnPlanStats {
  int64_t plans_built = 0;
  double plan_build_ms_total = 0;  // host time in graph build + heuristics + plan finalize
  double plan_build_ms_max = 0;
  int64_t engine_global_index = -1;  // cuDNN engine of the last plan built
  int64_t workspace_bytes_max = 0;
};

class CudnnAttention {
 public:
  // Throws EnvironmentError when cuDNN is missing or older than 9.3 at run time; UsageError for
  // head_dim outside what cuDNN's fused attention takes (multiples of 8 up to 256).
  CudnnAttention(int device, int head_dim);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Enqueues on `stream`; builds the shape's plan first when it is new (host work, and a stream
  // synchronisation if the plan needs a larger workspace than any before it).
  void launch(const AttentionArgs& args, cudaStream_t stream);
  // Builds the plan of args' shape without running it (pointers unused): a probe that cuDNN can do
  // this attention here at all. Throws EnvironmentError with every engine's refusal otherwise.
  void prepare_plan(const AttentionArgs& args, cudaStream_t stream);
  const CudnnPlanStats& stats() const;
  // "cuDNN 9.19.0 fused attention, engine 7" for reports.
  std::string describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cake::cuda
