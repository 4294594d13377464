// The compute lane's one interface: prefill chunks into the KV cache, then produce the first
// token. Knows nothing of I/O; the loaders fill the same KV cache through kv_cache().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/kv_cache.hpp"
#include "kernels/model_config.hpp"

namespace cake {

namespace ckpt {
struct Checkpoint;  // kernels/checkpoint/checkpoint.hpp
}

struct FirstToken {
  int32_t token_id = -1;
  std::vector<float> logits;  // [vocab], fp32, of the last suffix position
};

// Which attention kernel the CUDA backend runs. auto: cuDNN's fused attention when this binary
// has cuDNN and cuDNN can plan the model's attention on this GPU, else the mma.sync kernel (the
// portable sm_80 path); cudnn: cuDNN or an error saying why not; mma: the mma.sync kernel.
enum class AttentionChoice { auto_select, cudnn, mma };

struct BackendOptions {
  int64_t max_context_tokens = 0;  // KV cache capacity: prefix + suffix
  int64_t max_chunk_tokens = 0;    // largest prefill_chunk / first_token call
  int cpu_threads = 0;             // CPU backend: 0 = all cores
  int device = 0;                  // CUDA backend: GPU index
  AttentionChoice attention = AttentionChoice::auto_select;  // CUDA backend only
  // Weights read from this checkpoint instead of seeded ones; the model given to the backend must
  // be checkpoint->model. The backend's model() then carries the content fingerprint.
  std::shared_ptr<const ckpt::Checkpoint> checkpoint;
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> load_progress;  // while reading it
  // Tensor parallelism (CUDA backend): tp ranks. tp_rank < 0: one process, a thread per GPU on
  // GPUs 0..tp-1. tp_rank >= 0: this process is that rank alone, on GPU tp_rank modulo the GPUs it
  // sees, and the ranks meet through the NCCL unique id in tp_id_file (rank 0 writes it).
  int tp = 1;
  int tp_rank = -1;
  std::string tp_id_file;
  double tp_id_timeout_s = 120;
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda"
  // What else a report must say about how this backend computes ("attention: cudnn (...)"); may be "".
  virtual std::string details() const { return ""; }
  virtual const ModelConfig& model() const = 0;
  // Valid for the backend's lifetime; loaders copy chunks into it.
  virtual KvCacheView kv_cache() const = 0;

  // Prefills tokens at positions [first_pos, first_pos + n): reads KV [0, first_pos), writes KV
  // [first_pos, first_pos + n). May return before the work is done (CUDA: queued on the compute
  // stream); synchronize() waits. Calls are ordered among themselves.
  virtual void prefill_chunk(std::span<const int32_t> tokens, int64_t first_pos) = 0;
  // Asked at each step of a gated prefill (0-based, gate_steps_per_layer() steps a layer, the
  // first at the layer's start): true to go on, false to abandon the call there. On a GPU the
  // question is asked as layers are queued, a layer or two ahead of the device.
  using LayerGate = std::function<bool(int step)>;
  virtual int gate_steps_per_layer() const { return 1; }
  // prefill_chunk that may be abandoned at a layer boundary: returns false when `gate` said stop
  // (layers before it have written their KV; no later layer runs: the caller hands the chunk to a
  // lane that writes all of it). A backend that cannot stop early runs every layer and returns true.
  virtual bool prefill_chunk_gated(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate& gate) {
    (void)gate;
    prefill_chunk(tokens, first_pos);
    return true;
  }
  // Returns when every queued prefill has written its KV.
  virtual void synchronize() = 0;
  // Runs the suffix at [first_pos, first_pos + n) over the whole cache (writing its KV too),
  // final norm, LM head of the last position, argmax. Returns with the token id on the host.
  virtual FirstToken first_token(std::span<const int32_t> suffix, int64_t first_pos) = 0;

  // Where the weights came from and how they were converted, one line for reports.
  virtual std::string weights_note() const { return "seeded random weights"; }

  // Fills the whole KV cache with NaN so a read of anything not written shows up in the output.
  virtual void poison_kv_cache() = 0;

  // Tensor parallelism (kernels/cuda/tp_backend.hpp): the KV cache is held in shards, one per
  // rank (its KV heads), each on its own GPU, each loaded by its own load lane from its own store
  // shard. Without it: one shard, the whole kv_cache().
  virtual int kv_shard_count() const { return 1; }
  virtual KvCacheView kv_shard(int shard) const {
    (void)shard;
    return kv_cache();
  }
  // The GPU shard `shard` lives on; -1 for host memory.
  virtual int kv_shard_device(int shard) const {
    (void)shard;
    return -1;
  }
  // Appended to the store key of shard `shard` ("" without tensor parallelism), so a rank can only
  // open a store of its own KV heads.
  virtual std::string kv_shard_tag(int shard) const {
    (void)shard;
    return "";
  }
  // GPU milliseconds spent in collectives (the all-reduces) by the last prefill or first_token,
  // read after synchronize(); 0 without tensor parallelism.
  virtual double last_collective_ms() const { return 0; }
};

}  // namespace cake
