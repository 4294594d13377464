// TcpSource against a real server on 127.0.0.1: bytes, order, concurrency, and every fault a
// network load can meet (server killed, stalled, cut mid-payload, wrong store, bad checksum).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/clock.hpp"
#include "loaders/net/socket.hpp"
#include "loaders/throttle.hpp"
#include "tests/net/net_fixture.hpp"

namespace cake::test {
namespace {

std::vector<std::vector<std::byte>> buffers_for(const WrittenStore& store) {
  std::vector<std::vector<std::byte>> out;
  for (const auto& p : store.payloads) out.emplace_back(p.size(), std::byte{0xEE});
  return out;
}

std::vector<int> all_chunks(const WrittenStore& store) {
  std::vector<int> order(store.payloads.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  return order;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(TcpSource, RoundTripIsBitExact) {
  Seeded s;
  Watchdog watchdog(60, "TcpSource round trip");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 24);
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  TcpSource source(server.url(), {});
  EXPECT_EQ(source.describe(), server.url() + " (pipeline 4)");
  const StoreHeader& h = source.open(store.header.key);
  ASSERT_EQ(h.chunks.size(), store.header.chunks.size());
  EXPECT_EQ(h.key.file_name(), store.header.key.file_name());
  EXPECT_EQ(h.layers, store.header.layers);
  for (size_t i = 0; i < h.chunks.size(); ++i) {
    EXPECT_EQ(h.chunks[i].bytes, store.header.chunks[i].bytes);
    EXPECT_EQ(h.chunks[i].crc32c, store.header.chunks[i].crc32c);
  }
  auto buffers = buffers_for(store);
  const auto reads = load_chunks(source, all_chunks(store), buffers);
  ASSERT_EQ(reads.size(), store.payloads.size());
  std::set<int> seen;
  for (const auto& r : reads) {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_TRUE(seen.insert(r.chunk).second) << "chunk " << r.chunk << " reported twice";
    EXPECT_EQ(r.bytes, store.payloads[static_cast<size_t>(r.chunk)].size());
    EXPECT_LE(r.submit_ns, r.first_byte_ns);
    EXPECT_LE(r.first_byte_ns, r.complete_ns);
  }
  for (size_t i = 0; i < buffers.size(); ++i) EXPECT_EQ(buffers[i], store.payloads[i]) << "chunk " << i;
  EXPECT_EQ(source.outstanding(), 0);
  EXPECT_TRUE(source.reap(false).empty());
  EXPECT_TRUE(source.reap(true).empty());  // nothing outstanding: returns at once
  // The same source opens again for the next request.
  source.open(store.header.key);
  auto again = buffers_for(store);
  for (const auto& r : load_chunks(source, {5, 0}, again)) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(again[5], store.payloads[5]);
  EXPECT_EQ(again[0], store.payloads[0]);
}

TEST(TcpSource, AnyOrderAnyDepthRepeatedChunks) {
  Seeded s;
  Watchdog watchdog(60, "TcpSource orders");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 20);
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  for (int depth : {1, 3, 16, 256}) {
    SCOPED_TRACE("pipeline " + std::to_string(depth));
    TcpSource source(server.url(), {.pipeline_depth = depth});
    source.open(store.header.key);
    std::vector<int> order = all_chunks(store);
    if (depth == 1)
      std::reverse(order.begin(), order.end());  // the Cake load lane: n-1, n-2, ...
    else
      std::shuffle(order.begin(), order.end(), s.rng);
    auto buffers = buffers_for(store);
    const auto reads = load_chunks(source, order, buffers);
    ASSERT_EQ(reads.size(), order.size());
    for (const auto& r : reads) ASSERT_TRUE(r.ok) << r.error;
    for (size_t i = 0; i < buffers.size(); ++i) ASSERT_EQ(buffers[i], store.payloads[i]) << "chunk " << i;
    // The same chunk twice, into two buffers, interleaved with reaping.
    std::vector<std::byte> a(store.payloads[7].size()), b(store.payloads[7].size());
    source.submit(7, a.data());
    source.submit(7, b.data());
    int got = 0;
    while (source.outstanding() > 0)
      for (const auto& r : source.reap(true)) {
        EXPECT_TRUE(r.ok) << r.error;
        EXPECT_EQ(r.chunk, 7);
        ++got;
      }
    EXPECT_EQ(got, 2);
    EXPECT_EQ(a, store.payloads[7]);
    EXPECT_EQ(b, store.payloads[7]);
  }
}

TEST(TcpSource, EightConcurrentClients) {
  Seeded s;
  Watchdog watchdog(90, "8 concurrent clients");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 32, 64);
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  std::vector<uint64_t> seeds;
  for (int i = 0; i < 8; ++i) seeds.push_back(s.rng());
  std::vector<std::string> failures(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      try {
        std::mt19937_64 rng(seeds[static_cast<size_t>(i)]);
        TcpSource source(server.url(), {.pipeline_depth = 1 + i});
        for (int round = 0; round < 3; ++round) {
          source.open(store.header.key);
          std::vector<int> order = all_chunks(store);
          std::shuffle(order.begin(), order.end(), rng);
          auto buffers = buffers_for(store);
          for (const auto& r : load_chunks(source, order, buffers))
            if (!r.ok) failures[static_cast<size_t>(i)] += r.error + "\n";
          for (size_t c = 0; c < buffers.size(); ++c)
            if (buffers[c] != store.payloads[c]) failures[static_cast<size_t>(i)] += cat("chunk ", c, " differs\n");
        }
      } catch (const std::exception& e) {
        failures[static_cast<size_t>(i)] += e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(failures[static_cast<size_t>(i)], "") << "client " << i;
  EXPECT_TRUE(server.alive());
}

TEST(TcpSource, ServerKilledMidLoadFailsEveryOutstandingChunkWithoutHanging) {
  Seeded s;
  Watchdog watchdog(30, "load from a killed server");
  TempDir dir;
  // 64 chunks of 64 KiB at 8 MB/s: about half a second, so the kill lands mid-load.
  const WrittenStore store = write_test_store(dir.path(), s.rng, 64, 64);
  ServerProcess server({.store_dir = dir.path(), .throttle = make_throttle(8e6, ""), .quiet = true});
  TcpSource source(server.url(), {.pipeline_depth = 8});  // default 10 s timeout: must not be what ends it
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  std::vector<int> order = all_chunks(store);
  std::reverse(order.begin(), order.end());
  for (int c : order) source.submit(c, buffers[static_cast<size_t>(c)].data());
  std::vector<ChunkRead> reads;
  while (reads.empty())
    for (auto& r : source.reap(true)) reads.push_back(r);
  const Stopwatch since_kill;
  server.kill_now();
  while (source.outstanding() > 0)
    for (auto& r : source.reap(true)) reads.push_back(r);
  EXPECT_LT(since_kill.elapsed_ms(), 3000) << "the client should see the connection die, not time out";
  ASSERT_EQ(reads.size(), order.size());
  std::set<int> seen;
  int failed = 0;
  for (const auto& r : reads) {
    EXPECT_TRUE(seen.insert(r.chunk).second) << "chunk " << r.chunk << " reported twice";
    if (r.ok) {
      EXPECT_EQ(buffers[static_cast<size_t>(r.chunk)], store.payloads[static_cast<size_t>(r.chunk)]);
    } else {
      ++failed;
      EXPECT_EQ(r.bytes, 0u);
      EXPECT_TRUE(contains(r.error, server.url())) << r.error;
      EXPECT_TRUE(contains(r.error, "chunk " + std::to_string(r.chunk))) << r.error;
    }
  }
  EXPECT_GT(failed, 0);
  // Later submissions fail at once, naming the lost connection.
  std::vector<std::byte> late(store.payloads[0].size());
  source.submit(0, late.data());
  const auto after = source.reap(true);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_FALSE(after[0].ok);
  EXPECT_TRUE(contains(after[0].error, "connection lost")) << after[0].error;
  // A dead server makes the next open() throw, naming the peer.
  try {
    source.open(store.header.key);
    FAIL() << "open() on a dead server succeeded";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "127.0.0.1:" + std::to_string(server.port()))) << e.what();
  }
}

TEST(TcpSource, StalledServerTimesOut) {
  Seeded s;
  Watchdog watchdog(30, "load from a stalled server");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 10);
  ServerProcess server({.store_dir = dir.path(), .quiet = true, .stall_after_chunks = 3});
  TcpSource source(server.url(), {.pipeline_depth = 4, .request_timeout_ms = 300});
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  const Stopwatch clock;
  const auto reads = load_chunks(source, all_chunks(store), buffers);
  EXPECT_LT(clock.elapsed_ms(), 3000);
  EXPECT_GE(clock.elapsed_ms(), 300);
  ASSERT_EQ(reads.size(), 10u);
  int ok = 0;
  for (const auto& r : reads) {
    if (r.ok) {
      ++ok;
      EXPECT_LT(r.chunk, 3);
    } else if (r.chunk == 3) {
      EXPECT_TRUE(contains(r.error, "within 300 ms")) << r.error;
    } else {
      EXPECT_TRUE(contains(r.error, "abandoned")) << r.error;
    }
  }
  EXPECT_EQ(ok, 3);
}

