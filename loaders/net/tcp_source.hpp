// KV chunks from a cake-bench KV server over TCP (README.md, "The KV wire protocol").
//     TcpSource source("tcp://127.0.0.1:7433", {.pipeline_depth = 4});
//     const StoreHeader& h = source.open(key);   // connects + GET_HEADER + key check (timed)
//     source.submit(40, buf);  source.submit(39, buf2);  ...  source.reap(true);
// Over `connections` TCP connections (default 1), up to pipeline_depth GET_CHUNK requests are on
// the wire at once on each (more are queued); each connection's receiver thread reads each
// response straight into the buffer given to submit() and checks its length and CRC-32C.
// Per-chunk faults (server error reply, checksum mismatch, timeout, connection lost) come back as
// failed ChunkReads naming the peer and chunk; a lost connection fails the chunks in flight on it,
// hands its unsent requests to the other connections, and takes no more; once every connection is
// lost, every later submit() fails until the next open(). No reconnect.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loaders/kv_source.hpp"
#include "loaders/throttle.hpp"

namespace cake {

struct TcpSourceOptions {
  int pipeline_depth = 4;               // GET_CHUNK requests on the wire at once per connection, 1..256
  // TCP connections to the server, 1..64. Chunks go to the connection carrying the fewest; each
  // has its own receiver thread, so receiving and checksumming spread over cores. A lost
  // connection fails the chunks in flight on it; its unsent requests move to the others.
  int connections = 1;
  // Connect, header, and each chunk: a chunk must arrive whole within this many ms of becoming
  // the next response due (its request sent and the one before it complete).
  int64_t request_timeout_ms = 10'000;
  // Client-side pacing of received payload bytes (a slow link at the receiver); not owned. The
  // caller restarts it (Throttle::start) when its load starts.
  Throttle* throttle = nullptr;
};

class TcpSource final : public KvSource {
 public:
  // Parses "tcp://HOST:PORT" strictly (UsageError); connects nothing until open().
  TcpSource(const std::string& url, TcpSourceOptions options = {});
  ~TcpSource() override;
  TcpSource(const TcpSource&) = delete;
  TcpSource& operator=(const TcpSource&) = delete;

  std::string describe() const override;  // "tcp://127.0.0.1:7433 (pipeline 4)"
  // Connects (closing any earlier connection), fetches the header, checks it against `expected`.
  // Throws cake::Error on connect failure, timeout, missing store, bad header or key mismatch,
  // and when chunks of an earlier open are still outstanding.
  const StoreHeader& open(const StoreKey& expected) override;
  // dst must hold the chunk's payload bytes (header().chunks[chunk].bytes). Never throws for a
  // chunk fault; throws Error only when called before a successful open().
  void submit(int chunk, std::byte* dst) override;
  std::vector<ChunkRead> reap(bool wait) override;
  int outstanding() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cake
