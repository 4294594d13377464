// KV store files: the header encoding (README.md, "KV store format"), its validation, and the writer.
#include "loaders/store_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/hash.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/kv_codec.hpp"

namespace cake {
namespace {

// Byte offsets of the fixed prefix (README.md, "KV store format").
constexpr char kMagic[8] = {'C', 'A', 'K', 'E', 'K', 'V', 'S', '\0'};
constexpr size_t kOffVersion = 8;
constexpr size_t kOffFlags = 12;
constexpr size_t kOffHeaderBytes = 16;
constexpr size_t kOffFileBytes = 24;
constexpr size_t kOffTokenHash = 32;
constexpr size_t kOffTokenCount = 40;
constexpr size_t kOffChunkTokens = 48;
constexpr size_t kOffChunkCount = 52;
constexpr size_t kOffLayers = 56;
constexpr size_t kOffKvHeads = 60;
constexpr size_t kOffHeadDim = 64;
constexpr size_t kOffDtype = 68;
constexpr size_t kOffFingerprintBytes = 72;
constexpr size_t kOffCodecBytes = 76;
constexpr size_t kOffHeaderCrc = 80;
constexpr size_t kOffPrefixCrc = 84;
constexpr size_t kPrefixBytes = 88;  // strings follow here
constexpr size_t kEntryBytes = 32;

// Bounds checked before anything is allocated from a header's numbers.
constexpr uint32_t kMaxFingerprintBytes = 4096;
constexpr uint32_t kMaxCodecBytes = 64;
constexpr uint32_t kMaxChunks = 1u << 20;
constexpr uint64_t kMaxHeaderBytes = 64ull << 20;
constexpr int kMaxDim = 1 << 16;
constexpr int64_t kMaxTokens = int64_t{1} << 32;

void put_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_u64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint32_t get_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

size_t align8(size_t v) { return (v + 7) / 8 * 8; }

size_t table_offset(size_t fingerprint_bytes, size_t codec_bytes) {
  return align8(kPrefixBytes + fingerprint_bytes + codec_bytes);
}

uint64_t header_bytes_for(const StoreHeader& h) {
  return store_align_up(table_offset(h.key.model_fingerprint.size(), h.key.codec.size()) +
                        kEntryBytes * h.chunks.size());
}

// The header's own checksum is computed with both checksum fields zeroed.
uint32_t header_checksum(std::span<const std::byte> header) {
  const std::byte zeros[8] = {};
  uint32_t crc = crc32c(header.data(), kOffHeaderCrc);
  crc = crc32c(zeros, sizeof zeros, crc);
  return crc32c(header.data() + kPrefixBytes, header.size() - kPrefixBytes, crc);
}

// Shape checks shared by the writer (before writing) and the reader (after the checksums).
// Returns what is wrong, or empty.
std::string shape_problem(const StoreHeader& h) {
  const StoreKey& k = h.key;
  if (k.model_fingerprint.size() > kMaxFingerprintBytes)
    return cat("model fingerprint is ", k.model_fingerprint.size(), " bytes (at most ", kMaxFingerprintBytes, ")");
  if (k.codec.empty() || k.codec.size() > kMaxCodecBytes)
    return cat("codec name is ", k.codec.size(), " bytes (1 to ", kMaxCodecBytes, ")");
  if (k.dtype != DType::f32 && k.dtype != DType::bf16)
    return cat("unknown dtype code ", static_cast<int>(k.dtype));
  if (h.layers <= 0 || h.layers > kMaxDim) return cat("layers ", h.layers, " out of range");
  if (h.kv_heads <= 0 || h.kv_heads > kMaxDim) return cat("kv_heads ", h.kv_heads, " out of range");
  if (h.head_dim <= 0 || h.head_dim > kMaxDim) return cat("head_dim ", h.head_dim, " out of range");
  if (k.token_count <= 0 || k.token_count > kMaxTokens) return cat("token count ", k.token_count, " out of range");
  if (k.chunk_tokens <= 0) return cat("chunk size ", k.chunk_tokens, " tokens is not positive");
  if (h.chunks.empty() || h.chunks.size() > kMaxChunks)
    return cat("chunk count ", h.chunks.size(), " out of range (1 to ", kMaxChunks, ")");
  int64_t next_token = 0;
  for (size_t i = 0; i < h.chunks.size(); ++i) {
    const ChunkEntry& c = h.chunks[i];
    if (c.first_token != next_token)
      return cat("chunk ", i, " starts at token ", c.first_token, ", expected ", next_token, " (chunks must be contiguous)");
    if (c.tokens <= 0 || c.tokens > k.chunk_tokens)
      return cat("chunk ", i, " has ", c.tokens, " tokens (1 to the chunk size ", k.chunk_tokens, ")");
    next_token += c.tokens;
  }
  if (next_token != k.token_count)
    return cat("chunks cover ", next_token, " tokens, the store has ", k.token_count);
  return {};
}

std::vector<std::byte> encode_header(const StoreHeader& h, uint64_t file_bytes) {
  const uint64_t header_bytes = header_bytes_for(h);
  std::vector<std::byte> out(header_bytes, std::byte{0});
  std::byte* p = out.data();
  std::memcpy(p, kMagic, sizeof kMagic);
  put_u32(p + kOffVersion, kStoreFormatVersion);
  put_u32(p + kOffFlags, 0);
  put_u64(p + kOffHeaderBytes, header_bytes);
  put_u64(p + kOffFileBytes, file_bytes);
  put_u64(p + kOffTokenHash, h.key.token_hash);
  put_u64(p + kOffTokenCount, static_cast<uint64_t>(h.key.token_count));
  put_u32(p + kOffChunkTokens, static_cast<uint32_t>(h.key.chunk_tokens));
  put_u32(p + kOffChunkCount, static_cast<uint32_t>(h.chunks.size()));
  put_u32(p + kOffLayers, static_cast<uint32_t>(h.layers));
  put_u32(p + kOffKvHeads, static_cast<uint32_t>(h.kv_heads));
  put_u32(p + kOffHeadDim, static_cast<uint32_t>(h.head_dim));
  p[kOffDtype] = static_cast<std::byte>(h.key.dtype);
  put_u32(p + kOffFingerprintBytes, static_cast<uint32_t>(h.key.model_fingerprint.size()));
  put_u32(p + kOffCodecBytes, static_cast<uint32_t>(h.key.codec.size()));
  std::memcpy(p + kPrefixBytes, h.key.model_fingerprint.data(), h.key.model_fingerprint.size());
  std::memcpy(p + kPrefixBytes + h.key.model_fingerprint.size(), h.key.codec.data(), h.key.codec.size());
  std::byte* entry = p + table_offset(h.key.model_fingerprint.size(), h.key.codec.size());
  for (const ChunkEntry& c : h.chunks) {
    put_u64(entry, c.offset);
    put_u64(entry + 8, c.bytes);
    put_u64(entry + 16, static_cast<uint64_t>(c.first_token));
    put_u32(entry + 24, static_cast<uint32_t>(c.tokens));
    put_u32(entry + 28, c.crc32c);
    entry += kEntryBytes;
  }
  put_u32(p + kOffHeaderCrc, header_checksum(out));
  put_u32(p + kOffPrefixCrc, crc32c(p, kOffPrefixCrc));
  return out;
}

// pread that insists on `bytes` unless the file ends first; returns what it got.
// `buf`/`bytes`/`offset` are 4 KiB multiples so this also works on an O_DIRECT fd.
uint64_t pread_full(int fd, std::byte* buf, uint64_t bytes, uint64_t offset, const std::string& path) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, buf + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(cat("reading the header of store ", path, " at byte ", offset + done, ": ", errno_text(errno)));
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return done;
}

void pwrite_full(int fd, const std::byte* buf, uint64_t bytes, uint64_t offset, const std::string& what) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pwrite(fd, buf + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(cat(what, ": pwrite at byte ", offset + done), errno);
    }
    if (n == 0) throw Error(cat(what, ": pwrite at byte ", offset + done, " wrote nothing"));
    done += static_cast<uint64_t>(n);
  }
}

}  // namespace

