#include "results/mann_whitney.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.hpp"

namespace cake {
namespace {

// Counts of arrangements giving each U = 0..n1*n2: the coefficients of the Gaussian binomial
// [n1+n2 choose n1]_q = prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i).
std::vector<double> u_counts(int n1, int n2) {
  const size_t degree = static_cast<size_t>(n1) * static_cast<size_t>(n2);
  std::vector<double> c(degree + 1, 0.0);
  c[0] = 1;
  for (int i = 1; i <= n1; ++i) {
    const size_t up = static_cast<size_t>(n2 + i), down = static_cast<size_t>(i);
    for (size_t k = degree; k >= up; --k) c[k] -= c[k - up];  // * (1 - q^up)
    for (size_t k = down; k <= degree; ++k) c[k] += c[k - down];  // / (1 - q^down)
  }
  return c;
}

double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

}  // namespace

double mann_whitney_min_p(int n1, int n2) {
  if (n1 <= 0 || n2 <= 0) return 1;
  // C(n1+n2, n1) via logs keeps large sizes finite.
  const double log_c = std::lgamma(n1 + n2 + 1.0) - std::lgamma(n1 + 1.0) - std::lgamma(n2 + 1.0);
  return std::min(1.0, 2.0 * std::exp(-log_c));
}

MannWhitneyResult mann_whitney_u(std::span<const double> x, std::span<const double> y, MwuMethod method) {
  if (x.empty() || y.empty()) throw InternalError("Mann-Whitney U needs at least one value on each side");
  const size_t n1 = x.size(), n2 = y.size(), n = n1 + n2;

  struct Tagged {
    double value;
    bool from_x;
  };
  std::vector<Tagged> pooled;
  pooled.reserve(n);
  for (double v : x) pooled.push_back({v, true});
  for (double v : y) pooled.push_back({v, false});
  for (const auto& t : pooled)
    if (std::isnan(t.value)) throw Error("Mann-Whitney U: a sample holds NaN");
  std::sort(pooled.begin(), pooled.end(), [](const Tagged& a, const Tagged& b) { return a.value < b.value; });

  // Average ranks over tie runs; tie_term = sum(t^3 - t) over runs of length t.
  double rank_sum_x = 0, tie_term = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && pooled[j + 1].value == pooled[i].value) ++j;
    const double run = static_cast<double>(j - i + 1);
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k)
      if (pooled[k].from_x) rank_sum_x += avg_rank;
    tie_term += run * run * run - run;
    i = j + 1;
  }

  MannWhitneyResult r;
  const double dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2), dn = static_cast<double>(n);
  r.u = rank_sum_x - dn1 * (dn1 + 1) / 2.0;
  r.ties = tie_term > 0;
  const double u_max = std::max(r.u, dn1 * dn2 - r.u);  // the larger of U1, U2: two-sided uses its upper tail

  const bool exact = method == MwuMethod::exact ||
                     (method == MwuMethod::automatic && !r.ties && static_cast<int>(n) <= kMwuExactMaxTotal);
  r.exact = exact;
  if (exact) {
    const std::vector<double> counts = u_counts(static_cast<int>(n1), static_cast<int>(n2));
    double total = 0, upper = 0;
    // With ties U can be a half-integer; counting every U' >= u_max keeps it conservative.
    for (size_t k = 0; k < counts.size(); ++k) {
      total += counts[k];
      if (static_cast<double>(k) >= u_max) upper += counts[k];
    }
    r.p_value = std::min(1.0, 2.0 * upper / total);
    return r;
  }
  const double mu = dn1 * dn2 / 2.0;
  const double sigma = std::sqrt(dn1 * dn2 / 12.0 * ((dn + 1) - tie_term / (dn * (dn - 1))));
  if (!(sigma > 0)) {  // every value equal: no evidence of a difference
    r.p_value = 1;
    return r;
  }
  const double z = (u_max - mu - 0.5) / sigma;
  r.p_value = std::min(1.0, 2.0 * normal_sf(z));
  return r;
}

}  // namespace cake
