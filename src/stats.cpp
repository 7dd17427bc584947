#include "gradsweep/stats.hpp"

#include <algorithm>
#include <cstddef>
#include <cmath>
#include <limits>

namespace gs {

namespace {
// numpy's default ("linear") quantile at position pos = p*(n-1): v[lo] + (v[lo+1] - v[lo]) * frac,
// lo = floor(pos), from order statistics found by selection (O(n)) instead of a sort.
double interpolate(double a, double b, double pos) { return a + (b - a) * (pos - std::floor(pos)); }
}  // namespace

Summary summarize(double* values, size_t size) {
    Summary s;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Sums run over the values in the order given (seed order everywhere in the
    // engine), so they are fixed by the input alone. Non-finite values are
    // counted, then kept out of every other statistic, so one exploding network
    // never poisons the others' aggregates.
    size_t n = 0, n_pos = 0;
    double sum = 0, log_sum = 0;
    for (size_t i = 0; i < size; ++i) {
        const double x = values[i];
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
    s.n_nonfinite = size - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return s;
    }
    s.mean = sum / static_cast<double>(n);
    double ss = 0;
    for (size_t i = 0; i < size; ++i)
        if (std::isfinite(values[i])) ss += (values[i] - s.mean) * (values[i] - s.mean);
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;  // sample std (ddof = 1)
    s.geomean = n_pos ? std::exp(log_sum / static_cast<double>(n_pos)) : nan;

    // Order statistics: the finite values to the front, then selection. The median
    // first splits them in halves; q05 is then found in the lower half and q95 in
    // the upper one (about 3n element visits in all).
    double* v = values;
    std::partition(v, v + size, [](double x) { return std::isfinite(x); });
    const auto [mn, mx] = std::minmax_element(v, v + n);
    s.min = *mn;
    s.max = *mx;
    auto pos_of = [n](double p) { return p * static_cast<double>(n - 1); };
    auto lo_of = [](double pos) { return static_cast<size_t>(std::floor(pos)); };
    const double pm = pos_of(0.5), p05 = pos_of(0.05), p95 = pos_of(0.95);
    const size_t m = lo_of(pm), l05 = lo_of(p05), l95 = lo_of(p95);
    std::nth_element(v, v + m, v + n);  // v[m] in place; below it <=, above it >=
    const double vm = v[m];
    const double vm1 = m + 1 < n ? *std::min_element(v + m + 1, v + n) : vm;
    s.median = interpolate(vm, vm1, pm);
    // q05 from [0, m]: its order statistics l05 and l05 + 1 (<= m) are both there.
    if (l05 == m) {
        s.q05 = interpolate(vm, vm1, p05);
    } else {
        std::nth_element(v, v + l05, v + m);
        const double a = v[l05];
        const double b = *std::min_element(v + l05 + 1, v + m + 1);
        s.q05 = interpolate(a, b, p05);
    }
    // q95 from [m, n): order statistics l95 >= m and l95 + 1.
    if (l95 == m) {
        s.q95 = interpolate(vm, vm1, p95);
    } else {
        std::nth_element(v + m + 1, v + l95, v + n);
        const double a = v[l95];
        const double b = l95 + 1 < n ? *std::min_element(v + l95 + 1, v + n) : a;
        s.q95 = interpolate(a, b, p95);
    }
    return s;
}

Summary summarize(std::vector<double>& values) { return summarize(values.data(), values.size()); }

}  // namespace gs
