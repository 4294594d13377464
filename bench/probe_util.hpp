// What the host-path probes (probe_mapped_copy, probe_landing_cost) share: a clock, a fatal error
// that names the probe and errno, and a pread() of exactly n bytes.
#pragma once

#include <errno.h>  // program_invocation_short_name (glibc)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cake::probe {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what.c_str(), std::strerror(errno));
  std::exit(1);
}

// n bytes at `at` of fd into `into`, over short reads and EINTR; dies on an error or the file's end.
inline void read_fully(int fd, unsigned char* into, size_t n, size_t at) {
  for (size_t done = 0; done < n;) {
    const ssize_t r = ::pread(fd, into + done, n - done, static_cast<off_t>(at + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("pread");
    done += static_cast<size_t>(r);
  }
}

}  // namespace cake::probe
