#include "engine/run_request.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/nvtx.hpp"
#include "engine/chunk_claims.hpp"
#include "engine/meet_guard.hpp"
#include "engine/thread_device.hpp"

namespace cake {
namespace {

// A one-shot gate: the load thread is created before t0 and released at t0, so thread start-up
// is not charged to the request.
class StartGate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

struct Limits {
  int compute_limit;
  int load_floor;
  ChunkClaims::LoadOrder order;
};

Limits limits_for(const Mode& mode, int n) {
  switch (mode.kind) {
    case ModeKind::compute: return {n, n, ChunkClaims::LoadOrder::back_to_front};
    case ModeKind::io: return {0, 0, ChunkClaims::LoadOrder::front_to_back};
    case ModeKind::cake: return {n, 0, ChunkClaims::LoadOrder::back_to_front};
    case ModeKind::split:
    case ModeKind::oracle: {
      int k = mode.split_chunk;
      if (k < 0) {
        if (mode.kind == ModeKind::oracle) throw InternalError("oracle mode needs its split resolved before it runs");
        k = static_cast<int>(mode.split_fraction * n + 0.5);
      }
      k = std::clamp(k, 0, n);
      return {k, k, ChunkClaims::LoadOrder::back_to_front};
    }
  }
  throw InternalError("unknown mode");
}

std::span<const int32_t> run_tokens_of(const Request& request, ChunkClaims::Run run, int32_t chunk_tokens) {
  const int64_t first = static_cast<int64_t>(run.first) * chunk_tokens;
  const int64_t last =
      std::min<int64_t>(static_cast<int64_t>(run.first + run.count) * chunk_tokens, static_cast<int64_t>(request.prefix.size()));
  return std::span<const int32_t>(request.prefix).subspan(static_cast<size_t>(first), static_cast<size_t>(last - first));
}

}  // namespace

int chunk_count(int64_t prefix_tokens, int32_t chunk_tokens) {
  if (chunk_tokens <= 0) throw UsageError(cat("chunk size must be positive, got ", chunk_tokens));
  return static_cast<int>((prefix_tokens + chunk_tokens - 1) / chunk_tokens);
}

RequestOutcome run_request(ComputeBackend& backend, const Request& request, const Mode& mode,
                           const RequestOptions& options, LoadLane* load) {
  if (request.suffix.empty()) throw UsageError(cat("request ", request.id, ": the suffix is empty; TTFT needs at least one new token"));
  const int64_t total_tokens = static_cast<int64_t>(request.prefix.size() + request.suffix.size());
  if (total_tokens > backend.kv_cache().capacity_tokens)
    throw UsageError(cat("request ", request.id, " needs ", total_tokens, " tokens but the KV cache holds ",
                         backend.kv_cache().capacity_tokens));
  if (mode.loads() && (load == nullptr || load->pipeline == nullptr))
    throw InternalError(cat("mode ", mode.name(), " needs a load lane (a KV source) but none was set up"));

  const int n = chunk_count(static_cast<int64_t>(request.prefix.size()), options.chunk_tokens);
  const Limits limits = limits_for(mode, n);
  ChunkClaims claims(n, limits.compute_limit, limits.load_floor, limits.order);

  RequestOutcome out;
  out.mode = mode.name();
  out.chunks_total = n;
  if (load) out.source_description = load->source_description;

  std::mutex events_mutex;  // the load lane appends from its thread
  std::vector<ChunkEvent> load_events;
  std::vector<int> failed_chunks;
  std::optional<int64_t> load_done_ns;
  std::exception_ptr load_error;
  std::atomic<bool> abort_loads{false};
  std::atomic<bool> load_finished_flag{false};  // the load thread has left the pipeline
  int64_t t0 = 0;
  MeetGuard guard;  // cake only: see engine/meet_guard.hpp
  const bool guarded = mode.kind == ModeKind::cake;
  std::set<int> taken_over_chunks;   // guarded by events_mutex
  std::deque<int> takeover_queue;    // load thread only: taken-over chunks still to claim

  // Cake's load claims. While the compute lane runs: the meet guard's verdict on the next chunk, and
  // a take-over of the compute lane's run when the load lane alone would deliver everything still to
  // come sooner (MeetGuard::judge_takeover); then the compute lane stands down and the load lane
  // takes all that is left. A taken-over chunk is loaded last, once the compute lane has stopped
  // writing it (a CPU layer rewrites its K rows in place, so an early copy could be overwritten).
  auto steal_compute_run = [&](int unclaimed) -> bool {
    const std::optional<MeetGuard::Run> run = guard.compute_run();
    if (!run || guard.judge_takeover(now_ns(), unclaimed) != MeetGuard::Takeover::take) return false;
    if (!claims.take_over_from_compute(ChunkClaims::Run{run->first, run->count})) return false;
    {
      std::lock_guard lock(events_mutex);
      for (int c = run->first; c < run->first + run->count; ++c) taken_over_chunks.insert(c);
    }
    for (int c = run->first + run->count - 1; c >= run->first; --c) takeover_queue.push_back(c);
    return true;
  };
  auto next_taken_over = [&]() -> std::optional<int> {
    if (takeover_queue.empty()) return std::nullopt;
    // After a take-over the compute lane stands down, so a run still in progress is the taken one.
    while (guard.compute_run()) guard.wait_for_compute_news();
    const int chunk = takeover_queue.front();
    takeover_queue.pop_front();
    guard.load_claimed();
    return chunk;
  };
  auto guarded_load_claim = [&]() -> std::optional<int> {
    if (!claims.compute_stood_down()) steal_compute_run(claims.unclaimed());
    if (claims.compute_stood_down()) {
      if (const std::optional<int> chunk = claims.claim_for_load()) {
        guard.load_claimed();
        return chunk;
      }
      return next_taken_over();
    }
    for (std::optional<int> next = claims.peek_for_load(); next; next = claims.peek_for_load()) {
      const MeetGuard::Verdict verdict = guard.judge(*next, now_ns());
      if (verdict == MeetGuard::Verdict::stop) return std::nullopt;
      if (verdict == MeetGuard::Verdict::later) return LoadPipeline::kClaimLater;
      if (verdict == MeetGuard::Verdict::wait_for_compute && !guard.compute_lane_finished()) {
        // Nothing in flight yet: ask again at the compute lane's next report.
        if (abort_loads.load()) return std::nullopt;
        guard.wait_for_compute_news();
        continue;
      }
      const std::optional<int> chunk = claims.claim_for_load();
      if (chunk) guard.load_claimed();
      return chunk;
    }
    // Nothing left to claim: the last chance of a take-over comes when the last chunk in flight has
    // landed (the compute lane's remaining time only shrinks; the load lane's pace is best known).
    if (guard.load_in_flight() > 0) return LoadPipeline::kClaimLater;
    for (;;) {
      if (abort_loads.load() || !guard.compute_run()) return std::nullopt;
      if (steal_compute_run(0)) return next_taken_over();
      const MeetGuard::Takeover verdict = guard.judge_takeover(now_ns(), 0);
      if (verdict == MeetGuard::Takeover::leave) return std::nullopt;
      if (verdict == MeetGuard::Takeover::unknown) guard.wait_for_compute_news();
      // take, but the run finished meanwhile: look at what the compute lane does now
    }
  };
  StartGate gate;
  std::thread load_thread;
  const bool use_load_lane = mode.loads() && n > 0;
  if (use_load_lane) {
    const ThreadDevice device = ThreadDevice::capture();
    load_thread = std::thread([&, device] {
      try {
        device.bind();
        const LoadPipeline::ClaimFn claim = [&]() -> std::optional<int> {
          if (abort_loads.load()) return std::nullopt;
          if (guarded) return guarded_load_claim();
          return claims.claim_for_load();
        };
        const ShardedDoneFn done = [&](const LoadedChunk& c, int64_t claim_spread_ns) {
          guard.load_finished(now_ns());
          ChunkEvent e;
          e.chunk = c.chunk;
          e.lane = Lane::load;
          e.ok = c.ok;
          e.claim_ns = c.claim_ns - t0;
          e.start_ns = c.read_submit_ns - t0;
          e.read_end_ns = c.read_complete_ns - t0;
          e.h2d_start_ns = c.ok ? c.h2d_start_ns - t0 : 0;
          e.end_ns = (c.ok ? c.h2d_end_ns : std::max(c.read_complete_ns, c.claim_ns)) - t0;
          e.bytes = c.ok ? c.bytes : 0;
          e.decode_ns = c.ok ? c.decode_ns : 0;
          e.decoded_bytes = c.ok ? c.decoded_bytes : 0;
          e.error = c.error;
          e.claim_spread_ns = claim_spread_ns;
          std::lock_guard lock(events_mutex);
          e.taken_over = taken_over_chunks.contains(c.chunk);
          load_events.push_back(std::move(e));
          if (!c.ok) failed_chunks.push_back(c.chunk);
        };
        if (load->shards.size() > 1) {
          run_sharded_load(load->shards, [&] { gate.wait(); }, claim, done);
        } else {
          gate.wait();
          if (load->throttle) load->throttle->start();
          load->pipeline->run(load->key, claim, [&](const LoadedChunk& c) { done(c, 0); });
        }
        load_finished_flag.store(true);
        std::lock_guard lock(events_mutex);
        load_done_ns = now_ns() - t0;
      } catch (...) {
        load_error = std::current_exception();
      }
    });
  }

  // Joins the load thread on every path out, so an exception in the compute lane never leaves
  // it running against a KV cache that is about to go away.
  struct Joiner {
    std::thread& thread;
    std::atomic<bool>& abort;
    StartGate& gate;
    ~Joiner() {
      if (thread.joinable()) {
        abort.store(true);
        gate.open();
        thread.join();
      }
    }
  } joiner{load_thread, abort_loads, gate};

  // Cake's first claim: one chunk's payload over the link's nominal rate, where the throttle has one
  // (not with codecs, whose chunks are smaller by a ratio known only once the store is open, nor
  // with a load lane per rank).
  double nominal_load_ns_per_chunk = 0;
  if (guarded && load && load->shards.empty() && load->throttle && load->key.codec == "none" &&
      load->throttle->peak_bytes_per_sec() > 0)
    nominal_load_ns_per_chunk = static_cast<double>(backend.kv_cache().chunk_bytes(options.chunk_tokens)) /
                                load->throttle->peak_bytes_per_sec() * 1e9;

  // ---- t0 ------------------------------------------------------------------------------------
  std::vector<ChunkEvent> compute_events;
  const int64_t cpu0 = process_cpu_ns();
  t0 = now_ns();
  guard.start(t0, nominal_load_ns_per_chunk);
  gate.open();

  const int gate_steps = backend.model().layers * std::max(1, backend.gate_steps_per_layer());
  // One compute call over chunks [run.first, run.first + run.count). Returns false when the run was
  // taken over by the load lane (abandoned at a layer boundary, or finished too late to count).
  auto compute_run = [&](ChunkClaims::Run run, bool recovered) -> bool {
    NvtxRange range(cat(recovered ? "recompute c=" : "compute c=", run.first, run.count > 1 ? cat("+", run.count) : ""));
    ChunkEvent e;
    e.chunk = run.first;
    e.chunks = run.count;
    e.lane = Lane::compute;
    e.recovered = recovered;
    e.claim_ns = e.start_ns = now_ns() - t0;
    const int64_t cpu_start = process_cpu_ns();
    if (!recovered) guard.compute_started(run.first, run.count, now_ns());
    const auto tokens = run_tokens_of(request, run, options.chunk_tokens);
    const int64_t first_pos = static_cast<int64_t>(run.first) * options.chunk_tokens;
    bool completed = true;
    if (guarded && !recovered) {
      completed = backend.prefill_chunk_gated(tokens, first_pos, [&](int step) {
        guard.compute_progress(step, gate_steps, now_ns());
        return claims.owner(run.first) == Lane::compute;
      });
    } else {
      backend.prefill_chunk(tokens, first_pos);
    }
    backend.synchronize();
    e.collective_ms = backend.last_collective_ms();
    if (completed && options.inject_compute_delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(options.inject_compute_delay_ms));
    if (completed && options.inject_compute_slowdown > 1) {
      // Burn (factor - 1) x the CPU time the run took, as slower compute code would (a sleep would
      // cost wall time but no CPU time, unlike any real regression of a kernel).
      const int64_t burn_ns =
          static_cast<int64_t>(static_cast<double>(process_cpu_ns() - cpu_start) * (options.inject_compute_slowdown - 1));
      const int64_t until = thread_cpu_ns() + burn_ns;
      volatile uint64_t spin = 0;
      while (thread_cpu_ns() < until)
        for (int i = 0; i < 1000; ++i) spin = spin + 1;
    }
    e.end_ns = now_ns() - t0;
    if (!recovered) {
      if (completed && claims.finish_compute(run)) {
        guard.compute_finished(run.first, run.count, e.end_ns - e.start_ns);
      } else {
        completed = false;
        e.ok = false;
        e.taken_over = true;
        guard.compute_abandoned();
      }
    }
    compute_events.push_back(e);
    return completed;
  };

  {
    // The load lane may wait on the compute lane's news (a take-over decision): tell it when this
    // lane is done, on every path out.
    struct LaneDone {
      MeetGuard& guard;
      ~LaneDone() { guard.compute_lane_done(); }
    } lane_done{guard};
    // Cake: let the load lane make its first claim before the compute lane takes the cores. On a
    // GPU that is microseconds; on the CPU backend the compute lane's threads can fill every core
    // and the load lane then started ~3 ms late on a 2-core machine (seen in the default run's
    // timeline at unlimited bandwidth, where all of io-only takes 16 ms). Bounded: 2 ms at most.
    // Not while the load lane waits for this lane's first report (its first claim weighs this
    // lane's pace against the link's rate): both then stood still for the whole 2 ms, at every
    // throttled bandwidth (results/h200/round5, the first compute chunk started at 2.0 ms).
    if (guarded && use_load_lane) {
      const int64_t give_up = now_ns() + 2'000'000;
      while (!guard.load_decided() && !load_finished_flag.load() && now_ns() < give_up) std::this_thread::yield();
    }
    const int max_run = std::max<int32_t>(options.compute_max_chunks, 1);
    for (;;) {
      // Near the meet: leave the next chunk to the load lane while it would deliver it no later
      // than this lane could compute it (MeetGuard::leave_to_load; the load lane's judge() then
      // claims it). Until the load lane has left its pipeline: then whatever is left is ours.
      if (guarded && use_load_lane) {
        for (std::optional<int> next = claims.peek_for_compute();
             next && !load_finished_flag.load() && guard.leave_to_load(*next, claims.unclaimed());
             next = claims.peek_for_compute())
          guard.wait_for_load_news(1'000'000);
      }
      const int length = guarded ? guard.run_length(claims.unclaimed(), max_run) : max_run;
      const std::optional<ChunkClaims::Run> run = claims.claim_run_for_compute(length);
      if (!run) break;
      compute_run(*run, false);
    }
  }
  const int64_t compute_done_ns = now_ns() - t0;

  if (load_thread.joinable()) load_thread.join();
  if (load_error) std::rethrow_exception(load_error);
  // A store that cannot be opened would turn every load into a compute behind a loading mode's
  // label: no number is reported for it (the sweep validates and rebuilds local stores before t0,
  // so this is a remote store, or one that broke since).
  if (load != nullptr && load->pipeline != nullptr && !load->pipeline->open_error().empty())
    throw Error(cat("mode ", mode.name(), ": the load lane could not open its store (", load->source_description,
                    "): ", load->pipeline->open_error(), "; no TTFT is reported for a store that cannot load"));

  // Failed loads: computed in ascending order, after every other chunk is resident, so each one
  // attends to a complete cache before it.
  std::sort(failed_chunks.begin(), failed_chunks.end());
  for (int chunk : failed_chunks) compute_run(ChunkClaims::Run{chunk, 1}, true);

  out.suffix_start_ms = ns_to_ms(now_ns() - t0);
  {
    NvtxRange range("suffix + first token");
    out.first_token = backend.first_token(request.suffix, static_cast<int64_t>(request.prefix.size()));
  }
  const int64_t t1 = now_ns();
  out.process_cpu_ms = ns_to_ms(process_cpu_ns() - cpu0);
  // ---- t1 ------------------------------------------------------------------------------------

  out.ttft_ms = ns_to_ms(t1 - t0);
  out.suffix_end_ms = out.ttft_ms;
  out.compute_lane_ms = ns_to_ms(compute_done_ns);
  out.load_lane_ms = load_done_ns ? ns_to_ms(*load_done_ns) : 0;

  int64_t load_first_ns = INT64_MAX, load_last_ns = 0;
  for (const ChunkEvent& e : load_events) {
    if (e.ok) {
      ++out.chunks_loaded;
      out.bytes_loaded += e.bytes;
      out.meet_chunk = std::min(out.meet_chunk.value_or(e.chunk), e.chunk);
      load_first_ns = std::min(load_first_ns, e.claim_ns);
      load_last_ns = std::max(load_last_ns, e.end_ns);
    } else {
      out.recovery_reasons.push_back(e.error);
    }
  }
  for (const ChunkEvent& e : compute_events) {
    if (e.recovered) out.chunks_recovered += e.chunks;
    else if (!e.taken_over) out.chunks_computed += e.chunks;
  }
  for (const ChunkEvent& e : load_events)
    if (e.ok && e.taken_over) ++out.chunks_taken_over;
  if (out.chunks_loaded > 0) out.load_busy_ms = ns_to_ms(load_last_ns - load_first_ns);
  if (out.bytes_loaded > 0 && load_last_ns > load_first_ns)
    out.load_gbps = static_cast<double>(out.bytes_loaded) * 8.0 / static_cast<double>(load_last_ns - load_first_ns);
  if (use_load_lane && out.chunks_computed > 0 && out.chunks_loaded > 0)
    out.meet_idle_ms = std::abs(out.compute_lane_ms - out.load_lane_ms);

  out.timeline = std::move(compute_events);
  out.timeline.insert(out.timeline.end(), load_events.begin(), load_events.end());
  std::sort(out.timeline.begin(), out.timeline.end(),
            [](const ChunkEvent& a, const ChunkEvent& b) { return a.start_ns < b.start_ns; });

  if (out.chunks_computed + out.chunks_loaded + out.chunks_recovered != n)
    throw InternalError(cat("request ", request.id, " under ", out.mode, ": ", out.chunks_computed, " computed + ",
                    out.chunks_loaded, " loaded + ", out.chunks_recovered, " recovered != ", n, " chunks"));
  return out;
}

}  // namespace cake
