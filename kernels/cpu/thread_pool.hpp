// A small fixed pool of std::threads for the CPU backend: one parallel_for at a time, the
// calling thread works too, the first exception a task throws is rethrown to the caller.
// A pool that shares the cores with the load lane (common/load_lane_work.hpp) runs each
// parallel_for on fewer threads while load-lane threads are working: one core fewer for each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cake::cpu {

class ThreadPool {
 public:
  // `threads` counts the caller: 1 runs everything inline. 0 = every core this process may use.
  enum class LoadLane { ignore, share_cores };
  explicit ThreadPool(int threads, LoadLane load_lane = LoadLane::ignore);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body(i) for every i in [0, count), each exactly once, on any thread; returns when all
  // are done. Tasks are handed out in increasing i as threads free up. Not for concurrent
  // callers; a parallel_for from inside a task runs inline.
  void parallel_for(int64_t count, const std::function<void(int64_t)>& body);

  // The threads the next parallel_for would run on (the caller included), at least 1.
  int width_now() const;

  // Parallel steps run, and how many of them left cores to working load-lane threads.
  struct Steps {
    uint64_t parallel = 0;
    uint64_t narrowed = 0;
  };
  Steps steps() const;

 private:
  void worker_loop(int index);
  void run_tasks();

  std::mutex mutex_;
  std::condition_variable wake_;   // workers wait for a new job or stop
  std::condition_variable idle_;   // the caller waits for workers to finish the job
  const std::function<void(int64_t)>* body_ = nullptr;
  int64_t count_ = 0;
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
  int job_workers_ = 0;   // workers [0, job_workers_) take part in the current job
  int busy_workers_ = 0;
  const LoadLane load_lane_;
  std::atomic<uint64_t> parallel_steps_{0};
  std::atomic<uint64_t> narrowed_steps_{0};
  bool stop_ = false;
  std::atomic<bool> in_job_{false};  // read by tasks that call parallel_for again
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};


}  // namespace cake::cpu
