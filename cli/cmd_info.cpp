// `cake-bench info`: the GPUs, CPU, memory, io_uring and the store directory's storage.
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/run_flags.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "common/sysinfo.hpp"
#include "common/units.hpp"

namespace cake {
namespace {

void print_human(const SystemInfo& s, const StorageInfo& st) {
  std::printf("cake-bench %s (commit %s)\n", s.cake_bench_version.c_str(), s.commit.c_str());
  std::printf("host        %s\n", s.hostname.c_str());
  std::printf("os          %s\n", s.os.c_str());
  std::printf("kernel      %s\n", s.kernel.c_str());
  std::printf("cpu         %s, %d logical cores\n", s.cpu_model.c_str(), s.cpu_logical_cores);
  std::printf("memory      %s\n", format_bytes(s.memory_bytes).c_str());
  std::printf("io_uring    %s\n", s.io_uring ? "available" : "NOT available (file loads cannot run)");
  std::printf("cuda        %s\n", s.cuda.built_with_cuda ? "backend built in" : "backend not built");
  if (!s.cuda.driver_version.empty()) std::printf("  driver    CUDA %s\n", s.cuda.driver_version.c_str());
  if (!s.cuda.runtime_version.empty()) std::printf("  runtime   CUDA %s\n", s.cuda.runtime_version.c_str());
  if (!s.cuda.cublas_version.empty()) std::printf("  cuBLAS    %s\n", s.cuda.cublas_version.c_str());
  for (const auto& g : s.cuda.gpus)
    std::printf("  gpu %d     %s, %s, %d SMs, compute capability %d.%d, L2 %s\n", g.index, g.name.c_str(),
                format_bytes(g.memory_bytes).c_str(), g.sm_count, g.compute_capability_major,
                g.compute_capability_minor, format_bytes(g.l2_bytes).c_str());
  if (s.cuda.gpus.empty())
    std::printf("  gpu       none: %s; the CPU backend will be used\n", s.cuda.unavailable_reason.c_str());
  std::printf("tp          %s\n", tensor_parallel_support().c_str());
  std::printf("store dir   %s\n", st.path.c_str());
  std::printf("  fs        %s, %s free of %s\n", st.filesystem.c_str(), format_bytes(st.free_bytes).c_str(),
              format_bytes(st.total_bytes).c_str());
  std::printf("  O_DIRECT  %s%s%s\n", st.o_direct ? "yes" : "no", st.o_direct ? "" : ": ", st.o_direct_detail.c_str());
}

// --model: what would run. For a folder, the checkpoint as its headers describe it (nothing is
// loaded: the content fingerprint is computed by a run, which reads every byte).
nlohmann::json model_json(const std::string& text) {
  std::shared_ptr<const ckpt::Checkpoint> c;
  const ModelConfig m = resolve_model(text, &c);
  nlohmann::json j = {{"name", m.name}, {"layers", m.layers}, {"hidden", m.hidden}, {"q_heads", m.q_heads},
                      {"kv_heads", m.kv_heads}, {"head_dim", m.head_dim}, {"ffn", m.ffn}, {"vocab", m.vocab},
                      {"rope_theta", m.rope_theta}, {"norm_eps", m.norm_eps}, {"max_context", m.max_context},
                      {"qkv_bias", m.qkv_bias}, {"tied_embeddings", m.tied_embeddings},
                      {"sliding_window", m.sliding_window}, {"parameters", m.parameter_count()}};
  if (c) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : c->files) files.push_back({{"path", f.path}, {"bytes", f.file_bytes}, {"tensors", f.tensors.size()}});
    j["checkpoint"] = {{"path", c->dir}, {"name", c->name}, {"model_type", c->model_type},
                       {"parameters", c->parameter_count}, {"bytes", c->tensor_bytes}, {"dtypes", c->dtypes},
                       {"files", files}, {"ignored_tensors", c->ignored}, {"honoured", c->honoured},
                       {"header_fingerprint", c->header_fingerprint}};
  }
  return j;
}

void print_model(const nlohmann::json& j) {
  std::printf("model       %s: %d layers, hidden %d, %d q / %d kv heads of %d, ffn %d, vocab %d, %llu parameters\n",
              j["name"].get<std::string>().c_str(), j["layers"].get<int>(), j["hidden"].get<int>(),
              j["q_heads"].get<int>(), j["kv_heads"].get<int>(), j["head_dim"].get<int>(), j["ffn"].get<int>(),
              j["vocab"].get<int>(), static_cast<unsigned long long>(j["parameters"].get<uint64_t>()));
  if (!j.contains("checkpoint")) {
    std::printf("  weights   seeded random\n");
    return;
  }
  const auto& c = j["checkpoint"];
  std::printf("checkpoint  %s (%s), %llu parameters, %s (%llu bytes) %s in %zu file(s)\n",
              c["name"].get<std::string>().c_str(), c["model_type"].get<std::string>().c_str(),
              static_cast<unsigned long long>(c["parameters"].get<uint64_t>()),
              format_bytes(c["bytes"].get<uint64_t>()).c_str(), static_cast<unsigned long long>(c["bytes"].get<uint64_t>()),
              c["dtypes"].get<std::string>().c_str(), c["files"].size());
  std::string honoured;
  for (const auto& h : c["honoured"]) honoured += (honoured.empty() ? "" : ", ") + h.get<std::string>();
  std::printf("  honoured  %s\n", honoured.c_str());
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("info", "Show GPUs, CPU, memory, io_uring and the store directory's storage");
  auto store_dir = std::make_shared<std::string>("./cake-store");
  auto json = std::make_shared<bool>(false);
  auto model = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "Also describe this model: preset, config.json or model folder (checkpoint)");
  cmd->add_option("--store", *store_dir, "Store directory to probe (created if missing)")->capture_default_str();
  cmd->add_flag("--json", *json, "Print one JSON object instead of text");
  cmd->callback([store_dir, json, model, &exit_code] {
    const SystemInfo system = probe_system();
    const StorageInfo storage = probe_storage(*store_dir);
    const nlohmann::json model_info = model->empty() ? nlohmann::json() : model_json(*model);
    if (*json) {
      nlohmann::json j = to_json(system);
      j["store"] = to_json(storage);
      if (!model->empty()) j["model"] = model_info;
      std::cout << j.dump(2) << "\n";
    } else {
      print_human(system, storage);
      if (!model->empty()) print_model(model_info);
    }
    exit_code = kExitOk;
  });
}

}  // namespace cake
