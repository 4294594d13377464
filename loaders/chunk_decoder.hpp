// The load lane's decode step for encoded (compressed) stores, kept apart from the staging
// pipeline so that either can change alone. Once all of a chunk's encoded bytes are copied, the
// pipeline calls decode(): for a device cache the bytes were copied into this slot's device
// staging buffer and one kernel per chunk decodes them into the bf16 KV cache on the copy stream
// (timed by CUDA events); for a host cache the CPU decoder runs at once from the host bytes.
// A chunk is resident only after its decode, so every consumer of load times (the timeline,
// the oracle's per-chunk load cost, split=F) counts the decode in the chunk's load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/kv_cache.hpp"
#include "loaders/kv_codec.hpp"
#include "loaders/store_format.hpp"

namespace cake {

class ChunkDecoder {
 public:
  // `device_staging`: a device target gets one device buffer of `slot_bytes` per slot (only then
  // can it decode; without, set_codec refuses anything but none).
  ChunkDecoder(const KvCacheView& target, int slots, uint64_t slot_bytes, bool device_staging);
  ~ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  // The store's codec, at open. Returns why it cannot be decoded into the target (empty: it can).
  std::string set_codec(const StoreHeader& header);
  bool active() const { return spec_.kind != CodecKind::none; }
  const CodecSpec& spec() const { return spec_; }

  // Device target: where the slot's encoded bytes must be copied (offset 0 = payload byte 0).
  // Host target: null (the decoder reads the host bytes where they are).
  std::byte* device_staging(int slot) const;
  // Decodes the slot's chunk (every encoded byte copied, or in host memory at `host_encoded`).
  // Device: queued on `stream` (a cudaStream_t) between two timing events; host: runs now.
  // Throws cake::Error naming the chunk.
  void decode(int slot, int chunk, const ChunkEntry& entry, const std::byte* host_encoded, void* stream);
  // Nanoseconds the slot's last decode took; device: only once the stream has passed it.
  int64_t decode_ns(int slot) const;
  // Bytes the slot's last decode wrote into the cache.
  uint64_t decoded_bytes(int slot) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CodecSpec spec_;
};

}  // namespace cake
