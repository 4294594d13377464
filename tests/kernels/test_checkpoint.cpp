// Checkpoints written by the test (tiny_checkpoint.hpp) run through the CPU backend and are held
// against a float64 forward pass over the same weights; every kind of bad checkpoint is refused
// with an error that names the file and the tensor.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "tests/kernels/test_support.hpp"
#include "tests/kernels/tiny_checkpoint.hpp"

namespace cake {
namespace {

namespace fs = std::filesystem;
using test::TinyArch;
using test::TinyWeights;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cake-ckpt-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    rng_.seed(seed_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The CPU backend's logits and KV over `tokens`, the prefix in chunks of `chunk`.
  struct Run {
    std::vector<float> logits;
    int32_t token = -1;
    std::vector<std::vector<float>> k, v;  // per layer, [tokens][kv_heads * head_dim]
    std::string fingerprint;
  };
  Run run_cpu(const std::string& dir, const std::vector<int32_t>& tokens, int64_t chunk) {
    auto c = std::make_shared<const ckpt::Checkpoint>(ckpt::open_checkpoint(dir));
    BackendOptions o;
    o.max_context_tokens = static_cast<int64_t>(tokens.size());
    o.max_chunk_tokens = chunk;
    o.cpu_threads = 2;
    o.checkpoint = c;
    auto backend = make_cpu_backend(c->model, o);
    backend->poison_kv_cache();
    const int64_t prefix = static_cast<int64_t>(tokens.size()) - 1;
    for (int64_t at = 0; at < prefix; at += chunk)
      backend->prefill_chunk(std::span<const int32_t>(tokens.data() + at, std::min(chunk, prefix - at)), at);
    const FirstToken first = backend->first_token(std::span<const int32_t>(tokens.data() + prefix, 1), prefix);
    Run r;
    r.logits = first.logits;
    r.token = first.token_id;
    const KvCacheView view = backend->kv_cache();
    const size_t row = static_cast<size_t>(view.kv_heads) * view.head_dim;
    for (int l = 0; l < view.layers; ++l) {
      const float* k = reinterpret_cast<const float*>(view.k[l]);
      const float* v = reinterpret_cast<const float*>(view.v[l]);
      r.k.emplace_back(k, k + tokens.size() * row);
      r.v.emplace_back(v, v + tokens.size() * row);
    }
    r.fingerprint = backend->model().fingerprint();
    return r;
  }

  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  uint32_t seed_ = std::random_device{}();
  std::mt19937_64 rng_;
  fs::path dir_;
};

void expect_matches_fp64(const TinyArch& a, const TinyWeights& w, const std::vector<int32_t>& tokens,
                         const std::vector<float>& logits, const std::vector<std::vector<float>>& k,
                         const std::vector<std::vector<float>>& v) {
  const test::Fp64Forward want = test::fp64_forward(a, w, tokens);
  // fp32 against fp64 over a few layers: ~1e-6 relative; 1e-4 is the bar the issue sets.
  EXPECT_LT(test::relative_error(logits, want.logits), 1e-4);
  for (int l = 0; l < a.layers; ++l) {
    EXPECT_LT(test::relative_error(k[l], want.k[l]), 1e-4) << "K of layer " << l;
    EXPECT_LT(test::relative_error(v[l], want.v[l]), 1e-4) << "V of layer " << l;
  }
  int best = 0;
  for (int i = 1; i < a.vocab; ++i)
    if (want.logits[i] > want.logits[best]) best = i;
  int got = 0;
  for (int i = 1; i < a.vocab; ++i)
    if (logits[i] > logits[got]) got = i;
  EXPECT_EQ(got, best);
}

TEST_F(CheckpointTest, LlamaF32MatchesFloat64Reference) {
  SCOPED_TRACE("random seed " + std::to_string(seed_));
  TinyArch a;
  const TinyWeights w = test::make_tiny_weights(a, rng_);
  test::write_tiny_checkpoint(path("llama"), a, w, "F32");
  std::vector<int32_t> tokens(23);
  for (auto& t : tokens) t = static_cast<int32_t>(rng_() % a.vocab);
  const Run r = run_cpu(path("llama"), tokens, 8);
  expect_matches_fp64(a, w, tokens, r.logits, r.k, r.v);
}

TEST_F(CheckpointTest, Qwen2BiasesTiedShardedMatchFloat64Reference) {
  SCOPED_TRACE("random seed " + std::to_string(seed_));
  TinyArch a;
  a.model_type = "qwen2";
  a.qkv_bias = true;
  a.tied = true;
  a.rope_theta = 1000000.0;
  a.eps = 1e-6;
  const TinyWeights w = test::make_tiny_weights(a, rng_);
  test::write_tiny_checkpoint(path("qwen2"), a, w, "BF16", 3);
  const ckpt::Checkpoint c = ckpt::open_checkpoint(path("qwen2"));
  EXPECT_EQ(c.files.size(), 3u);
  EXPECT_TRUE(c.model.qkv_bias);
  EXPECT_TRUE(c.model.tied_embeddings);
  EXPECT_EQ(c.model.rope_theta, 1000000.0);  // from rope_parameters (transformers 5)
  EXPECT_EQ(c.parameter_count, c.model.parameter_count());
  std::vector<int32_t> tokens(19);
  for (auto& t : tokens) t = static_cast<int32_t>(rng_() % a.vocab);
  const Run r = run_cpu(path("qwen2"), tokens, 5);
  expect_matches_fp64(a, w, tokens, r.logits, r.k, r.v);
}

TEST_F(CheckpointTest, DtypesShardingAndChunkingGiveIdenticalResults) {
  SCOPED_TRACE("random seed " + std::to_string(seed_));
  TinyArch a;
  const TinyWeights w = test::make_tiny_weights(a, rng_);
  test::write_tiny_checkpoint(path("f32"), a, w, "F32");
  test::write_tiny_checkpoint(path("bf16"), a, w, "BF16", 2);
  test::write_tiny_checkpoint(path("f16"), a, w, "F16");
  std::vector<int32_t> tokens(17);
  for (auto& t : tokens) t = static_cast<int32_t>(rng_() % a.vocab);
  const Run whole = run_cpu(path("f32"), tokens, 16);
  for (const auto& [dir, chunk] : std::vector<std::pair<std::string, int64_t>>{{"f32", 3}, {"bf16", 16}, {"f16", 4}}) {
    SCOPED_TRACE(dir + " chunk " + std::to_string(chunk));
    const Run r = run_cpu(path(dir), tokens, chunk);
    // Every weight is exact in every dtype, and the CPU backend is chunk-invariant: bit for bit.
    EXPECT_EQ(r.logits, whole.logits);
    EXPECT_EQ(r.k, whole.k);
    EXPECT_EQ(r.v, whole.v);
  }
}

TEST_F(CheckpointTest, ContentFingerprintFollowsTheBytes) {
  SCOPED_TRACE("random seed " + std::to_string(seed_));
  TinyArch a;
  a.layers = 1;
  TinyWeights w = test::make_tiny_weights(a, rng_);
  test::write_tiny_checkpoint(path("a"), a, w, "F32");
  test::write_tiny_checkpoint(path("b"), a, w, "F32");
  w["model.layers.0.mlp.up_proj.weight"].values[5] += 1.0 / 64;
  test::write_tiny_checkpoint(path("c"), a, w, "F32");
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::string fa = run_cpu(path("a"), tokens, 2).fingerprint;
  EXPECT_EQ(fa, run_cpu(path("b"), tokens, 2).fingerprint);  // same content, other folder
  EXPECT_NE(fa, run_cpu(path("c"), tokens, 2).fingerprint);  // one weight differs
  EXPECT_NE(fa.find("-ckpt"), std::string::npos);
}

// ---- bad checkpoints ---------------------------------------------------------------------

class BadCheckpointTest : public CheckpointTest {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    a_.layers = 2;
    w_ = test::make_tiny_weights(a_, rng_);
  }
  // Writes the good checkpoint, lets `spoil` change it, expects open (and so any backend) to fail
  // with a message containing every one of `needles`.
  void expect_refused(const std::function<void(const std::string& dir)>& spoil, std::vector<std::string> needles) {
    const std::string dir = path("bad");
    fs::remove_all(dir);
    test::write_tiny_checkpoint(dir, a_, w_, "BF16");
    spoil(dir);
    const std::string message = error_of([&] { ckpt::open_checkpoint(dir); });
    for (const std::string& n : needles) EXPECT_NE(message.find(n), std::string::npos) << "'" << n << "' not in: " << message;
  }
  TinyArch a_;
  TinyWeights w_;
};

TEST_F(BadCheckpointTest, MissingTensor) {
  expect_refused(
      [&](const std::string& dir) {
        TinyWeights w = w_;
        w.erase("model.layers.1.mlp.up_proj.weight");
        test::write_safetensors(dir + "/model.safetensors", w, test::tensor_names(w), "BF16");
      },
      {"missing tensor 'model.layers.1.mlp.up_proj.weight'"});
}

TEST_F(BadCheckpointTest, WrongShape) {
  expect_refused(
      [&](const std::string& dir) {
        TinyWeights w = w_;
        auto& t = w["model.layers.0.self_attn.k_proj.weight"];
        t.shape = {t.shape[0] / 2, t.shape[1]};
        t.values.resize(t.values.size() / 2);
        test::write_safetensors(dir + "/model.safetensors", w, test::tensor_names(w), "BF16");
      },
      {"model.safetensors", "'model.layers.0.self_attn.k_proj.weight' has shape [16, 64]", "[32, 64]"});
}

TEST_F(BadCheckpointTest, WrongDtype) {
  expect_refused(
      [&](const std::string& dir) {
        // The embedding stored as I64 of the right byte count: a valid file, but not a weight.
        test::write_safetensors(dir + "/model.safetensors", w_, test::tensor_names(w_), "BF16",
                                {{"model.embed_tokens.weight", "I64"}});
      },
      {"model.safetensors", "'model.embed_tokens.weight' has dtype I64"});
}

TEST_F(BadCheckpointTest, TruncatedFile) {
  expect_refused(
      [&](const std::string& dir) {
        const std::string f = dir + "/model.safetensors";
        fs::resize_file(f, fs::file_size(f) - 100);
      },
      {"model.safetensors", "run past the end", "truncated"});
}

TEST_F(BadCheckpointTest, TruncatedHeader) {
  expect_refused(
      [&](const std::string& dir) {
        const std::string f = dir + "/model.safetensors";
        fs::resize_file(f, 40);
      },
      {"model.safetensors", "truncated file"});
}

TEST_F(BadCheckpointTest, OverlappingOffsets) {
  expect_refused(
      [&](const std::string& dir) {
        std::string header =
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
        test::write_raw_safetensors(dir + "/model.safetensors", header, std::string(24, '\0'));
      },
      {"model.safetensors", "'a'", "'b'", "overlap"});
}

TEST_F(BadCheckpointTest, OffsetsPastTheEnd) {
  expect_refused(
      [&](const std::string& dir) {
        std::string header = "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,256]}}";
        test::write_raw_safetensors(dir + "/model.safetensors", header, std::string(100, '\0'));
      },
      {"model.safetensors", "'model.norm.weight'", "past the end"});
}

TEST_F(BadCheckpointTest, ByteCountDisagreesWithShape) {
  expect_refused(
      [&](const std::string& dir) {
        std::string header = "{\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[0,256]}}";
        test::write_raw_safetensors(dir + "/model.safetensors", header, std::string(256, '\0'));
      },
      {"model.safetensors", "'model.norm.weight'", "needs 128 bytes"});
}

TEST_F(BadCheckpointTest, HeaderNotJson) {
  expect_refused([&](const std::string& dir) { test::write_raw_safetensors(dir + "/model.safetensors", "{not json", ""); },
                 {"model.safetensors", "not valid JSON"});
}

TEST_F(BadCheckpointTest, ConfigWithFewerLayersThanTheTensors) {
  expect_refused(
      [&](const std::string& dir) {
        TinyArch a = a_;
        a.layers = 1;
        std::ofstream(dir + "/config.json") << test::tiny_config(a).dump();
      },
      {"model.safetensors", "unexpected tensor 'model.layers.1.", "does not match"});
}

TEST_F(BadCheckpointTest, ConfigWithAnotherWidth) {
  expect_refused(
      [&](const std::string& dir) {
        TinyArch a = a_;
        a.ffn = 128;
        std::ofstream(dir + "/config.json") << test::tiny_config(a).dump();
      },
      {"model.safetensors", "mlp.", "has shape", "config.json implies"});
}

TEST_F(BadCheckpointTest, BiasesWithoutQwen2) {
  expect_refused(
      [&](const std::string& dir) {
        TinyArch a = a_;
        a.qkv_bias = true;
        TinyWeights w = test::make_tiny_weights(a, rng_);  // a llama config with q/k/v biases in the file
        test::write_safetensors(dir + "/model.safetensors", w, test::tensor_names(w), "BF16");
      },
      {"unexpected tensor", "_proj.bias"});
}

TEST_F(BadCheckpointTest, IndexNamesMissingShardOrTensor) {
  const std::string dir = path("sharded");
  test::write_tiny_checkpoint(dir, a_, w_, "BF16", 2);
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  EXPECT_NE(error_of([&] { ckpt::open_checkpoint(dir); }).find("model-00002-of-00002.safetensors"), std::string::npos);

  test::write_tiny_checkpoint(dir, a_, w_, "BF16", 2);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir + "/model.safetensors.index.json"));
  index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  const std::string m = error_of([&] { ckpt::open_checkpoint(dir); });
  EXPECT_NE(m.find("lacks tensor 'model.layers.9.mlp.up_proj.weight'"), std::string::npos) << m;
}

