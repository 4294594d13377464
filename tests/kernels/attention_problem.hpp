// The attention test problem shared by the mma kernel's and cuDNN's GPU tests: random Q (strided
// like the fused qkv buffer), K and V caches whose rows past first_pos + n hold NaN (a read of them
// shows in the output), the CPU reference's result, and device copies with launch arguments.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {

using AttentionBf16 = __nv_bfloat16;

struct Case {
  int64_t first_pos;
  int n;
  int q_heads;
  int kv_heads;
  int head_dim;
  float q_scale;  // larger: peakier softmax, exercises the running-max rescaling
};

// Random Q (strided like the qkv buffer), K and V caches with rows [0, first_pos + n) random and
// the rest NaN, and the float copies the reference reads.
struct Problem {
  Case c;
  int64_t q_row_stride;
  int64_t capacity;
  std::vector<float> q_packed;  // [n][q_heads][head_dim] for the reference
  std::vector<float> k, v;      // [kv_len][kv_heads][head_dim] for the reference
  std::vector<uint16_t> q_bits, k_bits, v_bits;  // device layouts

  Problem(const Case& cs, TestRng& rng) : c(cs) {
    const int qw = c.q_heads * c.head_dim;
    const int kvw = c.kv_heads * c.head_dim;
    q_row_stride = (c.q_heads + 2 * c.kv_heads) * c.head_dim;
    const int64_t kv_len = c.first_pos + c.n;
    capacity = kv_len + 70;  // beyond any key block the kernel may touch
    std::vector<float> q = rng.uniform(static_cast<size_t>(c.n) * q_row_stride, -c.q_scale, c.q_scale);
    q_bits = round_to_bf16(q);
    q_packed.resize(static_cast<size_t>(c.n) * qw);
    for (int t = 0; t < c.n; ++t)
      std::copy(&q[t * q_row_stride], &q[t * q_row_stride] + qw, &q_packed[static_cast<size_t>(t) * qw]);
    k = rng.uniform(static_cast<size_t>(kv_len) * kvw);
    v = rng.uniform(static_cast<size_t>(kv_len) * kvw);
    k_bits = round_to_bf16(k);
    v_bits = round_to_bf16(v);
    k_bits.resize(static_cast<size_t>(capacity) * kvw, kBf16NaNBits);
    v_bits.resize(static_cast<size_t>(capacity) * kvw, kBf16NaNBits);
  }

  std::vector<float> reference() const {
    std::vector<float> out(q_packed.size());
    cpu::attention(q_packed.data(), c.n, c.first_pos, c.q_heads, k.data(), v.data(), c.kv_heads, c.head_dim, out.data());
    return out;
  }
};

struct DeviceProblem {
  DeviceTensor<uint16_t> q, k, v, out;
  DeviceProblem(const Problem& p, cudaStream_t s)
      : q(p.q_bits.size(), s), k(p.k_bits.size(), s), v(p.v_bits.size(), s),
        out(static_cast<size_t>(p.c.n) * p.c.q_heads * p.c.head_dim, s) {
    q.upload(p.q_bits);
    k.upload(p.k_bits);
    v.upload(p.v_bits);
  }
  // Queries [q0, q0 + n) of the problem as one launch.
  cuda::AttentionArgs args(const Problem& p, int q0, int n) const {
    cuda::AttentionArgs a;
    const int64_t qw = p.c.q_heads * p.c.head_dim;
    a.q = reinterpret_cast<const AttentionBf16*>(q.get()) + q0 * p.q_row_stride;
    a.q_row_stride = p.q_row_stride;
    a.k = reinterpret_cast<const AttentionBf16*>(k.get());
    a.v = reinterpret_cast<const AttentionBf16*>(v.get());
    a.out = reinterpret_cast<AttentionBf16*>(out.get()) + q0 * qw;
    a.out_row_stride = qw;
    a.n = n;
    a.first_pos = p.c.first_pos + q0;
    a.q_heads = p.c.q_heads;
    a.kv_heads = p.c.kv_heads;
    a.head_dim = p.c.head_dim;
    return a;
  }
};

}  // namespace cake::test