TEST(TcpSource, ServerClosingMidPayloadFailsThatChunk) {
  Seeded s;
  Watchdog watchdog(30, "server closing mid-payload");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 6);
  ServerProcess server({.store_dir = dir.path(), .quiet = true, .close_after_chunks = 2});
  TcpSource source(server.url(), {});
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  const auto reads = load_chunks(source, all_chunks(store), buffers);
  ASSERT_EQ(reads.size(), 6u);
  for (const auto& r : reads) {
    if (r.chunk < 2) {
      EXPECT_TRUE(r.ok) << r.error;
    } else {
      EXPECT_FALSE(r.ok);
      // Closed or reset (the server had unread requests), the cut shows up in chunk 2's payload.
      if (r.chunk == 2) {
        EXPECT_TRUE(contains(r.error, "payload: ")) << r.error;
        EXPECT_TRUE(contains(r.error, "of " + std::to_string(store.payloads[2].size()) + " bytes")) << r.error;
      }
    }
  }
}

TEST(TcpSource, SeveralConnectionsCarryEveryChunkOnceBitExact) {
  Seeded s;
  Watchdog watchdog(60, "TcpSource over several connections");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 24);
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  for (int connections : {2, 5}) {
    SCOPED_TRACE(cat(connections, " connections"));
    TcpSource source(server.url(), {.pipeline_depth = 2, .connections = connections});
    EXPECT_EQ(source.describe(), cat(server.url(), " (", connections, " connections, pipeline 2 each)"));
    for (int round = 0; round < 2; ++round) {  // open() again replaces every connection
      source.open(store.header.key);
      std::vector<int> order = all_chunks(store);
      std::shuffle(order.begin(), order.end(), s.rng);
      auto buffers = buffers_for(store);
      const auto reads = load_chunks(source, order, buffers);
      ASSERT_EQ(reads.size(), order.size());
      std::set<int> seen;
      for (const auto& r : reads) {
        ASSERT_TRUE(r.ok) << r.error;
        EXPECT_TRUE(seen.insert(r.chunk).second) << "chunk " << r.chunk << " reported twice";
      }
      for (size_t i = 0; i < buffers.size(); ++i) ASSERT_EQ(buffers[i], store.payloads[i]) << "chunk " << i;
      EXPECT_EQ(source.outstanding(), 0);
    }
  }
  EXPECT_THROW(TcpSource(server.url(), {.connections = 0}), UsageError);
  EXPECT_THROW(TcpSource(server.url(), {.connections = 65}), UsageError);
}

