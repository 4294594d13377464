#include "common/sysinfo.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/uring.hpp"
#include "common/version.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

namespace cake {
namespace {

std::string read_key(const std::string& path, const std::string& key, char sep) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto pos = line.find(sep);
    if (pos == std::string::npos) continue;
    std::string value = line.substr(pos + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.front() == '"')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '"' || value.back() == ' ')) value.pop_back();
    return value;
  }
  return {};
}

#if defined(CAKE_HAVE_CUDA)
std::string version_text(int v) {  // CUDA encodes 13000 as 13.0
  return cat(v / 1000, ".", (v % 1000) / 10);
}
#endif

std::string filesystem_name(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x2FC12FC1: return "zfs";
    case 0x65735546: return "fuse";
    case 0x01021997: return "9p";
    default: return cat("unknown (0x", std::hex, type, ")");
  }
}

}  // namespace

CudaInfo probe_cuda() {
  CudaInfo info;
#if defined(CAKE_HAVE_CUDA)
  info.built_with_cuda = true;
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) info.runtime_version = version_text(runtime);
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0) info.driver_version = version_text(driver);
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
    info.cublas_version = cat(major, ".", minor, ".", patch);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.unavailable_reason = cat("the CUDA runtime found no usable GPU (", cudaGetErrorString(err), ")");
    cudaGetLastError();  // clear the sticky-free error so later probes start clean
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    GpuInfo gpu;
    gpu.index = i;
    gpu.name = prop.name;
    gpu.memory_bytes = prop.totalGlobalMem;
    gpu.sm_count = prop.multiProcessorCount;
    gpu.compute_capability_major = prop.major;
    gpu.compute_capability_minor = prop.minor;
    gpu.l2_bytes = static_cast<uint64_t>(prop.l2CacheSize);
    info.gpus.push_back(gpu);
  }
  if (info.gpus.empty()) info.unavailable_reason = "the CUDA runtime lists no GPU";
#else
  info.unavailable_reason = "this binary was built without CUDA (nvcc was not found at build time)";
#endif
  return info;
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

SystemInfo probe_system() {
  SystemInfo info;
  info.cake_bench_version = kVersion;
  info.commit = kCommit;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) info.hostname = host;
  info.os = read_key("/etc/os-release", "PRETTY_NAME=", '=');
  utsname uts{};
  if (uname(&uts) == 0) info.kernel = cat(uts.sysname, " ", uts.release, " ", uts.machine);
  info.cpu_model = read_key("/proc/cpuinfo", "model name", ':');
  info.cpu_logical_cores = static_cast<int>(std::thread::hardware_concurrency());
  const std::string mem_kb = read_key("/proc/meminfo", "MemTotal:", ':');
  if (!mem_kb.empty()) info.memory_bytes = std::strtoull(mem_kb.c_str(), nullptr, 10) * 1024;
  info.io_uring = io_uring_available();
#if defined(__clang__)
  info.compiler = cat("clang ", __clang_version__);
#elif defined(__GNUC__)
  info.compiler = cat("g++ ", __VERSION__);
#endif
  info.cuda = probe_cuda();
  return info;
}

namespace {
bool memory_filesystem_type(const struct statfs& fs) {
  const auto type = static_cast<unsigned long>(fs.f_type);
  return type == 0x01021994ul /* tmpfs */ || type == 0x858458f6ul /* ramfs */;
}
}  // namespace

bool on_memory_filesystem(const std::string& path) {
  struct statfs fs{};
  if (statfs(path.c_str(), &fs) != 0) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (statfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return false;
  }
  return memory_filesystem_type(fs);
}

bool on_memory_filesystem(int fd) {
  struct statfs fs{};
  return fstatfs(fd, &fs) == 0 && memory_filesystem_type(fs);
}

StorageInfo probe_storage(const std::string& dir) {
  StorageInfo info;
  info.path = dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw EnvironmentError(cat("cannot create store directory ", dir, ": ", ec.message()));
  struct statfs fs{};
  check_sys(statfs(dir.c_str(), &fs), cat("statfs ", dir));
  info.filesystem = filesystem_name(fs.f_type);
  struct statvfs vfs{};
  check_sys(statvfs(dir.c_str(), &vfs), cat("statvfs ", dir));
  info.free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  info.total_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;

  // O_DIRECT: write a 4 KiB block through the page cache, then read it back with O_DIRECT.
  const std::string probe = cat(dir, "/.cake-odirect-probe-", getpid());
  {
    UniqueFd fd(::open(probe.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600));
    if (!fd.valid()) {
      info.o_direct_detail = cat("cannot create a probe file: ", errno_text(errno));
      return info;
    }
    std::string block(4096, 'c');
    if (::write(fd.get(), block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
      info.o_direct_detail = cat("cannot write a probe file: ", errno_text(errno));
      ::unlink(probe.c_str());
      return info;
    }
  }
  UniqueFd fd(::open(probe.c_str(), O_RDONLY | O_DIRECT));
  if (!fd.valid()) {
    info.o_direct_detail = cat("open(O_DIRECT): ", errno_text(errno));
  } else {
    void* buf = nullptr;
    if (posix_memalign(&buf, 4096, 4096) == 0) {
      const ssize_t n = ::pread(fd.get(), buf, 4096, 0);
      if (n == 4096) info.o_direct = true;
      else info.o_direct_detail = cat("aligned O_DIRECT read returned ", n, n < 0 ? cat(": ", errno_text(errno)) : "");
      std::free(buf);
    }
  }
  ::unlink(probe.c_str());
  return info;
}

nlohmann::json to_json(const GpuInfo& gpu) {
  return {{"index", gpu.index},
          {"name", gpu.name},
          {"memory_bytes", gpu.memory_bytes},
          {"sm_count", gpu.sm_count},
          {"compute_capability", cat(gpu.compute_capability_major, ".", gpu.compute_capability_minor)},
          {"l2_bytes", gpu.l2_bytes}};
}

nlohmann::json to_json(const CudaInfo& cuda) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : cuda.gpus) gpus.push_back(to_json(g));
  return {{"built_with_cuda", cuda.built_with_cuda},
          {"driver_version", cuda.driver_version},
          {"runtime_version", cuda.runtime_version},
          {"cublas_version", cuda.cublas_version},
          {"unavailable_reason", cuda.unavailable_reason},
          {"gpus", gpus}};
}

nlohmann::json to_json(const StorageInfo& s) {
  return {{"path", s.path},         {"filesystem", s.filesystem}, {"free_bytes", s.free_bytes},
          {"total_bytes", s.total_bytes}, {"o_direct", s.o_direct},     {"o_direct_detail", s.o_direct_detail}};
}

nlohmann::json to_json(const SystemInfo& s) {
  return {{"cake_bench_version", s.cake_bench_version},
          {"commit", s.commit},
          {"hostname", s.hostname},
          {"os", s.os},
          {"kernel", s.kernel},
          {"cpu_model", s.cpu_model},
          {"cpu_logical_cores", s.cpu_logical_cores},
          {"memory_bytes", s.memory_bytes},
          {"io_uring", s.io_uring},
          {"compiler", s.compiler},
          {"cuda", to_json(s.cuda)}};
}

}  // namespace cake
