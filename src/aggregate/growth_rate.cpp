#include "gradsweep/growth_rate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gradsweep/growth_terms.hpp"

namespace gs {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Least-squares weights of the slope against t_l (long double: the prediction's slope).
std::vector<long double> slope_weights_ld(int64_t D, int64_t first, int64_t last) {
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

// A sum in column_sums.hpp's order over values given one at a time (the used
// seeds, in seed order): the same lanes, blocks and trees as block_partial and
// pairwise_tree, without a copy of the values.
// The values wait in a block-sized buffer, then go through the lanes a group of
// 32 at a time (the loop vectorises; each lane still adds its values in order).
template <class Term>
class OrderedSum {
public:
    explicit OrderedSum(Term term) : term_(term), block_(kSumBlock) {}
    void add(double x) {
        block_[in_block_] = x;
        if (++in_block_ == kSumBlock) flush();
    }
    double total() {
        if (in_block_) flush();
        return pairwise_tree(partial_.data(), partial_.size());
    }

private:
    void flush() {
        alignas(64) double lane[kSumLanes] = {};
        uint64_t i = 0;
        for (; i + kSumLanes <= in_block_; i += kSumLanes)
            for (int j = 0; j < kSumLanes; ++j) lane[j] = term_(lane[j], block_[i + j]);
        for (int j = 0; i < in_block_; ++i, ++j) lane[j] = term_(lane[j], block_[i]);
        partial_.push_back(lane_tree(lane));
        in_block_ = 0;
    }
    Term term_;
    std::vector<double> block_;
    uint64_t in_block_ = 0;
    std::vector<double> partial_;
};
template <class Term>
OrderedSum<Term> ordered_sum(Term term) {
    return OrderedSum<Term>(term);
}
constexpr auto kValue = [](double acc, double x) { return add_value(acc, x); };

// The host's columns as a GrowthSumSource.
class HostColumns final : public GrowthSumSource {
public:
    HostColumns(int64_t first, int layers, const double* const* num, const double* const* den, uint64_t count)
        : first_(first), layers_(layers), num_(num), den_(den), count_(count) {}
    uint64_t mark_used() override {
        used_.assign(count_, 0);
        uint64_t n = 0;
        for (uint64_t s = 0; s < count_; ++s) {
            bool ok = true;
            for (int k = 0; ok && k < layers_; ++k) ok = growth_usable(num(k, s), den(k, s));
            used_[s] = ok;
            n += ok;
        }
        return n;
    }
    int max_exponent(int k) override {
        int E = kNoExponent;
        for (uint64_t s = 0; s < count_; ++s)
            if (used_[s]) E = std::max(E, growth_exponent(num(k, s), den(k, s)));
        return E;
    }
    double scaled_sum(int k, int E) override {
        auto sum = ordered_sum(kValue);
        for (uint64_t s = 0; s < count_; ++s)
            if (used_[s]) sum.add(growth_scaled_square(num(k, s), den(k, s), E));
        return sum.total();
    }
    double seed_value_sum(const int* E, const double* r) override {
        auto sum = ordered_sum(kValue);
        for_each_seed_value(E, r, [&](double v) { sum.add(v); });
        return sum.total();
    }
    double seed_square_dev_sum(const int* E, const double* r, double mean) override {
        auto sum = ordered_sum([mean](double acc, double x) { return add_square_dev(acc, x, mean); });
        for_each_seed_value(E, r, [&](double v) { sum.add(v); });
        return sum.total();
    }

private:
    double num(int k, uint64_t s) const { return num_[first_ + k][s]; }
    double den(int k, uint64_t s) const { return den_ ? den_[first_ + k][s] : 1.0; }
    template <class F>
    void for_each_seed_value(const int* E, const double* r, F f) {
        std::vector<double> t(layers_);
        for (uint64_t s = 0; s < count_; ++s) {
            if (!used_[s]) continue;
            for (int k = 0; k < layers_; ++k) t[k] = growth_scaled_square(num(k, s), den(k, s), E[k]);
            f(growth_seed_value(t.data(), r, layers_));
        }
    }

private:
    int64_t first_;
    int layers_;
    const double* const* num_;
    const double* const* den_;
    uint64_t count_;
    std::vector<char> used_;
};

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

std::vector<double> growth_slope_weights(int64_t D, int64_t first, int64_t last) {
    // t_l - tbar = (2 t_l - (t_first + t_last)) / 2, an integer over 2, and
    // sum (t - tbar)^2 = n (n^2 - 1) / 12 for n consecutive t: w_l = 6 (2 t_l -
    // t_first - t_last) / (n (n^2 - 1)), in double, without an accumulated sum.
    const int64_t n = last - first + 1;
    const double nd = static_cast<double>(n), denom = nd * (nd * nd - 1.0);
    std::vector<double> w;
    for (int64_t l = first; l <= last; ++l) {
        const int64_t twice_dev = 2 * (D - 1 - l) - ((D - 1 - first) + (D - 1 - last));
        w.push_back(6.0 * static_cast<double>(twice_dev) / denom);
    }
    return w;
}

GrowthRate fit_growth_with(int depth, GrowthSumSource& sums) {
    GrowthRate g;
    g.status = GrowthStatus::ok;
    growth_layers(depth, g.first_layer, g.last_layer);
    const int64_t first = g.first_layer, last = g.last_layer;
    auto undefined = [&](GrowthStatus why) {
        g.rate = g.stderr_ = g.depth_scale = kNaN;
        g.status = why;
        return g;
    };
    if (last - first + 1 < 2) return undefined(GrowthStatus::few_layers);
    const int layers = static_cast<int>(last - first + 1);
    const uint64_t n = sums.mark_used();
    g.seeds = n;
    if (n < 2) return undefined(GrowthStatus::few_seeds);
    std::vector<int> E(layers);
    std::vector<double> q(layers);
    for (int k = 0; k < layers; ++k) {
        E[k] = sums.max_exponent(k);
        if (E[k] == kNoExponent) return undefined(GrowthStatus::zero_layer);
        q[k] = sums.scaled_sum(k, E[k]) / static_cast<double>(n);
        if (!(q[k] > 0)) return undefined(GrowthStatus::zero_layer);
    }
    const std::vector<double> w = growth_slope_weights(depth, first, last);
    // ln m_k = ln q_k + 2 E_k ln 2 (the scale is a power of two); 2 E_k is exact.
    constexpr double kLn2 = 0.693147180559945309417232121458176568;
    double rate = 0;
    for (int k = 0; k < layers; ++k) rate = std::fma(w[k], std::fma(2.0 * E[k], kLn2, std::log(q[k])), rate);
    // Delta method: rate = sum_l w_l ln m_l, and d rate / d m_l = w_l / m_l, so its
    // variance is that of the per-seed value g_s = sum_l w_l x_l^2 / m_l, over n;
    // the variance in two passes (mean, then squared deviations), each a sum in
    // the shared order.
    std::vector<double> r(layers);
    for (int k = 0; k < layers; ++k) r[k] = w[k] / q[k];
    const double gmean = mean_of(sums.seed_value_sum(E.data(), r.data()), n);
    const double ss = sums.seed_square_dev_sum(E.data(), r.data(), gmean);
    g.rate = rate;
    g.stderr_ = std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n));
    g.depth_scale = g.rate < 0 ? -1.0 / g.rate : kNaN;
    return g;
}

GrowthRate fit_growth_rate(int depth, const double* const* num, const double* const* den, uint64_t count) {
    int64_t first = 0, last = -1;
    growth_layers(depth, first, last);
    const int layers = static_cast<int>(std::max<int64_t>(0, last - first + 1));
    HostColumns cols(first, layers, num, den, count);
    return fit_growth_with(depth, cols);
}

double theory_growth_rate(int depth, const std::vector<double>& num, const std::vector<double>* den_of_previous) {
    int64_t first = 0, last = -1;
    growth_layers(depth, first, last);
    if (last - first + 1 < 2 || static_cast<int64_t>(num.size()) <= last) return kNaN;
    if (den_of_previous && static_cast<int64_t>(den_of_previous->size()) < last) return kNaN;
    const std::vector<long double> w = slope_weights_ld(depth, first, last);
    long double rate = 0;
    for (int64_t l = first; l <= last; ++l) {
        const long double p = den_of_previous ? static_cast<long double>(num[l]) / (*den_of_previous)[l - 1] : num[l];
        if (!(p > 0) || !std::isfinite(p)) return kNaN;
        rate += w[l - first] * 2 * std::log(p);  // ln of the mean square
    }
    return static_cast<double>(rate);
}

}  // namespace gs
