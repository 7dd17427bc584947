// Exact order statistics by radix select (gs::select_order_statistics) and the
// summaries built on it, against straightforward references: a full sort, and
// the nth_element selection summarize used before.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gradsweep/column_sums.hpp"
#include "gradsweep/stats.hpp"
#include "test_seed.hpp"

using namespace gs;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t bits(double x) {
    uint64_t b;
    std::memcpy(&b, &x, 8);
    return b;
}
bool same(double a, double b) { return bits(a) == bits(b); }  // NaN == NaN, 0 != -0

// The finite values sorted, -0.0 before +0.0 (the order select_order_statistics documents).
std::vector<double> sorted_finite(const std::vector<double>& v) {
    std::vector<double> f;
    for (double x : v)
        if (std::isfinite(x)) f.push_back(x);
    std::sort(f.begin(), f.end(), [](double a, double b) { return a < b || (a == b && std::signbit(a) && !std::signbit(b)); });
    return f;
}

// The summation order of column_sums.hpp written out plainly: the finite values
// in order, block by block, lane j of a block taking its positions j, j + 32,
// ...; the lanes halved 16, 8, 4, 2, 1; the blocks paired level by level.
template <class Term>
double sum_in_documented_order(const std::vector<double>& f, Term term) {
    std::vector<double> partial;
    for (size_t begin = 0; begin < f.size(); begin += kSumBlock) {
        double lane[32] = {};
        for (size_t i = begin; i < std::min(f.size(), begin + kSumBlock); ++i) lane[(i - begin) % 32] = term(lane[(i - begin) % 32], f[i]);
        for (int h = 16; h > 0; h /= 2)
            for (int j = 0; j < h; ++j) lane[j] += lane[j + h];
        partial.push_back(lane[0]);
    }
    if (partial.empty()) return 0;
    while (partial.size() > 1) {
        std::vector<double> next;
        for (size_t i = 0; i + 1 < partial.size(); i += 2) next.push_back(partial[i] + partial[i + 1]);
        if (partial.size() % 2) next.push_back(partial.back());
        partial = next;
    }
    return partial[0];
}

// summarize from plain parts: the sums in the documented order, the order
// statistics by partition, minmax_element and nth_element (as before the radix
// select), quantiles by quantile_at and interpolate.
Summary summarize_reference(std::vector<double> values) {
    Summary s;
    const size_t size = values.size();
    double* v = values.data();
    std::vector<double> f;
    size_t n_pos = 0;
    for (double x : values) {
        if (!std::isfinite(x)) continue;
        f.push_back(x);
        if (x == 0) ++s.n_zero;
        if (x > 0) ++n_pos;
    }
    const size_t n = f.size();
    s.n = n;
    s.n_nonfinite = size - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = kNaN;
        return s;
    }
    s.mean = sum_in_documented_order(f, [](double acc, double x) { return add_value(acc, x); }) / static_cast<double>(n);
    const double mean = s.mean;
    const double ss = sum_in_documented_order(f, [mean](double acc, double x) { return add_square_dev(acc, x, mean); });
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : kNaN;
    if (needs_rescaled_moments(s.mean, s.std, n)) {
        if (!std::isfinite(s.mean)) {
            const double c = mean_scale(n);
            s.mean = sum_in_documented_order(f, [c](double acc, double x) { return add_scaled_value(acc, x, c); }) / static_cast<double>(n) / c;
        }
        const double c = kDeviationScale, mc = s.mean * c;
        const double sc = sum_in_documented_order(f, [c, mc](double acc, double x) { return add_scaled_square_dev(acc, x, c, mc); });
        s.std = n > 1 ? std::sqrt(sc / static_cast<double>(n - 1)) / c : kNaN;
    }
    const double log_sum = sum_in_documented_order(f, [](double acc, double x) { return add_log(acc, x); });
    s.geomean = n_pos ? std::exp(log_sum / static_cast<double>(n_pos)) : kNaN;
    std::partition(v, v + size, [](double x) { return std::isfinite(x); });
    const auto [mn, mx] = std::minmax_element(v, v + n);
    s.min = *mn;
    s.max = *mx;
    const QuantileAt qm = quantile_at(0.5, n), q05 = quantile_at(0.05, n), q95 = quantile_at(0.95, n);
    const size_t m = qm.lo, l05 = q05.lo, l95 = q95.lo;
    std::nth_element(v, v + m, v + n);
    const double vm = v[m];
    const double vm1 = m + 1 < n ? *std::min_element(v + m + 1, v + n) : vm;
    s.median = interpolate(vm, vm1, qm.frac);
    if (l05 == m) {
        s.q05 = interpolate(vm, vm1, q05.frac);
    } else {
        std::nth_element(v, v + l05, v + m);
        s.q05 = interpolate(v[l05], *std::min_element(v + l05 + 1, v + m + 1), q05.frac);
    }
    if (l95 == m) {
        s.q95 = interpolate(vm, vm1, q95.frac);
    } else {
        std::nth_element(v + m + 1, v + l95, v + n);
        const double a = v[l95];
        s.q95 = interpolate(a, l95 + 1 < n ? *std::min_element(v + l95 + 1, v + n) : a, q95.frac);
    }
    return s;
}

bool same_summary(const Summary& a, const Summary& b) {
    return a.n == b.n && a.n_nonfinite == b.n_nonfinite && a.n_zero == b.n_zero && same(a.mean, b.mean) &&
           same(a.std, b.std) && same(a.min, b.min) && same(a.q05, b.q05) && same(a.median, b.median) &&
           same(a.q95, b.q95) && same(a.max, b.max) && same(a.geomean, b.geomean);
}

