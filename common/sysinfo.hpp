// What the machine is: reports carry it, `cake-bench info` prints it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cake {

struct GpuInfo {
  int index = 0;
  std::string name;
  uint64_t memory_bytes = 0;
  int sm_count = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  uint64_t l2_bytes = 0;
};

struct CudaInfo {
  bool built_with_cuda = false;       // this binary has the CUDA backend compiled in
  std::string driver_version;         // "13.0" (from cudaDriverGetVersion), empty when no driver
  std::string runtime_version;        // "13.0"
  std::string cublas_version;         // "13.0.0"
  std::string unavailable_reason;     // why no GPU can be used, when gpus is empty
  std::vector<GpuInfo> gpus;
};

struct StorageInfo {
  std::string path;
  std::string filesystem;              // "ext4", "tmpfs", ...
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
  bool o_direct = false;               // an O_DIRECT open + aligned read worked here
  std::string o_direct_detail;         // why not, when it did not
};

struct SystemInfo {
  std::string cake_bench_version;
  std::string commit;
  std::string hostname;
  std::string os;                      // PRETTY_NAME of /etc/os-release
  std::string kernel;                  // uname -r
  std::string cpu_model;
  int cpu_logical_cores = 0;
  uint64_t memory_bytes = 0;
  bool io_uring = false;
  std::string compiler;
  CudaInfo cuda;
};

SystemInfo probe_system();

// Cores this process may run on: the affinity mask (taskset, containers), not the machine's
// hardware_concurrency; at least 1. Thread pools and reader counts are sized from it.
int available_cores();

// Whether `path` (or, when it does not exist, its directory), or the open file `fd`, is on a
// filesystem whose files live in memory (tmpfs, ramfs): reading them is a CPU copy, not a wait for a
// device. False when the filesystem cannot be asked.
bool on_memory_filesystem(const std::string& path);
bool on_memory_filesystem(int fd);
CudaInfo probe_cuda();
// Creates `dir` if needed (nothing else); probes O_DIRECT with a temporary file it removes.
StorageInfo probe_storage(const std::string& dir);

nlohmann::json to_json(const GpuInfo& gpu);
nlohmann::json to_json(const CudaInfo& cuda);
nlohmann::json to_json(const StorageInfo& storage);
nlohmann::json to_json(const SystemInfo& system);

}  // namespace cake