std::string store_path(const std::string& dir, const StoreKey& key) {
  if (dir.empty()) return key.file_name();
  return dir.back() == '/' ? cat(dir, key.file_name()) : cat(dir, "/", key.file_name());
}

StoreHeader read_store_header(int fd, const std::string& path) {
  auto fail = [&](const std::string& what) -> Error { return Error(cat("store ", path, ": ", what)); };
  struct stat st{};
  check_sys(::fstat(fd, &st), cat("fstat of store ", path));
  if (!S_ISREG(st.st_mode)) throw fail("not a regular file");
  const auto size_bytes = static_cast<uint64_t>(st.st_size);
  if (size_bytes < kPrefixBytes)
    throw fail(cat("truncated: the file has ", size_bytes, " bytes, less than the ", kPrefixBytes, "-byte header prefix"));

  AlignedBuffer first(kStoreAlignment);
  first.zero();
  const uint64_t got = pread_full(fd, first.data(), kStoreAlignment, 0, path);
  if (got < kPrefixBytes) throw fail(cat("truncated: read ", got, " header bytes, file size said ", size_bytes));
  const std::byte* p = first.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) throw fail("bad magic: not a cake-bench KV store");
  const uint32_t version = get_u32(p + kOffVersion);
  if (version != kStoreFormatVersion)
    throw fail(cat("unsupported format version ", version, " (this build reads version ", kStoreFormatVersion, ")"));
  const uint32_t prefix_crc = get_u32(p + kOffPrefixCrc);
  if (crc32c(p, kOffPrefixCrc) != prefix_crc) throw fail("header checksum mismatch in the fixed prefix (corrupt header)");

  const uint64_t header_bytes = get_u64(p + kOffHeaderBytes);
  const uint64_t file_bytes = get_u64(p + kOffFileBytes);
  if (header_bytes < kStoreAlignment || header_bytes % kStoreAlignment != 0 || header_bytes > kMaxHeaderBytes)
    throw fail(cat("header size ", header_bytes, " is not a 4 KiB multiple up to ", kMaxHeaderBytes));
  if (file_bytes % kStoreAlignment != 0 || file_bytes < header_bytes)
    throw fail(cat("file size field ", file_bytes, " is not a 4 KiB multiple at least the header size ", header_bytes));
  if (size_bytes < file_bytes)
    throw fail(cat("truncated: the file has ", size_bytes, " bytes, its header says ", file_bytes));
  if (size_bytes > file_bytes)
    throw fail(cat("the file has ", size_bytes, " bytes, its header says ", file_bytes, " (trailing data)"));

  AlignedBuffer whole(header_bytes);
  const uint64_t got_whole = pread_full(fd, whole.data(), header_bytes, 0, path);
  if (got_whole != header_bytes)
    throw fail(cat("truncated: read ", got_whole, " of ", header_bytes, " header bytes"));
  const std::span<const std::byte> h{whole.data(), header_bytes};
  if (header_checksum(h) != get_u32(h.data() + kOffHeaderCrc)) throw fail("header checksum mismatch (corrupt header)");
  if (get_u32(h.data() + kOffFlags) != 0) throw fail(cat("unknown flags ", get_u32(h.data() + kOffFlags)));

  const uint32_t fingerprint_bytes = get_u32(h.data() + kOffFingerprintBytes);
  const uint32_t codec_bytes = get_u32(h.data() + kOffCodecBytes);
  const uint32_t chunk_count = get_u32(h.data() + kOffChunkCount);
  if (fingerprint_bytes > kMaxFingerprintBytes) throw fail(cat("fingerprint length ", fingerprint_bytes, " too large"));
  if (codec_bytes == 0 || codec_bytes > kMaxCodecBytes) throw fail(cat("codec name length ", codec_bytes, " out of range"));
  if (chunk_count == 0 || chunk_count > kMaxChunks) throw fail(cat("chunk count ", chunk_count, " out of range"));
  const size_t table = table_offset(fingerprint_bytes, codec_bytes);
  if (table + static_cast<uint64_t>(kEntryBytes) * chunk_count > header_bytes)
    throw fail(cat("chunk table of ", chunk_count, " entries does not fit in the ", header_bytes, "-byte header"));
  const auto dtype_code = static_cast<uint8_t>(h[kOffDtype]);
  if (dtype_code > static_cast<uint8_t>(DType::bf16)) throw fail(cat("unknown dtype code ", int{dtype_code}));

  StoreHeader out;
  out.version = version;
  out.key.model_fingerprint.assign(reinterpret_cast<const char*>(h.data() + kPrefixBytes), fingerprint_bytes);
  out.key.codec.assign(reinterpret_cast<const char*>(h.data() + kPrefixBytes + fingerprint_bytes), codec_bytes);
  out.key.token_hash = get_u64(h.data() + kOffTokenHash);
  out.key.token_count = static_cast<int64_t>(get_u64(h.data() + kOffTokenCount));
  out.key.chunk_tokens = static_cast<int32_t>(get_u32(h.data() + kOffChunkTokens));
  out.key.dtype = static_cast<DType>(dtype_code);
  out.layers = static_cast<int>(get_u32(h.data() + kOffLayers));
  out.kv_heads = static_cast<int>(get_u32(h.data() + kOffKvHeads));
  out.head_dim = static_cast<int>(get_u32(h.data() + kOffHeadDim));
  out.chunks.resize(chunk_count);
  const std::byte* entry = h.data() + table;
  for (ChunkEntry& c : out.chunks) {
    c.offset = get_u64(entry);
    c.bytes = get_u64(entry + 8);
    c.first_token = static_cast<int64_t>(get_u64(entry + 16));
    c.tokens = static_cast<int32_t>(get_u32(entry + 24));
    c.crc32c = get_u32(entry + 28);
    entry += kEntryBytes;
  }
  if (const std::string problem = shape_problem(out); !problem.empty()) throw fail(problem);
  // The codec and its parameters must be ones this build decodes, and every chunk its size.
  CodecSpec codec;
  try {
    codec = CodecSpec::parse_store_name(out.key.codec);
  } catch (const Error& e) {
    throw fail(e.what());
  }

  uint64_t next_free = header_bytes;
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ChunkEntry& c = out.chunks[i];
    if (c.offset % kStoreAlignment != 0) throw fail(cat("chunk ", i, " offset ", c.offset, " is not 4 KiB aligned"));
    if (c.offset < next_free)
      throw fail(cat("chunk ", i, " offset ", c.offset, " overlaps the header or the previous chunk (ends at ", next_free, ")"));
    if (c.bytes == 0) throw fail(cat("chunk ", i, " is empty"));
    if (out.key.codec == "none" && c.bytes != out.raw_chunk_bytes(c.tokens))
      throw fail(cat("chunk ", i, " has ", c.bytes, " bytes, ", c.tokens, " uncompressed tokens take ",
                     out.raw_chunk_bytes(c.tokens)));
    const ChunkShape chunk_shape{out.layers, out.kv_heads, out.head_dim, c.tokens};
    if (!codec.lossless() && out.head_dim % codec.group != 0)
      throw fail(cat("codec '", out.key.codec, "' groups do not divide head_dim ", out.head_dim));
    if (!codec.lossless() && codec.fixed_size() && c.bytes != codec.encoded_bytes(chunk_shape, out.key.dtype))
      throw fail(cat("chunk ", i, " has ", c.bytes, " bytes, codec '", out.key.codec, "' takes ",
                     codec.encoded_bytes(chunk_shape, out.key.dtype), " for ", c.tokens, " tokens of head_dim ", out.head_dim));
    if (!codec.fixed_size() && c.bytes < codec.min_encoded_bytes(chunk_shape, out.key.dtype))
      throw fail(cat("chunk ", i, " has ", c.bytes, " bytes, less than the ", codec.min_encoded_bytes(chunk_shape, out.key.dtype),
                     " that codec '", out.key.codec, "' takes for ", c.tokens, " tokens before any sub-stream"));
    if (c.offset > file_bytes || padded_bytes(c) > file_bytes - c.offset)
      throw fail(cat("chunk ", i, " [", c.offset, ", +", c.bytes, ") lies past the end of the ", file_bytes, "-byte file"));
    next_free = c.offset + padded_bytes(c);
  }
  return out;
}

