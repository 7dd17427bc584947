#include "gradsweep/stats.hpp"

#include <algorithm>
#include <cstddef>
#include <cmath>
#include <limits>

namespace gs {

namespace {
// Quantiles with numpy's default ("linear"): position p*(n-1) between order
// statistics. v[from, n) holds the values not yet placed; on return v[lo] is the
// lo-th smallest and every value after it is >= it, so the next (larger) quantile
// can continue from lo + 1. O(n) per quantile instead of a full sort.
double quantile_select(std::vector<double>& v, size_t n, size_t& from, double p) {
    const double pos = p * static_cast<double>(n - 1);
    const size_t lo = std::max(from, static_cast<size_t>(std::floor(pos)));
    const double frac = pos - std::floor(pos);
    std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(lo),
                     v.begin() + static_cast<std::ptrdiff_t>(n));
    from = lo;
    const double a = v[lo];
    if (lo + 1 >= n) return a;
    const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo + 1), v.begin() + static_cast<std::ptrdiff_t>(n));
    return a + (b - a) * frac;
}
}  // namespace

Summary summarize(std::vector<double>& values) {
    Summary s;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Sums run over the values in the order given (seed order everywhere in the
    // engine), so they are fixed by the input alone. Non-finite values are
    // counted, then kept out of every other statistic, so one exploding network
    // never poisons the others' aggregates.
    size_t n = 0, n_pos = 0;
    double sum = 0, log_sum = 0;
    for (const double x : values) {
        if (!std::isfinite(x)) continue;
        ++n;
        sum += x;
        if (x == 0) ++s.n_zero;
        if (x > 0) {
            log_sum += std::log(x);
            ++n_pos;
        }
    }
    s.n = n;
    s.n_nonfinite = values.size() - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return s;
    }
    s.mean = sum / static_cast<double>(n);
    double ss = 0;
    for (const double x : values)
        if (std::isfinite(x)) ss += (x - s.mean) * (x - s.mean);
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;  // sample std (ddof = 1)
    s.geomean = n_pos ? std::exp(log_sum / static_cast<double>(n_pos)) : nan;
    // Order statistics: only these need the values rearranged.
    std::partition(values.begin(), values.end(), [](double x) { return std::isfinite(x); });
    const auto [mn, mx] = std::minmax_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n));
    s.min = *mn;
    s.max = *mx;
    size_t from = 0;
    s.q05 = quantile_select(values, n, from, 0.05);
    s.median = quantile_select(values, n, from, 0.5);
    s.q95 = quantile_select(values, n, from, 0.95);
    return s;
}

}  // namespace gs