TEST_F(BadCheckpointTest, UnsupportedArchitectureAndRopeScaling) {
  expect_refused(
      [&](const std::string& dir) {
        nlohmann::json c = test::tiny_config(a_);
        c["model_type"] = "gemma";
        std::ofstream(dir + "/config.json") << c.dump();
      },
      {"config.json", "model_type 'gemma'"});
  expect_refused(
      [&](const std::string& dir) {
        nlohmann::json c = test::tiny_config(a_);
        c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
        std::ofstream(dir + "/config.json") << c.dump();
      },
      {"config.json", "'llama3'", "not implemented"});
}

TEST_F(BadCheckpointTest, RopeParametersPerLayerType) {
  const std::string dir = path("nested-rope");
  test::write_tiny_checkpoint(dir, a_, w_, "BF16");
  nlohmann::json c = test::tiny_config(a_);
  c.erase("rope_theta");
  c["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 250000.0}}}};
  std::ofstream(dir + "/config.json") << c.dump();
  EXPECT_EQ(ckpt::open_checkpoint(dir).model.rope_theta, 250000.0);
  c["rope_parameters"]["full_attention"]["rope_type"] = "yarn";
  std::ofstream(dir + "/config.json") << c.dump();
  EXPECT_NE(error_of([&] { ckpt::open_checkpoint(dir); }).find("'yarn'"), std::string::npos);
}

TEST_F(BadCheckpointTest, NoWeights) {
  const std::string dir = path("config-only");
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << test::tiny_config(a_).dump();
  EXPECT_NE(error_of([&] { ckpt::open_checkpoint(dir); }).find("no model.safetensors"), std::string::npos);
}

TEST_F(BadCheckpointTest, FileChangedAfterOpenBuildsNoBackend) {
  const std::string dir = path("changing");
  test::write_tiny_checkpoint(dir, a_, w_, "BF16");
  auto c = std::make_shared<const ckpt::Checkpoint>(ckpt::open_checkpoint(dir));
  fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 8);
  BackendOptions o;
  o.max_context_tokens = 8;
  o.max_chunk_tokens = 8;
  o.checkpoint = c;
  std::unique_ptr<ComputeBackend> backend;
  const std::string m = error_of([&] { backend = make_cpu_backend(c->model, o); });
  EXPECT_NE(m.find("changed size"), std::string::npos) << m;
  EXPECT_EQ(backend, nullptr);  // nothing partial: no backend exists
}