// Every connection is cut by the server after two chunks: the chunks on a cut connection fail,
// its unsent requests move to the connections still up, and every chunk is reported exactly once,
// the good ones bit-exact, without a hang.
TEST(TcpSource, LostConnectionsHandTheirUnsentChunksOnAndEachChunkEndsOnce) {
  Seeded s;
  Watchdog watchdog(30, "losing connections one by one");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 30);
  ServerProcess server({.store_dir = dir.path(), .quiet = true, .close_after_chunks = 2});
  TcpSource source(server.url(), {.pipeline_depth = 1, .connections = 3});
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  const auto reads = load_chunks(source, all_chunks(store), buffers);
  ASSERT_EQ(reads.size(), store.payloads.size());
  std::set<int> seen;
  int ok = 0;
  for (const auto& r : reads) {
    EXPECT_TRUE(seen.insert(r.chunk).second) << "chunk " << r.chunk << " reported twice";
    if (r.ok) {
      ++ok;
      EXPECT_EQ(buffers[static_cast<size_t>(r.chunk)], store.payloads[static_cast<size_t>(r.chunk)]) << "chunk " << r.chunk;
    } else {
      EXPECT_TRUE(contains(r.error, "connection ")) << r.error;  // names which connection
    }
  }
  // Each of the 3 connections answers exactly 2 chunks whole before its cut.
  EXPECT_EQ(ok, 6);
  // Every connection is gone now: later chunks fail at once, naming the cause.
  std::vector<std::byte> late(store.payloads[0].size());
  source.submit(0, late.data());
  const auto after = source.reap(true);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_FALSE(after[0].ok);
  EXPECT_TRUE(contains(after[0].error, "connection lost earlier")) << after[0].error;
}

