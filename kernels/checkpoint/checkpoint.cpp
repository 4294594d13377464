// open_checkpoint: config.json + safetensors headers, validated against each other.
#include "kernels/checkpoint/checkpoint.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "kernels/presets.hpp"

namespace cake::ckpt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(cat("cannot open ", path, ": ", errno_text(errno)));
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw UsageError(cat(path, ": not valid JSON: ", e.what()));
  }
}

const json* field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

bool flag(const json& j, const char* key, bool fallback, const std::string& path) {
  const json* f = field(j, key);
  if (f == nullptr) return fallback;
  if (!f->is_boolean()) throw UsageError(cat(path, ": field \"", key, "\" must be true or false, got ", f->dump()));
  return f->get<bool>();
}

// The rope type of either spelling (transformers 4: rope_scaling; 5: rope_parameters); "default" when none.
std::string rope_type(const json& j, const std::string& path) {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const json* r = field(j, key);
    if (r == nullptr) continue;
    if (!r->is_object()) throw UsageError(cat(path, ": field \"", key, "\" must be an object, got ", r->dump()));
    std::vector<const json*> levels = {r};  // and per layer type: {"full_attention": {...}}
    for (const auto& [layer_type, params] : r->items())
      if (params.is_object()) levels.push_back(&params);
    for (const json* level : levels)
      for (const char* type_key : {"rope_type", "type"}) {
        const json* t = field(*level, type_key);
        if (t != nullptr && t->is_string() && t->get<std::string>() != "default") return t->get<std::string>();
      }
  }
  return "default";
}

struct Architecture {
  ModelConfig model;
  std::string model_type;
  std::vector<std::string> honoured;
};

Architecture read_architecture(const std::string& path, const std::string& name) {
  Architecture a;
  a.model = model_from_hf_config(path);  // shapes, rope_theta, eps, max positions: validated
  a.model.name = cat("ckpt:", name);
  const json j = read_json_file(path);
  const json* type = field(j, "model_type");
  if (type == nullptr || !type->is_string())
    throw UsageError(cat(path, ": missing field \"model_type\" (llama, mistral or qwen2)"));
  a.model_type = type->get<std::string>();
  if (a.model_type != "llama" && a.model_type != "mistral" && a.model_type != "qwen2")
    throw UsageError(cat(path, ": model_type '", a.model_type,
                         "' is not supported; this build reads llama, mistral and qwen2 checkpoints"));
  for (const char* key : {"hidden_act", "hidden_activation"}) {
    const json* act = field(j, key);
    if (act != nullptr && (!act->is_string() || act->get<std::string>() != "silu"))
      throw UsageError(cat(path, ": ", key, " ", act->dump(), " is not supported (only silu, i.e. SwiGLU)"));
  }
  if (a.model_type != "qwen2" && flag(j, "attention_bias", false, path))
    throw UsageError(cat(path, ": attention_bias true is not supported for ", a.model_type, " (only Qwen2's q/k/v biases)"));
  if (flag(j, "mlp_bias", false, path)) throw UsageError(cat(path, ": mlp_bias true is not supported"));
  const std::string rope = rope_type(j, path);
  if (rope != "default")
    throw UsageError(cat(path, ": RoPE scaling of type '", rope,
                         "' is not implemented (only default RoPE); its logits would be wrong, so it is refused"));
  a.model.qkv_bias = a.model_type == "qwen2";
  a.model.tied_embeddings = flag(j, "tie_word_embeddings", false, path);

  int64_t window = 0;
  const json* sw = field(j, "sliding_window");
  bool windowed = false;
  if (a.model_type == "mistral") windowed = sw != nullptr;
  if (a.model_type == "qwen2") {
    windowed = flag(j, "use_sliding_window", false, path);
    if (const json* types = field(j, "layer_types"); types != nullptr && types->is_array())
      for (const auto& t : *types) windowed = windowed || (t.is_string() && t.get<std::string>() == "sliding_attention");
  }
  if (windowed) {
    if (sw == nullptr || !sw->is_number_integer() || sw->get<int64_t>() < 1)
      throw UsageError(cat(path, ": sliding-window attention without a positive integer \"sliding_window\""));
    window = sw->get<int64_t>();
  }
  a.model.sliding_window = window;
  a.model.validate();

  const ModelConfig& m = a.model;
  a.honoured = {cat("model_type=", a.model_type),
                cat("rope_theta=", m.rope_theta),
                cat("rms_norm_eps=", m.norm_eps),
                cat("max_position_embeddings=", m.max_context),
                cat("tie_word_embeddings=", m.tied_embeddings ? "true" : "false"),
                cat("qkv_bias=", m.qkv_bias ? "true" : "false"),
                window > 0 ? cat("sliding_window=", window, " (contexts longer than it are refused)")
                           : std::string("sliding_window=none")};
  return a;
}

