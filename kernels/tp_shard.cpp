#include "kernels/tp_shard.hpp"

#include <cstring>

#include "common/error.hpp"

namespace cake {

std::string tp_split_problem(const ModelConfig& model, int world) {
  if (world < 1) return cat("tensor parallelism needs at least 1 rank, got ", world);
  if (model.kv_heads % world != 0)
    return cat("model '", model.name, "' has ", model.kv_heads, " KV heads, not a multiple of ", world,
               " ranks (each rank owns whole KV heads)");
  if (model.q_heads % world != 0)
    return cat("model '", model.name, "' has ", model.q_heads, " attention heads, not a multiple of ", world, " ranks");
  if (model.ffn % world != 0)
    return cat("model '", model.name, "' has an MLP width of ", model.ffn, ", not a multiple of ", world, " ranks");
  if ((model.ffn / world) % 8 != 0)
    return cat("model '", model.name, "': the MLP width per rank (", model.ffn / world,
               ") must be a multiple of 8 (the GPU's vector width)");
  return "";
}

TpShard tp_shard(const ModelConfig& model, int rank, int world) {
  const std::string problem = tp_split_problem(model, world);
  if (!problem.empty()) throw UsageError(problem);
  if (rank < 0 || rank >= world) throw UsageError(cat("tensor-parallel rank ", rank, " is outside [0, ", world, ")"));
  TpShard s;
  s.rank = rank;
  s.world = world;
  const int q = model.q_heads / world, kv = model.kv_heads / world, f = model.ffn / world;
  s.q_heads = {rank * q, q};
  s.kv_heads = {rank * kv, kv};
  s.ffn = {rank * f, f};
  return s;
}

ModelConfig tp_local_model(const ModelConfig& model, int world) {
  const std::string problem = tp_split_problem(model, world);
  if (!problem.empty()) throw UsageError(problem);
  ModelConfig m = model;
  m.q_heads /= world;
  m.kv_heads /= world;
  m.ffn /= world;
  m.name = cat(model.name, "@tp", world);
  m.validate();
  return m;
}

QkvRows tp_qkv_rows(const ModelConfig& model, const TpShard& s) {
  const int d = model.head_dim;
  QkvRows r;
  r.q = {s.q_heads.begin * d, s.q_heads.count * d};
  r.k = {(model.q_heads + s.kv_heads.begin) * d, s.kv_heads.count * d};
  r.v = {(model.q_heads + model.kv_heads + s.kv_heads.begin) * d, s.kv_heads.count * d};
  return r;
}

GateUpRows tp_gate_up_rows(const ModelConfig& model, const TpShard& s) {
  return {s.ffn, {model.ffn + s.ffn.begin, s.ffn.count}};
}

Range tp_o_columns(const ModelConfig& model, const TpShard& s) {
  return {s.q_heads.begin * model.head_dim, s.q_heads.count * model.head_dim};
}

Range tp_down_columns(const ModelConfig&, const TpShard& s) { return s.ffn; }

std::string tp_store_suffix(const TpShard& s) { return cat("-tp", s.world, "r", s.rank); }

size_t tp_shard_chunk_bytes(const ModelConfig& model, const TpShard& s, DType dtype, int64_t n_tokens) {
  return 2 * static_cast<size_t>(model.layers) * static_cast<size_t>(n_tokens) * static_cast<size_t>(s.kv_heads.count) *
         static_cast<size_t>(model.head_dim) * dtype_bytes(dtype);
}

void tp_extract_shard(const ModelConfig& model, const TpShard& s, DType dtype, int64_t n_tokens,
                      std::span<const std::byte> full, std::span<std::byte> out) {
  const size_t head_bytes = static_cast<size_t>(model.head_dim) * dtype_bytes(dtype);
  const size_t full_row = static_cast<size_t>(model.kv_heads) * head_bytes;
  const size_t shard_row = static_cast<size_t>(s.kv_heads.count) * head_bytes;
  const size_t segments = 2 * static_cast<size_t>(model.layers);
  const size_t n = static_cast<size_t>(n_tokens);
  if (full.size() != segments * n * full_row)
    throw InternalError(cat("tp_extract_shard: full payload of ", full.size(), " bytes, expected ", segments * n * full_row));
  if (out.size() != segments * n * shard_row)
    throw InternalError(cat("tp_extract_shard: shard buffer of ", out.size(), " bytes, expected ", segments * n * shard_row));
  const size_t skip = static_cast<size_t>(s.kv_heads.begin) * head_bytes;
  for (size_t row = 0; row < segments * n; ++row)
    std::memcpy(out.data() + row * shard_row, full.data() + row * full_row + skip, shard_row);
}

}  // namespace cake
