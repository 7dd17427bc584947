// The per-cell gradient growth rate (growth_rate.hpp): exact on noiseless
// columns, unbiased with a calibrated standard error on noisy ones (fixed seeds),
// and undefined, with a reason, where it cannot be fitted.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "gradsweep/growth_rate.hpp"
#include "gradsweep/spec.hpp"
#include "test_seed.hpp"

using namespace gs;

namespace {

Cell cell_of_depth(int depth, int width = 8) {
    Cell c;
    c.layer_sizes.assign(depth + 1, width);
    c.layer_sizes.front() = 3;
    c.layer_sizes.back() = 1;
    return c;
}

// Columns with rms_l^2 = scale * exp(rate * (depth - 1 - l)) * noise, noise
// log-normal with E = exp(sigma^2 / 2) the same in every layer (so the slope of
// the log of the mean is `rate`), independent over seeds and layers.
struct Columns {
    std::vector<std::vector<double>> values;
    std::vector<const double*> ptrs;
    Columns(const Cell& c, uint64_t n, double rate, double sigma, std::mt19937_64& rng) : values(c.depth()) {
        std::normal_distribution<double> z;
        for (int l = 0; l < c.depth(); ++l) {
            for (uint64_t s = 0; s < n; ++s) {
                const double ms = 3.0 * std::exp(rate * (c.depth() - 1 - l) + sigma * (sigma > 0 ? z(rng) : 0.0));
                values[l].push_back(std::sqrt(ms));
            }
            ptrs.push_back(values[l].data());
        }
    }
};

}  // namespace

TEST_CASE("growth rate: noiseless columns give the slope exactly and no spread", "[growth]") {
    std::mt19937_64 rng(1);
    for (double rate : {-0.7, 0.0, 0.25}) {
        const Cell c = cell_of_depth(12);
        Columns cols(c, 16, rate, 0.0, rng);
        const GrowthRate g = fit_growth_rate(c.depth(), cols.ptrs.data(), nullptr, 16);
        REQUIRE(g.defined());
        CHECK(g.first_layer == 1);
        CHECK(g.last_layer == 10);
        CHECK(g.seeds == 16);
        CHECK(g.rate == Approx(rate).margin(1e-12));
        CHECK(g.stderr_ == Approx(0).margin(1e-12));
        if (rate < 0) CHECK(g.depth_scale == Approx(-1 / rate));
        if (rate > 0) CHECK(std::isnan(g.depth_scale));  // growing towards the input: no depth scale
    }
}

TEST_CASE("growth rate: unbiased, and its standard error covers the truth as often as it says", "[growth]") {
    const unsigned seed = 20261201;
    INFO("std::mt19937_64 seed " << seed);
    std::mt19937_64 rng(seed);
    const Cell c = cell_of_depth(10);
    const double rate = -0.3;
    const int reps = 400;
    int within1 = 0, within2 = 0;
    double mean_z = 0;
    for (int r = 0; r < reps; ++r) {
        Columns cols(c, 500, rate, 0.8, rng);
        const GrowthRate g = fit_growth_rate(c.depth(), cols.ptrs.data(), nullptr, 500);
        REQUIRE(g.defined());
        const double z = (g.rate - rate) / g.stderr_;
        within1 += std::fabs(z) < 1;
        within2 += std::fabs(z) < 2;
        mean_z += z / reps;
    }
    // Normal: 68.3 % and 95.4 %; with 400 replicates the binomial sd is 2.3 and 1.0 points.
    CHECK(within1 / double(reps) == Approx(0.683).margin(0.08));
    CHECK(within2 / double(reps) == Approx(0.954).margin(0.04));
    CHECK(std::fabs(mean_z) < 0.2);  // bias below a fifth of a standard error
}

TEST_CASE("growth rate: undefined with a reason; non-finite seeds are left out whole", "[growth]") {
    std::mt19937_64 rng(2);
    {
        const Cell c = cell_of_depth(3);
        Columns cols(c, 8, -0.1, 0.0, rng);
        const GrowthRate g = fit_growth_rate(c.depth(), cols.ptrs.data(), nullptr, 8);
        CHECK_FALSE(g.defined());
        CHECK(std::isnan(g.rate));
        CHECK(std::isnan(g.stderr_));
    }
    {
        const Cell c = cell_of_depth(6);
        Columns cols(c, 8, -0.1, 0.0, rng);
        for (double& v : cols.values[3]) v = 0.0;  // a layer whose gradients vanished exactly
        const GrowthRate g = fit_growth_rate(c.depth(), cols.ptrs.data(), nullptr, 8);
        CHECK_FALSE(g.defined());
        CHECK(g.status == GrowthStatus::zero_layer);
        CHECK(std::string(g.reason()).find("exactly 0") != std::string::npos);
    }
    {
        const Cell c = cell_of_depth(6);
        Columns cols(c, 10, -0.2, 0.0, rng);
        cols.values[2][4] = std::nan("");
        cols.values[4][7] = INFINITY;
        cols.values[0][1] = NAN;  // layer 0 is not fitted: seed 1 stays
        const GrowthRate g = fit_growth_rate(c.depth(), cols.ptrs.data(), nullptr, 10);
        REQUIRE(g.defined());
        CHECK(g.seeds == 8);
        CHECK(g.rate == Approx(-0.2).margin(1e-12));
    }
}

