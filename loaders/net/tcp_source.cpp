#include "loaders/net/tcp_source.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/load_lane_work.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "loaders/net/protocol.hpp"
#include "loaders/net/socket.hpp"
#include "loaders/store_file.hpp"

namespace cake {
namespace {

constexpr int kMaxPipelineDepth = 256;  // keeps unread requests far below a socket buffer
constexpr size_t kRecvSliceBytes = 256 * 1024;  // client throttle grant and crc step
constexpr int kMaxConnections = 64;

struct Request {
  int chunk = -1;
  std::byte* dst = nullptr;
  int64_t submit_ns = 0;
  uint64_t request_id = 0;
  int64_t sent_ns = 0;
};

// How receiving one response ended.
struct Outcome {
  enum Kind { chunk_ok, chunk_failed, connection_lost } kind = chunk_ok;
  std::string error;
  uint64_t bytes = 0;
};

}  // namespace

namespace {

// One TCP connection to the server: its socket, its receiver thread, and the requests it carries
// (answered in order on that connection). Guarded by TcpSource::Impl::mutex, except the socket
// reads, which only its receiver does.
struct Connection {
  int index = 0;
  UniqueFd sock;
  UniqueFd wake;  // eventfd: written to stop the receiver's waits
  std::thread receiver;
  std::condition_variable work_cv;  // receiver: something in flight, or stop
  std::deque<Request> queued;       // submitted to this connection, not yet sent
  std::deque<Request> in_flight;    // sent, answered in this order
  std::string lost;                 // why the connection is unusable; empty while it is fine
  uint64_t next_request_id = 1;
  int64_t last_complete_ns = 0;

  size_t load() const { return queued.size() + in_flight.size(); }
};

}  // namespace

struct TcpSource::Impl {
  std::string url;
  net::HostPort peer;
  TcpSourceOptions options;
  int64_t timeout_ns = 0;

  StoreHeader header;
  std::string store_name;
  bool opened = false;

  // Several connections so that receiving (a kernel copy and a CRC-32C per byte, on the receiver's
  // core) and the server's pread + send spread over cores: one stream is bound by one core each.
  std::vector<std::unique_ptr<Connection>> connections;

  mutable std::mutex mutex;
  std::condition_variable done_cv;  // reap: something finished
  std::vector<ChunkRead> done;
  int outstanding = 0;
  bool stopping = false;

  std::string where(int chunk) const { return cat(url, " ", store_name, " chunk ", chunk); }
  std::string where(const Connection& c, int chunk) const {
    return connections.size() > 1 ? cat(url, " (connection ", c.index + 1, " of ", connections.size(), ") ", store_name,
                                        " chunk ", chunk)
                                  : where(chunk);
  }

  // ---- waiting on the socket --------------------------------------------------------------

