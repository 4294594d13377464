#include "loaders/chunk_decoder.hpp"

#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "loaders/nvtx_span.hpp"

#if defined(CAKE_HAVE_CUDA)
#include "common/cuda_raii.hpp"
#include "loaders/kv_codec_gpu.hpp"
#endif

namespace cake {

struct ChunkDecoder::Impl {
  KvCacheView target;
  struct Slot {
    int64_t host_decode_ns = 0;
    uint64_t decoded_bytes = 0;
    bool timed_on_device = false;
#if defined(CAKE_HAVE_CUDA)
    cuda::DeviceBuffer staging;
    std::unique_ptr<cuda::Event> start, end;
#endif
  };
  std::vector<Slot> slots;
  bool device_staging = false;

  std::vector<std::byte*> segment_targets(const ChunkEntry& entry) const {
    std::vector<std::byte*> out;
    for (int s = 0; s < 2 * target.layers; ++s) out.push_back(target.segment_ptr(s, entry.first_token));
    return out;
  }
};

ChunkDecoder::ChunkDecoder(const KvCacheView& target, int slots, uint64_t slot_bytes, bool device_staging)
    : impl_(std::make_unique<Impl>()) {
  impl_->target = target;
  impl_->slots.resize(static_cast<size_t>(slots));
  impl_->device_staging = device_staging && target.memory == MemoryKind::device;
  if (!impl_->device_staging) return;
#if defined(CAKE_HAVE_CUDA)
  for (size_t i = 0; i < impl_->slots.size(); ++i) {
    impl_->slots[i].staging = cuda::DeviceBuffer(slot_bytes, cat("the decode staging buffer of load slot ", i));
    impl_->slots[i].start = std::make_unique<cuda::Event>(true);
    impl_->slots[i].end = std::make_unique<cuda::Event>(true);
  }
#else
  (void)slot_bytes;
  throw EnvironmentError("chunk decoder: a device target in a build without CUDA");
#endif
}

ChunkDecoder::~ChunkDecoder() = default;

std::string ChunkDecoder::set_codec(const StoreHeader& header) {
  spec_ = CodecSpec{};
  CodecSpec spec;
  try {
    spec = CodecSpec::parse_store_name(header.key.codec);
  } catch (const Error& e) {
    return e.what();
  }
  if (spec.kind == CodecKind::none) return {};
  if (header.head_dim % spec.group != 0)
    return cat("codec '", header.key.codec, "' groups do not divide the store's head_dim ", header.head_dim);
  if (impl_->target.memory == MemoryKind::device) {
    if (!impl_->device_staging)
      return cat("codec '", header.key.codec, "': this load pipeline has no device staging to decode from");
    if (impl_->target.dtype != DType::bf16)
      return cat("codec '", header.key.codec, "': the GPU decoder writes bf16, the KV cache is ", dtype_name(impl_->target.dtype));
#if defined(CAKE_HAVE_CUDA)
    if (2 * header.layers > kMaxDecodeSegments)
      return cat("codec '", header.key.codec, "': ", header.layers, " layers, the GPU decoder takes at most ",
                 kMaxDecodeSegments / 2);
#endif
  }
  for (size_t i = 0; i < header.chunks.size(); ++i) {
    const ChunkEntry& c = header.chunks[i];
    const ChunkShape shape{header.layers, header.kv_heads, header.head_dim, c.tokens};
    if (spec.fixed_size() ? c.bytes != spec.encoded_bytes(shape, header.key.dtype)
                          : c.bytes < spec.min_encoded_bytes(shape, header.key.dtype))
      return cat("chunk ", i, " has ", c.bytes, " bytes, codec '", header.key.codec, "' takes ",
                 spec.fixed_size() ? "" : "at least ", spec.min_encoded_bytes(shape, header.key.dtype), " for ", c.tokens,
                 " tokens");
#if defined(CAKE_HAVE_CUDA)
    if (impl_->device_staging && c.bytes > impl_->slots.front().staging.bytes())
      return cat("chunk ", i, " has ", c.bytes, " encoded bytes, the decode staging holds ", impl_->slots.front().staging.bytes());
#endif
  }
  spec_ = spec;
  return {};
}

std::byte* ChunkDecoder::device_staging([[maybe_unused]] int slot) const {
#if defined(CAKE_HAVE_CUDA)
  if (impl_->device_staging) return impl_->slots.at(static_cast<size_t>(slot)).staging.as<std::byte>();
#endif
  return nullptr;
}

void ChunkDecoder::decode(int slot, int chunk, const ChunkEntry& entry, const std::byte* host_encoded,
                          [[maybe_unused]] void* stream) {
  Impl::Slot& s = impl_->slots.at(static_cast<size_t>(slot));
  const ChunkShape shape{impl_->target.layers, impl_->target.kv_heads, impl_->target.head_dim, entry.tokens};
  const std::vector<std::byte*> targets = impl_->segment_targets(entry);
  s.decoded_bytes = impl_->target.chunk_bytes(entry.tokens);
  NvtxSpan span(cat("decode c=", chunk));
  if (impl_->target.memory == MemoryKind::host) {
    const int64_t start = now_ns();
    decode_chunk_cpu(spec_, shape, {host_encoded, entry.bytes}, targets, impl_->target.dtype);
    s.host_decode_ns = now_ns() - start;
    s.timed_on_device = false;
    return;
  }
#if defined(CAKE_HAVE_CUDA)
  auto* st = static_cast<cudaStream_t>(stream);
  s.start->record(st);
  decode_chunk_gpu(spec_, shape, s.staging.as<std::byte>(), entry.bytes, targets, st, cat("decoding chunk ", chunk));
  s.end->record(st);
  s.timed_on_device = true;
#else
  throw InternalError(cat("decoding chunk ", chunk, ": a device target in a build without CUDA"));
#endif
}

int64_t ChunkDecoder::decode_ns(int slot) const {
  const Impl::Slot& s = impl_->slots.at(static_cast<size_t>(slot));
#if defined(CAKE_HAVE_CUDA)
  if (s.timed_on_device) return static_cast<int64_t>(static_cast<double>(s.end->elapsed_ms_since(*s.start)) * 1e6);
#endif
  return s.host_decode_ns;
}

uint64_t ChunkDecoder::decoded_bytes(int slot) const { return impl_->slots.at(static_cast<size_t>(slot)).decoded_bytes; }

}  // namespace cake
