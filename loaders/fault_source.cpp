#include "loaders/fault_source.hpp"

#include "common/error.hpp"

namespace cake {

FaultInjectingSource::FaultInjectingSource(std::unique_ptr<KvSource> inner, std::set<int> failing_chunks,
                                           std::string reason)
    : inner_(std::move(inner)), failing_chunks_(std::move(failing_chunks)), reason_(std::move(reason)) {
  if (!inner_) throw Error("fault injection needs a source to wrap");
}

void FaultInjectingSource::fail_open(std::string reason) { open_fault_ = std::move(reason); }

std::string FaultInjectingSource::describe() const {
  std::string chunks;
  for (int c : failing_chunks_) chunks += cat(chunks.empty() ? "" : ",", c);
  return cat(inner_->describe(), " with injected faults (", open_fault_ ? cat("open: ", *open_fault_, "; ") : "",
             "chunks {", chunks, "}: ", reason_, ")");
}

const StoreHeader& FaultInjectingSource::open(const StoreKey& expected) {
  if (open_fault_) throw Error(cat(*open_fault_, " opening ", inner_->describe()));
  return inner_->open(expected);
}

HostResidentChunks* FaultInjectingSource::host_resident() {
  resident_ = inner_->host_resident();
  return resident_ ? this : nullptr;
}

PieceSource* FaultInjectingSource::piece_source() {
  pieces_ = inner_->piece_source();
  return pieces_ ? this : nullptr;
}

std::vector<PieceLanded> FaultInjectingSource::take_pieces(int64_t wait_ns) {
  std::vector<PieceLanded> landed = pieces_->take_pieces(wait_ns);
  for (PieceLanded& p : landed) {
    if (!p.ok || !failing_chunks_.contains(p.read.chunk)) continue;
    p.ok = false;
    p.error = cat(reason_, " in chunk ", p.read.chunk, " of ", inner_->describe());
  }
  return landed;
}

std::string FaultInjectingSource::forced_failure(int chunk) const {
  if (!failing_chunks_.contains(chunk)) return resident_->forced_failure(chunk);
  return cat(reason_, " in chunk ", chunk, " of ", inner_->describe());
}

std::vector<ChunkRead> FaultInjectingSource::reap(bool wait) {
  std::vector<ChunkRead> done = inner_->reap(wait);
  fail_chosen(done);
  return done;
}

std::vector<ChunkRead> FaultInjectingSource::reap_progress(int64_t wait_ns) {
  std::vector<ChunkRead> done = inner_->reap_progress(wait_ns);
  fail_chosen(done);
  return done;
}

void FaultInjectingSource::fail_chosen(std::vector<ChunkRead>& done) const {
  for (ChunkRead& r : done) {
    if (!r.ok || !failing_chunks_.contains(r.chunk)) continue;
    r.ok = false;
    r.bytes = 0;
    r.error = cat(reason_, " in chunk ", r.chunk, " of ", inner_->describe());
  }
}

}  // namespace cake
