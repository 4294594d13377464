#include "engine/verify.hpp"

#include <cmath>
#include <cstring>

#include "common/error.hpp"

namespace cake {

double logits_tolerance(DType kv_dtype) { return kv_dtype == DType::bf16 ? 1e-2 : 1e-4; }

Verification verify_against(const RequestOutcome& outcome, const Reference& reference,
                            const std::vector<uint32_t>& kv_checksums, DType kv_dtype, const CodecMeasurement* lossy) {
  Verification v;
  const auto& got = outcome.first_token;
  const auto& want = reference.first_token;
  if (got.logits.size() != want.logits.size()) {
    v.detail = cat("logits have ", got.logits.size(), " entries, compute-only had ", want.logits.size());
    return v;
  }
  if (lossy != nullptr && outcome.chunks_loaded > 0) {
    v.lossy = true;
    v.first_token_agrees = got.token_id == want.token_id;
    v.logits_rel_error = logits_rel_error(got.logits, want.logits);
    v.k_rel_error = lossy->kv.k;
    v.v_rel_error = lossy->kv.v;
    v.detail = cat("lossy codec ", lossy->codec, " (not bit-exact, not verified): first token ",
                   v.first_token_agrees ? cat("agrees with compute-only (", got.token_id, ")")
                                        : cat(got.token_id, " differs from compute-only's ", want.token_id),
                   ", logits rel L2 ", v.logits_rel_error, "; with every chunk loaded: K rel L2 ", lossy->kv.k,
                   ", V rel L2 ", lossy->kv.v);
    return v;
  }
  if (!kv_checksums.empty()) {
    if (kv_checksums.size() != reference.chunk_checksums.size()) {
      v.detail = cat("KV has ", kv_checksums.size(), " chunks, compute-only had ", reference.chunk_checksums.size());
      return v;
    }
    for (size_t i = 0; i < kv_checksums.size(); ++i) {
      if (kv_checksums[i] != reference.chunk_checksums[i]) {
        v.detail = cat("KV of chunk ", i, " differs from compute-only (crc32c ", std::hex, kv_checksums[i], " vs ",
                       reference.chunk_checksums[i], ")");
        return v;
      }
    }
  }
  const bool bit_exact = got.token_id == want.token_id &&
                         std::memcmp(got.logits.data(), want.logits.data(), got.logits.size() * sizeof(float)) == 0;
  if (bit_exact) {
    v.passed = true;
    v.detail = kv_checksums.empty() ? "first token and logits bit-exact" : "first token, logits and KV bit-exact";
    return v;
  }
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.logits.size(); ++i) {
    const double d = static_cast<double>(got.logits[i]) - want.logits[i];
    diff2 += d * d;
    ref2 += static_cast<double>(want.logits[i]) * want.logits[i];
  }
  const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  const double tol = logits_tolerance(kv_dtype);
  if (got.token_id != want.token_id) {
    v.detail = cat("first token ", got.token_id, " != compute-only's ", want.token_id, " (logits rel L2 ", rel, ")");
  } else if (!(rel <= tol)) {
    v.detail = cat("logits differ from compute-only: rel L2 ", rel, " > ", tol);
  } else {
    v.passed = true;
    v.detail = cat("same first token; logits not bit-exact but within ", tol, " (rel L2 ", rel, ")");
  }
  return v;
}

}  // namespace cake