TEST_F(BadCheckpointTest, SlidingWindowRefusedPastTheWindow) {
  const std::string dir = path("mistral");
  TinyArch a = a_;
  a.model_type = "mistral";
  test::write_tiny_checkpoint(dir, a, w_, "BF16");
  nlohmann::json c = test::tiny_config(a);
  c["sliding_window"] = 16;
  std::ofstream(dir + "/config.json") << c.dump();
  auto ck = std::make_shared<const ckpt::Checkpoint>(ckpt::open_checkpoint(dir));
  EXPECT_EQ(ck->model.sliding_window, 16);
  BackendOptions o;
  o.max_context_tokens = 32;
  o.max_chunk_tokens = 8;
  o.checkpoint = ck;
  EXPECT_NE(error_of([&] { make_cpu_backend(ck->model, o); }).find("sliding-window"), std::string::npos);
  o.max_context_tokens = 16;  // within the window: exact
  EXPECT_NO_THROW(make_cpu_backend(ck->model, o));
}

TEST(CheckpointConvert, HalfAndBf16Conversions) {
  EXPECT_EQ(ckpt::half_to_float(0x3C00), 1.0f);
  EXPECT_EQ(ckpt::half_to_float(0xC000), -2.0f);
  EXPECT_EQ(ckpt::half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(ckpt::half_to_float(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(ckpt::half_to_float(0x7C00)));
  EXPECT_TRUE(std::isnan(ckpt::half_to_float(0x7E00)));
  EXPECT_EQ(ckpt::float_to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even (1); 1 + 3 * 2^-8 rounds up to 1 + 2^-6.
  EXPECT_EQ(ckpt::float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(ckpt::float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(ckpt::bf16_to_float(ckpt::float_to_bf16(std::nanf("")))));
  // In place, F32 -> BF16, every element.
  std::vector<float> f = {1.0f, -3.5f, 1e-3f, 65504.0f, 0.0f};
  std::vector<std::byte> bytes(f.size() * 4);
  std::memcpy(bytes.data(), f.data(), bytes.size());
  ckpt::convert_to_bf16_in_place(ckpt::TensorDType::f32, bytes.data(), f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    uint16_t b;
    std::memcpy(&b, bytes.data() + 2 * i, 2);
    EXPECT_EQ(b, ckpt::float_to_bf16(f[i])) << i;
  }
  // In place, F16 -> BF16: 1.0, -2.0, 65504 (rounds to 65536 in bf16), the smallest subnormal.
  const std::vector<uint16_t> halves = {0x3C00, 0xC000, 0x7BFF, 0x0001};
  std::vector<std::byte> hb(halves.size() * 2);
  std::memcpy(hb.data(), halves.data(), hb.size());
  ckpt::convert_to_bf16_in_place(ckpt::TensorDType::f16, hb.data(), halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    uint16_t b;
    std::memcpy(&b, hb.data() + 2 * i, 2);
    EXPECT_EQ(b, ckpt::float_to_bf16(ckpt::half_to_float(halves[i]))) << i;
  }
  EXPECT_EQ(ckpt::bf16_to_float(ckpt::float_to_bf16(65504.0f)), 65536.0f);
}

}  // namespace
}  // namespace cake
