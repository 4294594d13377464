#include "kernels/backend_factory.hpp"

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "kernels/cpu/cpu_backend.hpp"

#if defined(CAKE_HAVE_CUDA_BACKEND)
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/tp_backend.hpp"
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

std::string tensor_parallel_support() {
#if defined(CAKE_HAVE_CUDA_BACKEND)
  try {
    return cat("NCCL ", nccl_library_version(), "; --tp N runs one thread per GPU");
  } catch (const Error& e) {
    return cat("not available: ", e.what());
  }
#else
  return "not available: this binary was built without the CUDA backend";
#endif
}

BackendChoice make_backend(BackendKind kind, const ModelConfig& model, const BackendOptions& options) {
  if (options.tp < 1) throw UsageError(cat("--tp must be at least 1, got ", options.tp));
  if (options.tp > 1 || options.tp_rank >= 0) {
    // Tensor parallelism is a CUDA backend feature (NCCL all-reduces between GPUs).
    if (kind == BackendKind::cpu) throw UsageError("--tp runs on the CUDA backend only (the CPU backend has one rank)");
    const CudaInfo cuda = probe_cuda();
    const std::string no_gpu = why_no_gpu(cuda);
    if (!no_gpu.empty()) throw EnvironmentError(cat("--tp ", options.tp, " needs GPUs: ", no_gpu));
#if defined(CAKE_HAVE_CUDA_BACKEND)
    const int gpus = static_cast<int>(cuda.gpus.size());
    if (options.tp_rank >= 0) {
      if (options.tp_rank >= options.tp) throw UsageError(cat("--tp-rank ", options.tp_rank, " must be below --tp ", options.tp));
      if (options.tp_id_file.empty()) throw UsageError("--tp-rank needs --tp-id-file (where rank 0 writes the NCCL unique id)");
      BackendOptions o = options;
      o.device = options.tp_rank % gpus;
      std::unique_ptr<ComputeBackend> backend =
          make_cuda_tp_rank_process_backend(model, o, options.tp, options.tp_rank, options.tp_id_file, options.tp_id_timeout_s);
      const std::string details = backend->details();
      return {std::move(backend), cat("the CUDA backend on GPU ", o.device, " (", cuda.gpus[o.device].name, "); ", details)};
    }
    if (options.tp > gpus) throw EnvironmentError(cat("--tp ", options.tp, " needs ", options.tp, " GPUs; this machine has ", gpus));
    std::vector<int> devices;
    for (int d = 0; d < options.tp; ++d) devices.push_back(d);
    std::unique_ptr<ComputeBackend> backend = make_cuda_tp_backend(model, options, devices);
    const std::string details = backend->details();
    return {std::move(backend), cat("the CUDA backend on ", options.tp, " GPUs (", cuda.gpus[0].name, "); ", details)};
#else
    throw InternalError("internal: a GPU was reported usable in a build without the CUDA backend");
#endif
  }

  // Asked for by name, the CPU backend is used on a machine with GPUs too (before round 4 a GPU
  // present won over --backend cpu, while the run's defaults were a CPU run's).
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
