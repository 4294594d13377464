// A HuggingFace model folder as weights for the compute backends: config.json (architecture),
// model.safetensors or the shards named by model.safetensors.index.json. open_checkpoint reads
// and validates every header and the config against each other before a tensor byte is read;
// load_checkpoint then reads whole files with large aligned reads into memory the backend owns
// (pinned for CUDA) and hands each tensor over as stored, for the backend to convert.
//
// Supported: model_type llama, mistral, qwen2 (Llama-family tensor names; Qwen2's q/k/v
// biases), tied or untied LM head, F32/F16/BF16 tensors (mixed allowed). Refused with a clear
// error: other model types, attention_bias/mlp_bias on llama, hidden_act other than silu, RoPE
// scaling (rope_type other than "default"). Honoured config fields: hidden_size,
// num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
// vocab_size, rope_theta (top level or rope_parameters), rms_norm_eps, max_position_embeddings,
// tie_word_embeddings, sliding_window (Mistral) / use_sliding_window (Qwen2): recorded, and the
// backends refuse contexts longer than the window (they compute full attention, identical to a
// sliding window only while every key is inside it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/checkpoint/safetensors.hpp"
#include "kernels/model_config.hpp"

namespace cake::ckpt {

// What a tensor is to the model.
enum class Role : uint8_t { embedding, final_norm, lm_head, attn_norm, q, k, v, q_bias, k_bias, v_bias, o, mlp_norm, gate, up, down };

struct TensorSlot {
  Role role = Role::embedding;
  int layer = -1;               // -1 for model-level tensors
  int file = 0;                 // index into Checkpoint::files
  TensorEntry entry;            // as stored (name, dtype, shape, offsets)
};

struct Checkpoint {
  std::string dir;               // absolute (canonical) path of the folder
  std::string name;             // the folder's name
  std::string model_type;       // llama, mistral, qwen2
  ModelConfig model;            // name "ckpt:<folder>"; weights_fingerprint empty until loaded
  std::vector<SafetensorsHeader> files;
  std::vector<TensorSlot> slots;        // every tensor the model uses, in (file, offset) order
  std::vector<std::string> ignored;     // present but unused: rotary inv_freq, a tied lm_head
  std::vector<std::string> honoured;    // "rope_theta=500000", ... for reports
  uint64_t parameter_count = 0;         // elements of the used tensors
  uint64_t tensor_bytes = 0;            // their bytes as stored
  uint64_t file_bytes = 0;              // all safetensors files
  std::string dtypes;                   // "BF16", "F32", "BF16+F32"
  std::string header_fingerprint;       // config + headers (names, dtypes, shapes, offsets) + sizes
};

// Throws UsageError naming the file (and tensor) at fault: no config.json or no safetensors in
// `dir`; an unsupported architecture; any safetensors header error (safetensors.hpp); an index
// that names a missing shard or a tensor its shard lacks, or a tensor in two shards; a missing
// tensor; an unexpected tensor (e.g. more layers than config.json says); a shape that does not
// match config.json; a dtype other than F32/F16/BF16.
Checkpoint open_checkpoint(const std::string& dir);

// One line: "NAME (llama, 3 layers, 1.2 M parameters, 4.8 MB BF16, 1 file)".
std::string describe(const Checkpoint& c);

// The backend's side of a load.
class WeightSink {
 public:
  virtual ~WeightSink() = default;
  // Host memory for one whole file: at least `bytes`, 4096-byte aligned, valid until file_done().
  virtual std::byte* file_buffer(size_t bytes) = 0;
  // One tensor's bytes as stored (slot.entry.dtype, possibly unaligned). Writable: the sink may
  // convert in place. Only valid until file_done().
  virtual void tensor(const TensorSlot& slot, std::byte* bytes) = 0;
  // Every tensor of the file was handed over; the buffer may be reused after this returns.
  virtual void file_done() = 0;
};

struct LoadOptions {
  size_t read_bytes = size_t{64} << 20;  // one read request; a multiple of 4096
  bool try_o_direct = true;              // falls back to buffered reads where O_DIRECT fails
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;  // after each read
};

struct LoadStats {
  uint64_t bytes_read = 0;
  double seconds = 0;                    // all of it; the parts below add up to about this
  double buffer_seconds = 0;             // sink.file_buffer (pinning host memory on CUDA)
  double read_seconds = 0;               // pread
  double crc_seconds = 0;                // CRC-32C of what was read
  double hand_over_seconds = 0;          // sink.tensor + sink.file_done (conversion, upload)
  bool o_direct = false;                 // every file was read with O_DIRECT
  std::string content_fingerprint;       // 16 hex digits over every file's CRC-32C and size + headers
};

// Reads file by file, each with `read_bytes` reads at aligned offsets into sink.file_buffer(),
// CRC-32C over every byte read, then hands over that file's tensors. Throws Error naming the file
// on a read error or a file that changed size since open_checkpoint. The sink must discard
// everything when this throws: nothing partial is used.
LoadStats load_checkpoint(const Checkpoint& c, WeightSink& sink, const LoadOptions& options = {});

// "2973804872 bytes in 2.572 s (1.16 GB/s) with O_DIRECT (buffer 0.410 s, read 1.200 s, crc 0.300 s,
// convert+copy 0.600 s)" for weights notes.
std::string load_summary(const LoadStats& s);

// Conversions for sinks. n elements of `dtype` at src (any alignment) to fp32 at dst.
void convert_to_f32(TensorDType dtype, const std::byte* src, uint64_t n, float* dst);
// In place: afterwards `data` holds n bf16 values (round to nearest even; NaN stays NaN).
void convert_to_bf16_in_place(TensorDType dtype, std::byte* data, uint64_t n);
// IEEE half to float, exactly.
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);  // round to nearest even

}  // namespace cake::ckpt
