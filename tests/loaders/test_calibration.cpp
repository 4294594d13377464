#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <vector>

#include "common/error.hpp"
#include "loaders/calibration.hpp"
#include "loaders/fio_runner.hpp"
#include "store_fixture.hpp"

namespace cake {
namespace {

using test::TempDir;

TEST(FileSourceCalibration, WritesOnceThenMeasuresEveryByte) {
  TempDir dir;
  const CalibrationStore first = ensure_calibration_store(dir.path(), 40ull << 20);
  EXPECT_TRUE(first.created);
  ASSERT_EQ(first.header.chunks.size(), 3u);  // 16 + 16 + 8 MiB
  uint64_t payload = 0;
  for (const auto& c : first.header.chunks) payload += c.bytes;
  EXPECT_EQ(payload, 40ull << 20);
  const CalibrationStore again = ensure_calibration_store(dir.path(), 40ull << 20);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.path, first.path);

  const LoadMeasurement m =
      measure_file_load(first.path, first.header, {.queue_depth = 8, .request_bytes = 1 << 20, .o_direct = true}, nullptr,
                        {.staging_slots = 2});
  EXPECT_EQ(m.failed_chunks, 0) << m.first_error;
  EXPECT_EQ(m.chunks, 3);
  EXPECT_EQ(m.bytes, payload);
  EXPECT_GT(m.seconds, 0);
  EXPECT_TRUE(m.o_direct) << m.o_direct_detail;
  // Registered buffers, unless the reads are CPU copies handed to reader threads (tmpfs /tmp).
  EXPECT_TRUE(m.source_description.find("fixed buffers") != std::string::npos ||
              m.source_description.find("reader threads") != std::string::npos)
      << m.source_description;

  // Byte staging: the lane's and the readers' time is accounted for.
  EXPECT_EQ(m.pipeline.path, "pieces");
  ASSERT_TRUE(m.readers.has_value());
  EXPECT_GE(m.readers->pieces, 1u);
  EXPECT_NE(m.wait_summary().find("readers"), std::string::npos) << m.wait_summary();

  const LoadMeasurement mem = measure_mem_load(first.path, first.header, 1 << 20, nullptr, {.staging_slots = 2});
  EXPECT_EQ(mem.bytes, payload);
}

// The whole store file, as bytes.
std::vector<std::byte> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

TEST(FileSourceCalibration, PlainReaderReadsThePayloadRangeOnEveryThread) {
  TempDir dir;
  const CalibrationStore store = ensure_calibration_store(dir.path(), 40ull << 20);
  const uint64_t begin = store.header.chunks.front().offset;
  const uint64_t end = store.header.chunks.back().offset + padded_bytes(store.header.chunks.back());
  // 3 MiB requests over 40 MiB on 3 threads: uneven shares and a short last request.
  const ReaderMeasurement m = measure_plain_reader(store.path, store.header, 3, 3ull << 20);
  EXPECT_EQ(m.bytes, end - begin);
  EXPECT_EQ(m.threads, 3);
  EXPECT_FALSE(m.landed);
  EXPECT_GT(m.seconds, 0);
  EXPECT_EQ(m.detail.find("copied"), std::string::npos) << m.detail;
  EXPECT_THROW((void)measure_plain_reader(store.path, store.header, 0, 1 << 20), UsageError);
  EXPECT_THROW((void)measure_plain_reader(store.path, store.header, 2, 1000), UsageError);
  EXPECT_THROW((void)measure_plain_reader(dir.file("absent"), store.header, 2, 1 << 20), Error);
}

TEST(FileSourceCalibration, LandingReaderPutsEveryPayloadByteInTheHostCache) {
  TempDir dir;
  const CalibrationStore store = ensure_calibration_store(dir.path(), 40ull << 20);
  const CalibrationCache cache(store.header, MemoryKind::host);
  const std::span<std::byte> into = cache.host_bytes();
  uint64_t payload = 0;
  for (const ChunkEntry& c : store.header.chunks) payload += c.bytes;
  ASSERT_GE(into.size(), payload);
  std::fill(into.begin(), into.end(), std::byte{0xCD});  // poison: a byte not landed shows

  const ReaderMeasurement m = measure_plain_reader(store.path, store.header, 3, 3ull << 20, into);
  EXPECT_TRUE(m.landed);
  EXPECT_NE(m.detail.find("copied into the host cache"), std::string::npos) << m.detail;
  const std::vector<std::byte> file = file_bytes(store.path);
  const uint64_t begin = store.header.chunks.front().offset;
  for (const ChunkEntry& c : store.header.chunks) {
    ASSERT_LE(c.offset + c.bytes, file.size());
    EXPECT_EQ(std::memcmp(into.data() + (c.offset - begin), file.data() + c.offset, c.bytes), 0)
        << "chunk at file offset " << c.offset;
  }
  // A destination smaller than the payloads is refused before any read.
  std::vector<std::byte> small(payload - 4096);
  EXPECT_THROW((void)measure_plain_reader(store.path, store.header, 2, 1 << 20, small), UsageError);
}

// The shape of fio 3.33's --output-format=json, trimmed to what is read.
constexpr const char* kFioJson = R"(note: both iodepth >= 1 and synchronous I/O engine are selected
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "cake-calibrate",
      "error" : 0,
      "read" : {
        "io_bytes" : 1073741824,
        "bw_bytes" : 1342177280,
        "bw" : 1310720,
        "runtime" : 800
      }
    }
  ]
})";

