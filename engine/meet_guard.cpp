#include "engine/meet_guard.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace cake {
namespace {

// The load lane's pace: chunks delivered so far over the time since t0 (pipeline fill included).
// Only once it has delivered one.
double measured_load_ns_per_chunk(const MeetGuard::State& s) {
  return static_cast<double>(s.load_last_done_ns) / s.load_done;
}

// What the compute lane will take for chunks first..last (inclusive), each at its own cost.
double compute_cost_ns(const MeetGuard::State& s, int first, int last) {
  double ns = 0;
  for (int i = first; i <= last; ++i) ns += MeetGuard::compute_chunk_cost_ns(s, i);
  return ns;
}

}  // namespace

MeetGuard::Verdict MeetGuard::judge(const State& s, int chunk, int64_t now_ns) {
  // Until the load lane has delivered a chunk its pace is unknown: it commits one chunk blind, no
  // more (measured on an H100 at 1 Gbps, 32K context, 1024-token chunks: each blind chunk costs
  // over a second, and two blind claims made Cake 30% slower than compute-only).
  if (s.load_done == 0 && s.load_in_flight > 0) return Verdict::later;
  if (s.load_done == 0 && s.nominal_load_ns_per_chunk <= 0) return Verdict::claim;
  if (s.load_done > 0 && s.compute_done == 0) return Verdict::claim;
  // The load lane's pace; before its first delivery, the link's nominal rate.
  const double load_ns_per_chunk = s.load_done > 0 ? measured_load_ns_per_chunk(s) : s.nominal_load_ns_per_chunk;
  const double load_eta_ns = (s.load_in_flight + 1) * load_ns_per_chunk;
  if (s.load_done == 0 && compute_chunk_cost_ns(s, s.compute_next) <= 0) return Verdict::wait_for_compute;
  // The compute lane's: every chunk from the one it is on up to and including `chunk`, each at its
  // own cost, less what it has done of its run in progress. With the last run's pace for all of
  // them (round 3), chunks near the meet were taken for cheaper than they are, and the load lane
  // stopped a chunk early: at 2 Gbps on the H200 it then idled 620 ms at the meet and Cake took
  // 1.04x the oracle (results/h200/round3).
  double compute_eta_ns = compute_cost_ns(s, s.compute_next, chunk);
  if (s.compute_run_count > 0) {
    const double run_ns = compute_cost_ns(s, s.compute_next, s.compute_next + s.compute_run_count - 1);
    compute_eta_ns -= std::clamp(static_cast<double>(now_ns - s.compute_run_start_ns), 0.0, run_ns);
  }
  if (compute_eta_ns >= load_eta_ns) return Verdict::claim;
  return s.load_done == 0 ? Verdict::wait_for_compute : Verdict::stop;
}

double MeetGuard::compute_chunk_cost_ns(const State& s, int chunk) {
  if (s.compute_chunk_ns <= 0) {
    if (s.compute_run_count == 0 || s.compute_layers <= 0 || s.compute_layers_done <= 0) return 0;
    const double run_ns = static_cast<double>(s.compute_progress_ns - s.compute_run_start_ns) * s.compute_layers /
                          s.compute_layers_done;
    return run_ns / s.compute_run_count;
  }
  const double spread = s.fit_w * s.fit_xx - s.fit_x * s.fit_x;  // w^2 times the variance of the index
  if (s.fit_w <= 0 || spread <= 1e-9 * s.fit_w * s.fit_w) return s.compute_chunk_ns;
  // A line that falls (a first run slowed by a warm-up, or by the load lane's work on the CPU's
  // cores) says nothing about the chunks ahead: the last run's pace then, as before.
  const double slope = (s.fit_w * s.fit_xy - s.fit_x * s.fit_y) / spread;
  if (slope <= 0) return s.compute_chunk_ns;
  const double intercept = (s.fit_y - slope * s.fit_x) / s.fit_w;
  return std::max(s.compute_chunk_ns, intercept + slope * chunk);
}

