// Named model shapes (real models and tiny test models), command-line overrides of single
// fields, and shapes read from a HuggingFace config.json. Weights are always seeded random
// (kernels/seeded_weights.hpp): only the shapes are real.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kernels/model_config.hpp"

namespace cake {

// The preset called `name`, validated. Throws UsageError listing the known names.
ModelConfig preset_model(std::string_view name);

// Every preset name, in a stable order.
std::vector<std::string> preset_names();

// Sets one field from text ("layers", "8"): layers, hidden, q_heads, kv_heads, head_dim, ffn,
// vocab, rope_theta, norm_eps, max_context, seed. Integers and doubles are parsed strictly (the
// whole text, no units, in range); the result is validated. The name gains "+field=value"
// ("llama-3-8b+layers=8"). Throws UsageError on an unknown field, a bad value or an invalid
// resulting shape; `model` is unchanged when it throws.
void apply_model_override(ModelConfig& model, std::string_view field, std::string_view value);

// Shapes from a HuggingFace config.json: hidden_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads (default: num_attention_heads), head_dim (default hidden / heads),
// intermediate_size, vocab_size, rope_theta (default 10000; or rope_parameters.rope_theta as
// transformers 5 writes it), rms_norm_eps,
// max_position_embeddings. rope_scaling and attention/QKV biases are not modelled (they do not
// change the cost of a prefill). The name is "hf:<path>". Throws UsageError naming the file and
// the missing or malformed field.
ModelConfig model_from_hf_config(const std::string& path);

}  // namespace cake