TEST_CASE("growth rate: the prediction's slope", "[growth]") {
    const Cell c = cell_of_depth(8);
    std::vector<double> rms;
    for (int l = 0; l < 8; ++l) rms.push_back(std::sqrt(5.0 * std::exp(-0.4 * (7 - l))));
    rms[0] = 100;  // the layers outside the fit do not count
    rms[7] = 1e-9;
    CHECK(theory_growth_rate(c.depth(), rms) == Approx(-0.4).margin(1e-12));
    rms[3] = std::nan("");
    CHECK(std::isnan(theory_growth_rate(c.depth(), rms)));
    CHECK(std::isnan(theory_growth_rate(3, {1.0, 1.0, 1.0})));
    // Divided by the previous layer's value: ln(rms_l^2 / act_{l-1}^2) = ln 5 - 0.4 t_l - 0.1 t_l.
    rms[3] = std::sqrt(5.0 * std::exp(-0.4 * 4));
    std::vector<double> act;  // act[l-1]^2 = e^{0.1 t_l}, t_l = 7 - l
    for (int k = 0; k < 8; ++k) act.push_back(std::sqrt(std::exp(0.1 * (6 - k))));
    CHECK(theory_growth_rate(8, rms, &act) == Approx(-0.5).margin(1e-12));
}

TEST_CASE("growth rate of a ratio: the backpropagated gradient from weight_grad_rms / the input's rms", "[growth]") {
    // Per seed rms_l^2 = d_l^2 a_{l-1}^2 with d_l^2 ~ e^{-0.3 t_l} and a_{l-1}^2 ~ e^{0.3 t_l}:
    // the weight gradients do not grow at all, the deltas shrink by -0.3 per layer.
    const Cell c = cell_of_depth(9);
    std::mt19937_64 rng(3);
    std::lognormal_distribution<double> noise(0.0, 0.5);
    std::vector<std::vector<double>> rms(9), act(9);
    for (int l = 0; l < 9; ++l)
        for (int s = 0; s < 64; ++s) {
            const double t = 8 - l, a2 = std::exp(0.3 * t) * noise(rng), d2 = std::exp(-0.3 * t) * noise(rng);
            rms[l].push_back(std::sqrt(d2 * a2));
            act[l].push_back(0);  // filled below: act[l-1] is layer l's input
        }
    std::vector<const double*> num(9), den(9, nullptr);
    for (int l = 1; l < 9; ++l) {
        for (int s = 0; s < 64; ++s) act[l - 1][s] = rms[l][s] / std::sqrt(std::exp(-0.3 * (8 - l)));  // exact d_l^2
        den[l] = act[l - 1].data();
    }
    for (int l = 0; l < 9; ++l) num[l] = rms[l].data();
    const GrowthRate d = fit_growth_rate(c.depth(), num.data(), den.data(), 64);
    REQUIRE(d.defined());
    CHECK(d.rate == Approx(-0.3).margin(1e-12));  // the ratio is exactly e^{-0.3 t}
    CHECK(d.stderr_ == Approx(0).margin(1e-12));
    act[2][5] = 0;  // a zero input rms makes that seed's ratio infinite: left out
    const GrowthRate d2 = fit_growth_rate(c.depth(), num.data(), den.data(), 64);
    CHECK(d2.seeds == 63);
}

namespace {

// The fit as it was before it moved to double (kValuesVersion 5): long double
// sums in seed order, Welford for the spread. The reference the double fit
// must stay close to.
GrowthRate long_double_fit(int depth, const double* const* num, const double* const* den, uint64_t count) {
    GrowthRate g;
    growth_layers(depth, g.first_layer, g.last_layer);
    const int64_t first = g.first_layer, last = g.last_layer, L = last - first + 1;
    auto value = [&](int64_t l, uint64_t s) {
        const long double x = den ? static_cast<long double>(num[l][s]) / den[l][s] : static_cast<long double>(num[l][s]);
        return x * x;
    };
    std::vector<char> used(count, 0);
    std::vector<long double> mean(L, 0.0L);
    uint64_t n = 0;
    for (uint64_t s = 0; s < count; ++s) {
        bool ok = true;
        for (int64_t l = first; ok && l <= last; ++l)
            ok = std::isfinite(num[l][s]) && (!den || std::isfinite(den[l][s])) && std::isfinite(value(l, s));
        if (!ok) continue;
        used[s] = 1;
        ++n;
        for (int64_t l = first; l <= last; ++l) mean[l - first] += value(l, s);
    }
    g.seeds = n;
    for (long double& m : mean) m /= n;
    long double tbar = 0, sxx = 0;
    for (int64_t l = first; l <= last; ++l) tbar += depth - 1 - l;
    tbar /= L;
    for (int64_t l = first; l <= last; ++l) sxx += (depth - 1 - l - tbar) * (depth - 1 - l - tbar);
    long double rate = 0, gm = 0, gss = 0;
    for (int64_t l = first; l <= last; ++l) rate += (depth - 1 - l - tbar) / sxx * std::log(mean[l - first]);
    uint64_t k = 0;
    for (uint64_t s = 0; s < count; ++s) {
        if (!used[s]) continue;
        long double v = 0;
        for (int64_t l = first; l <= last; ++l) v += (depth - 1 - l - tbar) / sxx * value(l, s) / mean[l - first];
        ++k;
        const long double d = v - gm;
        gm += d / k;
        gss += d * (v - gm);
    }
    g.rate = static_cast<double>(rate);
    g.stderr_ = static_cast<double>(std::sqrt(gss / (n - 1) / n));
    g.status = GrowthStatus::ok;
    return g;
}

}  // namespace