void validate_store_key(const StoreHeader& header, const StoreKey& expected, const std::string& path) {
  const StoreKey& got = header.key;
  auto mismatch = [&](const char* field, const auto& have, const auto& want) {
    throw Error(cat("store ", path, " does not match the request: ", field, " differs (store has ", have,
                    ", expected ", want, ")"));
  };
  if (got.model_fingerprint != expected.model_fingerprint)
    mismatch("model fingerprint", cat("'", got.model_fingerprint, "'"), cat("'", expected.model_fingerprint, "'"));
  if (got.token_hash != expected.token_hash) mismatch("token hash", hex64(got.token_hash), hex64(expected.token_hash));
  if (got.token_count != expected.token_count) mismatch("token count", got.token_count, expected.token_count);
  if (got.chunk_tokens != expected.chunk_tokens) mismatch("chunk size (tokens)", got.chunk_tokens, expected.chunk_tokens);
  if (got.codec != expected.codec) mismatch("codec", cat("'", got.codec, "'"), cat("'", expected.codec, "'"));
  if (got.dtype != expected.dtype) mismatch("dtype", dtype_name(got.dtype), dtype_name(expected.dtype));
}

struct StoreWriter::Impl {
  std::string path;
  std::string temp_path;
  UniqueFd fd;
  StoreHeader header;
  uint64_t header_bytes = 0;
  uint64_t next_offset = 0;
  size_t next_chunk = 0;
  bool finished = false;
};

