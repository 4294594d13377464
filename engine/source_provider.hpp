// Builds the KvSource of each request from a SourceSpec: file (io_uring), mem (the store held in
// host RAM, read once per store), tcp (a running server, or a loopback server started here once
// per sweep and serving the store directory). Optionally wraps sources so chosen chunks fail.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/source_spec.hpp"
#include "loaders/file_source.hpp"
#include "loaders/kv_source.hpp"
#include "loaders/store_format.hpp"
#include "loaders/throttle.hpp"

namespace cake {

struct SourceOptions {
  int queue_depth = 16;
  uint64_t request_bytes = 1 << 20;
  bool o_direct = true;
  FileReads file_reads = FileReads::automatic;  // file source pieces: io_uring reads or copies out of a mapping
  int tcp_pipeline = 4;
  int tcp_connections = 1;
  double tcp_timeout_s = 10;
  std::vector<int> inject_fail_chunks;  // these chunks fail with "injected fault" (tests, CI checks)
};

class SourceProvider {
 public:
  SourceProvider(std::string store_dir, SourceOptions options);
  ~SourceProvider();
  SourceProvider(const SourceProvider&) = delete;
  SourceProvider& operator=(const SourceProvider&) = delete;

  // A source for one request, built before its clock starts; `throttle` (may be null) paces it.
  std::unique_ptr<KvSource> make(const SourceSpec& spec, const StoreKey& key, Throttle* throttle);
  // Where a store with this key lives for this spec (file sources can name their own directory).
  std::string store_path_for(const SourceSpec& spec, const StoreKey& key) const;
  const std::string& store_dir() const { return store_dir_; }
  // Drops the memory sources paced by `throttle` (before it is destroyed): a sweep holds one
  // bandwidth group's stores in RAM at a time, not every group's (70B at TP=2 and 32K: 5.4 GB a rank).
  void forget_throttle(const Throttle* throttle);

 private:
  struct Impl;
  std::string store_dir_;
  SourceOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cake
