#include "engine/run_request.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
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

std::span<const int32_t> chunk_tokens_of(const Request& request, int chunk, int32_t chunk_tokens) {
  const int64_t first = static_cast<int64_t>(chunk) * chunk_tokens;
  const int64_t last = std::min<int64_t>(first + chunk_tokens, static_cast<int64_t>(request.prefix.size()));
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
  int64_t t0 = 0;
  MeetGuard guard;  // cake only: see engine/meet_guard.hpp
  const bool guarded = mode.kind == ModeKind::cake;

  StartGate gate;
  std::thread load_thread;
  const bool use_load_lane = mode.loads() && n > 0;
  if (use_load_lane) {
    const ThreadDevice device = ThreadDevice::capture();
    load_thread = std::thread([&, device] {
      try {
        device.bind();
        gate.wait();
        if (load->throttle) load->throttle->start();
        load->pipeline->run(
            load->key,
            [&]() -> std::optional<int> {
              if (abort_loads.load()) return std::nullopt;
              if (guarded) {
                const std::optional<int> next = claims.peek_for_load();
                if (!next) return std::nullopt;
                const MeetGuard::Verdict verdict = guard.judge(*next);
                if (verdict == MeetGuard::Verdict::stop) return std::nullopt;
                if (verdict == MeetGuard::Verdict::later) return LoadPipeline::kClaimLater;
              }
              const std::optional<int> chunk = claims.claim_for_load();
              if (chunk) guard.load_claimed();
              return chunk;
            },
            [&](const LoadedChunk& c) {
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
              e.error = c.error;
              std::lock_guard lock(events_mutex);
              load_events.push_back(std::move(e));
              if (!c.ok) failed_chunks.push_back(c.chunk);
            });
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

  // ---- t0 ------------------------------------------------------------------------------------
  std::vector<ChunkEvent> compute_events;
  t0 = now_ns();
  guard.start(t0);
  gate.open();

  auto compute_chunk = [&](int chunk, bool recovered) {
    NvtxRange range(cat(recovered ? "recompute c=" : "compute c=", chunk));
    ChunkEvent e;
    e.chunk = chunk;
    e.lane = Lane::compute;
    e.recovered = recovered;
    e.claim_ns = e.start_ns = now_ns() - t0;
    if (!recovered) guard.compute_started(chunk);
    backend.prefill_chunk(chunk_tokens_of(request, chunk, options.chunk_tokens),
                          static_cast<int64_t>(chunk) * options.chunk_tokens);
    backend.synchronize();
    if (options.inject_compute_delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(options.inject_compute_delay_ms));
    e.end_ns = now_ns() - t0;
    if (!recovered) guard.compute_finished(chunk, e.end_ns - e.start_ns);
    compute_events.push_back(e);
  };

  while (const std::optional<int> chunk = claims.claim_for_compute()) compute_chunk(*chunk, false);
  const int64_t compute_done_ns = now_ns() - t0;

  if (load_thread.joinable()) load_thread.join();
  if (load_error) std::rethrow_exception(load_error);

  // Failed loads: computed in ascending order, after every other chunk is resident, so each one
  // attends to a complete cache before it.
  std::sort(failed_chunks.begin(), failed_chunks.end());
  for (int chunk : failed_chunks) compute_chunk(chunk, true);

  out.suffix_start_ms = ns_to_ms(now_ns() - t0);
  {
    NvtxRange range("suffix + first token");
    out.first_token = backend.first_token(request.suffix, static_cast<int64_t>(request.prefix.size()));
  }
  const int64_t t1 = now_ns();
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
  for (const ChunkEvent& e : compute_events) (e.recovered ? out.chunks_recovered : out.chunks_computed)++;
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