  // Waits until the connection's socket is readable. Returns an error text on timeout or stop,
  // nullopt when readable.
  static std::optional<std::string> wait_readable(const Connection& c, int64_t deadline_ns) {
    while (true) {
      const int64_t left_ns = deadline_ns - now_ns();
      if (left_ns <= 0) return std::string("timed out");
      pollfd fds[2] = {{c.sock.get(), POLLIN, 0}, {c.wake.get(), POLLIN, 0}};
      const int rc = ::poll(fds, 2, static_cast<int>(std::min<int64_t>((left_ns + 999'999) / 1'000'000, 1 << 30)));
      if (rc < 0) {
        if (errno == EINTR) continue;
        return cat("poll: ", errno_text(errno));
      }
      if (fds[1].revents & POLLIN) return std::string("source closed");
      if (rc > 0) return std::nullopt;  // readable, hung up or errored: recv says which
    }
  }

  // Reads exactly n bytes (CRC folded in as they arrive when crc is given). nullopt = done.
  std::optional<std::string> recv_exact(const Connection& c, std::byte* dst, size_t n, int64_t deadline_ns, uint32_t* crc,
                                        bool throttled) const {
    size_t got = 0;
    while (got < n) {
      const size_t slice_end = std::min(n, got + kRecvSliceBytes);
      if (throttled && options.throttle) options.throttle->acquire(slice_end - got);
      while (got < slice_end) {
        // Data already queued is taken without a poll; the poll (deadline, stop) only when none is.
        if (now_ns() >= deadline_ns) return cat("timed out after ", got, " of ", n, " bytes");
        ssize_t r = 0;
        {
          LoadLaneWork busy;  // the kernel's copy out of the socket; not the poll below
          r = ::recv(c.sock.get(), dst + got, slice_end - got, MSG_DONTWAIT);
        }
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (auto why = wait_readable(c, deadline_ns)) return cat(*why, " after ", got, " of ", n, " bytes");
            continue;
          }
          return cat("recv: ", errno_text(errno), " after ", got, " of ", n, " bytes");
        }
        if (r == 0) return cat("server closed the connection after ", got, " of ", n, " bytes");
        if (crc) {
          LoadLaneWork busy;
          *crc = crc32c(dst + got, static_cast<size_t>(r), *crc);
        }
        got += static_cast<size_t>(r);
      }
    }
    return std::nullopt;
  }

  std::optional<net::ResponseHeader> recv_response_header(const Connection& c, int64_t deadline_ns,
                                                          std::string& error) const {
    std::array<std::byte, net::kResponseHeaderBytes> raw{};
    if (auto why = recv_exact(c, raw.data(), raw.size(), deadline_ns, nullptr, false)) {
      error = cat("response header: ", *why);
      return std::nullopt;
    }
    net::ResponseParse parsed = net::parse_response_header(raw);
    if (!parsed.header) error = cat("protocol error: ", parsed.error);
    return parsed.header;
  }

  // An error reply's payload: a short reason, read whole so the stream stays in step.
  std::string recv_error_text(const Connection& c, const net::ResponseHeader& h, int64_t deadline_ns,
                              bool& stream_ok) const {
    stream_ok = false;
    if (h.payload_bytes > net::kMaxErrorPayloadBytes)
      return cat("protocol error: ", net::status_name(h.status), " reply with a ", h.payload_bytes,
                 "-byte reason (limit ", net::kMaxErrorPayloadBytes, ")");
    std::string text(h.payload_bytes, '\0');
    uint32_t crc = 0;
    if (auto why = recv_exact(c, reinterpret_cast<std::byte*>(text.data()), text.size(), deadline_ns, &crc, false))
      return cat(net::status_name(h.status), " reply cut short: ", *why);
    stream_ok = true;
    if (crc != h.crc32c) return cat(net::status_name(h.status), " (reason garbled: checksum mismatch)");
    for (char& ch : text)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7F) ch = '?';
    return cat(net::status_name(h.status), ": ", text);
  }

  // ---- the receivers ----------------------------------------------------------------------

  Outcome receive_one(const Connection& c, const Request& r, int64_t deadline_ns) const {
    std::string error;
    auto h = recv_response_header(c, deadline_ns, error);
    if (!h) return {Outcome::connection_lost, error};
    if (h->request_id != r.request_id)
      return {Outcome::connection_lost, cat("protocol error: response for request ", h->request_id, ", expected ",
                                            r.request_id)};
    if (h->status != net::Status::ok) {
      bool stream_ok = false;
      std::string why = recv_error_text(c, *h, deadline_ns, stream_ok);
      return {stream_ok ? Outcome::chunk_failed : Outcome::connection_lost, cat("server replied ", why)};
    }
    const ChunkEntry& entry = header.chunks[static_cast<size_t>(r.chunk)];
    if (h->chunk != static_cast<uint32_t>(r.chunk) || h->payload_bytes != entry.bytes)
      return {Outcome::connection_lost, cat("protocol error: response carries chunk ", h->chunk, " with ",
                                            h->payload_bytes, " bytes, expected chunk ", r.chunk, " with ", entry.bytes)};
    uint32_t crc = 0;
    if (auto why = recv_exact(c, r.dst, entry.bytes, deadline_ns, &crc, true))
      return {Outcome::connection_lost, cat("payload: ", *why)};
    if (crc != entry.crc32c)
      return {Outcome::chunk_failed, cat("checksum mismatch: received payload has crc32c ", crc, ", the store header says ",
                                         entry.crc32c)};
    if (h->crc32c != entry.crc32c)
      return {Outcome::chunk_failed, cat("checksum mismatch: response says crc32c ", h->crc32c, ", the store header says ",
                                         entry.crc32c, " (store replaced on the server?)")};
    return {Outcome::chunk_ok, {}, entry.bytes};
  }

  void receive_loop(Connection& c) {
    while (true) {
      Request head;
      int64_t deadline_ns = 0;
      {
        std::unique_lock lock(mutex);
        c.work_cv.wait(lock, [&] { return stopping || !c.in_flight.empty(); });
        if (stopping) return;
        head = c.in_flight.front();
        deadline_ns = std::max(head.sent_ns, c.last_complete_ns) + timeout_ns;
      }
      Outcome o = receive_one(c, head, deadline_ns);
      std::lock_guard lock(mutex);
      if (o.kind == Outcome::connection_lost) {
        if (now_ns() >= deadline_ns)
          o.error = cat("no complete response within ", timeout_ns / 1'000'000, " ms (", o.error, ")");
        connection_lost_locked(c, cat(where(c, head.chunk), ": ", o.error));
        done_cv.notify_all();
        return;
      }
      c.in_flight.pop_front();
      c.last_complete_ns = now_ns();
      complete_locked(head, o.kind == Outcome::chunk_ok,
                      o.kind == Outcome::chunk_ok ? std::string() : cat(where(c, head.chunk), ": ", o.error), o.bytes);
      send_queued_locked(c);
      if (!c.lost.empty() && c.in_flight.empty()) {
        connection_lost_locked(c, c.lost);  // a send failed and nothing more will arrive
        done_cv.notify_all();
        return;
      }
      done_cv.notify_all();
    }
  }

  // ---- bookkeeping (mutex held) -----------------------------------------------------------

  void complete_locked(const Request& r, bool ok, std::string error, uint64_t bytes) {
    ChunkRead c;
    c.chunk = r.chunk;
    c.ok = ok;
    c.error = std::move(error);
    c.bytes = ok ? bytes : 0;
    c.submit_ns = r.submit_ns;
    c.first_byte_ns = r.sent_ns;
    c.complete_ns = now_ns();
    done.push_back(std::move(c));
  }

  // The healthy connection carrying the fewest requests, or null when every one is lost.
  Connection* least_loaded_locked() {
    Connection* best = nullptr;
    for (auto& c : connections)
      if (c->lost.empty() && (!best || c->load() < best->load())) best = c.get();
    return best;
  }

  // The chunks in flight on c fail, the first (the one being received) with the cause. Requests
  // not yet sent move to a healthy connection; with none left they fail too.
  void connection_lost_locked(Connection& c, const std::string& cause) {
    c.lost = cause;
    bool first = true;
    for (const Request& r : c.in_flight) {
      complete_locked(r, false, first ? cause : cat(where(c, r.chunk), ": connection abandoned: ", cause), 0);
      first = false;
    }
    c.in_flight.clear();
    std::deque<Request> unsent;
    unsent.swap(c.queued);
    for (Request& r : unsent) {
      if (Connection* other = least_loaded_locked()) {
        r.request_id = 0;
        other->queued.push_back(r);
        send_queued_locked(*other);
      } else {
        complete_locked(r, false, first ? cause : cat(where(c, r.chunk), ": connection abandoned: ", cause), 0);
        first = false;
      }
    }
    // Half-read responses make the stream useless; the fd itself is closed by the next open() or ~TcpSource.
    ::shutdown(c.sock.get(), SHUT_RDWR);
  }

  void send_queued_locked(Connection& c) {
    while (c.lost.empty() && !c.queued.empty() && c.in_flight.size() < static_cast<size_t>(options.pipeline_depth)) {
      Request r = c.queued.front();
      c.queued.pop_front();
      r.request_id = c.next_request_id++;
      const auto raw = net::encode_request({net::RequestType::get_chunk, r.request_id, store_name, static_cast<uint32_t>(r.chunk)});
      try {
        net::send_all(c.sock.get(), raw.data(), raw.size(), "sending GET_CHUNK");
      } catch (const Error& e) {
        c.queued.push_front(r);
        // Responses already on their way may still arrive, and the receiver will meet the
        // connection's real end (closed, reset) and report it; with none in flight, nobody will.
        c.lost = cat(where(c, r.chunk), ": ", e.what());
        if (c.in_flight.empty()) connection_lost_locked(c, c.lost);
        return;
      }
      r.sent_ns = now_ns();
      c.in_flight.push_back(r);
      c.work_cv.notify_one();
    }
  }

  void close_connections() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
      for (auto& c : connections) c->work_cv.notify_all();
    }
    for (auto& c : connections) {
      if (c->wake.valid()) {
        const uint64_t one = 1;
        // Should the eventfd refuse, a shut-down socket wakes the receiver's poll just as well.
        if (::write(c->wake.get(), &one, sizeof one) != sizeof one && c->sock.valid()) ::shutdown(c->sock.get(), SHUT_RDWR);
      }
    }
    for (auto& c : connections)
      if (c->receiver.joinable()) c->receiver.join();
    std::lock_guard lock(mutex);
    connections.clear();
    stopping = false;
    opened = false;
  }

