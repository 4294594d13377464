#include "engine/store_prep.hpp"

#include <algorithm>
#include <thread>
#include <vector>

#include <fcntl.h>

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/fd.hpp"
#include "engine/kv_snapshot.hpp"
#include "loaders/store_file.hpp"

namespace cake {

StoreKey store_key_for(const ComputeBackend& backend, const Request& request, int32_t chunk_tokens,
                       CodecKind codec) {
  const KvCacheView view = backend.kv_cache();
  StoreKey key;
  key.model_fingerprint = cat(backend.model().fingerprint(), "-kv:", dtype_name(view.dtype));
  key.token_hash = hash_tokens(request.prefix);
  key.token_count = static_cast<int64_t>(request.prefix.size());
  key.chunk_tokens = chunk_tokens;
  key.codec = CodecSpec::for_model(codec, view.head_dim).store_name();
  key.dtype = view.dtype;
  return key;
}

StoreKey shard_store_key(const ComputeBackend& backend, const StoreKey& key, int shard) {
  StoreKey k = key;
  k.model_fingerprint += backend.kv_shard_tag(shard);
  return k;
}

StoreHeader write_store_from_cache(const ComputeBackend& backend, const StoreKey& key, const std::string& path) {
  return write_store_from_view(backend.kv_cache(), key, path);
}

StoreHeader write_store_from_view(const KvCacheView& view, const StoreKey& key, const std::string& path) {
  StoreHeader header;
  header.key = key;
  header.layers = view.layers;
  header.kv_heads = view.kv_heads;
  header.head_dim = view.head_dim;
  for (int64_t first = 0; first < key.token_count; first += key.chunk_tokens) {
    ChunkEntry e;
    e.first_token = first;
    e.tokens = static_cast<int32_t>(std::min<int64_t>(key.chunk_tokens, key.token_count - first));
    header.chunks.push_back(e);
  }
  const CodecSpec codec = CodecSpec::parse_store_name(key.codec);
  StoreWriter writer(path, header);
  std::vector<std::byte> buffer(view.chunk_bytes(key.chunk_tokens));
  std::vector<std::byte> encoded;
  const int threads = available_cores();
  for (size_t i = 0; i < header.chunks.size(); ++i) {
    const ChunkEntry& e = header.chunks[i];
    const std::span<std::byte> payload(buffer.data(), view.chunk_bytes(e.tokens));
    copy_chunk_out(view, e.first_token, e.tokens, payload);
    if (codec.lossless()) {
      writer.write_chunk(static_cast<int>(i), payload);
      continue;
    }
    encode_chunk(codec, ChunkShape{view.layers, view.kv_heads, view.head_dim, e.tokens}, view.dtype, payload, encoded,
                 threads);
    writer.write_chunk(static_cast<int>(i), encoded);  // the checksum covers the encoded bytes
  }
  return writer.finish();
}

std::string store_problem(const std::string& path, const StoreKey& key) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return cat("opening ", path, ": ", errno_text(errno));
  try {
    validate_store_key(read_store_header(fd.get(), path), key, path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

StoreHeader prepare_store(ComputeBackend& backend, const Request& request, int32_t chunk_tokens, const std::string& path,
                          CodecKind codec) {
  if (chunk_tokens <= 0) throw UsageError(cat("chunk size must be positive, got ", chunk_tokens));
  for (size_t first = 0; first < request.prefix.size(); first += static_cast<size_t>(chunk_tokens)) {
    const size_t n = std::min(request.prefix.size() - first, static_cast<size_t>(chunk_tokens));
    backend.prefill_chunk(std::span<const int32_t>(request.prefix).subspan(first, n), static_cast<int64_t>(first));
  }
  backend.synchronize();
  return write_store_from_cache(backend, store_key_for(backend, request, chunk_tokens, codec), path);
}

}  // namespace cake
