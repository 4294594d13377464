#include "kernels/cuda/nccl_lib.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace cake::nccl {

// Signatures of nccl.h (NCCL 2.x); enums travel as int, as C passes them.
struct Library::Fns {
  int (*get_unique_id)(UniqueId*) = nullptr;
  int (*comm_init_rank)(Comm*, int, UniqueId, int) = nullptr;
  int (*comm_destroy)(Comm) = nullptr;
  int (*all_reduce)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  int (*broadcast)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  int (*group_start)() = nullptr;
  int (*group_end)() = nullptr;
  const char* (*error_string)(int) = nullptr;
  int (*get_version)(int*) = nullptr;
};

namespace {

constexpr int kSum = 0;                  // ncclSum
constexpr int kMinVersion = 21000;       // 2.10.0: ncclBfloat16
constexpr const char* kTorchNccl = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2";

template <typename F>
void resolve(void* handle, const char* name, F& out, const std::string& path) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (sym == nullptr) throw EnvironmentError(cat("NCCL library ", path, " has no symbol ", name));
  out = reinterpret_cast<F>(sym);
}

}  // namespace

Library::Library() {
  // Before any communicator: NVLink multicast stays off in this process (see the header).
  if (setenv("NCCL_NVLS_ENABLE", "0", 1) != 0) throw Error(cat("setenv NCCL_NVLS_ENABLE=0: ", errno_text(errno)));
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CAKE_NCCL_LIBRARY"); env != nullptr && *env != '\0') candidates.emplace_back(env);
  candidates.emplace_back("libnccl.so.2");
  candidates.emplace_back(kTorchNccl);
  std::string tried;
  for (const std::string& c : candidates) {
    handle_ = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ != nullptr) {
      path_ = c;
      break;
    }
    const char* why = dlerror();
    tried += cat(tried.empty() ? "" : "; ", c, ": ", why ? why : "not loadable");
  }
  if (handle_ == nullptr)
    throw EnvironmentError(cat("tensor parallelism needs NCCL (libnccl.so.2), which could not be loaded (", tried,
                               "); set CAKE_NCCL_LIBRARY to its path"));
  auto* f = new Fns;  // lives as long as the process (the library is never unloaded)
  resolve(handle_, "ncclGetUniqueId", f->get_unique_id, path_);
  resolve(handle_, "ncclCommInitRank", f->comm_init_rank, path_);
  resolve(handle_, "ncclCommDestroy", f->comm_destroy, path_);
  resolve(handle_, "ncclAllReduce", f->all_reduce, path_);
  resolve(handle_, "ncclBroadcast", f->broadcast, path_);
  resolve(handle_, "ncclGroupStart", f->group_start, path_);
  resolve(handle_, "ncclGroupEnd", f->group_end, path_);
  resolve(handle_, "ncclGetErrorString", f->error_string, path_);
  resolve(handle_, "ncclGetVersion", f->get_version, path_);
  fns_ = f;
  if (const int r = fns_->get_version(&version_); r != 0) fail(r, "ncclGetVersion", "reading NCCL's version");
  if (version_ < kMinVersion)
    throw EnvironmentError(cat("NCCL ", version_text(), " is too old: bf16 all-reduces need NCCL 2.10 or later"));
}

const Library& Library::get() {
  // Loaded once; a failure is thrown again to every caller (a static that throws is retried).
  static std::mutex mutex;
  static Library* library = nullptr;
  std::lock_guard lock(mutex);
  if (library == nullptr) library = new Library();
  return *library;
}

std::string Library::version_text() const {
  return cat(version_ / 10000, ".", (version_ % 10000) / 100, ".", version_ % 100, " (", path_, ")");
}

void Library::fail(int result, const char* call, const std::string& what) const {
  const char* text = fns_ && fns_->error_string ? fns_->error_string(result) : "unknown";
  throw Error(cat(what, ": ", call, " failed: NCCL error ", result, " (", text ? text : "?", ")"));
}

UniqueId Library::unique_id() const {
  UniqueId id{};
  if (const int r = fns_->get_unique_id(&id); r != 0) fail(r, "ncclGetUniqueId", "making the NCCL unique id");
  return id;
}

