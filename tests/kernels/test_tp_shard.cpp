// Tensor-parallel sharding arithmetic (kernels/tp_shard.hpp) and a CPU "TP" of one whole llama
// layer: the layer's matrices split by the ranges tp_shard() gives, each rank's part computed with
// the CPU reference ops, the row-split partial sums added in rank order (what an all-reduce does),
// against the unsplit layer in fp32.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/presets.hpp"
#include "kernels/tp_shard.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake {
namespace {

using test::TestRng;

// Every rank's ranges are disjoint and together cover [0, total) in rank order.
void expect_partition(const std::vector<Range>& parts, int total, const char* what) {
  int next = 0;
  for (const Range& r : parts) {
    EXPECT_EQ(r.begin, next) << what;
    EXPECT_GT(r.count, 0) << what;
    next = r.end();
  }
  EXPECT_EQ(next, total) << what;
}

TEST(TpShard, RanksPartitionHeadsAndMlpColumnsOfEveryPreset) {
  for (const std::string& name : preset_names()) {
    const ModelConfig m = preset_model(name);
    for (int world : {1, 2, 4, 8}) {
      SCOPED_TRACE(cat(name, " world ", world));
      if (!tp_split_problem(m, world).empty()) {
        EXPECT_THROW(tp_shard(m, 0, world), UsageError);
        continue;
      }
      std::vector<Range> q, kv, f, o, down, qkv_q, qkv_k, qkv_v, gate, up;
      for (int r = 0; r < world; ++r) {
        const TpShard s = tp_shard(m, r, world);
        q.push_back(s.q_heads);
        kv.push_back(s.kv_heads);
        f.push_back(s.ffn);
        o.push_back(tp_o_columns(m, s));
        down.push_back(tp_down_columns(m, s));
        const QkvRows rows = tp_qkv_rows(m, s);
        qkv_q.push_back(rows.q);
        qkv_k.push_back({rows.k.begin - m.q_heads * m.head_dim, rows.k.count});
        qkv_v.push_back({rows.v.begin - (m.q_heads + m.kv_heads) * m.head_dim, rows.v.count});
        const GateUpRows gu = tp_gate_up_rows(m, s);
        gate.push_back(gu.gate);
        up.push_back({gu.up.begin - m.ffn, gu.up.count});
        // Q head h reads KV head h / group: the rank owns every KV head its Q heads read.
        const int group = m.q_heads / m.kv_heads;
        EXPECT_EQ(s.q_heads.begin / group, s.kv_heads.begin);
        EXPECT_EQ((s.q_heads.end() - 1) / group, s.kv_heads.end() - 1);
        const ModelConfig local = tp_local_model(m, world);
        EXPECT_EQ(local.q_heads, s.q_heads.count);
        EXPECT_EQ(local.kv_heads, s.kv_heads.count);
        EXPECT_EQ(local.ffn, s.ffn.count);
        EXPECT_EQ(local.hidden, m.hidden);
        EXPECT_EQ(local.vocab, m.vocab);
        EXPECT_EQ(local.qkv_width(), rows.q.count + rows.k.count + rows.v.count);
      }
      expect_partition(q, m.q_heads, "q heads");
      expect_partition(kv, m.kv_heads, "kv heads");
      expect_partition(f, m.ffn, "ffn");
      expect_partition(o, m.q_heads * m.head_dim, "o_proj columns");
      expect_partition(down, m.ffn, "down columns");
      expect_partition(qkv_q, m.q_heads * m.head_dim, "W_q rows");
      expect_partition(qkv_k, m.kv_heads * m.head_dim, "W_k rows");
      expect_partition(qkv_v, m.kv_heads * m.head_dim, "W_v rows");
      expect_partition(gate, m.ffn, "gate rows");
      expect_partition(up, m.ffn, "up rows");
    }
  }
}

TEST(TpShard, RefusesSplitsThatBreakAHead) {
  ModelConfig m = preset_model("llama-3.1-70b");
  EXPECT_TRUE(tp_split_problem(m, 2).empty());
  EXPECT_NE(tp_split_problem(m, 3), "");  // 8 KV heads over 3 ranks
  EXPECT_NE(tp_split_problem(m, 16), "");  // 8 KV heads over 16 ranks
  EXPECT_NE(tp_split_problem(m, 0), "");
  EXPECT_THROW(tp_shard(m, 2, 2), UsageError);
  EXPECT_THROW(tp_local_model(m, 3), UsageError);
}

// The store shards of all ranks hold every byte of the full chunk payload exactly once.
TEST(TpShard, StoreShardsReassembleTheFullPayload) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny");  // 4 layers, 2 KV heads
  const int world = 2;
  const int64_t n = rng.integer(1, 40);
  const size_t head_bytes = static_cast<size_t>(m.head_dim) * 2;
  const size_t full_bytes = 2 * static_cast<size_t>(m.layers) * n * m.kv_heads * head_bytes;
  std::vector<std::byte> full(full_bytes);
  for (auto& b : full) b = static_cast<std::byte>(rng.integer(0, 255));
  std::vector<std::byte> reassembled(full_bytes, std::byte{0xAB});
  size_t shard_total = 0;
  for (int r = 0; r < world; ++r) {
    const TpShard s = tp_shard(m, r, world);
    std::vector<std::byte> shard(tp_shard_chunk_bytes(m, s, DType::bf16, n), std::byte{0xCD});
    tp_extract_shard(m, s, DType::bf16, n, full, shard);
    shard_total += shard.size();
    const size_t shard_row = static_cast<size_t>(s.kv_heads.count) * head_bytes;
    const size_t full_row = static_cast<size_t>(m.kv_heads) * head_bytes;
    for (size_t row = 0; row < 2 * static_cast<size_t>(m.layers) * n; ++row)
      std::memcpy(reassembled.data() + row * full_row + s.kv_heads.begin * head_bytes, shard.data() + row * shard_row,
                  shard_row);
    EXPECT_NE(tp_store_suffix(s), tp_store_suffix(tp_shard(m, (r + 1) % world, world)));
  }
  EXPECT_EQ(shard_total, full_bytes);
  EXPECT_EQ(reassembled, full);
}

