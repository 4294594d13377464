// fio as the reference for the file source: the same file, block size and queue depth through
// fio's own io_uring engine with O_DIRECT, so a loader number can be held against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cake {

struct FioResult {
  std::optional<double> bytes_per_sec;  // empty when fio did not run or failed; `note` says why
  std::string note;
  uint64_t io_bytes = 0;
  double runtime_s = 0;
  std::string command;                  // as run, for the record
  int jobs = 1;                         // fio jobs (threads), each reading its own share of the file
};

// The absolute path of `program` on $PATH, or empty.
std::string find_on_path(const std::string& program);

// Sequential O_DIRECT read of the whole file: fio --rw=read --ioengine=io_uring --direct=1
// --bs=block_bytes --iodepth=iodepth, JSON output. With jobs > 1, that many fio threads
// (--numjobs, --offset_increment, --group_reporting) each read one consecutive share of the file,
// a whole number of blocks (so up to jobs x block_bytes at the end may go unread), the way the file
// source's reader threads share it; the rate is the group's. Never throws for fio's own failures
// (missing, non-zero exit, unreadable output): those come back in `note`.
FioResult run_fio_read(const std::string& path, uint64_t block_bytes, int iodepth, int jobs = 1);

// The read bandwidth of the first job of fio's --output-format=json text, in bytes/s, with the
// bytes and seconds it covered. Throws cake::Error on anything it cannot read.
FioResult parse_fio_read_json(const std::string& json_text);

}  // namespace cake
