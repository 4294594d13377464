#include "common/load_lane_work.hpp"

#include <atomic>

namespace cake {

namespace {
// Process-wide: the lanes of one request share the process's cores, whatever object runs them.
std::atomic<int> g_working{0};
}  // namespace

LoadLaneWork::LoadLaneWork() noexcept { g_working.fetch_add(1, std::memory_order_relaxed); }

LoadLaneWork::~LoadLaneWork() { g_working.fetch_sub(1, std::memory_order_relaxed); }

int load_lane_threads_working() noexcept { return g_working.load(std::memory_order_relaxed); }

}  // namespace cake
