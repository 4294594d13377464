#include "kernels/presets.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace cake {
namespace {

struct Preset {
  const char* name;
  int layers, hidden, q_heads, kv_heads, head_dim, ffn, vocab;
  double rope_theta, norm_eps;
  int64_t max_context;
};

// Shapes as published in each model's config.json; weights are seeded random regardless.
constexpr Preset kPresets[] = {
    {"llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, 500000.0, 1e-5, 131072},
    {"llama-3.1-70b", 80, 8192, 64, 8, 128, 28672, 128256, 500000.0, 1e-5, 131072},
    // Mistral 7B v0.1 (sliding window 4096 in the original is not modelled: attention is full).
    {"mistral-7b", 32, 4096, 32, 8, 128, 14336, 32000, 10000.0, 1e-5, 32768},
    // Qwen2.5 7B. Its Q/K/V projections carry biases; they are NOT modelled (a bias add is
    // negligible next to the GEMMs, so prefill cost is unchanged).
    {"qwen2.5-7b", 28, 3584, 28, 4, 128, 18944, 152064, 1000000.0, 1e-6, 131072},
    // Small models for tests and the CPU backend: GQA (4 q heads per kv head) and plain MHA.
    {"tiny", 4, 256, 8, 2, 32, 768, 4096, 10000.0, 1e-5, 32768},
    {"tiny-mha", 2, 128, 4, 4, 32, 384, 1024, 10000.0, 1e-5, 32768},
};

ModelConfig from_preset(const Preset& p) {
  ModelConfig m;
  m.name = p.name;
  m.layers = p.layers;
  m.hidden = p.hidden;
  m.q_heads = p.q_heads;
  m.kv_heads = p.kv_heads;
  m.head_dim = p.head_dim;
  m.ffn = p.ffn;
  m.vocab = p.vocab;
  m.rope_theta = p.rope_theta;
  m.norm_eps = p.norm_eps;
  m.max_context = p.max_context;
  return m;
}

std::string joined_names() {
  std::string out;
  for (const auto& p : kPresets) out += (out.empty() ? "" : ", ") + std::string(p.name);
  return out;
}

// The whole text must be the number: no spaces, units, trailing junk; in range of T.
template <typename T>
T parse_integer(std::string_view field, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range)
    throw UsageError(cat("model override ", field, "=", text, ": out of range"));
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw UsageError(cat("model override ", field, "=", text, ": not an integer"));
  return value;
}

double parse_double(std::string_view field, std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(value))
    throw UsageError(cat("model override ", field, "=", text, ": not a finite number"));
  return value;
}

// --- config.json -----------------------------------------------------------------------

const nlohmann::json* find_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  // HF writes absent optional fields as null ("head_dim": null).
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::json& require_field(const nlohmann::json& j, const char* key, const std::string& path) {
  const nlohmann::json* f = find_field(j, key);
  if (f == nullptr) throw UsageError(cat(path, ": missing field \"", key, "\""));
  return *f;
}

int as_int(const nlohmann::json& v, const char* key, const std::string& path) {
  if (!v.is_number_integer()) throw UsageError(cat(path, ": field \"", key, "\" must be an integer, got ", v.dump()));
  const int64_t x = v.get<int64_t>();
  if (x < 1 || x > std::numeric_limits<int>::max())
    throw UsageError(cat(path, ": field \"", key, "\" = ", x, " is out of range"));
  return static_cast<int>(x);
}

double as_double(const nlohmann::json& v, const char* key, const std::string& path) {
  if (!v.is_number()) throw UsageError(cat(path, ": field \"", key, "\" must be a number, got ", v.dump()));
  return v.get<double>();
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  return names;
}

ModelConfig preset_model(std::string_view name) {
  for (const auto& p : kPresets) {
    if (name == p.name) {
      ModelConfig m = from_preset(p);
      m.validate();
      return m;
    }
  }
  throw UsageError(cat("unknown model '", name, "'; known models: ", joined_names()));
}

