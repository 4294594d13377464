// Tensor-parallel prefill in one process: one thread per GPU, each driving one rank of the CUDA
// backend (kernels/cuda/tp_rank.hpp) on its own GPU; the ranks' communicator is made with
// ncclCommInitRank from a unique id shared in the process. Plain C++: no CUDA headers.
//
// To the engine it is one ComputeBackend: every call runs on every rank (each on its thread) and
// returns when all have. kv_cache() is a composite view of the shards (rank r's layer l is layer
// r * layers + l, kv_heads / world heads each), whose chunk payload is the concatenation of the
// ranks' store shards: references, checksums and verification read every rank's KV through it.
// kv_shard(r) is rank r's own cache; the load lanes fill those. A gated prefill asks the gate once
// per step for all ranks (the first rank to reach a step asks; the others take its answer), so
// every rank stops at the same layer and no all-reduce is left without its peers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/compute_backend.hpp"

namespace cake {

// Ranks on GPUs devices[0..world-1] (options.device is ignored). Throws UsageError when the model
// does not split over world ranks, EnvironmentError when NCCL or a GPU is missing.
std::unique_ptr<ComputeBackend> make_cuda_tp_backend(const ModelConfig& model, const BackendOptions& options,
                                                     const std::vector<int>& devices);

// One rank per process (multi-process, multi-host): this process is rank `rank` of `world` on GPU
// options.device; rank 0 writes the NCCL unique id to `id_file`, the others read it there (a file
// every process can see: a shared folder across hosts). model() is the whole model, kv_cache()
// this rank's shard; its stores are its shards (kv_shard_tag).
std::unique_ptr<ComputeBackend> make_cuda_tp_rank_process_backend(const ModelConfig& model, const BackendOptions& options,
                                                                  int world, int rank, const std::string& id_file,
                                                                  double id_timeout_s);

// "2.28.9 (libnccl.so.2)": the NCCL that --tp would load; throws EnvironmentError saying where it
// looked when there is none.
std::string nccl_library_version();

}  // namespace cake
