#include "kernels/cuda/tp_backend.hpp"

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include <cuda_runtime.h>

#include "common/cuda_check.hpp"
#include "common/error.hpp"
#include "common/nvtx.hpp"
#include "kernels/cuda/nccl_lib.hpp"
#include "kernels/cuda/tp_rank.hpp"
#include "kernels/tp_shard.hpp"

namespace cake {
namespace {

// One thread bound to one GPU that runs the jobs it is given, one at a time.
class RankWorker {
 public:
  explicit RankWorker(int device) : thread_([this, device] { loop(device); }) {}
  ~RankWorker() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  RankWorker(const RankWorker&) = delete;
  RankWorker& operator=(const RankWorker&) = delete;

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      job_ = std::move(job);
      done_ = false;
      error_ = nullptr;
    }
    cv_.notify_all();
  }
  // Waits for the posted job; returns its exception (null when it succeeded).
  std::exception_ptr wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    return error_;
  }

 private:
  void loop(int device) {
    const cudaError_t bound = cudaSetDevice(device);
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || job_; });
      if (stop_) return;
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      std::exception_ptr error;
      try {
        if (bound != cudaSuccess) CAKE_CUDA(bound, cat("binding GPU ", device, " to its rank's thread"));
        job();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      error_ = error;
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool done_ = true;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

class TpBackend final : public ComputeBackend {
 public:
  TpBackend(const ModelConfig& model, const BackendOptions& options, const std::vector<int>& devices)
      : model_(model), devices_(devices), world_(static_cast<int>(devices.size())) {
    if (world_ < 2) throw UsageError(cat("tensor parallelism needs at least 2 GPUs, got ", world_));
    const std::string problem = tp_split_problem(model, world_);
    if (!problem.empty()) throw UsageError(problem);
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw EnvironmentError(cat("tensor parallelism: no usable GPU (", cudaGetErrorString(err), ")"));
    }
    for (int d : devices)
      if (d < 0 || d >= count)
        throw EnvironmentError(cat("tensor parallelism over ", world_, " GPUs: GPU ", d, " requested, ", count, " present"));
    const nccl::Library& nccl = nccl::Library::get();
    nccl_version_ = nccl.version_text();
    const nccl::UniqueId id = nccl.unique_id();
    comms_.resize(world_);
    ranks_.resize(world_);
    for (int d : devices_) workers_.push_back(std::make_unique<RankWorker>(d));
    // Every rank joins the communicator on its own thread (ncclCommInitRank blocks until all have).
    run_all([&](int r) {
      comms_[r] = std::make_unique<nccl::Communicator>(world_, id, r);
      BackendOptions o = options;
      o.device = devices_[r];
      ranks_[r] = make_cuda_backend_rank(model, o, TpRank{r, world_, comms_[r].get()});
    });
    const KvCacheView first = ranks_[0]->kv_cache();
    view_ = first;
    view_.layers = first.layers * world_;
    view_.k.clear();
    view_.v.clear();
    for (int r = 0; r < world_; ++r) {
      const KvCacheView shard = ranks_[r]->kv_cache();
      view_.k.insert(view_.k.end(), shard.k.begin(), shard.k.end());
      view_.v.insert(view_.v.end(), shard.v.begin(), shard.v.end());
    }
  }

  ~TpBackend() override {
    // Each rank's GPU resources and communicator are released on its own thread.
    if (workers_.size() == static_cast<size_t>(world_)) {
      try {
        run_all([&](int r) {
          ranks_[r].reset();
          comms_[r].reset();
        });
      } catch (...) {
      }
    }
  }

  std::string name() const override { return "cuda"; }
  std::string details() const override {
    std::string gpus;
    for (int d : devices_) gpus += cat(gpus.empty() ? "" : ",", d);
    return cat("tensor parallel over ", world_, " GPUs (", gpus, "), one thread each, NCCL ", nccl_version_,
               " all-reduce (bf16 sum) after o_proj and after the MLP; embedding and LM head replicated; ",
               ranks_[0]->details());
  }
  const ModelConfig& model() const override { return model_; }
  KvCacheView kv_cache() const override { return view_; }
  std::string weights_note() const override {
    return cat("seeded random weights (generated on the GPUs in bf16, each rank its slices of the unsplit weights)");
  }

  void prefill_chunk(std::span<const int32_t> tokens, int64_t first_pos) override {
    run_all([&](int r) { ranks_[r]->prefill_chunk(tokens, first_pos); });
  }
  int gate_steps_per_layer() const override { return ranks_[0]->gate_steps_per_layer(); }
  bool prefill_chunk_gated(std::span<const int32_t> tokens, int64_t first_pos, const LayerGate& gate) override {
    // One answer per step for all ranks: the first rank to reach a step asks, the rest follow.
    std::mutex mutex;
    std::vector<char> decided;
    const LayerGate shared = [&](int step) {
      std::lock_guard lock(mutex);
      if (step == static_cast<int>(decided.size())) decided.push_back(gate(step) ? 1 : 0);
      if (step > static_cast<int>(decided.size()))
        throw InternalError(cat("tensor-parallel gate: step ", step, " asked before step ", decided.size()));
      return decided[static_cast<size_t>(step)] != 0;
    };
    std::vector<char> went_on(static_cast<size_t>(world_), 1);
    run_all([&](int r) { went_on[r] = ranks_[r]->prefill_chunk_gated(tokens, first_pos, shared) ? 1 : 0; });
    for (int r = 1; r < world_; ++r)
      if (went_on[r] != went_on[0]) throw InternalError("tensor-parallel ranks disagree on where a gated prefill stopped");
    return went_on[0] != 0;
  }
  void synchronize() override {
    run_all([&](int r) { ranks_[r]->synchronize(); });
  }
  FirstToken first_token(std::span<const int32_t> suffix, int64_t first_pos) override {
    std::vector<FirstToken> out(static_cast<size_t>(world_));
    run_all([&](int r) { out[r] = ranks_[r]->first_token(suffix, first_pos); });
    // The all-reduced residual is the same on every rank, so is the replicated LM head's answer.
    for (int r = 1; r < world_; ++r)
      if (out[r].token_id != out[0].token_id)
        throw InternalError(cat("tensor-parallel ranks disagree on the first token: rank 0 says ", out[0].token_id,
                                ", rank ", r, " says ", out[r].token_id));
    return std::move(out[0]);
  }
  void poison_kv_cache() override {
    run_all([&](int r) { ranks_[r]->poison_kv_cache(); });
  }
  int kv_shard_count() const override { return world_; }
  KvCacheView kv_shard(int shard) const override { return ranks_.at(static_cast<size_t>(shard))->kv_cache(); }
  int kv_shard_device(int shard) const override { return devices_.at(static_cast<size_t>(shard)); }
  std::string kv_shard_tag(int shard) const override { return tp_store_suffix(tp_shard(model_, shard, world_)); }
  // Rank 0's: every rank waits in the same all-reduces, so any rank's figure tells the same story.
  double last_collective_ms() const override { return ranks_[0]->last_collective_ms(); }

 private:
  // Runs job(r) on every rank's thread; waits for all, then rethrows the first failure.
  void run_all(const std::function<void(int)>& job) {
    for (int r = 0; r < world_; ++r) workers_[r]->post([&job, r] { job(r); });
    std::exception_ptr first;
    for (int r = 0; r < world_; ++r) {
      std::exception_ptr e = workers_[r]->wait();
      if (e && !first) first = e;
    }
    if (first) std::rethrow_exception(first);
  }

  ModelConfig model_;
  std::vector<int> devices_;
  int world_;
  std::string nccl_version_;
  std::vector<std::unique_ptr<nccl::Communicator>> comms_;
  std::vector<std::unique_ptr<ComputeBackend>> ranks_;
  std::vector<std::unique_ptr<RankWorker>> workers_;  // last member: its threads stop first
  KvCacheView view_;
};

