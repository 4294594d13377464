// Exit codes and messages for exceptions that end a command: bad input is exit 2 with the --help
// hint; a broken contract inside the code is exit 1, "internal error", no hint.
#include <gtest/gtest.h>

#include "cli/error_exit.hpp"
#include "engine/chunk_claims.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/presets.hpp"

using namespace cake;

namespace {

template <typename Fn>
ErrorExit exit_of(Fn fn) {
  try {
    fn();
  } catch (...) {
    return error_exit(std::current_exception());
  }
  ADD_FAILURE() << "the call did not throw";
  return {};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(ErrorExit, InternalErrorIsExitOneWithContextAndNoHelpHint) {
  const ErrorExit e = exit_of([] { throw InternalError("attention launched with head_dim 64 on a kernel built for 128"); });
  EXPECT_EQ(e.code, kExitFailure);
  EXPECT_TRUE(has(e.message, "internal error: attention launched with head_dim 64")) << e.message;
  EXPECT_FALSE(has(e.message, "--help")) << e.message;
}

TEST(ErrorExit, UsageErrorIsExitTwoWithHelpHint) {
  const ErrorExit e = exit_of([] { throw UsageError("invalid chunk size '0'"); });
  EXPECT_EQ(e.code, kExitUsage);
  EXPECT_TRUE(has(e.message, "invalid chunk size '0'")) << e.message;
  EXPECT_TRUE(has(e.message, "--help")) << e.message;
  EXPECT_FALSE(has(e.message, "internal error")) << e.message;
}

TEST(ErrorExit, EnvironmentAndOtherErrors) {
  EXPECT_EQ(exit_of([] { throw EnvironmentError("no GPU"); }).code, kExitEnvironment);
  const ErrorExit plain = exit_of([] { throw Error("reading chunk 3: EIO"); });
  EXPECT_EQ(plain.code, kExitFailure);
  EXPECT_TRUE(has(plain.message, "error: reading chunk 3: EIO")) << plain.message;
  EXPECT_FALSE(has(plain.message, "internal error")) << plain.message;
}

// Contract violations in the code itself map to the internal-error exit, not the usage one.
TEST(ErrorExit, ContractViolationsInTheCodeAreInternal) {
  const ErrorExit claims = exit_of([] { ChunkClaims(4, 5, 0, ChunkClaims::LoadOrder::back_to_front); });
  EXPECT_EQ(claims.code, kExitFailure);
  EXPECT_TRUE(has(claims.message, "internal error: ChunkClaims: bad limits")) << claims.message;

  const ModelConfig model = preset_model("tiny");
  BackendOptions options;
  options.max_context_tokens = 64;
  options.max_chunk_tokens = 8;
  options.cpu_threads = 1;
  auto backend = make_cpu_backend(model, options);
  const std::vector<int32_t> nine(9, 1);
  const ErrorExit chunk = exit_of([&] { backend->prefill_chunk(nine, 0); });
  EXPECT_EQ(chunk.code, kExitFailure);
  EXPECT_TRUE(has(chunk.message, "internal error: CPU backend prefill_chunk: 9 tokens")) << chunk.message;

  // A token outside the vocabulary came from the user's data: usage.
  const std::vector<int32_t> bad_token{1, model.vocab};
  EXPECT_EQ(exit_of([&] { backend->prefill_chunk(bad_token, 0); }).code, kExitUsage);
}