  std::unique_ptr<Connection> connect_one(int index) const {
    auto c = std::make_unique<Connection>();
    c->index = index;
    c->wake.reset(check_sys(::eventfd(0, EFD_CLOEXEC), "creating the TCP source's wake eventfd"));
    c->sock = net::connect_tcp(peer, timeout_ns);
    // A peer that stops reading must not block a request send for ever.
    timeval tv{static_cast<time_t>(options.request_timeout_ms / 1000),
               static_cast<suseconds_t>((options.request_timeout_ms % 1000) * 1000)};
    check_sys(::setsockopt(c->sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), cat(url, ": setsockopt(SO_SNDTIMEO)"));
    return c;
  }

  void fetch_header(Connection& c, const StoreKey& expected) {
    const int64_t deadline_ns = now_ns() + timeout_ns;
    const auto raw = net::encode_request({net::RequestType::get_header, c.next_request_id++, store_name, 0});
    net::send_all(c.sock.get(), raw.data(), raw.size(), cat(url, ": sending GET_HEADER for ", store_name));
    std::string error;
    auto h = recv_response_header(c, deadline_ns, error);
    if (!h) throw Error(cat(url, ": header of ", store_name, ": ", error));
    if (h->status != net::Status::ok) {
      bool stream_ok = false;
      throw Error(cat(url, ": header of ", store_name, ": server replied ", recv_error_text(c, *h, deadline_ns, stream_ok)));
    }
    if (h->payload_bytes > net::kMaxStoreHeaderPayloadBytes)
      throw Error(cat(url, ": header of ", store_name, ": ", h->payload_bytes, " bytes, more than the limit of ",
                      net::kMaxStoreHeaderPayloadBytes));
    std::vector<std::byte> payload(h->payload_bytes);
    uint32_t crc = 0;
    if (auto why = recv_exact(c, payload.data(), payload.size(), deadline_ns, &crc, false))
      throw Error(cat(url, ": header of ", store_name, ": ", *why));
    if (crc != h->crc32c) throw Error(cat(url, ": header of ", store_name, ": checksum mismatch"));
    net::StoreHeaderParse parsed = net::parse_store_header(payload);
    if (!parsed.header) throw Error(cat(url, ": header of ", store_name, ": ", parsed.error));
    validate_store_key(*parsed.header, expected, cat(url, "/", store_name));
    header = std::move(*parsed.header);
  }
};