bool MeetGuard::leave_to_load(const State& s, int chunk, int unclaimed) {
  // Asked between runs, once the load lane's pace is known.
  if (s.compute_run_count > 0 || s.load_done == 0 || s.load_last_done_ns <= 0 || unclaimed < 1) return false;
  const double load_eta_ns = (s.load_in_flight + unclaimed) * measured_load_ns_per_chunk(s);
  const double compute_eta_ns = compute_cost_ns(s, s.compute_next, chunk);
  return compute_eta_ns > 0 && load_eta_ns <= compute_eta_ns;
}

MeetGuard::Takeover MeetGuard::judge_takeover(const State& s, int64_t now_ns, int unclaimed) {
  if (s.compute_run_count == 0) return Takeover::leave;
  if (s.load_done == 0) return Takeover::unknown;
  // What is left of the run: from its layers so far when it has reported some, else from the last
  // run's pace (a later run is never cheaper per chunk).
  double remaining_ns = 0;
  if (s.compute_layers > 0 && s.compute_layers_done > 0) {
    const double per_layer = static_cast<double>(s.compute_progress_ns - s.compute_run_start_ns) / s.compute_layers_done;
    remaining_ns = per_layer * (s.compute_layers - s.compute_layers_done) -
                   static_cast<double>(now_ns - s.compute_progress_ns);
  } else if (s.compute_chunk_ns > 0) {
    remaining_ns = s.compute_chunk_ns * s.compute_run_count - static_cast<double>(now_ns - s.compute_run_start_ns);
  } else {
    return Takeover::unknown;
  }
  const double load_eta_ns = (s.load_in_flight + unclaimed + s.compute_run_count) * measured_load_ns_per_chunk(s);
  return load_eta_ns < remaining_ns ? Takeover::take : Takeover::leave;
}

int MeetGuard::run_length(const State& s, int unclaimed, int max_chunks) {
  if (max_chunks <= 1 || unclaimed <= 1) return 1;
  double share = unclaimed / 2.0;  // paces unknown: as if both lanes were equally fast
  if (s.compute_chunk_ns > 0 && s.load_done > 0 && s.load_last_done_ns > 0) {
    const double compute_rate = 1.0 / s.compute_chunk_ns;
    const double load_rate = static_cast<double>(s.load_done) / static_cast<double>(s.load_last_done_ns);
    share = unclaimed * compute_rate / (compute_rate + load_rate);
  }
  return std::clamp(static_cast<int>(std::floor(share / 2)), 1, max_chunks);
}

void MeetGuard::start(int64_t t0_ns, double nominal_load_ns_per_chunk) {
  std::lock_guard lock(mutex_);
  t0_ns_ = t0_ns;
  s_.nominal_load_ns_per_chunk = nominal_load_ns_per_chunk;
}

void MeetGuard::compute_started(int first, int count, int64_t now_ns) {
  {
    std::lock_guard lock(mutex_);
    s_.compute_next = first;
    s_.compute_run_count = count;
    s_.compute_run_start_ns = now_ns - t0_ns_;
    s_.compute_layers_done = 0;
    s_.compute_progress_ns = s_.compute_run_start_ns;
    ++compute_news_seq_;
  }
  compute_news_.notify_all();
}

void MeetGuard::compute_progress(int layers_done, int layers, int64_t now_ns) {
  bool news = false;
  {
    std::lock_guard lock(mutex_);
    s_.compute_layers = layers;
    s_.compute_layers_done = layers_done;
    s_.compute_progress_ns = now_ns - t0_ns_;
    // News for a waiting load lane only until the compute lane has finished a run: until then its
    // pace comes from these reports (compute_chunk_cost_ns, judge_takeover), after that from its
    // finished runs, which a report within a run does not change. Waking the load lane at every
    // layer step cost the CPU backend ~3% on the 2-core dev box (a context switch a step).
    news = s_.compute_chunk_ns <= 0;
    if (news) ++compute_news_seq_;
  }
  if (news) compute_news_.notify_all();
}

