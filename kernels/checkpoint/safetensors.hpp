// One safetensors file's header: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}, ..., "__metadata__": {...}},
// then the raw tensor bytes, offsets relative to the end of the header. Parsed with nlohmann/json
// and validated completely before any tensor byte is used.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cake::ckpt {

// The element types a tensor may have; only f32, f16 and bf16 can become weights.
enum class TensorDType : uint8_t { f32, f16, bf16, other };

const char* tensor_dtype_name(TensorDType t);  // "F32", "F16", "BF16", "other"
size_t tensor_dtype_bytes(TensorDType t);      // 4, 2, 2; 0 for other

struct TensorEntry {
  std::string name;
  std::string dtype_text;       // as written ("BF16", "I64", ...)
  TensorDType dtype = TensorDType::other;
  std::vector<int64_t> shape;
  uint64_t begin = 0;           // byte offsets into the data section, [begin, end)
  uint64_t end = 0;
  uint64_t elements() const;
  uint64_t bytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::string path;
  uint64_t file_bytes = 0;
  uint64_t data_offset = 0;     // 8 + N: where the data section starts in the file
  std::map<std::string, TensorEntry> tensors;
  uint64_t data_bytes() const { return file_bytes - data_offset; }
};

// Reads and validates the header of `path` (the file's size is taken from fstat). Throws
// UsageError naming the file, and the tensor where one is at fault, when: the file is shorter
// than 8 bytes or than its header; the header is not a JSON object of tensor entries; an entry
// lacks or mistypes dtype, shape or data_offsets; a known dtype's byte count disagrees with its
// shape; an offset runs past the end of the file (a truncated file); two tensors overlap.
// Unknown dtypes are kept (dtype = other) so the error can be raised where the tensor is needed.
SafetensorsHeader read_safetensors_header(const std::string& path);

// The same from bytes already in memory (tests, and the reader above).
SafetensorsHeader parse_safetensors_header(const std::string& path, const std::string& header_json,
                                           uint64_t file_bytes);

}  // namespace cake::ckpt
