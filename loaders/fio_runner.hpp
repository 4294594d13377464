// fio as the reference for the file source: the same file and block size, O_DIRECT, through the
// fio engine and options that read it fastest, so a loader number can be held against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cake {

// How fio reads. Which is fastest depends on the machine: on the 2-core dev box's tmpfs, with two
// jobs, io_uring at queue depth 16 read 51-70 Gbps, with registered buffers and file 58-79, and the
// synchronous pvsync2 63-83, fastest in all 14 calls (results/loaders/round7-devbox-fio/); so
// calibrate runs them all.
enum class FioEngine {
  io_uring,             // --ioengine=io_uring --iodepth=Q: the queue depth matched to the loader's
  io_uring_registered,  // the same with --fixedbufs --registerfiles (buffers and file registered once)
  pvsync2,              // --ioengine=pvsync2: one synchronous preadv2 at a time a job (queue depth 1)
};
inline constexpr FioEngine kFioEngines[] = {FioEngine::io_uring, FioEngine::io_uring_registered, FioEngine::pvsync2};

// "io_uring", "io_uring registered", "pvsync2": the name in tables and JSON.
const char* fio_engine_name(FioEngine engine);

struct FioResult {
  std::optional<double> bytes_per_sec;  // empty when fio did not run or failed; `note` says why
  std::string note;
  uint64_t io_bytes = 0;
  double runtime_s = 0;
  std::string command;                  // as run, for the record
  int jobs = 1;                         // fio jobs (threads), each reading its own share of the file
  FioEngine engine = FioEngine::io_uring;
  int iodepth = 1;                      // reads in flight a job, as run (1 for pvsync2)
};

// The absolute path of `program` on $PATH, or empty.
std::string find_on_path(const std::string& program);

// Sequential O_DIRECT read of the whole file: fio --rw=read --direct=1 --bs=block_bytes and the
// engine's options (`iodepth` for the io_uring ones), JSON output. With jobs > 1, that many fio threads
// (--numjobs, --offset_increment, --group_reporting) each read one consecutive share of the file,
// a whole number of blocks (so up to jobs x block_bytes at the end may go unread), the way the file
// source's reader threads share it; the rate is the group's. Never throws for fio's own failures
// (missing, non-zero exit, unreadable output): those come back in `note`.
FioResult run_fio_read(const std::string& path, uint64_t block_bytes, int iodepth, int jobs = 1,
                       FioEngine engine = FioEngine::io_uring);

// The read bandwidth of the first job of fio's --output-format=json text, in bytes/s, with the
// bytes and seconds it covered. Throws cake::Error on anything it cannot read.
FioResult parse_fio_read_json(const std::string& json_text);

}  // namespace cake