void MeetGuard::compute_finished(int first, int count, int64_t duration_ns) {
  {
    std::lock_guard lock(mutex_);
    s_.compute_next = first + count;
    s_.compute_run_count = 0;
    s_.compute_chunk_ns = static_cast<double>(duration_ns) / std::max(count, 1);
    s_.compute_done += count;
    const double w = std::max(count, 1);
    const double x = first + (count - 1) / 2.0;
    s_.fit_w += w;
    s_.fit_x += w * x;
    s_.fit_xx += w * x * x;
    s_.fit_y += w * s_.compute_chunk_ns;
    s_.fit_xy += w * x * s_.compute_chunk_ns;
    ++compute_news_seq_;
  }
  compute_news_.notify_all();
}

void MeetGuard::compute_abandoned() {
  {
    std::lock_guard lock(mutex_);
    s_.compute_next += s_.compute_run_count;
    s_.compute_run_count = 0;
    ++compute_news_seq_;
  }
  compute_news_.notify_all();
}

void MeetGuard::compute_lane_done() {
  {
    std::lock_guard lock(mutex_);
    s_.compute_run_count = 0;
    compute_lane_done_ = true;
    ++compute_news_seq_;
  }
  compute_news_.notify_all();
}

void MeetGuard::load_claimed() {
  {
    std::lock_guard lock(mutex_);
    ++s_.load_in_flight;
    ++load_news_seq_;
  }
  load_news_.notify_all();
}

void MeetGuard::load_finished(int64_t now_ns) {
  {
    std::lock_guard lock(mutex_);
    --s_.load_in_flight;
    ++s_.load_done;
    s_.load_last_done_ns = now_ns - t0_ns_;
    ++load_news_seq_;
  }
  load_news_.notify_all();
}

void MeetGuard::wait_for_load_news(int64_t max_wait_ns) {
  std::unique_lock lock(mutex_);
  const int64_t seen = load_news_seq_;
  load_news_.wait_for(lock, std::chrono::nanoseconds(max_wait_ns), [&] { return load_news_seq_ != seen; });
}

bool MeetGuard::leave_to_load(int chunk, int unclaimed) const {
  std::lock_guard lock(mutex_);
  return leave_to_load(s_, chunk, unclaimed);
}

MeetGuard::Verdict MeetGuard::judge(int chunk, int64_t now_ns) const {
  std::lock_guard lock(mutex_);
  return judge(s_, chunk, now_ns - t0_ns_);
}

MeetGuard::Takeover MeetGuard::judge_takeover(int64_t now_ns, int unclaimed) const {
  std::lock_guard lock(mutex_);
  return judge_takeover(s_, now_ns - t0_ns_, unclaimed);
}

int MeetGuard::run_length(int unclaimed, int max_chunks) const {
  std::lock_guard lock(mutex_);
  return run_length(s_, unclaimed, max_chunks);
}

std::optional<MeetGuard::Run> MeetGuard::compute_run() const {
  std::lock_guard lock(mutex_);
  if (s_.compute_run_count == 0 || compute_lane_done_) return std::nullopt;
  return Run{s_.compute_next, s_.compute_run_count};
}

bool MeetGuard::load_began() const {
  std::lock_guard lock(mutex_);
  return s_.load_in_flight + s_.load_done > 0;
}

bool MeetGuard::load_decided() const {
  std::lock_guard lock(mutex_);
  return s_.load_in_flight + s_.load_done > 0 || load_waited_;
}

bool MeetGuard::compute_lane_finished() const {
  std::lock_guard lock(mutex_);
  return compute_lane_done_;
}

int MeetGuard::load_in_flight() const {
  std::lock_guard lock(mutex_);
  return s_.load_in_flight;
}

void MeetGuard::wait_for_compute_news() {
  std::unique_lock lock(mutex_);
  load_waited_ = true;
  const int64_t seen = compute_news_seq_;
  compute_news_.wait(lock, [&] { return compute_news_seq_ != seen || compute_lane_done_; });
}

}  // namespace cake
