#include "gradsweep/growth_rate.hpp"

#include <cmath>
#include <limits>

namespace gs {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Least-squares weights of the slope against t_l = depth - 1 - l (layers between
// layer l and the output): slope = sum_l w_l y_l.
std::vector<long double> slope_weights(int64_t D, int64_t first, int64_t last) {
    const int64_t n = last - first + 1;
    long double tbar = 0;
    for (int64_t l = first; l <= last; ++l) tbar += D - 1 - l;
    tbar /= n;
    long double sxx = 0;
    for (int64_t l = first; l <= last; ++l) sxx += (D - 1 - l - tbar) * (D - 1 - l - tbar);
    std::vector<long double> w;
    for (int64_t l = first; l <= last; ++l) w.push_back((D - 1 - l - tbar) / sxx);
    return w;
}

GrowthRate undefined(GrowthRate g, GrowthStatus why) {
    g.rate = g.stderr_ = g.depth_scale = kNaN;
    g.status = why;
    return g;
}

}  // namespace

const char* growth_reason(GrowthStatus s) {
    switch (s) {
        case GrowthStatus::ok: return "";
        case GrowthStatus::few_layers: return "fewer than 2 hidden layers (depth < 4)";
        case GrowthStatus::few_seeds: return "fewer than 2 seeds with finite gradients in every fitted layer";
        case GrowthStatus::zero_layer: return "a fitted layer's values are all exactly 0";
        case GrowthStatus::not_computed: return "not computed";
    }
    return "unknown";
}

void growth_layers(int depth, int64_t& first, int64_t& last) {
    first = 1;
    last = depth - 2;
}

GrowthRate fit_growth_rate(int depth, const double* const* num, const double* const* den, uint64_t count) {
    GrowthRate g;
    g.status = GrowthStatus::ok;
    growth_layers(depth, g.first_layer, g.last_layer);
    const int64_t first = g.first_layer, last = g.last_layer;
    if (last - first + 1 < 2) return undefined(g, GrowthStatus::few_layers);
    // long double: squares of float64 gradients leave double's range above ~1e154.
    auto value = [&](int64_t l, uint64_t s) {
        const long double x = den ? static_cast<long double>(num[l][s]) / den[l][s] : static_cast<long double>(num[l][s]);
        return x * x;
    };
    // Which seeds count, decided once: a seed with a non-finite value (a zero den
    // gives inf or NaN) in any fitted layer is left out of every layer.
    std::vector<char> used(count, 0);
    std::vector<long double> mean(last - first + 1, 0.0L), row(last - first + 1);
    uint64_t n = 0;
    for (uint64_t s = 0; s < count; ++s) {
        bool ok = true;
        for (int64_t l = first; ok && l <= last; ++l)
            ok = std::isfinite(num[l][s]) && (!den || std::isfinite(den[l][s])) && std::isfinite(row[l - first] = value(l, s));
        if (!ok) continue;
        used[s] = 1;
        ++n;
        for (size_t k = 0; k < row.size(); ++k) mean[k] += row[k];
    }
    g.seeds = n;
    if (n < 2) return undefined(g, GrowthStatus::few_seeds);
    for (long double& m : mean) m /= static_cast<long double>(n);
    for (long double m : mean)
        if (!(m > 0)) return undefined(g, GrowthStatus::zero_layer);
    const std::vector<long double> w = slope_weights(depth, first, last);
    long double rate = 0;
    for (size_t k = 0; k < w.size(); ++k) rate += w[k] * std::log(mean[k]);
    // Delta method: rate = sum_l w_l ln m_l, and d rate / d m_l = w_l / m_l, so its
    // variance is that of the per-seed value sum_l w_l x_l^2 / m_l, over n.
    long double gm = 0, gss = 0;
    uint64_t k = 0;
    for (uint64_t s = 0; s < count; ++s) {
        if (!used[s]) continue;
        long double v = 0;
        for (int64_t l = first; l <= last; ++l) v += w[l - first] * value(l, s) / mean[l - first];
        ++k;
        const long double d = v - gm;  // Welford: no cancellation
        gm += d / k;
        gss += d * (v - gm);
    }
    g.rate = static_cast<double>(rate);
    g.stderr_ = static_cast<double>(std::sqrt(gss / (n - 1) / n));
    g.depth_scale = g.rate < 0 ? -1.0 / g.rate : kNaN;
    return g;
}

double theory_growth_rate(int depth, const std::vector<double>& num, const std::vector<double>* den_of_previous) {
    int64_t first = 0, last = -1;
    growth_layers(depth, first, last);
    if (last - first + 1 < 2 || static_cast<int64_t>(num.size()) <= last) return kNaN;
    if (den_of_previous && static_cast<int64_t>(den_of_previous->size()) < last) return kNaN;
    const std::vector<long double> w = slope_weights(depth, first, last);
    long double rate = 0;
    for (int64_t l = first; l <= last; ++l) {
        const long double p = den_of_previous ? static_cast<long double>(num[l]) / (*den_of_previous)[l - 1] : num[l];
        if (!(p > 0) || !std::isfinite(p)) return kNaN;
        rate += w[l - first] * 2 * std::log(p);  // ln of the mean square
    }
    return static_cast<double>(rate);
}

}  // namespace gs
