// A one-line progress bar on stderr when it is a terminal: the current point, runs done, ETA.
// Silent otherwise (or with --quiet), except for a line per stage change in non-TTY logs.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/units.hpp"
#include "engine/sweep.hpp"

namespace cake {

class ProgressBar {
 public:
  explicit ProgressBar(bool quiet) : enabled_(!quiet && isatty(STDERR_FILENO)) {}
  ~ProgressBar() { finish(); }

  void update(const SweepProgress& p) {
    if (!enabled_) return;
    const double elapsed_s = ns_to_s(clock_.elapsed_ns());
    std::string eta = "--";
    if (p.runs_done > 0 && p.runs_total > p.runs_done) {
      const double left_s = elapsed_s / p.runs_done * (p.runs_total - p.runs_done);
      eta = left_s >= 60 ? cat(static_cast<int>(left_s / 60), "m", static_cast<int>(left_s) % 60, "s")
                         : cat(static_cast<int>(left_s), "s");
    }
    constexpr int kWidth = 24;
    const int filled = p.runs_total > 0 ? kWidth * p.runs_done / p.runs_total : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string what = p.what.size() > 60 ? p.what.substr(0, 57) + "..." : p.what;
    std::fprintf(stderr, "\r\033[K[%s] %d/%d  ETA %s  %s", bar.c_str(), p.runs_done, p.runs_total, eta.c_str(),
                 what.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  Stopwatch clock_;
};

// Loading a checkpoint: bytes read of all, rate, on one line (a TTY only; one line at the end otherwise).
class LoadProgressBar {
 public:
  LoadProgressBar(std::string what, bool quiet) : what_(std::move(what)), tty_(!quiet && isatty(STDERR_FILENO)), quiet_(quiet) {}
  ~LoadProgressBar() { finish(); }

  void update(uint64_t done_bytes, uint64_t total_bytes) {
    done_ = done_bytes;
    total_ = total_bytes;
    if (!tty_) return;
    constexpr int kWidth = 24;
    const int filled = total_bytes > 0 ? static_cast<int>(kWidth * static_cast<double>(done_bytes) / total_bytes) : kWidth;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double s = ns_to_s(clock_.elapsed_ns());
    std::fprintf(stderr, "\r\033[K[%s] loading %s  %s / %s  %.2f GB/s", bar.c_str(), what_.c_str(),
                 format_bytes(done_bytes).c_str(), format_bytes(total_bytes).c_str(), s > 0 ? done_bytes / s / 1e9 : 0.0);
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    if (!finished_ && !quiet_ && total_ > 0)
      std::fprintf(stderr, "loaded %s: %s in %.2f s\n", what_.c_str(), format_bytes(done_).c_str(), ns_to_s(clock_.elapsed_ns()));
    drawn_ = false;
    finished_ = true;
  }

 private:
  std::string what_;
  bool tty_;
  bool quiet_;
  bool drawn_ = false;
  bool finished_ = false;
  uint64_t done_ = 0, total_ = 0;
  Stopwatch clock_;
};

}  // namespace cake