// One rank in a process of its own: the communicator it joins and the rank backend over it.
class RankProcessBackend final : public ComputeBackend {
 public:
  RankProcessBackend(const ModelConfig& model, const BackendOptions& options, int world, int rank,
                     const std::string& id_file, double timeout_s)
      : world_(world), rank_(rank) {
    const std::string problem = tp_split_problem(model, world);
    if (!problem.empty()) throw UsageError(problem);
    if (rank < 0 || rank >= world) throw UsageError(cat("--tp-rank ", rank, " is outside [0, ", world, ")"));
    CAKE_CUDA(cudaSetDevice(options.device), cat("selecting GPU ", options.device, " for rank ", rank));
    const nccl::Library& nccl = nccl::Library::get();
    nccl_version_ = nccl.version_text();
    nccl::UniqueId id{};
    if (rank == 0) {
      id = nccl.unique_id();
      nccl::write_unique_id_file(id_file, id, world);
    } else {
      id = nccl::read_unique_id_file(id_file, world, timeout_s);
    }
    comm_ = std::make_unique<nccl::Communicator>(world, id, rank);
    rank_backend_ = make_cuda_backend_rank(model, options, TpRank{rank, world, comm_.get()});
  }

  std::string name() const override { return "cuda"; }
  std::string details() const override {
    return cat("tensor-parallel rank ", rank_, " of ", world_, " (one process per GPU, NCCL ", nccl_version_,
               ", unique id over a file); embedding and LM head replicated; ", rank_backend_->details());
  }
  const ModelConfig& model() const override { return rank_backend_->model(); }
  KvCacheView kv_cache() const override { return rank_backend_->kv_cache(); }
  std::string weights_note() const override { return rank_backend_->weights_note(); }
  void prefill_chunk(std::span<const int32_t> t, int64_t p) override { rank_backend_->prefill_chunk(t, p); }
  int gate_steps_per_layer() const override { return rank_backend_->gate_steps_per_layer(); }
  bool prefill_chunk_gated(std::span<const int32_t>, int64_t, const LayerGate&) override {
    // Each process would ask its own gate: ranks could stop at different layers and leave an
    // all-reduce without its peers. Claims agreed across processes are not implemented.
    throw UsageError("one process per rank runs compute, io and split only: Cake's claims are agreed across ranks "
                     "in one process (run --tp N without --tp-rank)");
  }
  void synchronize() override { rank_backend_->synchronize(); }
  FirstToken first_token(std::span<const int32_t> s, int64_t p) override { return rank_backend_->first_token(s, p); }
  void poison_kv_cache() override { rank_backend_->poison_kv_cache(); }
  int kv_shard_device(int shard) const override { return rank_backend_->kv_shard_device(shard); }
  std::string kv_shard_tag(int shard) const override { return rank_backend_->kv_shard_tag(shard); }
  double last_collective_ms() const override { return rank_backend_->last_collective_ms(); }

 private:
  int world_, rank_;
  std::string nccl_version_;
  std::unique_ptr<nccl::Communicator> comm_;
  std::unique_ptr<ComputeBackend> rank_backend_;  // after comm_: destroyed before it
};

}  // namespace

std::string nccl_library_version() { return nccl::Library::get().version_text(); }

std::unique_ptr<ComputeBackend> make_cuda_tp_backend(const ModelConfig& model, const BackendOptions& options,
                                                     const std::vector<int>& devices) {
  return std::make_unique<TpBackend>(model, options, devices);
}

std::unique_ptr<ComputeBackend> make_cuda_tp_rank_process_backend(const ModelConfig& model, const BackendOptions& options,
                                                                  int world, int rank, const std::string& id_file,
                                                                  double id_timeout_s) {
  return std::make_unique<RankProcessBackend>(model, options, world, rank, id_file, id_timeout_s);
}

}  // namespace cake
