#include "common/clock.hpp"

#include <time.h>

#include "common/error.hpp"

namespace cake {
namespace {

int64_t clock_ns(clockid_t clock, const char* what) {
  timespec ts{};
  check_sys(::clock_gettime(clock, &ts), what);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

int64_t process_cpu_ns() { return clock_ns(CLOCK_PROCESS_CPUTIME_ID, "reading the process CPU time"); }
int64_t thread_cpu_ns() { return clock_ns(CLOCK_THREAD_CPUTIME_ID, "reading the thread CPU time"); }

}  // namespace cake
