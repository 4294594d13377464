// `cake-bench logits`: one forward pass over given token ids, printing (and with --out, writing as
// JSON) the last position's logits and the KV cache rows of a token range. It is how the backends
// are held against another implementation (scripts/check_vs_transformers.py) and how a user sees
// what their checkpoint answers: prefill the prefix in chunks of --chunk (0: one call), then the
// last token as the suffix.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <climits>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/progress.hpp"
#include "cli/run_flags.hpp"
#include "common/error.hpp"
#include "common/text_file.hpp"
#include "results/format.hpp"
#include "engine/kv_snapshot.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "loaders/kv_codec.hpp"

namespace cake {
namespace {

std::vector<int32_t> parse_tokens(const std::string& text, const std::string& origin) {
  std::vector<int32_t> out;
  std::string item;
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    std::replace(word.begin(), word.end(), ',', ' ');
    std::istringstream parts(word);
    for (std::string p; parts >> p;) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(p, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != p.size() || v < 0 || v > INT32_MAX)
        throw UsageError(cat(origin, ": '", p, "' is not a token id (a non-negative integer)"));
      out.push_back(static_cast<int32_t>(v));
    }
  }
  return out;
}

}  // namespace

void add_logits_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "logits", "Run token ids through the model: print the first token and top logits, write logits and KV rows as JSON");
  struct Flags {
    std::string model;
    std::string backend = "auto";
    std::string tokens;
    std::string tokens_file;
    int64_t chunk = 0;
    int64_t kv_from = 0;
    int64_t kv_to = -1;
    int cpu_threads = 0;
    std::string out;
    bool quiet = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Model folder (checkpoint), config.json or preset")->required();
  cmd->add_option("--backend", f->backend, "auto, cuda or cpu")->capture_default_str();
  cmd->add_option("--tokens", f->tokens, "Token ids, comma or space separated (at least 2)");
  cmd->add_option("--tokens-file", f->tokens_file, "File of token ids, comma or space separated");
  cmd->add_option("--chunk", f->chunk, "Prefill the prefix in chunks of this many tokens (0: one call)")
      ->capture_default_str();
  cmd->add_option("--kv-from", f->kv_from, "First token whose KV rows are written")->capture_default_str();
  cmd->add_option("--kv-to", f->kv_to, "One past the last such token [default: the first chunk's end]");
  cmd->add_option("--cpu-threads", f->cpu_threads, "CPU backend threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--out", f->out, "Write logits, KV rows and what produced them to this JSON file");
  cmd->add_flag("-q,--quiet", f->quiet, "No load progress");
  cmd->callback([f, &exit_code] {
    if (f->tokens.empty() == f->tokens_file.empty()) throw UsageError("give exactly one of --tokens and --tokens-file");
    const std::vector<int32_t> tokens =
        f->tokens.empty() ? parse_tokens(read_text_file(f->tokens_file), f->tokens_file) : parse_tokens(f->tokens, "--tokens");
    if (tokens.size() < 2) throw UsageError("logits needs at least 2 tokens (a prefix and the last token)");
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t prefix = n - 1;
    if (f->chunk < 0) throw UsageError("--chunk must be >= 0");
    const int64_t chunk = f->chunk == 0 ? prefix : std::min(f->chunk, prefix);
    const int64_t kv_to = f->kv_to < 0 ? std::min(chunk, n) : f->kv_to;
    if (f->kv_from < 0 || f->kv_from >= kv_to || kv_to > n)
      throw UsageError(cat("--kv-from/--kv-to must give a non-empty range inside [0, ", n, "]"));

    std::shared_ptr<const ckpt::Checkpoint> checkpoint;
    const ModelConfig model = resolve_model(f->model, &checkpoint);
    for (int32_t t : tokens)
      if (t >= model.vocab) throw UsageError(cat("token ", t, " is outside the vocabulary of ", model.vocab));
    BackendOptions o;
    o.max_context_tokens = n;
    o.max_chunk_tokens = chunk;
    o.cpu_threads = f->cpu_threads;
    o.checkpoint = checkpoint;
    LoadProgressBar bar(checkpoint ? checkpoint->name : model.name, f->quiet || !checkpoint);
    o.load_progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
    BackendChoice choice = make_backend(parse_backend_kind(f->backend), model, o);
    bar.finish();
    ComputeBackend& backend = *choice.backend;
    std::fprintf(stderr, "backend: %s\nweights: %s\n", choice.reason.c_str(), backend.weights_note().c_str());

    backend.poison_kv_cache();
    for (int64_t at = 0; at < prefix; at += chunk) {
      const int64_t len = std::min(chunk, prefix - at);
      backend.prefill_chunk(std::span<const int32_t>(tokens.data() + at, static_cast<size_t>(len)), at);
    }
    backend.synchronize();
    const FirstToken first = backend.first_token(std::span<const int32_t>(tokens.data() + prefix, 1), prefix);

    std::vector<int> order(first.logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    const size_t top = std::min<size_t>(5, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(top), order.end(),
                      [&](int a, int b) { return first.logits[a] > first.logits[b]; });
    std::printf("model %s, backend %s, %lld tokens, chunk %lld: first token %d\ntop logits:", model.name.c_str(),
                backend.name().c_str(), static_cast<long long>(n), static_cast<long long>(chunk), first.token_id);
    for (size_t i = 0; i < top; ++i) std::printf(" %d:%.5f", order[i], first.logits[order[i]]);
    std::printf("\n");

    if (!f->out.empty()) {
      const KvCacheView view = backend.kv_cache();
      const int64_t rows = kv_to - f->kv_from;
      std::vector<std::byte> payload(view.chunk_bytes(rows));
      copy_chunk_out(view, f->kv_from, rows, payload);
      const size_t per_segment = static_cast<size_t>(rows) * view.kv_heads * view.head_dim;
      nlohmann::json k = nlohmann::json::array(), v = nlohmann::json::array();
      for (int s = 0; s < 2 * view.layers; ++s) {
        std::vector<float> values(per_segment);
        const std::byte* base = payload.data() + static_cast<size_t>(s) * view.segment_bytes(rows);
        for (size_t i = 0; i < per_segment; ++i) values[i] = load_kv_value(base, view.dtype, i);
        (s % 2 == 0 ? k : v).push_back(values);
      }
      nlohmann::json out = {{"model", model.name},
                            {"backend", backend.name()},
                            {"weights", backend.weights_note()},
                            {"weights_fingerprint", backend.model().weights_fingerprint},
                            {"checkpoint", checkpoint ? checkpoint->dir : ""},
                            {"tokens", tokens},
                            {"chunk_tokens", chunk},
                            {"first_token", first.token_id},
                            {"logits", first.logits},
                            {"kv", {{"from", f->kv_from}, {"to", kv_to}, {"dtype", dtype_name(view.dtype)},
                                    {"layers", view.layers}, {"kv_heads", view.kv_heads}, {"head_dim", view.head_dim},
                                    {"layout", "k[layer] and v[layer]: [token][kv_head][head_dim] row-major, K after RoPE"},
                                    {"k", k}, {"v", v}}}};
      write_text_file(f->out, out.dump() + "\n");
      std::printf("wrote %s\n", f->out.c_str());
    }
    exit_code = kExitOk;
  });
}

}  // namespace cake