TEST(FileSourceCalibration, ParsesFioJson) {
  const FioResult r = parse_fio_read_json(kFioJson);
  ASSERT_TRUE(r.bytes_per_sec.has_value());
  EXPECT_DOUBLE_EQ(*r.bytes_per_sec, 1073741824.0 / 0.8);
  EXPECT_EQ(r.io_bytes, 1073741824u);
  EXPECT_DOUBLE_EQ(r.runtime_s, 0.8);
  EXPECT_THROW((void)parse_fio_read_json("fio: no JSON here"), Error);
  EXPECT_THROW((void)parse_fio_read_json(R"({"jobs": []})"), Error);
  EXPECT_THROW((void)parse_fio_read_json(R"({"jobs": [{"error": 5, "read": {"io_bytes": 1, "bw_bytes": 1, "runtime": 1}}]})"),
               Error);
}

TEST(FileSourceCalibration, RunsFioWhenInstalled) {
  EXPECT_TRUE(find_on_path("cake-no-such-program-here").empty());
  if (find_on_path("fio").empty()) GTEST_SKIP() << "fio is not on PATH";
  TempDir dir;
  const CalibrationStore store = ensure_calibration_store(dir.path(), 16ull << 20);
  const FioResult r = run_fio_read(store.path, 1 << 20, 4);
  ASSERT_TRUE(r.bytes_per_sec.has_value()) << r.note << "\n" << r.command;
  EXPECT_GT(*r.bytes_per_sec, 0);
  EXPECT_GE(r.io_bytes, 16ull << 20);
  EXPECT_NE(r.command.find("--ioengine=io_uring"), std::string::npos);
  EXPECT_EQ(r.jobs, 1);
  // Two jobs, each its own half of the file: the group reads (about) the whole file.
  const FioResult two = run_fio_read(store.path, 1 << 20, 4, 2);
  ASSERT_TRUE(two.bytes_per_sec.has_value()) << two.note << "\n" << two.command;
  EXPECT_EQ(two.jobs, 2);
  EXPECT_NE(two.command.find("--numjobs=2"), std::string::npos) << two.command;
  EXPECT_NE(two.command.find("--offset_increment="), std::string::npos) << two.command;
  EXPECT_GE(two.io_bytes, 16ull << 20);
  // More jobs than whole blocks: refused with a note, fio not run.
  const FioResult too_many = run_fio_read(store.path, 1 << 20, 4, 64);
  EXPECT_FALSE(too_many.bytes_per_sec.has_value());
  EXPECT_NE(too_many.note.find("too small"), std::string::npos) << too_many.note;
  // Every engine reads the whole file, with its own options on the command line; pvsync2 one read
  // at a time whatever queue depth is asked.
  for (FioEngine engine : kFioEngines) {
    const FioResult e = run_fio_read(store.path, 1 << 20, 4, 2, engine);
    ASSERT_TRUE(e.bytes_per_sec.has_value()) << fio_engine_name(engine) << ": " << e.note << "\n" << e.command;
    EXPECT_EQ(e.engine, engine);
    EXPECT_GE(e.io_bytes, 16ull << 20) << fio_engine_name(engine);
    const bool registered = e.command.find("--fixedbufs") != std::string::npos &&
                            e.command.find("--registerfiles") != std::string::npos;
    EXPECT_EQ(registered, engine == FioEngine::io_uring_registered) << e.command;
    const bool sync = engine == FioEngine::pvsync2;
    EXPECT_NE(e.command.find(sync ? "--ioengine=pvsync2" : "--ioengine=io_uring"), std::string::npos) << e.command;
    EXPECT_EQ(e.iodepth, sync ? 1 : 4);
    EXPECT_NE(e.command.find(sync ? "--iodepth=1" : "--iodepth=4"), std::string::npos) << e.command;
  }
  const FioResult missing = run_fio_read(dir.file("absent"), 1 << 20, 4);
  EXPECT_FALSE(missing.bytes_per_sec.has_value());
  EXPECT_FALSE(missing.note.empty());
}

}  // namespace
}  // namespace cake
