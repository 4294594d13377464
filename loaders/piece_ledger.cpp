#include "loaders/piece_ledger.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "loaders/chunk_checksum.hpp"
#include "loaders/store_format.hpp"

namespace cake {

PieceLedger::PieceLedger(int pool_pieces, uint64_t piece_bytes) : pool_pieces_(pool_pieces), piece_bytes_(piece_bytes) {
  if (pool_pieces < 1) throw InternalError(cat("piece ledger: ", pool_pieces, " staging pieces (need at least 1)"));
  if (piece_bytes == 0 || piece_bytes % kStoreAlignment != 0)
    throw InternalError(cat("piece ledger: piece size ", piece_bytes, " is not a positive multiple of 4 KiB"));
  lent_.assign(static_cast<size_t>(pool_pieces), Lent{});
  for (int i = pool_pieces; i-- > 0;) free_.push_back(i);  // piece 0 handed out first
}

void PieceLedger::add_chunk(int chunk, uint64_t payload_bytes, uint32_t expected_crc32c, std::string where,
                            bool check_crc) {
  if (chunks_.contains(chunk)) throw InternalError(cat("piece ledger: chunk ", chunk, " added while still active"));
  Chunk& c = chunks_[chunk];
  c.payload = payload_bytes;
  c.expected_crc = expected_crc32c;
  c.check_crc = check_crc || payload_bytes == 0;
  c.where = std::move(where);
  c.sums.reset(payload_bytes);
  if (payload_bytes > 0) cut_order_.push_back(chunk);
  else maybe_finish(chunk);  // an empty payload is complete as it stands
}

std::optional<PieceJob> PieceLedger::next_job() {
  if (free_.empty() || cut_order_.empty()) return std::nullopt;
  const int chunk = cut_order_.front();
  Chunk& c = chunks_.at(chunk);
  PieceJob job;
  job.chunk = chunk;
  job.piece = free_.back();
  free_.pop_back();
  job.offset = c.cut;
  lent_[static_cast<size_t>(job.piece)] = {PieceState::reading, chunk, job.offset};
  job.bytes = std::min(piece_bytes_, c.payload - c.cut);
  c.cut += job.bytes;
  ++c.reading;
  ++reading_;
  if (c.cut == c.payload) cut_order_.pop_front();
  return job;
}

PieceLedger::Chunk& PieceLedger::chunk_of(const PieceJob& job, PieceState expected, const char* what) {
  const auto it = chunks_.find(job.chunk);
  const bool lent = job.piece >= 0 && job.piece < pool_pieces_ &&
                    lent_[static_cast<size_t>(job.piece)].state == expected &&
                    lent_[static_cast<size_t>(job.piece)].chunk == job.chunk &&
                    lent_[static_cast<size_t>(job.piece)].offset == job.offset;
  if (it == chunks_.end() || !lent)
    throw InternalError(cat("piece ledger: ", what, " for bytes ", job.offset, " of chunk ", job.chunk,
                            " in staging piece ", job.piece, ", which does not hold them in that state"));
  return it->second;
}

void PieceLedger::release(int piece) {
  lent_[static_cast<size_t>(piece)] = Lent{};
  free_.push_back(piece);
}

bool PieceLedger::landed(const PieceJob& job, bool ok, uint32_t crc32c, const std::string& error) {
  Chunk& c = chunk_of(job, PieceState::reading, "a read landed");
  --c.reading;
  --reading_;
  bool copy = false;
  if (!ok) {
    if (c.failure.empty()) fail(job.chunk, error.empty() ? cat("reading chunk ", job.chunk, " failed") : error);
  } else if (c.failure.empty()) {
    c.sums.add({job.chunk, job.offset, job.bytes, crc32c});
    copy = true;
  }
  if (copy) {
    lent_[static_cast<size_t>(job.piece)].state = PieceState::copying;
    ++c.copying;
    ++copying_;
  } else {
    release(job.piece);
  }
  maybe_finish(job.chunk);
  return copy;
}

void PieceLedger::copied(const PieceJob& job, const std::string& error) {
  Chunk& c = chunk_of(job, PieceState::copying, "a copy finished");
  --c.copying;
  --copying_;
  release(job.piece);
  if (!error.empty()) fail(job.chunk, error);
  else c.copied += job.bytes;
  maybe_finish(job.chunk);
}

void PieceLedger::fail(int chunk, std::string error) {
  const auto it = chunks_.find(chunk);
  if (it == chunks_.end() || !it->second.failure.empty()) return;
  it->second.failure = error.empty() ? cat("chunk ", chunk, " failed") : std::move(error);
  std::erase(cut_order_, chunk);  // its remaining bytes are never read
  maybe_finish(chunk);
}

void PieceLedger::maybe_finish(int chunk) {
  const auto it = chunks_.find(chunk);
  if (it == chunks_.end()) return;
  Chunk& c = it->second;
  if (c.reading > 0 || c.copying > 0) return;  // bytes still land in, or leave, staging for it
  if (c.failure.empty() && c.copied < c.payload) return;
  FinishedChunk f;
  f.chunk = chunk;
  f.error = std::move(c.failure);
  if (f.error.empty() && c.check_crc) {
    std::string problem;
    const uint32_t crc = c.payload == 0 ? 0 : c.sums.combined(problem);
    if (problem.empty()) {
      ChunkEntry entry;
      entry.bytes = c.payload;
      entry.crc32c = c.expected_crc;
      problem = checksum_problem(entry, crc, chunk, c.where);
    } else {
      problem = cat("chunk ", chunk, " of ", c.where, ": ", problem);
    }
    f.error = std::move(problem);
  }
  f.ok = f.error.empty();
  finished_.push_back(std::move(f));
  chunks_.erase(it);
}

std::vector<FinishedChunk> PieceLedger::take_finished() {
  std::vector<FinishedChunk> out;
  out.swap(finished_);
  return out;
}

}  // namespace cake
