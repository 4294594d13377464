// Cake's meet, guarded by what both lanes have measured so far in THIS request.
//
// A chunk the load lane claims is committed to it: the compute lane may not start it. At a low
// bandwidth one chunk can take the load lane many times longer than the compute lane, so a chunk
// claimed just before the lanes meet can leave the compute lane idle (measured on an H100 at
// 1 Gbps, 32K context: the unguarded meet made Cake 40% slower than compute-only). So before each
// claim the load lane asks: would the compute lane, at its current pace, reach and finish this
// chunk before the load lane can deliver it? If so it stops claiming and the compute lane takes
// the rest.
//
// The other way round: when loading is fast (the whole prefix arrives before the compute lane's
// first run is done) the load lane, once nothing is left to claim, may take over the run the
// compute lane is still on, if it can deliver it before the compute lane would finish it. The
// compute lane abandons that run at its next layer boundary (ComputeBackend::LayerGate).
//
// And the grain: the compute lane prefills runs of store chunks (GEMMs like many rows) and picks
// each run's length here: long far from the meet, one chunk near it.
//
// Every estimate is measured online; there is no split parameter and no tuning. The arithmetic
// takes its inputs as a State so that tests can drive it with tables (tests/engine/test_meet_guard).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace cake {

class MeetGuard {
 public:
  // What the guard has measured; every time in ns since the request's t0.
  struct State {
    // Compute lane.
    int compute_next = 0;              // first chunk of the run it is on (or will take next)
    int compute_run_count = 0;         // chunks in that run; 0: no run in progress
    int64_t compute_run_start_ns = 0;
    int compute_layers = 0;            // gate steps per call (layers x steps a layer; 0: not reported)
    int compute_layers_done = 0;       // steps of the run in progress, as last reported
    int64_t compute_progress_ns = 0;   // when it was reported
    double compute_chunk_ns = 0;       // per chunk, of its last finished run (0: none finished yet)
    int compute_done = 0;              // chunks it finished
    // Least-squares sums over its finished runs of (chunk index, ns a chunk): each run counts at
    // its middle chunk, weighted by its chunks. A chunk attends to every token before it, so its
    // cost grows with its index: cost(i) = a + b i (compute_chunk_cost_ns).
    double fit_w = 0, fit_x = 0, fit_xx = 0, fit_y = 0, fit_xy = 0;
    // Load lane.
    // Before its first delivery: one chunk's payload over the link's nominal rate (the throttle's
    // target), when one is known; 0: unknown (the first chunk is then claimed blind).
    double nominal_load_ns_per_chunk = 0;
    int load_in_flight = 0;
    int load_done = 0;
    int64_t load_last_done_ns = 0;
  };

  enum class Verdict { claim, later, stop, wait_for_compute };
  // stop: the compute lane, at its pace, would finish `chunk` before the load lane could deliver
  // it. later: the load lane has not delivered anything yet and already holds a chunk: it commits
  // one chunk blind, no more, until its pace is known. `now_ns` (since t0) tells how far the
  // compute lane's run in progress has come.
  // Before the first delivery, with a nominal rate known (nominal_load_ns_per_chunk): claim only
  // when the compute lane would not finish the chunk sooner at that rate; wait_for_compute: ask
  // again when the compute lane reports progress (its pace is not known yet, or it would be
  // sooner now, which its next chunks, dearer than the first, may change). A blind claim where one
  // chunk takes longer to arrive than the whole prefill made Cake 3.5x compute-only (H200, 32K,
  // 0.25 Gbps, results/h200/round4/blind).
  static Verdict judge(const State& s, int chunk, int64_t now_ns);

  // What the compute lane will take for chunk `chunk`, from the line fitted to its finished runs
  // (never cheaper than its last run's chunks: chunks only get dearer with their index); its last
  // run's pace while the runs it finished sit at one index or the line falls. Before it finished
  // any: its run in progress's layers so far, scaled to the whole chunk; 0 when none reported.
  static double compute_chunk_cost_ns(const State& s, int chunk);

  // Should the compute lane leave `chunk`, the next it would start, to the load lane? Yes when the
  // load lane's pace is known and it would deliver `chunk` (after its chunks in flight and all
  // `unclaimed` chunks, `chunk` among them) no later than the compute lane could compute it. Then
  // judge() says claim to the load lane for any chunk it would take next, so one of the two lanes
  // always goes on. Starting it anyway left it to a take-over at a layer boundary: at 64K on the
  // H200 the load lane waited 4.2 ms for one and Cake took 1.045x the oracle (results/h200/round5).
  static bool leave_to_load(const State& s, int chunk, int unclaimed);

  enum class Takeover { take, leave, unknown };
  // Should the load lane take over the compute lane's run in progress (and the compute lane stand
  // down)? take: the load lane alone would deliver everything still to come (`unclaimed` chunks,
  // those in flight, and the run) before the compute lane, at its pace so far, finishes the run;
  // unknown: a pace is not known yet (ask again once the compute lane reports progress).
  static Takeover judge_takeover(const State& s, int64_t now_ns, int unclaimed);

  // Chunks for the compute lane's next run, of at most `max_chunks`, with `unclaimed` chunks left:
  // about half of its expected share of them (its pace against the load lane's), so runs shrink
  // toward one chunk as the lanes close in.
  static int run_length(const State& s, int unclaimed, int max_chunks);

  // ---- the live guard of one request (thread-safe) ----
  void start(int64_t t0_ns, double nominal_load_ns_per_chunk = 0);
  void compute_started(int first, int count, int64_t now_ns);
  void compute_progress(int layers_done, int layers, int64_t now_ns);
  void compute_finished(int first, int count, int64_t duration_ns);
  void compute_abandoned();   // its run was taken over
  void compute_lane_done();   // no more runs
  void load_claimed();
  void load_finished(int64_t now_ns);

  Verdict judge(int chunk, int64_t now_ns) const;
  bool leave_to_load(int chunk, int unclaimed) const;
  Takeover judge_takeover(int64_t now_ns, int unclaimed) const;
  int run_length(int unclaimed, int max_chunks) const;
  // The compute lane's run in progress, if any.
  struct Run {
    int first = 0;
    int count = 0;
  };
  std::optional<Run> compute_run() const;
  int load_in_flight() const;
  bool compute_lane_finished() const;  // compute_lane_done() was called
  bool load_began() const;  // the load lane has claimed a chunk
  // The load lane has claimed a chunk, or waited for the compute lane's news (its first claim
  // weighs the compute lane's pace, which it needs the compute lane running to learn).
  bool load_decided() const;
  // Waits until the compute lane reports progress (only before its first finished run: see
  // compute_progress), starts, finishes or gives up a run, or ends.
  void wait_for_compute_news();
  // Waits until the load lane claims or delivers a chunk, at most `max_wait_ns`.
  void wait_for_load_news(int64_t max_wait_ns);

 private:
  mutable std::mutex mutex_;
  std::condition_variable compute_news_;
  int64_t compute_news_seq_ = 0;
  std::condition_variable load_news_;
  int64_t load_news_seq_ = 0;
  bool compute_lane_done_ = false;
  bool load_waited_ = false;  // the load lane has waited in wait_for_compute_news()
  int64_t t0_ns_ = 0;
  State s_;
};

}  // namespace cake