struct Expected {
  Role role;
  int layer;
  std::vector<int64_t> shape;
};

std::map<std::string, Expected> expected_tensors(const ModelConfig& m) {
  const int64_t h = m.hidden, q = int64_t{m.q_heads} * m.head_dim, kv = int64_t{m.kv_heads} * m.head_dim;
  std::map<std::string, Expected> e;
  e["model.embed_tokens.weight"] = {Role::embedding, -1, {m.vocab, h}};
  e["model.norm.weight"] = {Role::final_norm, -1, {h}};
  if (!m.tied_embeddings) e["lm_head.weight"] = {Role::lm_head, -1, {m.vocab, h}};
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    e[p + "input_layernorm.weight"] = {Role::attn_norm, l, {h}};
    e[p + "self_attn.q_proj.weight"] = {Role::q, l, {q, h}};
    e[p + "self_attn.k_proj.weight"] = {Role::k, l, {kv, h}};
    e[p + "self_attn.v_proj.weight"] = {Role::v, l, {kv, h}};
    if (m.qkv_bias) {
      e[p + "self_attn.q_proj.bias"] = {Role::q_bias, l, {q}};
      e[p + "self_attn.k_proj.bias"] = {Role::k_bias, l, {kv}};
      e[p + "self_attn.v_proj.bias"] = {Role::v_bias, l, {kv}};
    }
    e[p + "self_attn.o_proj.weight"] = {Role::o, l, {h, q}};
    e[p + "post_attention_layernorm.weight"] = {Role::mlp_norm, l, {h}};
    e[p + "mlp.gate_proj.weight"] = {Role::gate, l, {m.ffn, h}};
    e[p + "mlp.up_proj.weight"] = {Role::up, l, {m.ffn, h}};
    e[p + "mlp.down_proj.weight"] = {Role::down, l, {h, m.ffn}};
  }
  return e;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? ", " : "", s[i]);
  return out + "]";
}

bool harmless_extra(const std::string& name, const ModelConfig& m) {
  if (name.size() >= 19 && name.ends_with("rotary_emb.inv_freq")) return true;  // older exports carry it
  return m.tied_embeddings && name == "lm_head.weight";  // tied: the embedding is used, as transformers does
}

// The shard names: model.safetensors, or the files of the index's weight_map (which it also checks
// against the headers below).
std::vector<std::string> shard_files(const std::string& dir, std::map<std::string, std::string>& weight_map) {
  const std::string single = cat(dir, "/model.safetensors");
  const std::string index = cat(dir, "/model.safetensors.index.json");
  if (fs::exists(single)) return {"model.safetensors"};
  if (!fs::exists(index))
    throw UsageError(cat(dir, ": no model.safetensors and no model.safetensors.index.json (a config.json alone gives "
                         "shapes: pass its path to --model to run seeded weights of that shape)"));
  const json j = read_json_file(index);
  const json* map = j.is_object() ? field(j, "weight_map") : nullptr;
  if (map == nullptr || !map->is_object()) throw UsageError(cat(index, ": missing object \"weight_map\""));
  std::set<std::string> files;
  for (const auto& [tensor, file] : map->items()) {
    if (!file.is_string()) throw UsageError(cat(index, ": tensor '", tensor, "' maps to ", file.dump(), ", not a file name"));
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      throw UsageError(cat(index, ": tensor '", tensor, "' maps to '", f, "', not a file name inside the folder"));
    weight_map[tensor] = f;
    files.insert(f);
  }
  if (files.empty()) throw UsageError(cat(index, ": empty weight_map"));
  return {files.begin(), files.end()};
}

}  // namespace