TEST(TcpSource, MissingOrMismatchedStoreIsRefusedAtOpen) {
  Seeded s;
  Watchdog watchdog(30, "wrong store key");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 4);
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  TcpSource source(server.url(), {});
  StoreKey absent = store.header.key;
  absent.token_hash ^= 1;
  try {
    source.open(absent);
    FAIL() << "a missing store opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "NO_SUCH_STORE")) << e.what();
    EXPECT_TRUE(contains(e.what(), absent.file_name())) << e.what();
  }
  // A store whose content key differs from its name (renamed by hand): the header check refuses it.
  TempDir other;
  const WrittenStore impostor = write_test_store(other.path(), s.rng, 4, 16, 0xBAD);
  std::filesystem::rename(impostor.path, dir.path() + "/" + absent.file_name());
  try {
    source.open(absent);
    FAIL() << "a store with another key opened";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), server.url())) << e.what();
  }
  // The right key still works on the same source.
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  for (const auto& r : load_chunks(source, all_chunks(store), buffers)) EXPECT_TRUE(r.ok) << r.error;
}

TEST(TcpSource, CorruptedPayloadFailsOnlyThatChunk) {
  Seeded s;
  Watchdog watchdog(30, "corrupted payload");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 8);
  const int bad = static_cast<int>(s.rng() % 8);
  {
    UniqueFd fd(::open(store.path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(bad)];
    const off_t at = static_cast<off_t>(e.offset + s.rng() % e.bytes);
    unsigned char byte = 0;
    ASSERT_EQ(::pread(fd.get(), &byte, 1, at), 1);
    byte ^= 0x40;
    ASSERT_EQ(::pwrite(fd.get(), &byte, 1, at), 1);
  }
  ServerProcess server({.store_dir = dir.path(), .quiet = true});
  TcpSource source(server.url(), {});
  source.open(store.header.key);
  auto buffers = buffers_for(store);
  const auto reads = load_chunks(source, all_chunks(store), buffers);
  ASSERT_EQ(reads.size(), 8u);
  for (const auto& r : reads) {
    if (r.chunk == bad) {
      EXPECT_FALSE(r.ok);
      EXPECT_TRUE(contains(r.error, "checksum mismatch")) << r.error;
      EXPECT_TRUE(contains(r.error, "chunk " + std::to_string(bad))) << r.error;
    } else {
      EXPECT_TRUE(r.ok) << r.error;
      EXPECT_EQ(buffers[static_cast<size_t>(r.chunk)], store.payloads[static_cast<size_t>(r.chunk)]);
    }
  }
}