TcpSource::TcpSource(const std::string& url, TcpSourceOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->peer = net::parse_tcp_url(url);
  if (options.pipeline_depth < 1 || options.pipeline_depth > kMaxPipelineDepth)
    throw UsageError(cat("pipeline depth ", options.pipeline_depth, " outside 1..", kMaxPipelineDepth));
  if (options.connections < 1 || options.connections > kMaxConnections)
    throw UsageError(cat("TCP connections ", options.connections, " outside 1..", kMaxConnections));
  if (options.request_timeout_ms <= 0)
    throw UsageError(cat("request timeout ", options.request_timeout_ms, " ms is not positive"));
  impl_->url = cat("tcp://", net::format_host_port(impl_->peer));
  impl_->options = options;
  impl_->timeout_ns = options.request_timeout_ms * 1'000'000;
}

TcpSource::~TcpSource() { impl_->close_connections(); }

std::string TcpSource::describe() const {
  const TcpSourceOptions& o = impl_->options;
  std::string text = o.connections > 1 ? cat(impl_->url, " (", o.connections, " connections, pipeline ", o.pipeline_depth, " each")
                                       : cat(impl_->url, " (pipeline ", o.pipeline_depth);
  if (impl_->options.throttle) text += cat(", client throttle ", impl_->options.throttle->describe());
  return text + ")";
}

