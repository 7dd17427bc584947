#include "gradsweep/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gs {

namespace {
// numpy's default ("linear"): position p*(n-1) between order statistics.
double quantile_sorted(const std::vector<double>& v, size_t n, double p) {
    const double pos = p * static_cast<double>(n - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, n - 1);
    const double frac = pos - static_cast<double>(lo);
    return v[lo] + (v[hi] - v[lo]) * frac;
}
}  // namespace

Summary summarize(std::vector<double>& values) {
    Summary s;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Non-finite values are counted, then kept out of every other statistic, so
    // one exploding network never poisons the others' aggregates.
    auto finite_end = std::partition(values.begin(), values.end(), [](double x) { return std::isfinite(x); });
    const size_t n = static_cast<size_t>(finite_end - values.begin());
    s.n = n;
    s.n_nonfinite = values.size() - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return s;
    }
    std::sort(values.begin(), finite_end);
    double sum = 0, log_sum = 0;
    size_t n_pos = 0;
    for (size_t i = 0; i < n; ++i) {
        const double x = values[i];
        sum += x;
        if (x == 0) ++s.n_zero;
        if (x > 0) { log_sum += std::log(x); ++n_pos; }
    }
    s.mean = sum / static_cast<double>(n);
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += (values[i] - s.mean) * (values[i] - s.mean);
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;  // sample std (ddof = 1)
    s.min = values[0];
    s.max = values[n - 1];
    s.q05 = quantile_sorted(values, n, 0.05);
    s.median = quantile_sorted(values, n, 0.5);
    s.q95 = quantile_sorted(values, n, 0.95);
    s.geomean = n_pos ? std::exp(log_sum / static_cast<double>(n_pos)) : nan;
    return s;
}

}  // namespace gs
