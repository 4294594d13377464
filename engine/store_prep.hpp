// Preparing a context's KV store (untimed, once per context): compute the prefix with the same
// chunking the modes use, then write every chunk from the KV cache into a store file.
#pragma once

#include <string>

#include "kernels/compute_backend.hpp"
#include "loaders/kv_codec.hpp"
#include "loaders/store_format.hpp"
#include "workloads/request.hpp"

namespace cake {

// The key a store for `request`'s prefix must carry for this backend, chunking and codec (the
// codec's parameters for this model are part of the key: loaders/kv_codec.hpp).
StoreKey store_key_for(const ComputeBackend& backend, const Request& request, int32_t chunk_tokens,
                       CodecKind codec = CodecKind::none);

// Tensor parallelism: the key of shard `shard`'s store (the key with backend.kv_shard_tag(shard)
// appended to its model fingerprint; the key itself without tensor parallelism).
StoreKey shard_store_key(const ComputeBackend& backend, const StoreKey& key, int shard);

// Writes the store of the prefix whose KV is in `view` (one shard's cache, or a whole cache).
StoreHeader write_store_from_view(const KvCacheView& view, const StoreKey& key, const std::string& path);

// Writes the store for the prefix whose KV is ALREADY in backend's cache (e.g. right after a
// compute-only run of the same request) to `path`, each chunk encoded with key.codec (on all
// cores). Returns the header written.
StoreHeader write_store_from_cache(const ComputeBackend& backend, const StoreKey& key, const std::string& path);

// Why the store at `path` cannot serve `key`, as the load lane would find at open (header
// validation and key), or "" when it can. Chunk payloads are not read: a bad chunk is found by its
// checksum during the request, fails alone and is recovered (and the point says so).
std::string store_problem(const std::string& path, const StoreKey& key);

// Computes the prefix (chunked) and writes its store to `path`.
StoreHeader prepare_store(ComputeBackend& backend, const Request& request, int32_t chunk_tokens, const std::string& path,
                          CodecKind codec = CodecKind::none);

}  // namespace cake