// ---- CPU TP of one layer -------------------------------------------------------------------

struct LayerWeightsF32 {
  std::vector<float> attn_norm, wqkv, wo, mlp_norm, w_gate_up, w_down;
};

LayerWeightsF32 random_layer(const ModelConfig& m, TestRng& rng) {
  LayerWeightsF32 w;
  const size_t h = m.hidden, qw = static_cast<size_t>(m.q_heads) * m.head_dim;
  w.attn_norm = rng.uniform(h, 0.9f, 1.1f);
  w.wqkv = rng.uniform(static_cast<size_t>(m.qkv_width()) * h, -0.1f, 0.1f);
  w.wo = rng.uniform(h * qw, -0.1f, 0.1f);
  w.mlp_norm = rng.uniform(h, 0.9f, 1.1f);
  w.w_gate_up = rng.uniform(2 * static_cast<size_t>(m.ffn) * h, -0.1f, 0.1f);
  w.w_down = rng.uniform(h * m.ffn, -0.1f, 0.1f);
  return w;
}

// Rows [r.begin, r.end()) of a [rows][cols] matrix.
std::vector<float> rows_of(const std::vector<float>& w, int cols, Range r) {
  return {w.begin() + static_cast<ptrdiff_t>(r.begin) * cols, w.begin() + static_cast<ptrdiff_t>(r.end()) * cols};
}
// Columns [c.begin, c.end()) of a [rows][cols] matrix.
std::vector<float> columns_of(const std::vector<float>& w, int rows, int cols, Range c) {
  std::vector<float> out;
  for (int i = 0; i < rows; ++i)
    out.insert(out.end(), w.begin() + static_cast<ptrdiff_t>(i) * cols + c.begin,
               w.begin() + static_cast<ptrdiff_t>(i) * cols + c.end());
  return out;
}
std::vector<float> concat(std::initializer_list<std::vector<float>> parts) {
  std::vector<float> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The slice of rank `s` of the layer, laid out as the rank's local model expects.
LayerWeightsF32 shard_layer(const ModelConfig& m, const LayerWeightsF32& full, const TpShard& s) {
  LayerWeightsF32 w;
  const QkvRows qkv = tp_qkv_rows(m, s);
  const GateUpRows gu = tp_gate_up_rows(m, s);
  w.attn_norm = full.attn_norm;
  w.mlp_norm = full.mlp_norm;
  w.wqkv = concat({rows_of(full.wqkv, m.hidden, qkv.q), rows_of(full.wqkv, m.hidden, qkv.k),
                   rows_of(full.wqkv, m.hidden, qkv.v)});
  w.w_gate_up = concat({rows_of(full.w_gate_up, m.hidden, gu.gate), rows_of(full.w_gate_up, m.hidden, gu.up)});
  w.wo = columns_of(full.wo, m.hidden, m.q_heads * m.head_dim, tp_o_columns(m, s));
  w.w_down = columns_of(full.w_down, m.hidden, m.ffn, tp_down_columns(m, s));
  return w;
}

// What one rank computes of a layer over n tokens at [first_pos, first_pos + n): the partial sums
// of o_proj and of down (before the all-reduces), and the K, V rows it writes to its cache. The
// caller supplies x after the attention all-reduce for the MLP half (x_mid), as the ranks would
// all hold it.
struct LayerOut {
  std::vector<float> o_partial;     // [n][hidden]
  std::vector<float> down_partial;  // [n][hidden], from x_mid
  std::vector<float> k, v;          // [first_pos + n][kv_heads][head_dim]
};

LayerOut run_layer_part(const ModelConfig& m, const LayerWeightsF32& w, const std::vector<float>& x,
                        const std::vector<float>& x_mid, int64_t n, const std::vector<float>& k_cache_in,
                        const std::vector<float>& v_cache_in, int64_t first_pos) {
  const int h = m.hidden, d = m.head_dim, qw = m.q_heads * d, kvw = m.kv_heads * d;
  const float eps = static_cast<float>(m.norm_eps);
  LayerOut out;
  std::vector<float> normed(static_cast<size_t>(n) * h);
  cpu::rmsnorm(x.data(), w.attn_norm.data(), n, h, eps, normed.data());
  std::vector<float> qkv(static_cast<size_t>(n) * m.qkv_width());
  cpu::linear(normed.data(), n, h, w.wqkv.data(), m.qkv_width(), qkv.data());
  std::vector<float> q(static_cast<size_t>(n) * qw), k(static_cast<size_t>(n) * kvw), v(static_cast<size_t>(n) * kvw);
  for (int64_t t = 0; t < n; ++t) {
    const float* row = qkv.data() + t * m.qkv_width();
    std::copy(row, row + qw, q.data() + t * qw);
    std::copy(row + qw, row + qw + kvw, k.data() + t * kvw);
    std::copy(row + qw + kvw, row + qw + 2 * kvw, v.data() + t * kvw);
  }
  cpu::rope(q.data(), n, m.q_heads, d, first_pos, m.rope_theta);
  cpu::rope(k.data(), n, m.kv_heads, d, first_pos, m.rope_theta);
  out.k = k_cache_in;
  out.v = v_cache_in;
  out.k.insert(out.k.end(), k.begin(), k.end());
  out.v.insert(out.v.end(), v.begin(), v.end());
  std::vector<float> attn(static_cast<size_t>(n) * qw);
  cpu::attention(q.data(), n, first_pos, m.q_heads, out.k.data(), out.v.data(), m.kv_heads, d, attn.data());
  out.o_partial.resize(static_cast<size_t>(n) * h);
  cpu::linear(attn.data(), n, qw, w.wo.data(), h, out.o_partial.data());

  if (!x_mid.empty()) {
    cpu::rmsnorm(x_mid.data(), w.mlp_norm.data(), n, h, eps, normed.data());
    std::vector<float> gate_up(static_cast<size_t>(n) * 2 * m.ffn), act(static_cast<size_t>(n) * m.ffn);
    cpu::linear(normed.data(), n, h, w.w_gate_up.data(), 2 * m.ffn, gate_up.data());
    for (int64_t t = 0; t < n; ++t)
      cpu::swiglu(gate_up.data() + t * 2 * m.ffn, gate_up.data() + t * 2 * m.ffn + m.ffn, m.ffn,
                  act.data() + t * m.ffn);
    out.down_partial.resize(static_cast<size_t>(n) * h);
    cpu::linear(act.data(), n, m.ffn, w.w_down.data(), h, out.down_partial.data());
  }
  return out;
}

// The KV heads `heads` of a [tokens][kv_heads][head_dim] cache.
std::vector<float> kv_head_slice(const std::vector<float>& cache, int kv_heads, int head_dim, Range heads) {
  std::vector<float> out;
  const size_t row = static_cast<size_t>(kv_heads) * head_dim;
  for (size_t t = 0; t < cache.size() / row; ++t)
    out.insert(out.end(), cache.begin() + t * row + heads.begin * head_dim, cache.begin() + t * row + heads.end() * head_dim);
  return out;
}

double max_relative(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return scale > 0 ? worst / scale : worst;
}

// A layer split over `world` ranks against the unsplit layer, for a chunk after a cached prefix.
// Column splits (Q, K, V, gate, up, the KV cache) are bit-identical; the row splits' partial sums
// add in a different order than one dot product, so x after the layer differs by fp32 rounding.
void check_layer_split(const ModelConfig& m, int world, TestRng& rng) {
  const LayerWeightsF32 full = random_layer(m, rng);
  const int64_t cached = rng.integer(0, 20), n = rng.integer(1, 12);
  const int h = m.hidden, kvw = m.kv_heads * m.head_dim;
  const std::vector<float> x = rng.uniform(static_cast<size_t>(n) * h);
  const std::vector<float> k_cached = rng.uniform(static_cast<size_t>(cached) * kvw);
  const std::vector<float> v_cached = rng.uniform(static_cast<size_t>(cached) * kvw);

  // Unsplit: x_mid = x + o(x); x_out = x_mid + down(x_mid).
  const LayerOut ref_attn = run_layer_part(m, full, x, {}, n, k_cached, v_cached, cached);
  std::vector<float> x_mid = x;
  cpu::residual_add(x_mid.data(), ref_attn.o_partial.data(), static_cast<int64_t>(x_mid.size()));
  const LayerOut ref = run_layer_part(m, full, x, x_mid, n, k_cached, v_cached, cached);
  std::vector<float> x_out = x_mid;
  cpu::residual_add(x_out.data(), ref.down_partial.data(), static_cast<int64_t>(x_out.size()));

  // Split: each rank's attention half, the all-reduce (rank-order sum), then each rank's MLP half
  // from the reduced x_mid, the second all-reduce.
  const ModelConfig local = tp_local_model(m, world);
  std::vector<LayerWeightsF32> shards;
  std::vector<float> o_sum(static_cast<size_t>(n) * h, 0.0f);
  for (int r = 0; r < world; ++r) {
    const TpShard s = tp_shard(m, r, world);
    shards.push_back(shard_layer(m, full, s));
    const LayerOut part = run_layer_part(local, shards.back(), x, {}, n, kv_head_slice(k_cached, m.kv_heads, m.head_dim, s.kv_heads),
                                         kv_head_slice(v_cached, m.kv_heads, m.head_dim, s.kv_heads), cached);
    // The rank's KV cache is exactly its heads of the unsplit cache.
    EXPECT_EQ(part.k, kv_head_slice(ref_attn.k, m.kv_heads, m.head_dim, s.kv_heads)) << "rank " << r;
    EXPECT_EQ(part.v, kv_head_slice(ref_attn.v, m.kv_heads, m.head_dim, s.kv_heads)) << "rank " << r;
    cpu::residual_add(o_sum.data(), part.o_partial.data(), static_cast<int64_t>(o_sum.size()));
  }
  std::vector<float> tp_mid = x;
  cpu::residual_add(tp_mid.data(), o_sum.data(), static_cast<int64_t>(tp_mid.size()));
  std::vector<float> down_sum(static_cast<size_t>(n) * h, 0.0f);
  for (int r = 0; r < world; ++r) {
    const TpShard s = tp_shard(m, r, world);
    const LayerOut part = run_layer_part(local, shards[r], x, tp_mid, n, kv_head_slice(k_cached, m.kv_heads, m.head_dim, s.kv_heads),
                                         kv_head_slice(v_cached, m.kv_heads, m.head_dim, s.kv_heads), cached);
    cpu::residual_add(down_sum.data(), part.down_partial.data(), static_cast<int64_t>(down_sum.size()));
  }
  std::vector<float> tp_out = tp_mid;
  cpu::residual_add(tp_out.data(), down_sum.data(), static_cast<int64_t>(tp_out.size()));

  const double mid_error = max_relative(tp_mid, x_mid), out_error = max_relative(tp_out, x_out);
  ::testing::Test::RecordProperty(cat("world", world, "_rel_error_after_layer"), std::to_string(out_error));
  // fp32 rounding of a reordered sum over a few hundred terms: well under 1e-5 of the scale.
  EXPECT_LT(mid_error, 1e-5) << "after attention, world " << world;
  EXPECT_LT(out_error, 1e-5) << "after the MLP, world " << world;
  if (world == 1) {
    EXPECT_EQ(tp_mid, x_mid);
    EXPECT_EQ(tp_out, x_out);
  }
}

TEST(CpuTp, LayerSplitMatchesTheUnsplitLayerInFp32) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  for (const char* name : {"tiny", "tiny-mha"}) {
    const ModelConfig m = preset_model(name);
    for (int world : {1, 2}) {
      SCOPED_TRACE(cat(name, " world ", world));
      check_layer_split(m, world, rng);
    }
  }
}

