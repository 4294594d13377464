// What a lossy KV codec costs in quality, measured against compute-only on one untimed request
// that loads every prefix chunk (io, unthrottled): the relative L2 error of K and of V over the
// whole prefix (the KV the GPU decoder wrote, against the compute-only KV), of the logits, and
// whether the first token agrees. The sweep measures it once per (request, chunk size, codec)
// when a lossy codec is in the run (none included, as the baseline row), and the report
// aggregates it per codec over the workload's requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/request_outcome.hpp"
#include "kernels/kv_cache.hpp"

namespace cake {

// A host copy of the first `prefix_tokens` tokens of every K and V tensor of the cache.
struct KvHostCopy {
  int64_t tokens = 0;
  DType dtype = DType::f32;
  std::vector<std::vector<std::byte>> segments;  // 2 * layers: K_0, V_0, K_1, ...
};
KvHostCopy copy_prefix_kv(const KvCacheView& view, int64_t prefix_tokens);

struct KvRelError {
  double k = 0;  // ||K - K_ref|| / ||K_ref|| over every layer, head and prefix token
  double v = 0;
};
// The cache's prefix against `reference` (of the same shape), on all cores.
KvRelError kv_rel_error(const KvCacheView& view, const KvHostCopy& reference);

// ||got - want|| / ||want|| of two logit vectors (||got - want|| when want is zero).
double logits_rel_error(const std::vector<float>& got, const std::vector<float>& want);

// One (request, chunk size, codec) measurement.
struct CodecMeasurement {
  std::string request_id;
  std::string codec;         // codec_kind_name
  std::string store_codec;   // the store's codec field, with its parameters
  int32_t chunk_tokens = 0;
  int64_t prefix_tokens = 0;
  uint64_t store_bytes = 0;  // payload bytes of every chunk of the store
  uint64_t raw_bytes = 0;    // the same prefix uncompressed, in the cache's dtype
  KvRelError kv;
  double logits_rel_error = 0;
  bool first_token_agrees = false;
  int64_t first_token = -1;            // of the all-loaded run
  int64_t reference_first_token = -1;  // of compute-only
  int chunks_loaded = 0;               // of the all-loaded run (all of them unless some failed)
  uint64_t decoded_bytes = 0;          // of the all-loaded run: what its decode steps wrote
  int64_t decode_ns = 0;               // and how long they took, summed over chunks (0 for none)
  int chunks_total = 0;
};

}  // namespace cake