const StoreHeader& TcpSource::open(const StoreKey& expected) {
  Impl& m = *impl_;
  if (outstanding() > 0) throw Error(cat(m.url, ": open() while ", outstanding(), " chunks of the last load are outstanding"));
  m.close_connections();
  {
    std::lock_guard lock(m.mutex);
    m.done.clear();
  }
  m.store_name = expected.file_name();
  // Connected and checked before any receiver starts: a failure leaves no thread behind.
  std::vector<std::unique_ptr<Connection>> fresh;
  for (int i = 0; i < m.options.connections; ++i) fresh.push_back(m.connect_one(i));
  m.fetch_header(*fresh.front(), expected);
  std::lock_guard lock(m.mutex);
  m.connections = std::move(fresh);
  m.opened = true;
  for (auto& c : m.connections) c->receiver = std::thread([&m, conn = c.get()] { m.receive_loop(*conn); });
  return m.header;
}

void TcpSource::submit(int chunk, std::byte* dst) {
  Impl& m = *impl_;
  if (!m.opened) throw Error(cat(m.url, ": submit(", chunk, ") before a successful open()"));
  Request r;
  r.chunk = chunk;
  r.dst = dst;
  r.submit_ns = now_ns();
  std::lock_guard lock(m.mutex);
  ++m.outstanding;
  if (chunk < 0 || static_cast<size_t>(chunk) >= m.header.chunks.size()) {
    m.complete_locked(r, false, cat(m.where(chunk), ": no such chunk (the store has ", m.header.chunks.size(), ")"), 0);
  } else if (Connection* c = m.least_loaded_locked()) {
    c->queued.push_back(r);
    m.send_queued_locked(*c);
  } else {
    m.complete_locked(r, false, cat(m.where(chunk), ": connection lost earlier: ", m.connections.front()->lost), 0);
  }
  m.done_cv.notify_all();
}

std::vector<ChunkRead> TcpSource::reap(bool wait) {
  Impl& m = *impl_;
  std::unique_lock lock(m.mutex);
  if (wait) m.done_cv.wait(lock, [&] { return !m.done.empty() || m.outstanding == 0; });
  std::vector<ChunkRead> out;
  out.swap(m.done);
  m.outstanding -= static_cast<int>(out.size());
  return out;
}

int TcpSource::outstanding() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->outstanding;
}

}  // namespace cake