TEST(TcpSource, ClientThrottlePacesReceivedBytes) {
  Seeded s;
  Watchdog watchdog(30, "client throttle");
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 20, 256);  // 20 x 256 KiB
  LoopbackServer server(dir.path());
  const double rate = 10e6;
  // 20 ms of banking absorbs the receiver thread's scheduling delays on a shared machine.
  auto throttle = std::make_unique<BucketThrottle>(std::vector<BandwidthPoint>{{0, rate}}, "10 MB/s", 20'000'000);
  TcpSource source(server.url(), {.throttle = throttle.get()});
  EXPECT_TRUE(contains(source.describe(), "client throttle")) << source.describe();
  source.open(store.header.key);
  throttle->start();
  auto buffers = buffers_for(store);
  const Stopwatch clock;
  for (const auto& r : load_chunks(source, all_chunks(store), buffers)) ASSERT_TRUE(r.ok) << r.error;
  uint64_t total = 0;
  for (const auto& p : store.payloads) total += p.size();
  const double achieved = static_cast<double>(total) / (clock.elapsed_ms() / 1000.0);
  EXPECT_NEAR(achieved / rate, 1.0, 0.05) << achieved / 1e6 << " MB/s";
}

TEST(TcpSource, MisuseAndUnreachableServers) {
  Seeded s;
  TempDir dir;
  const WrittenStore store = write_test_store(dir.path(), s.rng, 2);
  EXPECT_THROW(TcpSource("127.0.0.1:80", {}), UsageError);
  EXPECT_THROW(TcpSource("tcp://127.0.0.1:80", {.pipeline_depth = 0}), UsageError);
  EXPECT_THROW(TcpSource("tcp://127.0.0.1:80", {.pipeline_depth = 257}), UsageError);
  EXPECT_THROW(TcpSource("tcp://127.0.0.1:80", {.request_timeout_ms = 0}), UsageError);
  // A port with nothing listening: bind one, learn it, close it.
  uint16_t dead_port = 0;
  {
    UniqueFd probe = net::listen_tcp({"127.0.0.1", 0}, 1);
    dead_port = net::local_address(probe.get()).port;
  }
  TcpSource nowhere("tcp://127.0.0.1:" + std::to_string(dead_port), {});
  std::byte buf[16];
  EXPECT_THROW(nowhere.submit(0, buf), Error);  // before open
  try {
    nowhere.open(store.header.key);
    FAIL() << "connected to a closed port";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "127.0.0.1:" + std::to_string(dead_port))) << e.what();
  }
  LoopbackServer server(dir.path());
  TcpSource source(server.url(), {});
  source.open(store.header.key);
  std::vector<std::byte> b(store.payloads[0].size());
  source.submit(2, b.data());  // out of range: failed, not thrown
  source.submit(-1, b.data());
  std::vector<ChunkRead> reads;
  while (source.outstanding() > 0)
    for (auto& r : source.reap(true)) reads.push_back(r);
  ASSERT_EQ(reads.size(), 2u);
  for (const auto& r : reads) {
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(contains(r.error, "no such chunk")) << r.error;
  }
  // open() refuses while chunks are outstanding.
  source.submit(0, b.data());
  EXPECT_THROW(source.open(store.header.key), Error);
  while (source.outstanding() > 0) source.reap(true);
}

}  // namespace
}  // namespace cake::test
