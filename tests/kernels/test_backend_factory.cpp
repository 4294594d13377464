// Backend selection: names, the CPU path, and the no-GPU fallback with its reason.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/presets.hpp"

namespace cake {
namespace {

BackendOptions small_options() {
  BackendOptions o;
  o.max_context_tokens = 64;
  o.max_chunk_tokens = 16;
  return o;
}

TEST(BackendFactory, ParsesKinds) {
  EXPECT_EQ(parse_backend_kind("auto"), BackendKind::auto_select);
  EXPECT_EQ(parse_backend_kind("cpu"), BackendKind::cpu);
  EXPECT_EQ(parse_backend_kind("cuda"), BackendKind::cuda);
  EXPECT_THROW(parse_backend_kind("gpu"), UsageError);
  EXPECT_THROW(parse_backend_kind("CPU"), UsageError);
  EXPECT_THROW(parse_backend_kind(""), UsageError);
  for (BackendKind k : {BackendKind::auto_select, BackendKind::cpu, BackendKind::cuda})
    EXPECT_EQ(parse_backend_kind(backend_kind_name(k)), k);
}

TEST(BackendFactory, ParsesAttentionChoices) {
  EXPECT_EQ(parse_attention_choice("auto"), AttentionChoice::auto_select);
  EXPECT_EQ(parse_attention_choice("cudnn"), AttentionChoice::cudnn);
  EXPECT_EQ(parse_attention_choice("mma"), AttentionChoice::mma);
  EXPECT_THROW(parse_attention_choice("flash"), UsageError);
  EXPECT_THROW(parse_attention_choice("cuDNN"), UsageError);
  EXPECT_THROW(parse_attention_choice(""), UsageError);
  for (AttentionChoice c : {AttentionChoice::auto_select, AttentionChoice::cudnn, AttentionChoice::mma})
    EXPECT_EQ(parse_attention_choice(attention_choice_name(c)), c);
  EXPECT_EQ(BackendOptions{}.attention, AttentionChoice::auto_select);
}

// Also where a GPU is present (the device scripts run test_kernels's BackendFactory tests there).
TEST(BackendFactory, CpuIsAlwaysAvailable) {
  const BackendChoice choice = make_backend(BackendKind::cpu, preset_model("tiny-mha"), small_options());
  ASSERT_NE(choice.backend, nullptr);
  EXPECT_EQ(choice.backend->name(), "cpu");
  EXPECT_FALSE(choice.reason.empty());
}

TEST(BackendFactory, WithoutGpuAutoFallsBackToCpuAndCudaIsRefused) {
  const CudaInfo cuda = probe_cuda();
  if (cuda.built_with_cuda && !cuda.gpus.empty()) GTEST_SKIP() << "a GPU is present; the fallback is not reachable";
  const BackendChoice choice = make_backend(BackendKind::auto_select, preset_model("tiny-mha"), small_options());
  ASSERT_NE(choice.backend, nullptr);
  EXPECT_EQ(choice.backend->name(), "cpu");
  EXPECT_EQ(choice.reason.rfind("no GPU: ", 0), 0u) << choice.reason;
  EXPECT_NE(choice.reason.find("using the CPU backend"), std::string::npos) << choice.reason;
  EXPECT_THROW(make_backend(BackendKind::cuda, preset_model("tiny-mha"), small_options()), EnvironmentError);
}

}  // namespace
}  // namespace cake