Comm Library::init_rank(int world, const UniqueId& id, int rank) const {
  Comm comm = nullptr;
  if (const int r = fns_->comm_init_rank(&comm, world, id, rank); r != 0)
    fail(r, "ncclCommInitRank", cat("joining the NCCL communicator as rank ", rank, " of ", world));
  return comm;
}

void Library::destroy(Comm comm) const noexcept {
  if (comm != nullptr) fns_->comm_destroy(comm);
}

void Library::all_reduce_sum(const void* send, void* recv, size_t count, DataType type, Comm comm, cudaStream_t stream,
                             const char* what) const {
  if (const int r = fns_->all_reduce(send, recv, count, static_cast<int>(type), kSum, comm, stream); r != 0)
    fail(r, "ncclAllReduce", what);
}

void Library::broadcast(const void* send, void* recv, size_t count, DataType type, int root, Comm comm,
                        cudaStream_t stream, const char* what) const {
  if (const int r = fns_->broadcast(send, recv, count, static_cast<int>(type), root, comm, stream); r != 0)
    fail(r, "ncclBroadcast", what);
}

void Library::group_start() const {
  if (const int r = fns_->group_start(); r != 0) fail(r, "ncclGroupStart", "starting an NCCL group");
}
void Library::group_end() const {
  if (const int r = fns_->group_end(); r != 0) fail(r, "ncclGroupEnd", "ending an NCCL group");
}

Communicator::Communicator(int world, const UniqueId& id, int rank)
    : comm_(Library::get().init_rank(world, id, rank)), world_(world), rank_(rank) {}

Communicator::~Communicator() {
  if (comm_ != nullptr) Library::get().destroy(comm_);
}

Communicator& Communicator::operator=(Communicator&& o) noexcept {
  if (this != &o) {
    if (comm_ != nullptr) Library::get().destroy(comm_);
    comm_ = o.comm_;
    world_ = o.world_;
    rank_ = o.rank_;
    o.comm_ = nullptr;
  }
  return *this;
}

// ---- the unique-id file ------------------------------------------------------------------------

namespace {
constexpr const char* kMagic = "cake-bench nccl-unique-id v1";

std::string hex(const UniqueId& id) {
  std::string out;
  char buf[3];
  for (size_t i = 0; i < kUniqueIdBytes; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(id.internal[i]));
    out += buf;
  }
  return out;
}
}  // namespace

void write_unique_id_file(const std::string& path, const UniqueId& id, int world) {
  const std::string tmp = cat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw Error(cat("writing the NCCL unique id to ", tmp, ": ", errno_text(errno)));
    out << kMagic << "\nworld " << world << "\n" << hex(id) << "\n";
    out.flush();
    if (!out) throw Error(cat("writing the NCCL unique id to ", tmp, ": ", errno_text(errno)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw Error(cat("renaming ", tmp, " to ", path, ": ", errno_text(errno)));
}

UniqueId read_unique_id_file(const std::string& path, int world, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(cat("waiting for the NCCL unique id file ", path, ": rank 0 wrote none within ", timeout_s, " s"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream in(path);
  std::string magic, word, text;
  int file_world = 0;
  std::getline(in, magic);
  in >> word >> file_world >> text;
  if (!in || magic != kMagic || word != "world")
    throw UsageError(cat(path, " is not a cake-bench NCCL unique id file"));
  if (file_world != world)
    throw UsageError(cat(path, " is for ", file_world, " ranks; this run has ", world));
  if (text.size() != 2 * kUniqueIdBytes) throw UsageError(cat(path, ": the unique id has ", text.size() / 2, " bytes"));
  for (char c : text)
    if (!std::isxdigit(static_cast<unsigned char>(c))) throw UsageError(cat(path, ": the unique id is not hexadecimal"));
  UniqueId id{};
  for (size_t i = 0; i < kUniqueIdBytes; ++i)
    id.internal[i] = static_cast<char>(std::stoi(text.substr(2 * i, 2), nullptr, 16));
  return id;
}

}  // namespace cake::nccl
