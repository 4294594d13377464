// Tensor-parallel sharding arithmetic (Megatron-style): what one rank of `world` owns of a llama
// layer, and the shape and store layout of its KV cache shard. Pure arithmetic, no GPU: the CUDA
// TP backend, the sharded store and the CPU split test all take their ranges from here.
//
//   attention  Q heads   [rank q_heads/world, +q_heads/world)       column split of W_q
//              KV heads  [rank kv_heads/world, +kv_heads/world)     column split of W_k, W_v
//              o_proj    its input columns of those Q heads          row split: partial sums
//   MLP        gate, up  rows [rank ffn/world, +ffn/world)           column split
//              down      input columns of the same range             row split: partial sums
//   embedding, final norm, LM head: replicated (every rank holds all of them)
// The two row-split GEMMs produce partial sums that an all-reduce (sum) adds; the residual stream
// is replicated on every rank. Q head h reads KV head h / (q_heads / kv_heads), and rank r owns
// both, so attention needs no communication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kernels/kv_cache.hpp"
#include "kernels/model_config.hpp"

namespace cake {

struct Range {
  int begin = 0;
  int count = 0;
  int end() const { return begin + count; }
  bool operator==(const Range&) const = default;
};

struct TpShard {
  int rank = 0;
  int world = 1;
  Range q_heads;   // Q heads (and attention output heads) this rank owns
  Range kv_heads;  // KV heads: its KV cache holds only these
  Range ffn;       // MLP columns of gate and up, rows of down's input
};

// Why `model` cannot be split over `world` ranks ("" when it can): q_heads, kv_heads and ffn must
// be multiples of world (every rank owns whole KV heads and the Q heads that read them).
std::string tp_split_problem(const ModelConfig& model, int world);

// Rank `rank` of `world`; throws UsageError with tp_split_problem's reason.
TpShard tp_shard(const ModelConfig& model, int rank, int world);

// The shapes one rank computes with: q_heads, kv_heads and ffn divided by world; hidden, vocab,
// layers and the rest unchanged (the residual stream and the replicated matrices are full width).
// The name gains "@tp<world>"; the weights stay those of `model` (the rank generates its slices).
ModelConfig tp_local_model(const ModelConfig& model, int world);

// Rows of the full fused W_qkv [(q_heads + 2 kv_heads) head_dim][hidden] (Q heads, K heads, V
// heads) that the rank's local W_qkv holds, in its order: its Q rows, its K rows, its V rows.
// Each is a contiguous row range of the full matrix.
struct QkvRows {
  Range q, k, v;
};
QkvRows tp_qkv_rows(const ModelConfig& model, const TpShard& shard);

// Rows of the full fused W_gate_up [2 ffn][hidden] the rank holds: its gate rows, then its up rows.
struct GateUpRows {
  Range gate, up;
};
GateUpRows tp_gate_up_rows(const ModelConfig& model, const TpShard& shard);

// Input columns of W_o [hidden][q_heads head_dim] and W_down [hidden][ffn] the rank holds.
Range tp_o_columns(const ModelConfig& model, const TpShard& shard);
Range tp_down_columns(const ModelConfig& model, const TpShard& shard);

// ---- the sharded store -----------------------------------------------------------------------
// Rank r's store shard holds, for every chunk, the chunk payload (kernels/kv_cache.hpp) of its own
// KV cache: layers x {K, V} segments of n x (kv_heads / world) x head_dim elements. A rank's shard
// is a complete store of its own (header layers = model layers, kv_heads = its count), keyed by
// the model's fingerprint plus tp_store_suffix(), so a rank can only ever open its own shard.
std::string tp_store_suffix(const TpShard& shard);  // "-tp2r0"

// Bytes of one chunk of `n_tokens` in rank `shard`'s store (its KV heads only).
size_t tp_shard_chunk_bytes(const ModelConfig& model, const TpShard& shard, DType dtype, int64_t n_tokens);

// Extracts rank `shard`'s payload from a full (unsharded) chunk payload of n_tokens: for each
// segment (K_0, V_0, K_1, ...) and token, the row slice of its KV heads. `full` holds
// model.layers x 2 segments of n x kv_heads x head_dim elements; `out` tp_shard_chunk_bytes.
void tp_extract_shard(const ModelConfig& model, const TpShard& shard, DType dtype, int64_t n_tokens,
                      std::span<const std::byte> full, std::span<std::byte> out);

}  // namespace cake
