// NCCL, loaded at run time with dlopen: the binary needs no NCCL to build (CI has none) and uses
// the GPU machine's libnccl.so.2 (PyTorch's wheel ships it) when tensor parallelism is asked for.
//
// The ABI declared here is the part of NCCL's public C API (nccl.h, NCCL 2.x) this project calls,
// written from NVIDIA's NCCL API documentation (docs.nvidia.com/deeplearning/nccl, "Types" and
// "Communicator Creation and Management Functions"): the opaque communicator pointer, the 128-byte
// unique id, ncclResult_t (ncclSuccess = 0), ncclDataType_t (ncclBfloat16 = 9, present since NCCL
// 2.10), ncclRedOp_t (ncclSum = 0), and the functions below. No NCCL source is copied. The version
// is checked at load (>= 2.10, for bf16); the GPU test checks a bf16 sum end to end.
//
// NVLink multicast (NVLS) is forced off before any communicator exists: NCCL_NVLS_ENABLE=0 is put
// in this process's environment (overwriting any other value). The machines this runs on are
// shared, and a program that uses multicast can put the host's GPUs out of service.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <cuda_runtime.h>

namespace cake::nccl {

constexpr size_t kUniqueIdBytes = 128;
struct UniqueId {
  char internal[kUniqueIdBytes];
};
using Comm = struct OpaqueComm*;  // ncclComm_t

enum class DataType : int { bf16 = 9, f32 = 7, i32 = 2 };  // ncclDataType_t values

// The loaded library; one per process, loaded on first use, never unloaded.
class Library {
 public:
  // Loads it (CAKE_NCCL_LIBRARY, then libnccl.so.2 from the loader's path, then PyTorch's wheel
  // under /opt/torch/.venv) or throws EnvironmentError naming every place tried and why.
  static const Library& get();

  std::string version_text() const;  // "2.28.3 (/path/to/libnccl.so.2)"
  int version_code() const { return version_; }

  UniqueId unique_id() const;
  Comm init_rank(int world, const UniqueId& id, int rank) const;  // blocks until every rank joins
  void destroy(Comm comm) const noexcept;
  // In place or not; `what` names it in errors ("all-reduce after o_proj, layer 3").
  void all_reduce_sum(const void* send, void* recv, size_t count, DataType type, Comm comm, cudaStream_t stream,
                      const char* what) const;
  void broadcast(const void* send, void* recv, size_t count, DataType type, int root, Comm comm, cudaStream_t stream,
                 const char* what) const;
  void group_start() const;
  void group_end() const;

 private:
  Library();
  struct Fns;
  void* handle_ = nullptr;
  std::string path_;
  int version_ = 0;
  const Fns* fns_ = nullptr;
  [[noreturn]] void fail(int result, const char* call, const std::string& what) const;
};

// A communicator for one rank: destroyed with the object.
class Communicator {
 public:
  Communicator() = default;
  Communicator(int world, const UniqueId& id, int rank);
  ~Communicator();
  Communicator(Communicator&& o) noexcept : comm_(o.comm_), world_(o.world_), rank_(o.rank_) { o.comm_ = nullptr; }
  Communicator& operator=(Communicator&& o) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  Comm get() const { return comm_; }
  int world() const { return world_; }
  int rank() const { return rank_; }

 private:
  Comm comm_ = nullptr;
  int world_ = 0;
  int rank_ = 0;
};

// Multi-process bootstrap: rank 0 writes the unique id to `path` (atomically: a temporary file
// renamed into place), the other ranks wait for it (polling, up to timeout_s) and read it. The
// file carries a magic line and the world size so a stale or foreign file is refused.
void write_unique_id_file(const std::string& path, const UniqueId& id, int world);
UniqueId read_unique_id_file(const std::string& path, int world, double timeout_s);

}  // namespace cake::nccl
