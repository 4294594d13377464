#include "engine/source_provider.hpp"

#include <map>
#include <set>
#include <utility>

#include "common/error.hpp"
#include "loaders/fault_source.hpp"
#include "loaders/file_source.hpp"
#include "loaders/mem_source.hpp"
#include "loaders/net/kv_server.hpp"
#include "loaders/net/tcp_source.hpp"
#include "loaders/store_file.hpp"

namespace cake {
namespace {

// The memory source holds a whole store in RAM; reading it again for every request would be
// untimed but slow, so requests borrow one kept per (store, throttle).
class BorrowedSource final : public KvSource {
 public:
  explicit BorrowedSource(KvSource& inner) : inner_(inner) {}
  std::string describe() const override { return inner_.describe(); }
  const StoreHeader& open(const StoreKey& expected) override { return inner_.open(expected); }
  void register_buffers(std::span<const std::span<std::byte>> buffers) override { inner_.register_buffers(buffers); }
  void submit(int chunk, std::byte* dst) override { inner_.submit(chunk, dst); }
  std::vector<ChunkRead> reap(bool wait) override { return inner_.reap(wait); }
  int outstanding() const override { return inner_.outstanding(); }
  std::vector<LandedRange> take_landed() override { return inner_.take_landed(); }
  bool reports_progress() const override { return inner_.reports_progress(); }
  std::vector<ChunkRead> reap_progress(int64_t wait_ns) override { return inner_.reap_progress(wait_ns); }
  HostResidentChunks* host_resident() override { return inner_.host_resident(); }

 private:
  KvSource& inner_;
};

}  // namespace

struct SourceProvider::Impl {
  std::unique_ptr<LoopbackServer> loopback;  // started on first use of "tcp" without an address
  std::map<std::pair<std::string, Throttle*>, std::unique_ptr<MemSource>> mem_sources;
};

SourceProvider::SourceProvider(std::string store_dir, SourceOptions options)
    : store_dir_(std::move(store_dir)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

SourceProvider::~SourceProvider() = default;

std::string SourceProvider::store_path_for(const SourceSpec& spec, const StoreKey& key) const {
  if (spec.kind == SourceSpec::Kind::file && !spec.location.empty()) return store_path(spec.location, key);
  return store_path(store_dir_, key);
}

void SourceProvider::forget_throttle(const Throttle* throttle) {
  for (auto it = impl_->mem_sources.begin(); it != impl_->mem_sources.end();)
    it = it->first.second == throttle ? impl_->mem_sources.erase(it) : std::next(it);
}

std::unique_ptr<KvSource> SourceProvider::make(const SourceSpec& spec, const StoreKey& key, Throttle* throttle) {
  std::unique_ptr<KvSource> source;
  switch (spec.kind) {
    case SourceSpec::Kind::file: {
      FileSourceOptions o;
      o.queue_depth = options_.queue_depth;
      o.request_bytes = options_.request_bytes;
      o.o_direct = options_.o_direct;
      o.reads = options_.file_reads;
      source = std::make_unique<FileSource>(store_path_for(spec, key), o, throttle);
      break;
    }
    case SourceSpec::Kind::mem: {
      auto& slot = impl_->mem_sources[{store_path_for(spec, key), throttle}];
      if (!slot) {
        MemSourceOptions o;
        o.request_bytes = options_.request_bytes;
        slot = std::make_unique<MemSource>(store_path_for(spec, key), o, throttle);
      }
      source = std::make_unique<BorrowedSource>(*slot);
      break;
    }
    case SourceSpec::Kind::tcp: {
      std::string url = spec.location;
      if (url.empty()) {
        if (!impl_->loopback) impl_->loopback = std::make_unique<LoopbackServer>(store_dir_);
        url = impl_->loopback->url();
      }
      TcpSourceOptions o;
      o.pipeline_depth = options_.tcp_pipeline;
      o.connections = options_.tcp_connections;
      o.request_timeout_ms = static_cast<int64_t>(options_.tcp_timeout_s * 1000);
      o.throttle = throttle;  // client-side pacing: the server may be shared by other sweeps
      source = std::make_unique<TcpSource>(url, o);
      break;
    }
  }
  if (!options_.inject_fail_chunks.empty()) {
    std::set<int> failing(options_.inject_fail_chunks.begin(), options_.inject_fail_chunks.end());
    source = std::make_unique<FaultInjectingSource>(std::move(source), std::move(failing), "injected fault (--inject-fault)");
  }
  return source;
}

}  // namespace cake