StoreWriter::StoreWriter(const std::string& path, StoreHeader header) : impl_(std::make_unique<Impl>()) {
  header.version = kStoreFormatVersion;
  if (const std::string problem = shape_problem(header); !problem.empty())
    throw Error(cat("writing store ", path, ": ", problem));
  impl_->path = path;
  std::random_device entropy;
  impl_->temp_path = cat(path, ".tmp-", ::getpid(), "-", hex64((uint64_t{entropy()} << 32) | entropy()));
  impl_->fd.reset(::open(impl_->temp_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
  if (!impl_->fd.valid()) throw_errno(cat("creating store ", impl_->temp_path), errno);
  impl_->header_bytes = header_bytes_for(header);
  impl_->next_offset = impl_->header_bytes;
  impl_->header = std::move(header);
}

StoreWriter::~StoreWriter() {
  if (impl_ && !impl_->finished) {
    impl_->fd.reset();
    ::unlink(impl_->temp_path.c_str());  // best effort: a destructor cannot report
  }
}

void StoreWriter::write_chunk(int index, std::span<const std::byte> payload) {
  Impl& s = *impl_;
  if (s.finished) throw Error(cat("writing store ", s.path, ": chunk ", index, " after finish()"));
  if (index < 0 || static_cast<size_t>(index) != s.next_chunk)
    throw Error(cat("writing store ", s.path, ": chunk ", index, " out of order (expected chunk ", s.next_chunk, ")"));
  ChunkEntry& c = s.header.chunks[s.next_chunk];
  if (s.header.key.codec == "none" && payload.size() != s.header.raw_chunk_bytes(c.tokens))
    throw Error(cat("writing store ", s.path, ": chunk ", index, " payload is ", payload.size(), " bytes, ", c.tokens,
                    " tokens take ", s.header.raw_chunk_bytes(c.tokens)));
  if (payload.empty()) throw Error(cat("writing store ", s.path, ": chunk ", index, " payload is empty"));
  c.offset = s.next_offset;
  c.bytes = payload.size();
  c.crc32c = crc32c(payload.data(), payload.size());
  pwrite_full(s.fd.get(), payload.data(), payload.size(), c.offset, cat("writing chunk ", index, " of store ", s.temp_path));
  s.next_offset = c.offset + padded_bytes(c);
  ++s.next_chunk;
}

StoreHeader StoreWriter::finish() {
  Impl& s = *impl_;
  if (s.finished) throw Error(cat("writing store ", s.path, ": finish() called twice"));
  if (s.next_chunk != s.header.chunks.size())
    throw Error(cat("writing store ", s.path, ": finish() after ", s.next_chunk, " of ", s.header.chunks.size(), " chunks"));
  const std::vector<std::byte> head = encode_header(s.header, s.next_offset);
  pwrite_full(s.fd.get(), head.data(), head.size(), 0, cat("writing the header of store ", s.temp_path));
  // The last chunk's padding must exist on disk so its aligned O_DIRECT read is whole.
  check_sys(::ftruncate(s.fd.get(), static_cast<off_t>(s.next_offset)), cat("sizing store ", s.temp_path));
  check_sys(::fsync(s.fd.get()), cat("fsync of store ", s.temp_path));
  check_sys(::close(s.fd.release()), cat("closing store ", s.temp_path));
  check_sys(::rename(s.temp_path.c_str(), s.path.c_str()), cat("renaming ", s.temp_path, " to ", s.path));
  s.finished = true;
  // The rename is durable only once the directory is synced.
  const std::string dir = std::filesystem::path(s.path).parent_path().string();
  UniqueFd dir_fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) throw Error(cat("opening directory of store ", s.path, " to fsync it: ", errno_text(errno)));
  check_sys(::fsync(dir_fd.get()), cat("fsync of the directory of store ", s.path));
  return s.header;
}

}  // namespace cake
