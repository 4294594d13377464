// The bookkeeping of the load lane's byte pipeline, apart from any I/O or GPU: claimed chunks are
// cut into pieces (payload ranges of at most one staging piece), each piece borrows one of a
// fixed pool of staging pieces while it is read and copied, and returns it when its copy is done.
// A chunk is finished when every byte handed out came back and was copied, and its pieces'
// checksums joined match the stored one; a chunk that fails (a read, a copy, its checksum) stops
// being cut, waits for its pieces still out, and fails alone. Each chunk finishes exactly once.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loaders/checksum_pool.hpp"

namespace cake {

struct PieceJob {
  int chunk = -1;
  int piece = -1;       // index into the staging pool
  uint64_t offset = 0;  // within the chunk's payload; a multiple of the piece size
  uint64_t bytes = 0;   // payload bytes, at most the piece size
};

struct FinishedChunk {
  int chunk = -1;
  bool ok = false;
  std::string error;  // why it failed (the first reason), naming the chunk
};

class PieceLedger {
 public:
  // `pool_pieces` staging pieces (at least 1) of `piece_bytes` each (a positive multiple of 4 KiB).
  PieceLedger(int pool_pieces, uint64_t piece_bytes);

  // A claimed chunk joins, behind the chunks already active: its payload is cut after theirs.
  // `expected_crc32c` and `where` (the store path) serve the final check. `check_crc` false: the
  // pieces carry no checksums (the caller verifies the chunk on the GPU after it finishes here),
  // and the chunk finishes ok once every byte is copied; an empty payload is still checked.
  void add_chunk(int chunk, uint64_t payload_bytes, uint32_t expected_crc32c, std::string where, bool check_crc = true);
  bool active(int chunk) const { return chunks_.contains(chunk); }
  int active_chunks() const { return static_cast<int>(chunks_.size()); }
  // Whether every active chunk has handed out all its bytes (a newly claimed one would be read next).
  bool all_cut() const { return cut_order_.empty(); }
  int free_pieces() const { return static_cast<int>(free_.size()); }
  int pool_pieces() const { return pool_pieces_; }
  uint64_t piece_bytes() const { return piece_bytes_; }
  int pieces_reading() const { return reading_; }
  int pieces_copying() const { return copying_; }

  // The next piece to read: the oldest active chunk's next bytes, in a free staging piece;
  // nullopt when no staging piece is free or no chunk has bytes left to cut.
  std::optional<PieceJob> next_job();
  // A read came back. Returns true when its bytes must now be copied (then copied() follows);
  // false when the piece is done with (a failed read, or its chunk failed meanwhile): its
  // staging piece is free again at once.
  bool landed(const PieceJob& job, bool ok, uint32_t crc32c, const std::string& error);
  // The copy of a landed piece finished (`error` empty) or failed: its staging piece is free again.
  void copied(const PieceJob& job, const std::string& error = {});
  // Fails a chunk from outside (a forced failure, a copy that could not be issued); no-op for a
  // chunk already failed or not active.
  void fail(int chunk, std::string error);
  // Chunks that finished since the last call, in the order they finished; each exactly once.
  std::vector<FinishedChunk> take_finished();

 private:
  enum class PieceState { free, reading, copying };
  struct Lent {
    PieceState state = PieceState::free;
    int chunk = -1;
    uint64_t offset = 0;
  };
  struct Chunk {
    uint64_t payload = 0;
    uint64_t cut = 0;      // [0, cut) handed out
    uint64_t copied = 0;   // bytes whose copies finished
    int reading = 0;
    int copying = 0;
    uint32_t expected_crc = 0;
    bool check_crc = true;
    std::string where;
    PieceChecksums sums;
    std::string failure;
  };
  Chunk& chunk_of(const PieceJob& job, PieceState expected, const char* what);
  void release(int piece);
  void maybe_finish(int chunk);

  int pool_pieces_;
  uint64_t piece_bytes_;
  std::vector<int> free_;          // free staging pieces
  std::vector<Lent> lent_;         // per staging piece: what it holds now
  std::map<int, Chunk> chunks_;    // active
  std::deque<int> cut_order_;      // active chunks with bytes left to cut, oldest first
  int reading_ = 0;
  int copying_ = 0;
  std::vector<FinishedChunk> finished_;
};

}  // namespace cake