// Random inputs of several shapes: wide and narrow ranges, heavy duplication,
// negatives, exact (signed) zeros, infinities, NaN, subnormals.
std::vector<double> random_values(std::mt19937_64& rng, size_t n, int kind) {
    std::vector<double> v(n);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> g(0, 1);
    std::uniform_int_distribution<int> few(0, 9);
    for (size_t i = 0; i < n; ++i) {
        double x = 0;
        switch (kind) {
            case 0: x = g(rng); break;                                       // both signs
            case 1: x = std::exp(8 * g(rng)); break;                         // positive, many binades
            case 2: x = few(rng) - 4.5; break;                               // ten distinct values
            case 3: x = 1.0 + u(rng) * 1e-12; break;                         // one narrow range
            case 4: x = u(rng) < 0.3 ? 0.0 : std::exp(g(rng)); break;        // many zeros
            case 5: x = 7.25; break;                                         // all equal
            case 6: x = std::ldexp(u(rng), -1060) * (u(rng) < 0.5 ? -1 : 1); break;  // subnormals
            default: x = g(rng) * std::pow(10.0, few(rng) * 30 - 150); break;  // huge spread
        }
        const double r = u(rng);
        if (r < 0.01) x = kNaN;
        else if (r < 0.015) x = kInf;
        else if (r < 0.02) x = -kInf;
        v[i] = x;
    }
    return v;
}

void check_select(const std::vector<double>& v) {
    const std::vector<double> s = sorted_finite(v);
    const size_t n = s.size();
    if (n == 0) return;
    std::vector<size_t> ranks = {0, n / 20, n / 20 + 1, n / 2, n / 2 + 1, n - n / 20 - 1, n - 1};
    for (auto& r : ranks) r = std::min(r, n - 1);
    std::sort(ranks.begin(), ranks.end());
    std::vector<double> out(ranks.size());
    const std::vector<double> before = v;
    select_order_statistics(v.data(), v.size(), ranks.data(), ranks.size(), out.data());
    for (size_t i = 0; i < ranks.size(); ++i) {
        INFO("n " << n << " rank " << ranks[i]);
        CHECK(same(out[i], s[ranks[i]]));
    }
    CHECK(std::memcmp(before.data(), v.data(), v.size() * sizeof(double)) == 0);  // left in place
}

}  // namespace

TEST_CASE("radix select finds the same order statistics as a sort", "[stats][select]") {
    const uint64_t seed = gs::test::test_seed(12345);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}, size_t{10}, size_t{100}, size_t{2047}, size_t{2048},
                     size_t{5000}, size_t{70001}, size_t{300000}})
        for (int kind = 0; kind < 8; ++kind) {
            INFO("n " << n << " kind " << kind);
            check_select(random_values(rng, n, kind));
        }
    // Every rank of a small input with duplicates.
    std::vector<double> v = random_values(rng, 3000, 2);
    const std::vector<double> s = sorted_finite(v);
    std::vector<size_t> all(s.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::vector<double> out(all.size());
    select_order_statistics(v.data(), v.size(), all.data(), all.size(), out.data());
    for (size_t i = 0; i < all.size(); ++i) CHECK(same(out[i], s[i]));
    // -0.0 sorts before +0.0; extreme finite values.
    std::vector<double> z = {0.0, -0.0, 0.0, -0.0, std::numeric_limits<double>::max(), -std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::denorm_min(), kNaN, -kInf};
    check_select(z);
    std::vector<double> big(100000, 0.0);
    for (size_t i = 0; i < big.size(); i += 3) big[i] = -0.0;
    big[5] = kInf;
    check_select(big);
}

TEST_CASE("summaries with radix select equal a plain reference (the documented sum order, nth_element) bit for bit", "[stats][select]") {
    const uint64_t seed = gs::test::test_seed(777);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{17}, size_t{8191}, size_t{8192}, size_t{20000}, size_t{250001}})
        for (int kind = 0; kind < 8; ++kind) {
            INFO("n " << n << " kind " << kind);
            std::vector<double> v = random_values(rng, n, kind);
            const Summary want = summarize_reference(v);
            const Summary got = summarize(v);
            INFO("mean " << got.mean - want.mean << " std " << got.std - want.std << " min " << got.min - want.min << " q05 " << got.q05 - want.q05 << " med " << got.median - want.median << " q95 " << got.q95 - want.q95 << " max " << got.max - want.max << " geo " << got.geomean - want.geomean);
            CHECK(same_summary(got, want));
        }
    // Signed zeros together (the nth_element path is kept for them), all
    // non-finite, a single finite value among many non-finite ones.
    std::vector<double> z(50000);
    for (size_t i = 0; i < z.size(); ++i) z[i] = i % 7 == 0 ? -0.0 : (i % 5 == 0 ? 0.0 : 1.0 + static_cast<double>(i % 13));
    CHECK(same_summary(summarize_reference(z), [&] { auto c = z; return summarize(c); }()));
    std::vector<double> bad(20000, kNaN);
    CHECK(same_summary(summarize_reference(bad), [&] { auto c = bad; return summarize(c); }()));
    bad[12345] = 3.5;
    CHECK(same_summary(summarize_reference(bad), [&] { auto c = bad; return summarize(c); }()));
}
