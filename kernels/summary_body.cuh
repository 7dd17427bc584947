// gs::Summary of one sorted segment, computed by a group of P threads (a CUDA
// block on the device; P std::threads in the host emulation test). Same semantics
// as gs::summarize (src/aggregate/stats.cpp): statistics over the finite values only,
// quantiles by linear interpolation between order statistics (numpy's default),
// sample std (ddof = 1; NaN for one value), geomean over positive finite values (NaN when none),
// n_nonfinite and n_zero counted. Sums run in a fixed tree order (deterministic),
// not the CPU's left-to-right order, so they can differ in the last bits.
//
// Precondition: the caller mapped every non-finite value to +inf before sorting
// ascending, so the n finite values are v[0 .. n).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "gradsweep/hd.hpp"
#include "gradsweep/stats.hpp"

namespace gs::kern {

inline constexpr int kSummarySums = 5;  // count, sum, zeros, positives, sum log

// Fixed-order group sum of K values per thread; red holds K*P doubles.
template <int K, class Sync>
GS_HD void group_sum(double* red, int t, int P, Sync& sync, double (&x)[K]) {
    if (P == 1) return;
    for (int k = 0; k < K; ++k) red[k * P + t] = x[k];
    sync.sync();
    for (int s = P / 2; s > 0; s >>= 1) {
        if (t < s)
            for (int k = 0; k < K; ++k) red[k * P + t] += red[k * P + t + s];
        sync.sync();
    }
    for (int k = 0; k < K; ++k) x[k] = red[k * P];
    sync.sync();
}

GS_HD double quantile_sorted_hd(const double* v, uint64_t n, double p) {
    const double pos = p * static_cast<double>(n - 1);
    const uint64_t lo = static_cast<uint64_t>(std::floor(pos));
    const uint64_t hi = lo + 1 < n ? lo + 1 : n - 1;
    const double frac = pos - static_cast<double>(lo);
    return v[lo] + (v[hi] - v[lo]) * frac;
}

template <class Sync>
GS_HD void summary_body(const double* v, uint64_t n_total, int t, int P, double* red, Sync& sync, Summary* out) {
    const double inf = std::numeric_limits<double>::infinity();
    double acc[kSummarySums] = {0, 0, 0, 0, 0};
    for (uint64_t k = t; k < n_total; k += P) {
        const double x = v[k];
        if (!(x < inf)) continue;  // the +inf that stand for non-finite values
        acc[0] += 1;
        acc[1] += x;
        if (x == 0) acc[2] += 1;
        if (x > 0) {
            acc[3] += 1;
            acc[4] += std::log(x);
        }
    }
    group_sum<kSummarySums>(red, t, P, sync, acc);
    const uint64_t n = static_cast<uint64_t>(acc[0]);
    const double mean = n ? acc[1] / static_cast<double>(n) : 0.0;
    double dev[1] = {0};
    for (uint64_t k = t; k < n; k += P) dev[0] += (v[k] - mean) * (v[k] - mean);
    group_sum<1>(red, t, P, sync, dev);
    if (t != 0) return;
    Summary s;
    s.n = n;
    s.n_nonfinite = n_total - n;
    if (n == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        *out = s;
        return;
    }
    s.n_zero = static_cast<uint64_t>(acc[2]);
    s.mean = mean;
    s.std = n > 1 ? std::sqrt(dev[0] / static_cast<double>(n - 1)) : std::numeric_limits<double>::quiet_NaN();
    s.min = v[0];
    s.max = v[n - 1];
    s.q05 = quantile_sorted_hd(v, n, 0.05);
    s.median = quantile_sorted_hd(v, n, 0.5);
    s.q95 = quantile_sorted_hd(v, n, 0.95);
    s.geomean = acc[3] > 0 ? std::exp(acc[4] / acc[3]) : std::numeric_limits<double>::quiet_NaN();
    *out = s;
}

}  // namespace gs::kern