// With integer-valued inputs every partial sum is exact in fp32, so the row split's sum of
// partials is bit-identical to the unsplit product whatever the order: the split loses nothing.
TEST(CpuTp, RowSplitPartialSumsAreExactOnIntegers) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny-mha");  // 4 KV heads: splits over 2 and 4 ranks
  for (int world : {2, 4}) {
    const int64_t n = rng.integer(1, 9);
    const int in = m.ffn, out = m.hidden;
    auto integers = [&](size_t count) {
      std::vector<float> v(count);
      for (auto& e : v) e = static_cast<float>(rng.integer(-8, 8));
      return v;
    };
    const std::vector<float> x = integers(static_cast<size_t>(n) * in), w = integers(static_cast<size_t>(out) * in);
    std::vector<float> want = test::poisoned(static_cast<size_t>(n) * out);
    cpu::linear(x.data(), n, in, w.data(), out, want.data());
    std::vector<float> sum(static_cast<size_t>(n) * out, 0.0f);
    for (int r = 0; r < world; ++r) {
      const Range cols = tp_down_columns(m, tp_shard(m, r, world));
      const std::vector<float> xs = columns_of(x, static_cast<int>(n), in, cols), ws = columns_of(w, out, in, cols);
      std::vector<float> part = test::poisoned(static_cast<size_t>(n) * out);
      cpu::linear(xs.data(), n, cols.count, ws.data(), out, part.data());
      cpu::residual_add(sum.data(), part.data(), static_cast<int64_t>(sum.size()));
    }
    EXPECT_EQ(sum, want) << "world " << world;
  }
}

}  // namespace
}  // namespace cake
