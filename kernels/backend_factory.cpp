#include "kernels/backend_factory.hpp"

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "kernels/cpu/cpu_backend.hpp"

#if defined(CAKE_HAVE_CUDA_BACKEND)
#include "kernels/cuda/cuda_backend.hpp"
#endif

namespace cake {
namespace {

// Why no GPU can be used by this binary, or "" when one can.
std::string why_no_gpu(const CudaInfo& cuda) {
#if defined(CAKE_HAVE_CUDA_BACKEND)
  if (!cuda.gpus.empty()) return "";
  return cuda.unavailable_reason.empty() ? "the CUDA runtime lists no GPU" : cuda.unavailable_reason;
#else
  (void)cuda;
  return "this binary was built without the CUDA backend (nvcc not found, or CAKE_ENABLE_CUDA=OFF)";
#endif
}

}  // namespace

BackendKind parse_backend_kind(std::string_view text) {
  if (text == "auto") return BackendKind::auto_select;
  if (text == "cpu") return BackendKind::cpu;
  if (text == "cuda") return BackendKind::cuda;
  throw UsageError(cat("unknown backend '", text, "'; choose auto, cpu or cuda"));
}

const char* backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::auto_select: return "auto";
    case BackendKind::cpu: return "cpu";
    case BackendKind::cuda: return "cuda";
  }
  return "unknown";
}

AttentionChoice parse_attention_choice(std::string_view text) {
  if (text == "auto") return AttentionChoice::auto_select;
  if (text == "cudnn") return AttentionChoice::cudnn;
  if (text == "mma") return AttentionChoice::mma;
  throw UsageError(cat("unknown attention '", text, "'; choose auto, cudnn or mma"));
}

const char* attention_choice_name(AttentionChoice choice) {
  switch (choice) {
    case AttentionChoice::auto_select: return "auto";
    case AttentionChoice::cudnn: return "cudnn";
    case AttentionChoice::mma: return "mma";
  }
  return "unknown";
}

BackendChoice make_backend(BackendKind kind, const ModelConfig& model, const BackendOptions& options) {
  if (kind == BackendKind::cpu) return {make_cpu_backend(model, options), "the CPU backend, as asked"};

  const CudaInfo cuda = probe_cuda();
  const std::string no_gpu = why_no_gpu(cuda);
  if (!no_gpu.empty()) {
    if (kind == BackendKind::cuda)
      throw EnvironmentError(cat("the CUDA backend was asked for but cannot be used: ", no_gpu));
    return {make_cpu_backend(model, options), cat("no GPU: ", no_gpu, "; using the CPU backend")};
  }
#if defined(CAKE_HAVE_CUDA_BACKEND)
  if (options.device < 0 || options.device >= static_cast<int>(cuda.gpus.size()))
    throw UsageError(cat("GPU index ", options.device, " does not exist; this machine has ", cuda.gpus.size(),
                         " GPU(s)"));
  const GpuInfo& gpu = cuda.gpus[static_cast<size_t>(options.device)];
  std::unique_ptr<ComputeBackend> backend = make_cuda_backend(model, options);
  const std::string details = backend->details();
  return {std::move(backend), cat("the CUDA backend on GPU ", gpu.index, " (", gpu.name, "), ",
                                  kind == BackendKind::cuda ? "as asked" : "a GPU is present",
                                  details.empty() ? "" : "; ", details)};
#else
  throw InternalError("internal: a GPU was reported usable in a build without the CUDA backend");
#endif
}

}  // namespace cake
