#include "common/percentile.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"

namespace cake {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) throw InternalError("percentile of no values");
  if (!(p >= 0 && p <= 100)) throw InternalError(cat("percentile ", p, " is outside [0, 100]"));
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (values[above] - values[below]) * (rank - static_cast<double>(below));
}

}  // namespace cake
