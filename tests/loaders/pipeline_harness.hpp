// Drives a LoadPipeline in tests: claims from a list, and the chunk reports it delivers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "loaders/load_pipeline.hpp"

namespace cake::test {

// Claims the chunks of `order` in turn; stops after `limit` of them.
struct Claimer {
  std::vector<int> order;
  size_t next = 0;
  size_t limit = SIZE_MAX;
  std::optional<int> operator()() {
    if (next >= order.size() || next >= limit) return std::nullopt;
    return order[next++];
  }
};

// Every chunk's report; a second report of a chunk counts in `duplicates`.
struct Reports {
  std::map<int, LoadedChunk> by_chunk;
  int duplicates = 0;
  void operator()(const LoadedChunk& c) {
    if (!by_chunk.emplace(c.chunk, c).second) ++duplicates;
  }
};

}  // namespace cake::test
