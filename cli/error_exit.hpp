// What cake-bench prints and returns when an exception ends a command. Bad input (flags, values,
// files) gets exit 2 and the --help hint; a broken contract inside cake-bench (InternalError) is a
// bug: exit 1, "internal error: <context>", and no hint, since no flag would fix it.
#pragma once

#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/exit_codes.hpp"
#include "common/error.hpp"

namespace cake {

struct ErrorExit {
  int code = kExitFailure;
  std::string message;  // for stderr, newline-terminated
};

// Call with the exception in flight (std::current_exception()). CLI11's help and version
// "errors" are not handled here: the app prints those itself.
inline ErrorExit error_exit(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const CLI::ParseError& e) {
    return {kExitUsage, cat("cake-bench: ", e.what(), "\nhint: run 'cake-bench --help' (or 'cake-bench COMMAND --help')\n")};
  } catch (const UsageError& e) {
    return {kExitUsage, cat("cake-bench: ", e.what(), "\nhint: run 'cake-bench COMMAND --help' for the accepted values\n")};
  } catch (const EnvironmentError& e) {
    return {kExitEnvironment, cat("cake-bench: ", e.what(), "\n")};
  } catch (const InternalError& e) {
    return {kExitFailure, cat("cake-bench: internal error: ", e.what(),
                              "\n(a bug in cake-bench, not in the command line: please report it with this message)\n")};
  } catch (const std::exception& e) {
    return {kExitFailure, cat("cake-bench: error: ", e.what(), "\n")};
  } catch (...) {
    return {kExitFailure, "cake-bench: error: an exception that is not a std::exception\n"};
  }
}

}  // namespace cake
