// A KvSource decorator that fails chosen chunks (or the open) with a given reason, so the
// engine's recovery and the CLI's --inject-fault can be exercised on a healthy store.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "loaders/kv_source.hpp"

namespace cake {

class FaultInjectingSource : public KvSource, private HostResidentChunks, private PieceSource {
 public:
  // Chunks in `failing_chunks` are read for real (same timing) and then reported failed with
  // "<reason> in chunk <i> of <inner describe()>".
  FaultInjectingSource(std::unique_ptr<KvSource> inner, std::set<int> failing_chunks,
                       std::string reason = "injected EIO");
  // From now on open() throws "<reason> opening <inner describe()>" without opening the store.
  void fail_open(std::string reason);

  std::string describe() const override;
  const StoreHeader& open(const StoreKey& expected) override;
  void register_buffers(std::span<const std::span<std::byte>> buffers) override { inner_->register_buffers(buffers); }
  void submit(int chunk, std::byte* dst) override { inner_->submit(chunk, dst); }
  std::vector<ChunkRead> reap(bool wait) override;
  int outstanding() const override { return inner_->outstanding(); }
  std::vector<LandedRange> take_landed() override { return inner_->take_landed(); }
  bool reports_progress() const override { return inner_->reports_progress(); }
  std::vector<ChunkRead> reap_progress(int64_t wait_ns) override;
  // The inner source's resident payloads, with the failing chunks failed by forced_failure().
  HostResidentChunks* host_resident() override;
  // The inner source's pieces, those of the failing chunks failed as they land.
  PieceSource* piece_source() override;

  KvSource& inner() { return *inner_; }

 private:
  const std::byte* payload(int chunk) const override { return resident_->payload(chunk); }
  bool page_locked() const override { return resident_->page_locked(); }
  Throttle* throttle() const override { return resident_->throttle(); }
  uint64_t piece_bytes() const override { return resident_->piece_bytes(); }
  std::string location() const override { return resident_ ? resident_->location() : pieces_->location(); }
  std::string forced_failure(int chunk) const override;
  void read_piece(const PieceRead& piece) override { pieces_->read_piece(piece); }
  std::vector<PieceLanded> take_pieces(int64_t wait_ns) override;
  int pieces_in_flight() const override { return pieces_->pieces_in_flight(); }
  int readers() const override { return pieces_->readers(); }
  bool scatters() const override { return pieces_->scatters(); }
  // (HostResidentChunks::location() serves both: the resident or the piece source's.)
  void fail_chosen(std::vector<ChunkRead>& done) const;

  HostResidentChunks* resident_ = nullptr;
  PieceSource* pieces_ = nullptr;
  std::unique_ptr<KvSource> inner_;
  std::set<int> failing_chunks_;
  std::string reason_;
  std::optional<std::string> open_fault_;
};

}  // namespace cake