Checkpoint open_checkpoint(const std::string& dir_in) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!fs::is_directory(dir)) throw UsageError(cat("--model ", dir, ": not a directory"));
  Checkpoint c;
  std::error_code ec;
  const fs::path absolute = fs::canonical(dir, ec);
  c.dir = ec ? dir : absolute.string();  // reports record where the weights were read from
  c.name = fs::path(dir).filename().string();
  const std::string config_path = cat(dir, "/config.json");
  if (!fs::exists(config_path)) throw UsageError(cat(dir, ": no config.json"));
  Architecture arch = read_architecture(config_path, c.name);
  c.model = arch.model;
  c.model_type = arch.model_type;
  c.honoured = arch.honoured;

  std::map<std::string, std::string> weight_map;
  const std::vector<std::string> names = shard_files(dir, weight_map);
  std::map<std::string, int> where;  // tensor -> file index
  for (const std::string& f : names) {
    c.files.push_back(read_safetensors_header(cat(dir, "/", f)));
    const int index = static_cast<int>(c.files.size()) - 1;
    c.file_bytes += c.files.back().file_bytes;
    for (const auto& [tensor, entry] : c.files.back().tensors) {
      if (auto it = where.find(tensor); it != where.end())
        throw UsageError(cat("tensor '", tensor, "' is in both ", c.files[it->second].path, " and ", c.files.back().path));
      if (!weight_map.empty()) {
        auto mapped = weight_map.find(tensor);
        if (mapped == weight_map.end())
          throw UsageError(cat(c.files.back().path, ": tensor '", tensor, "' is not in model.safetensors.index.json"));
        if (mapped->second != f)
          throw UsageError(cat(c.files.back().path, ": tensor '", tensor, "' is mapped to ", mapped->second,
                               " by model.safetensors.index.json"));
      }
      where[tensor] = index;
    }
  }
  for (const auto& [tensor, f] : weight_map)
    if (!where.count(tensor))
      throw UsageError(cat(dir, "/", f, ": lacks tensor '", tensor, "' that model.safetensors.index.json maps to it"));

  const std::map<std::string, Expected> expected = expected_tensors(c.model);
  for (const auto& [tensor, e] : expected) {
    auto it = where.find(tensor);
    if (it == where.end())
      throw UsageError(cat(dir, ": missing tensor '", tensor, "' (config.json: ", c.model_type, ", ", c.model.layers,
                           " layers", c.model.tied_embeddings ? ", tied embeddings" : "", ")"));
    const SafetensorsHeader& file = c.files[it->second];
    const TensorEntry& entry = file.tensors.at(tensor);
    if (entry.shape != e.shape)
      throw UsageError(cat(file.path, ": tensor '", tensor, "' has shape ", shape_text(entry.shape),
                           " but config.json implies ", shape_text(e.shape)));
    if (entry.dtype == TensorDType::other)
      throw UsageError(cat(file.path, ": tensor '", tensor, "' has dtype ", entry.dtype_text,
                           "; weights must be F32, F16 or BF16"));
    c.slots.push_back({e.role, e.layer, it->second, entry});
  }
  for (const auto& [tensor, index] : where) {
    if (expected.count(tensor)) continue;
    if (harmless_extra(tensor, c.model)) {
      c.ignored.push_back(tensor);
      continue;
    }
    throw UsageError(cat(c.files[index].path, ": unexpected tensor '", tensor, "' (config.json: ", c.model_type, ", ",
                         c.model.layers, " layers", c.model.qkv_bias ? "" : ", no q/k/v biases",
                         "): the config does not match the weights"));
  }
  std::sort(c.slots.begin(), c.slots.end(), [](const TensorSlot& a, const TensorSlot& b) {
    return a.file != b.file ? a.file < b.file : a.entry.begin < b.entry.begin;
  });

  std::set<std::string> dtypes;
  uint64_t h = fnv1a64(read_json_file(config_path).dump());
  for (const TensorSlot& s : c.slots) {
    c.parameter_count += s.entry.elements();
    c.tensor_bytes += s.entry.bytes();
    dtypes.insert(tensor_dtype_name(s.entry.dtype));
  }
  for (const SafetensorsHeader& f : c.files) {
    h = fnv1a64(cat(f.file_bytes, ";"), h);
    for (const auto& [tensor, e] : f.tensors)
      h = fnv1a64(cat(tensor, ":", e.dtype_text, shape_text(e.shape), e.begin, "-", e.end, ";"), h);
  }
  c.header_fingerprint = hex64(h);
  for (const std::string& d : dtypes) c.dtypes += (c.dtypes.empty() ? "" : "+") + d;
  if (c.parameter_count != c.model.parameter_count())
    throw Error(cat(dir, ": internal: ", c.parameter_count, " parameters in the tensors, ", c.model.parameter_count(),
                    " from the config"));
  return c;
}

std::string describe(const Checkpoint& c) {
  return cat(c.name, " (", c.model_type, ", ", c.model.layers, " layers, ", c.parameter_count, " parameters, ",
             c.tensor_bytes, " bytes ", c.dtypes, ", ", c.files.size(), c.files.size() == 1 ? " file" : " files", ")");
}

}  // namespace cake::ckpt
