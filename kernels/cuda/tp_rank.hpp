// One tensor-parallel rank of the CUDA backend (kernels/tp_shard.hpp says what it owns): its
// slices of the seeded weights, a KV cache of its KV heads only, and an NCCL all-reduce (bf16,
// sum, in place on the residual stream, on the compute stream) after o_proj and after the MLP.
// The embedding, final norm and LM head are replicated: every rank holds and runs them.
#pragma once

#include <memory>

#include "kernels/compute_backend.hpp"
#include "kernels/cuda/nccl_lib.hpp"

namespace cake {

struct TpRank {
  int rank = 0;
  int world = 1;                           // 1: no tensor parallelism
  const nccl::Communicator* comm = nullptr;  // world > 1; outlives the backend
};

// The GPU is options.device. model() is the whole model; kv_cache() this rank's shard.
std::unique_ptr<ComputeBackend> make_cuda_backend_rank(const ModelConfig& model, const BackendOptions& options,
                                                       const TpRank& tp);

}  // namespace cake