void apply_model_override(ModelConfig& model, std::string_view field, std::string_view value) {
  ModelConfig m = model;
  if (field == "layers") m.layers = parse_integer<int>(field, value);
  else if (field == "hidden") m.hidden = parse_integer<int>(field, value);
  else if (field == "q_heads") m.q_heads = parse_integer<int>(field, value);
  else if (field == "kv_heads") m.kv_heads = parse_integer<int>(field, value);
  else if (field == "head_dim") m.head_dim = parse_integer<int>(field, value);
  else if (field == "ffn") m.ffn = parse_integer<int>(field, value);
  else if (field == "vocab") m.vocab = parse_integer<int>(field, value);
  else if (field == "rope_theta") m.rope_theta = parse_double(field, value);
  else if (field == "norm_eps") m.norm_eps = parse_double(field, value);
  else if (field == "max_context") m.max_context = parse_integer<int64_t>(field, value);
  else if (field == "seed") m.weight_seed = parse_integer<uint64_t>(field, value);
  else
    throw UsageError(cat("unknown model field '", field,
                         "'; known fields: layers, hidden, q_heads, kv_heads, head_dim, ffn, vocab, rope_theta, "
                         "norm_eps, max_context, seed"));
  m.name = cat(model.name, "+", field, "=", value);
  m.validate();
  model = std::move(m);
}

ModelConfig model_from_hf_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(cat("cannot open model config ", path, ": ", errno_text(errno)));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UsageError(cat("reading model config ", path, ": ", errno_text(errno)));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(cat(path, ": not valid JSON: ", e.what()));
  }
  if (!j.is_object()) throw UsageError(cat(path, ": expected a JSON object"));

  ModelConfig m;
  m.name = cat("hf:", path);
  m.hidden = as_int(require_field(j, "hidden_size", path), "hidden_size", path);
  m.layers = as_int(require_field(j, "num_hidden_layers", path), "num_hidden_layers", path);
  m.q_heads = as_int(require_field(j, "num_attention_heads", path), "num_attention_heads", path);
  const nlohmann::json* kv = find_field(j, "num_key_value_heads");
  m.kv_heads = kv ? as_int(*kv, "num_key_value_heads", path) : m.q_heads;
  const nlohmann::json* hd = find_field(j, "head_dim");
  if (hd) {
    m.head_dim = as_int(*hd, "head_dim", path);
  } else {
    if (m.hidden % m.q_heads != 0)
      throw UsageError(cat(path, ": no \"head_dim\" and hidden_size ", m.hidden, " is not a multiple of ",
                           "num_attention_heads ", m.q_heads));
    m.head_dim = m.hidden / m.q_heads;
  }
  m.ffn = as_int(require_field(j, "intermediate_size", path), "intermediate_size", path);
  m.vocab = as_int(require_field(j, "vocab_size", path), "vocab_size", path);
  // transformers 4 writes rope_theta at the top; transformers 5 moves it into rope_parameters.
  const nlohmann::json* theta = find_field(j, "rope_theta");
  const nlohmann::json* rope_parameters = find_field(j, "rope_parameters");
  if (theta == nullptr && rope_parameters != nullptr && rope_parameters->is_object()) {
    theta = find_field(*rope_parameters, "rope_theta");
    // Per layer type ({"full_attention": {"rope_theta": ...}, ...}): one theta for all, or refused.
    for (const auto& [layer_type, params] : rope_parameters->items()) {
      if (!params.is_object()) continue;
      const nlohmann::json* t = find_field(params, "rope_theta");
      if (t == nullptr) continue;
      if (theta != nullptr && *theta != *t)
        throw UsageError(cat(path, ": rope_parameters give different rope_theta per layer type (", layer_type,
                             "); one RoPE for all layers is supported"));
      theta = t;
    }
  }
  m.rope_theta = theta ? as_double(*theta, "rope_theta", path) : 10000.0;
  m.norm_eps = as_double(require_field(j, "rms_norm_eps", path), "rms_norm_eps", path);
  m.max_context = as_int(require_field(j, "max_position_embeddings", path), "max_position_embeddings", path);
  try {
    m.validate();
  } catch (const UsageError& e) {
    throw UsageError(cat(path, ": ", e.what()));
  }
  return m;
}

}  // namespace cake
