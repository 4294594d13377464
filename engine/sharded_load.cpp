#include "engine/sharded_load.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "engine/thread_device.hpp"

namespace cake {
namespace {

struct Merge {
  int shards_done = 0;
  LoadedChunk merged;
  int64_t leader_claim_ns = 0;
  int64_t last_claim_ns = 0;
};

class Coordinator {
 public:
  Coordinator(int shards, const ShardedDoneFn& on_done) : shards_(shards), queues_(shards), in_flight_(shards, 0), on_done_(on_done) {}

  // Rank 0 took `chunk` (or stopped: nullopt): every follower gets it in the same order.
  void decided(std::optional<int> chunk) {
    {
      std::lock_guard lock(mutex_);
      if (!chunk) {
        leader_done_ = true;
      } else if (*chunk != LoadPipeline::kClaimLater) {
        for (int r = 1; r < shards_; ++r) queues_[r].push_back(*chunk);
        merges_[*chunk].leader_claim_ns = now_ns();
        in_flight_[0]++;
      }
    }
    cv_.notify_all();
  }

  // A follower's claim: the next chunk rank 0 took; while none is waiting, "later" when it has a
  // chunk in flight (its pipeline asks again after a completion), else it waits for rank 0.
  std::optional<int> follow(int rank) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!queues_[rank].empty()) {
        const int chunk = queues_[rank].front();
        queues_[rank].pop_front();
        in_flight_[rank]++;
        Merge& m = merges_[chunk];
        m.last_claim_ns = std::max(m.last_claim_ns, now_ns());
        return chunk;
      }
      if (leader_done_) return std::nullopt;
      if (in_flight_[rank] > 0) return LoadPipeline::kClaimLater;
      cv_.wait(lock);
    }
  }

  // Rank 0's claim said "later" (the engine waits for news of a chunk in flight). Its own pipeline
  // treats "later" with nothing of its own in flight as "stop", but the engine's chunk is in flight
  // until every rank's shard of it lands: then this waits for the next merged completion and
  // returns true (ask again); false when rank 0 has a shard in flight or no chunk is pending
  // (pass "later" on: the pipeline's own rule is then the engine's).
  bool wait_for_news_before_asking_again() {
    std::unique_lock lock(mutex_);
    if (in_flight_[0] > 0 || merges_.empty()) return false;
    const uint64_t seen = merged_done_;
    cv_.wait(lock, [&] { return merged_done_ != seen || merges_.empty() || leader_done_; });
    return true;
  }

  void done(int rank, const LoadedChunk& c) {
    std::unique_lock lock(mutex_);
    in_flight_[rank]--;
    Merge& m = merges_[c.chunk];
    if (m.shards_done == 0) {
      m.merged = c;
      if (rank == 0) m.merged.claim_ns = c.claim_ns;
    } else {
      LoadedChunk& g = m.merged;
      g.ok = g.ok && c.ok;
      if (!c.error.empty()) g.error += cat(g.error.empty() ? "" : "; ", "rank ", rank, ": ", c.error);
      g.bytes += c.bytes;
      if (rank == 0) g.claim_ns = c.claim_ns;
      g.read_submit_ns = std::min(g.read_submit_ns, c.read_submit_ns);
      g.read_complete_ns = std::max(g.read_complete_ns, c.read_complete_ns);
      g.h2d_start_ns = std::min(g.h2d_start_ns, c.h2d_start_ns);
      g.h2d_end_ns = std::max(g.h2d_end_ns, c.h2d_end_ns);
    }
    if (!c.ok && m.shards_done == 0 && !c.error.empty()) m.merged.error = cat("rank ", rank, ": ", c.error);
    if (++m.shards_done < shards_) return;
    const LoadedChunk merged = m.merged;
    const int64_t spread = shards_ > 1 && m.last_claim_ns > 0 ? m.last_claim_ns - m.leader_claim_ns : 0;
    lock.unlock();
    {
      std::lock_guard report(report_mutex_);  // the engine's on_done is never called concurrently
      on_done_(merged, spread);
    }
    // Counted after the engine has the news, so a claim asked again sees it.
    lock.lock();
    merges_.erase(c.chunk);
    ++merged_done_;
    lock.unlock();
    cv_.notify_all();
  }

  void abandon() {
    {
      std::lock_guard lock(mutex_);
      leader_done_ = true;
    }
    cv_.notify_all();
  }

 private:
  const int shards_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::deque<int>> queues_;
  std::vector<int> in_flight_;
  std::map<int, Merge> merges_;
  bool leader_done_ = false;
  uint64_t merged_done_ = 0;
  std::mutex report_mutex_;
  const ShardedDoneFn& on_done_;
};

}  // namespace

void run_sharded_load(const std::vector<LoadShard>& shards, const std::function<void()>& wait_for_start,
                      const LoadPipeline::ClaimFn& claim, const ShardedDoneFn& on_done) {
  if (shards.empty()) throw InternalError("run_sharded_load: no shard");
  const int n = static_cast<int>(shards.size());
  ThreadDevice::of(shards[0].device).bind();  // rank 0's lane runs on this thread
  Coordinator coordinator(n, on_done);
  std::mutex start_mutex;
  std::condition_variable start_cv;
  bool started = false;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::vector<std::thread> followers;
  for (int r = 1; r < n; ++r) {
    followers.emplace_back([&, r] {
      try {
        ThreadDevice::of(shards[r].device).bind();
        {
          std::unique_lock lock(start_mutex);
          start_cv.wait(lock, [&] { return started; });
        }
        shards[r].pipeline->run(
            shards[r].key, [&, r]() { return coordinator.follow(r); },
            [&, r](const LoadedChunk& c) { coordinator.done(r, c); });
      } catch (...) {
        errors[r] = std::current_exception();
        coordinator.abandon();  // rank 0 must not wait for this rank's shards
      }
    });
  }
  struct Release {
    std::vector<std::thread>& threads;
    Coordinator& coordinator;
    std::mutex& mutex;
    std::condition_variable& cv;
    bool& started;
    ~Release() {
      {
        std::lock_guard lock(mutex);
        started = true;
      }
      cv.notify_all();
      coordinator.abandon();  // no-op after rank 0 finished normally: it already said so
      for (auto& t : threads) t.join();
    }
  } release{followers, coordinator, start_mutex, start_cv, started};

  wait_for_start();
  {
    // Each distinct throttle starts once (a shared one is one bucket for every rank).
    std::vector<Throttle*> seen;
    for (const LoadShard& s : shards)
      if (s.throttle && std::find(seen.begin(), seen.end(), s.throttle) == seen.end()) {
        s.throttle->start();
        seen.push_back(s.throttle);
      }
  }
  {
    std::lock_guard lock(start_mutex);
    started = true;
  }
  start_cv.notify_all();
  try {
    shards[0].pipeline->run(
        shards[0].key,
        [&]() {
          for (;;) {
            const std::optional<int> chunk = claim();
            if (chunk == LoadPipeline::kClaimLater && coordinator.wait_for_news_before_asking_again()) continue;
            coordinator.decided(chunk);
            return chunk;
          }
        },
        [&](const LoadedChunk& c) { coordinator.done(0, c); });
  } catch (...) {
    errors[0] = std::current_exception();
  }
  coordinator.abandon();
  for (auto& t : followers) t.join();
  followers.clear();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (int r = 1; r < n; ++r)
    if (!shards[r].pipeline->open_error().empty())
      throw Error(cat("the load lane of rank ", r, " could not open its store shard: ", shards[r].pipeline->open_error(),
                      "; no TTFT is reported for a store that cannot load"));
}

}  // namespace cake
