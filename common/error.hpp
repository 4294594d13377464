// The one error type of cake-bench: a message that says what was being done and with what.
#pragma once

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cake {

// Errors carry their context in the message ("reading chunk 12 of /x/y.kvstore: pread: EIO"),
// so a caller that only prints e.what() still tells the user what and where.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad input from the user (flags, files, values): the CLI maps it to the usage exit code.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A broken contract inside cake-bench: a caller passed what the callee's interface rules out
// (a chunk larger than the backend was sized for, a kernel launched with another head_dim).
// It is a bug, not the user's input: the CLI exits 1 with "internal error: <context>" and no
// --help hint.
class InternalError : public Error {
 public:
  using Error::Error;
};

// The machine cannot do what was asked (no GPU when one is required, no space, no io_uring).
class EnvironmentError : public Error {
 public:
  using Error::Error;
};

// Concatenate anything streamable; avoids <format>, which g++ 12 lacks.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

inline std::string errno_text(int err) {
  return cat(std::strerror(err), " (errno ", err, ")");
}

// A failed call's error: EnvironmentError when the machine is out of space (ENOSPC, EDQUOT: the
// README's exit code 3), Error otherwise.
[[noreturn]] inline void throw_errno(std::string_view what, int err) {
  const std::string message = cat(what, ": ", errno_text(err));
  if (err == ENOSPC || err == EDQUOT) throw EnvironmentError(cat(message, ": no space left"));
  throw Error(message);
}

// For syscalls that return -1 and set errno. Returns the result so it can wrap expressions.
template <typename T>
T check_sys(T result, std::string_view what) {
  if (result < 0) throw_errno(what, errno);
  return result;
}

// For liburing calls that return -errno.
inline int check_neg_errno(int result, std::string_view what) {
  if (result < 0) throw_errno(what, -result);
  return result;
}

}  // namespace cake