TEST_CASE("growth rate in double: the long double fit's numbers, squares far outside double's range included", "[growth]") {
    const uint64_t seed = gs::test::test_seed(16);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    for (int rep = 0; rep < 40; ++rep) {
        const int depth = 4 + static_cast<int>(rng() % 30);
        // more than one block of kSumBlock used seeds now and then
        const uint64_t count = rep % 8 == 0 ? 5000 + rng() % 5000 : 2 + rng() % 300;
        // values around 10^offset, spread over up to 10^spread: squares beyond
        // 1e308 and below 1e-308, subnormals and ratios of 1e300 / 1e-300
        const double offset = std::uniform_real_distribution<double>(-300, 300)(rng);
        const double spread = std::uniform_real_distribution<double>(0, rep % 3 == 0 ? 40 : 2)(rng);
        std::uniform_real_distribution<double> u(-1, 1);
        std::vector<std::vector<double>> num(depth, std::vector<double>(count)), den(depth, std::vector<double>(count));
        for (int l = 0; l < depth; ++l)
            for (uint64_t s = 0; s < count; ++s) {
                num[l][s] = std::pow(10.0, std::clamp(offset + spread * u(rng) - 0.05 * l, -320.0, 307.0));
                den[l][s] = std::pow(10.0, std::clamp(-offset + spread * u(rng), -320.0, 307.0));
                if (rng() % 50 == 0) num[l][s] = rng() % 2 ? NAN : -INFINITY;
                if (rng() % 80 == 0) den[l][s] = rng() % 2 ? 0.0 : NAN;
                if (rng() % 40 == 0) num[l][s] = 0.0;
            }
        std::vector<const double*> pn(depth), pd(depth);
        for (int l = 0; l < depth; ++l) {
            pn[l] = num[l].data();
            pd[l] = den[l].data();
        }
        for (const double* const* d : {static_cast<const double* const*>(nullptr), static_cast<const double* const*>(pd.data())}) {
            INFO("rep " << rep << " depth " << depth << " count " << count << " offset " << offset << " spread " << spread << " ratio " << (d != nullptr));
            const GrowthRate g = fit_growth_rate(depth, pn.data(), d, count);
            const GrowthRate r = long_double_fit(depth, pn.data(), d, count);
            REQUIRE(g.seeds == r.seeds);
            if (g.seeds < 2) continue;
            REQUIRE(g.defined());
            CHECK(g.rate == Approx(r.rate).epsilon(1e-12).margin(1e-11));
            CHECK(g.stderr_ == Approx(r.stderr_).epsilon(1e-9).margin(1e-14));
        }
    }
}

TEST_CASE("growth rate in double: an exact slope at any magnitude", "[growth]") {
    // x_l = 2^(a + b t_l) exactly: squares up to 2^4000 and down to 2^-4000.
    for (const int a : {-2000, -1000, -600, 0, 600, 1000, 2000})
        for (const int b : {-3, 0, 5}) {
            const int depth = 12;
            std::vector<std::vector<double>> num(depth), den(depth);
            for (int l = 0; l < depth; ++l)
                for (int s = 0; s < 5000; ++s) {
                    const int e = a + b * (depth - 1 - l) + (s % 3);
                    // ratio of two representable doubles: num 2^(e/2 rounded), den 2^-(the rest)
                    num[l].push_back(std::ldexp(1.0, std::clamp(e / 2, -1070, 1020)));
                    den[l].push_back(std::ldexp(1.0, -(e - std::clamp(e / 2, -1070, 1020))));
                }
            std::vector<const double*> pn(depth), pd(depth);
            for (int l = 0; l < depth; ++l) {
                pn[l] = num[l].data();
                pd[l] = den[l].data();
            }
            INFO("a " << a << " b " << b);
            const GrowthRate g = fit_growth_rate(depth, pn.data(), pd.data(), 5000);
            REQUIRE(g.defined());
            CHECK(g.seeds == 5000);
            CHECK(g.rate == Approx(2 * b * std::log(2.0)).margin(1e-10));
            CHECK(g.stderr_ < 1e-3);
        }
}
