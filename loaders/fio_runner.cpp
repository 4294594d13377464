#include "loaders/fio_runner.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/fd.hpp"

extern char** environ;

namespace cake {
namespace {

// Runs argv, returns its exit status and everything it wrote to stdout and stderr.
struct ProcessResult {
  int status = -1;
  std::string output;
};

ProcessResult run_process(const std::vector<std::string>& args) {
  int fds[2];
  check_sys(::pipe2(fds, O_CLOEXEC), "creating a pipe for fio's output");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  posix_spawn_file_actions_t actions;
  check_neg_errno(-posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init");
  struct ActionsGuard {
    posix_spawn_file_actions_t* a;
    ~ActionsGuard() { posix_spawn_file_actions_destroy(a); }
  } guard{&actions};
  check_neg_errno(-posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO), "redirecting fio's stdout");
  check_neg_errno(-posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO), "redirecting fio's stderr");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  check_neg_errno(-posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), cat("starting ", args[0]));
  write_end.reset();
  ProcessResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(cat("reading the output of ", args[0], ": ", errno_text(errno)));
    if (n == 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(cat("waiting for ", args[0], ": ", errno_text(errno)));
  }
  result.status = status;
  return result;
}

std::string last_lines(const std::string& text, size_t max_chars) {
  return text.size() <= max_chars ? text : text.substr(text.size() - max_chars);
}

}  // namespace

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = cat(dir, "/", program);
    struct stat st{};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

FioResult parse_fio_read_json(const std::string& json_text) {
  // fio may print notes before the JSON object.
  const size_t start = json_text.find('{');
  if (start == std::string::npos) throw Error("fio output holds no JSON object");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text.substr(start));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("fio output is not valid JSON: ", e.what()));
  }
  if (!j.contains("jobs") || !j["jobs"].is_array() || j["jobs"].empty()) throw Error("fio JSON has no jobs");
  const auto& job = j["jobs"][0];
  if (job.contains("error") && job["error"].is_number() && job["error"].get<int>() != 0)
    throw Error(cat("fio job failed with error ", job["error"].get<int>(), " (", errno_text(job["error"].get<int>()), ")"));
  if (!job.contains("read") || !job["read"].contains("bw_bytes") || !job["read"].contains("io_bytes") ||
      !job["read"].contains("runtime"))
    throw Error("fio JSON job has no read bw_bytes / io_bytes / runtime");
  FioResult r;
  r.io_bytes = job["read"]["io_bytes"].get<uint64_t>();
  r.runtime_s = job["read"]["runtime"].get<double>() / 1e3;  // fio reports ms
  // bw_bytes is rounded to whole bytes/s over whole ms; recompute from the totals when possible.
  r.bytes_per_sec = r.runtime_s > 0 ? static_cast<double>(r.io_bytes) / r.runtime_s : job["read"]["bw_bytes"].get<double>();
  if (!(*r.bytes_per_sec > 0)) throw Error("fio read bandwidth is zero");
  return r;
}

const char* fio_engine_name(FioEngine engine) {
  switch (engine) {
    case FioEngine::io_uring: return "io_uring";
    case FioEngine::io_uring_registered: return "io_uring registered";
    case FioEngine::pvsync2: return "pvsync2";
  }
  return "?";
}

FioResult run_fio_read(const std::string& path, uint64_t block_bytes, int iodepth, int jobs, FioEngine engine) {
  FioResult result;
  result.jobs = jobs;
  result.engine = engine;
  result.iodepth = engine == FioEngine::pvsync2 ? 1 : iodepth;
  if (jobs < 1 || block_bytes == 0 || iodepth < 1)
    throw UsageError(cat("fio: ", jobs, " jobs of ", block_bytes, "-byte blocks at queue depth ", iodepth));
  const std::string fio = find_on_path("fio");
  if (fio.empty()) {
    result.note = "fio not found on PATH";
    return result;
  }
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (ec) {
    result.note = cat("cannot size ", path, ": ", ec.message());
    return result;
  }
  // One job reads the whole file; several read whole blocks each of their consecutive shares.
  const uint64_t share = jobs == 1 ? file_bytes : file_bytes / static_cast<uint64_t>(jobs) / block_bytes * block_bytes;
  if (share == 0) {
    result.note = cat(path, " (", file_bytes, " bytes) is too small for ", jobs, " fio jobs of ", block_bytes, "-byte blocks");
    return result;
  }
  const std::string json_path = cat(std::filesystem::temp_directory_path().string(), "/cake-fio-", ::getpid(), ".json");
  std::vector<std::string> args = {fio,
                                   "--name=cake-calibrate",
                                   cat("--filename=", path),
                                   "--readonly",
                                   "--rw=read",
                                   engine == FioEngine::pvsync2 ? "--ioengine=pvsync2" : "--ioengine=io_uring",
                                   "--direct=1",
                                   cat("--bs=", block_bytes),
                                   cat("--iodepth=", result.iodepth),
                                   cat("--size=", share),
                                   cat("--numjobs=", jobs)};
  if (engine == FioEngine::io_uring_registered) {
    args.push_back("--fixedbufs");
    args.push_back("--registerfiles");
  }
  if (jobs > 1) {
    args.push_back(cat("--offset_increment=", share));
    args.push_back("--group_reporting");
  }
  for (const char* a : {"--thread", "--output-format=json"}) args.emplace_back(a);
  args.push_back(cat("--output=", json_path));
  for (const auto& a : args) result.command += cat(result.command.empty() ? "" : " ", a);
  try {
    const ProcessResult p = run_process(args);
    std::ifstream in(json_path);
    std::stringstream json;
    json << in.rdbuf();
    ::unlink(json_path.c_str());
    if (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
      result.note = cat("fio failed (", WIFEXITED(p.status) ? cat("exit ", WEXITSTATUS(p.status)) : std::string("killed"),
                        "): ", last_lines(p.output, 400));
      return result;
    }
    FioResult parsed = parse_fio_read_json(json.str());
    parsed.command = result.command;
    parsed.jobs = jobs;
    parsed.engine = engine;
    parsed.iodepth = result.iodepth;
    return parsed;
  } catch (const Error& e) {
    ::unlink(json_path.c_str());
    result.note = e.what();
    return result;
  }
}

}  // namespace cake
