// Picks and builds a compute backend: CUDA when asked for or when a GPU is there, else the CPU
// reference, always saying why.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kernels/compute_backend.hpp"

namespace cake {

enum class BackendKind { auto_select, cpu, cuda };

// "auto", "cpu", "cuda"; throws UsageError listing them otherwise.
BackendKind parse_backend_kind(std::string_view text);
const char* backend_kind_name(BackendKind kind);

// "auto", "cudnn", "mma"; throws UsageError listing them otherwise.
AttentionChoice parse_attention_choice(std::string_view text);
const char* attention_choice_name(AttentionChoice choice);

struct BackendChoice {
  std::unique_ptr<ComputeBackend> backend;
  std::string reason;  // one line for the user: which backend and why
};

// auto: CUDA when this binary has the CUDA backend and a GPU is present, else CPU with the
// reason ("no GPU: <reason>; using the CPU backend"). cuda: throws EnvironmentError when the
// binary lacks the CUDA backend or no GPU is usable. cpu: always the CPU backend.
BackendChoice make_backend(BackendKind kind, const ModelConfig& model, const BackendOptions& options);

// One line for `info`: whether --tp can run here (the NCCL it would load), or why not.
std::string tensor_parallel_support();

}  // namespace cake
