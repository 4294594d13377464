#include "kernels/checkpoint/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace cake::ckpt {
namespace {

// The format's reference implementation refuses headers over 100 MB; so do we (a corrupt length
// must not make us allocate gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

TensorDType parse_dtype(const std::string& text) {
  if (text == "F32") return TensorDType::f32;
  if (text == "F16") return TensorDType::f16;
  if (text == "BF16") return TensorDType::bf16;
  return TensorDType::other;
}

// Byte widths of the dtypes we do not load, so their offsets can still be checked.
uint64_t any_dtype_bytes(const std::string& text) {
  if (text == "F64" || text == "I64" || text == "U64") return 8;
  if (text == "F32" || text == "I32" || text == "U32") return 4;
  if (text == "F16" || text == "BF16" || text == "I16" || text == "U16") return 2;
  if (text == "I8" || text == "U8" || text == "BOOL" || text == "F8_E4M3" || text == "F8_E5M2") return 1;
  return 0;  // unknown: its byte count is not checked
}

void read_exact(int fd, void* dst, size_t bytes, uint64_t offset, const std::string& path, const char* what) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd, static_cast<char*>(dst) + done, bytes - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw UsageError(cat(path, ": reading ", what, ": ", errno_text(errno)));
    }
    if (got == 0) throw UsageError(cat(path, ": truncated file: ", what, " ends past the end of the file"));
    done += static_cast<size_t>(got);
  }
}

}  // namespace

const char* tensor_dtype_name(TensorDType t) {
  switch (t) {
    case TensorDType::f32: return "F32";
    case TensorDType::f16: return "F16";
    case TensorDType::bf16: return "BF16";
    case TensorDType::other: return "other";
  }
  return "other";
}

size_t tensor_dtype_bytes(TensorDType t) {
  switch (t) {
    case TensorDType::f32: return 4;
    case TensorDType::f16:
    case TensorDType::bf16: return 2;
    case TensorDType::other: return 0;
  }
  return 0;
}

uint64_t TensorEntry::elements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

SafetensorsHeader parse_safetensors_header(const std::string& path, const std::string& header_json,
                                           uint64_t file_bytes) {
  SafetensorsHeader h;
  h.path = path;
  h.file_bytes = file_bytes;
  h.data_offset = 8 + header_json.size();
  if (h.data_offset > file_bytes)
    throw UsageError(cat(path, ": truncated file: the header ends at byte ", h.data_offset, " but the file has ",
                         file_bytes, " bytes"));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(cat(path, ": the safetensors header is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) throw UsageError(cat(path, ": the safetensors header is not a JSON object"));
  const uint64_t data_bytes = h.data_bytes();
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string where = cat(path, ": tensor '", name, "': ");
    if (!entry.is_object()) throw UsageError(cat(where, "entry is not an object"));
    TensorEntry t;
    t.name = name;
    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) throw UsageError(cat(where, "missing or non-string \"dtype\""));
    t.dtype_text = dtype->get<std::string>();
    t.dtype = parse_dtype(t.dtype_text);
    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) throw UsageError(cat(where, "missing or non-array \"shape\""));
    uint64_t elements = 1;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) throw UsageError(cat(where, "shape ", shape->dump(), " has a non-integer or negative dimension"));
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t{1} << 40) || (v != 0 && elements > (uint64_t{1} << 50) / v))
        throw UsageError(cat(where, "shape ", shape->dump(), " is too large"));
      elements *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      throw UsageError(cat(where, "\"data_offsets\" must be [begin, end] of non-negative integers"));
    t.begin = (*offsets)[0].get<uint64_t>();
    t.end = (*offsets)[1].get<uint64_t>();
    if (t.end < t.begin) throw UsageError(cat(where, "data_offsets [", t.begin, ", ", t.end, "] end before they begin"));
    if (t.end > data_bytes)
      throw UsageError(cat(where, "data_offsets [", t.begin, ", ", t.end, "] run past the end of the data (",
                           data_bytes, " bytes): truncated file or bad header"));
    const uint64_t width = any_dtype_bytes(t.dtype_text);
    if (width != 0 && t.bytes() != elements * width)
      throw UsageError(cat(where, "dtype ", t.dtype_text, " shape ", shape->dump(), " needs ", elements * width,
                           " bytes but data_offsets span ", t.bytes()));
    h.tensors.emplace(name, std::move(t));
  }
  // Overlap: sorted by begin, each tensor must end at or before the next one begins.
  std::vector<const TensorEntry*> order;
  for (const auto& [name, t] : h.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorEntry& a = *order[i - 1];
    const TensorEntry& b = *order[i];
    if (b.begin < a.end && b.bytes() > 0 && a.bytes() > 0)
      throw UsageError(cat(path, ": tensors '", a.name, "' [", a.begin, ", ", a.end, ") and '", b.name, "' [", b.begin,
                           ", ", b.end, ") overlap"));
  }
  return h;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw UsageError(cat("cannot open ", path, ": ", errno_text(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw UsageError(cat("fstat ", path, ": ", errno_text(errno)));
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) throw UsageError(cat(path, ": truncated file: ", file_bytes, " bytes, not even a header length"));
  unsigned char len_bytes[8];
  read_exact(fd.get(), len_bytes, 8, 0, path, "the header length");
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | len_bytes[i];  // little-endian
  if (header_bytes > kMaxHeaderBytes)
    throw UsageError(cat(path, ": header length ", header_bytes, " exceeds ", kMaxHeaderBytes,
                         " bytes: not a safetensors file, or a corrupt one"));
  if (8 + header_bytes > file_bytes)
    throw UsageError(cat(path, ": truncated file: the header claims ", header_bytes, " bytes but the file has ",
                         file_bytes));
  std::string header(static_cast<size_t>(header_bytes), '\0');
  read_exact(fd.get(), header.data(), header.size(), 8, path, "the header");
  return parse_safetensors_header(path, header, file_bytes);
}

}  // namespace cake::ckpt
