// The load lanes of a tensor-parallel request: one LoadPipeline per rank, each on its rank's GPU,
// reading that rank's store shard into that rank's KV cache (its KV heads), each paced by its own
// throttle or by one shared by all (the user's choice, made where the throttles are built).
//
// Claims are agreed by a decider: rank 0's lane asks the engine's claim function (ChunkClaims,
// MeetGuard: unchanged) and every chunk it takes is handed, in the same order, to every other
// rank's lane. A chunk is reported to the engine once every rank's shard of it is resident (or
// failed, when any shard failed: the engine then recomputes it on every rank). So all ranks meet
// at the same chunk, and the compute lane, whose all-reduces tie the ranks together, never runs a
// chunk that some rank has loaded. The cost of agreement is what a follower's claim trails rank
// 0's; each merged chunk carries it (claim_spread_ns).
#pragma once

#include <functional>
#include <vector>

#include "loaders/load_pipeline.hpp"
#include "loaders/store_format.hpp"
#include "loaders/throttle.hpp"

namespace cake {

struct LoadShard {
  LoadPipeline* pipeline = nullptr;
  StoreKey key;
  int device = -1;                // the GPU its KV cache lives on (bound on its lane's thread)
  Throttle* throttle = nullptr;   // may be shared with other shards (started once)
};

// Runs every shard's pipeline, rank 0's on the calling thread, the others on threads of their own
// started before `wait_for_start` returns (so their start-up is not on the clock). `claim` and
// `on_done` are the engine's; on_done is never called concurrently. Throws when a follower's store
// could not be opened (rank 0's open error stays with its pipeline, as for one lane).
// on_done's second argument: how long after rank 0 took the chunk the last rank took it (ns).
using ShardedDoneFn = std::function<void(const LoadedChunk&, int64_t claim_spread_ns)>;
void run_sharded_load(const std::vector<LoadShard>& shards, const std::function<void()>& wait_for_start,
                      const LoadPipeline::ClaimFn& claim, const ShardedDoneFn& on_done);

}  // namespace cake
