// Verification: a mode must give the same first token and logits as compute-only, and every
// chunk it loaded must equal the chunk compute produces.
//
// Loaded chunks come from a store written with the same chunking, and a recomputed chunk sees the
// same inputs, so the KV - and hence the logits - are expected BIT-EXACT. When they are not, a
// result still passes if the token matches and the logits are within a stated tolerance
// (relative L2 error 1e-2 for a bf16 cache, 1e-4 for f32); the detail says which held.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/codec_quality.hpp"
#include "engine/request_outcome.hpp"
#include "kernels/kv_cache.hpp"

namespace cake {

struct Reference {
  FirstToken first_token;                // of the compute-only run
  std::vector<uint32_t> chunk_checksums; // CRC-32C of each prefix chunk's KV after compute-only
};

struct Verification {
  bool passed = false;
  std::string detail;  // "bit-exact", "logits within 1e-2 (rel L2 3.1e-4)", or what differed
  // A lossy codec's load (int8, int4, cachegen) is never "verified": it reports its quality instead. passed
  // stays false, lossy is true, and these say how far it is from compute-only.
  bool lossy = false;
  bool first_token_agrees = false;
  double logits_rel_error = 0;  // this run's logits against compute-only (rel L2)
  double k_rel_error = 0;       // the codec's K and V error over the whole prefix (CodecMeasurement)
  double v_rel_error = 0;
};

double logits_tolerance(DType kv_dtype);

// kv_checksums: of the outcome's KV cache, per chunk (empty to skip the KV check).
// `lossy`: the run loaded a lossy codec's store, whose measured quality this is; the result then
// reports agreement and errors instead of a pass (the KV check is skipped: loaded chunks differ).
Verification verify_against(const RequestOutcome& outcome, const Reference& reference,
                            const std::vector<uint32_t>& kv_checksums, DType kv_dtype,
                            const CodecMeasurement* lossy = nullptr);

}  // namespace cake
