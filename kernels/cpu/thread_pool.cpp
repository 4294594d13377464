#include "kernels/cpu/thread_pool.hpp"


#include <algorithm>

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/load_lane_work.hpp"

namespace cake::cpu {

ThreadPool::ThreadPool(int threads, LoadLane load_lane) : load_lane_(load_lane) {
  if (threads < 0) throw UsageError(cat("CPU thread count must be >= 0 (0 = all cores), got ", threads));
  const int total = threads == 0 ? available_cores() : threads;
  try {
    for (int i = 1; i < total; ++i) workers_.emplace_back([this, index = i - 1] { worker_loop(index); });
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    throw EnvironmentError(cat("starting CPU worker thread ", workers_.size() + 1, " of ", total, ": ", e.what()));
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks() {
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return;
    try {
      (*body_)(i);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(count_, std::memory_order_relaxed);  // the others stop taking tasks
      return;
    }
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    {
      // A worker outside a narrowed job sleeps through it: the caller waits only for the
      // job_workers_ that take part, and starts no job before they all finished the last one.
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || (generation_ != seen && index < job_workers_); });
      if (stop_) return;
      seen = generation_;
    }
    run_tasks();
    {
      std::lock_guard lock(mutex_);
      --busy_workers_;
    }
    idle_.notify_one();
  }
}

int ThreadPool::width_now() const {
  const int all = size();
  if (load_lane_ == LoadLane::ignore) return all;
  return std::max(1, all - load_lane_threads_working());
}

ThreadPool::Steps ThreadPool::steps() const {
  return {parallel_steps_.load(std::memory_order_relaxed), narrowed_steps_.load(std::memory_order_relaxed)};
}

void ThreadPool::parallel_for(int64_t count, const std::function<void(int64_t)>& body) {
  if (count <= 0) return;
  if (in_job_ || workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  // Read once a step: a step is short next to a load lane's stretch of work (a request of a read).
  const int width = width_now();
  parallel_steps_.fetch_add(1, std::memory_order_relaxed);
  if (width < size()) narrowed_steps_.fetch_add(1, std::memory_order_relaxed);
  if (width == 1) {
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    body_ = &body;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    job_workers_ = width - 1;
    busy_workers_ = job_workers_;
    in_job_ = true;
    ++generation_;
  }
  wake_.notify_all();
  run_tasks();
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return busy_workers_ == 0; });
    body_ = nullptr;
    in_job_ = false;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace cake::cpu
