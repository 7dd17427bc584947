// A cell summarised on the device (emulated: the same bodies, tests/gpu/emu_cell.hpp)
// is the host's summary of the same rows, bit for bit: every column's summary,
// the count of networks with a non-finite value, and both growth fits.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "../test_seed.hpp"
#include "emu_cell.hpp"
#include "gpu_test_util.hpp"

using namespace gs;
using namespace gs::gputest;

namespace {

bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Order statistics to the bit too: -0.0 is below +0.0 on both sides (order_key).
bool same_order_stat(double a, double b) { return same(a, b); }

void check_summary(const Summary& got, const Summary& want, const std::string& where) {
    INFO(where);
    CHECK(got.n == want.n);
    CHECK(got.n_nonfinite == want.n_nonfinite);
    CHECK(got.n_zero == want.n_zero);
    CHECK(same(got.mean, want.mean));
    CHECK(same(got.std, want.std));
    CHECK(same(got.geomean, want.geomean));
    CHECK(same_order_stat(got.min, want.min));
    CHECK(same_order_stat(got.q05, want.q05));
    CHECK(same_order_stat(got.median, want.median));
    CHECK(same_order_stat(got.q95, want.q95));
    CHECK(same_order_stat(got.max, want.max));
}

void check_growth(const GrowthRate& got, const GrowthRate& want, const char* which) {
    INFO(which);
    CHECK(got.status == want.status);
    CHECK(got.seeds == want.seeds);
    CHECK(got.first_layer == want.first_layer);
    CHECK(got.last_layer == want.last_layer);
    CHECK(same(got.rate, want.rate));
    CHECK(same(got.stderr_, want.stderr_));
    CHECK(same(got.depth_scale, want.depth_scale));
}

void check_cell(const CellResult& got, const CellResult& want) {
    CHECK(got.networks == want.networks);
    CHECK(got.nonfinite_networks == want.nonfinite_networks);
    check_growth(got.growth, want.growth, "growth");
    check_growth(got.delta_growth, want.delta_growth, "delta_growth");
    REQUIRE(got.layers.size() == want.layers.size());
    for (size_t l = 0; l < got.layers.size(); ++l)
        for (int q = 0; q < kNumQuantities; ++q)
            check_summary(got.layers[l][q], want.layers[l][q], "layer " + std::to_string(l) + " " + kQuantityNames[q]);
    check_summary(got.loss, want.loss, "loss");
}

}  // namespace

TEST_CASE("emulated device cell summary = the host's, bit for bit, growth fits included", "[emu][cell]") {
    const uint64_t seed = gs::test::test_seed(1616);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    int with_nonfinite = 0, fitted = 0, huge = 0;  // what the cases covered
    for (int k = 0; k < 24; ++k) {
        Cell cell = random_cell(rng, CellOptions{8, 6, true});
        // Deep and wide-spread cells now and then: huge weights make float64
        // gradients of 1e150 and beyond (squares outside double) and NaN/inf.
        if (k % 3 == 0) {
            cell.layer_sizes.assign(32 + rng() % 8, 3);
            cell.layer_sizes.back() = 1;
            const double sigmas[] = {1e5, 40.0, 300.0, 3000.0};  // 1e5: past double, inf and NaN
            cell.init = Init{InitKind::normal, sigmas[(k / 3) % 4], 0.0};
            if (k % 2 == 0) cell.activation = Activation::identity;  // no saturation: values up to and past 1e308
        }
        const Precision p = k % 4 == 3 ? Precision::float32 : Precision::float64;
        const uint64_t count = 50 + rng() % 200;
        const Spec spec = make_spec(p, 1 + static_cast<int>(rng() % 3), rng() % 2 == 0, rng() % 1000, count, cell.input_dim());
        INFO("case " << k << " depth " << cell.depth() << " seeds " << count);
        const std::vector<double> rows = emu::emulate_run_precision(spec, cell, 0, count);
        const CellResult want = summarize_cell(cell, rows.data(), count);
        const CellResult got = emu::emulate_cell_summary_of_rows(cell, rows, count);
        check_cell(got, want);
        with_nonfinite += want.nonfinite_networks > 0;
        fitted += want.growth.defined() && want.delta_growth.defined();
        bool big = false;
        for (double x : rows) big |= std::isfinite(x) && std::fabs(x) > 1e154;  // a square beyond double
        huge += big;
    }
    CHECK(with_nonfinite >= 2);
    CHECK(fitted >= 6);
    CHECK(huge >= 2);
}

TEST_CASE("emulated device growth fit = fit_growth_rate on hand-made columns, bit for bit", "[emu][cell][growth]") {
    // Columns with every kind of value the fit meets: NaN, +-inf, +-0, ties,
    // subnormals, 1e300 over 1e-300 (a ratio far beyond double), more than one
    // block of the shared summation order.
    const uint64_t seed = gs::test::test_seed(1617);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, 1.0, 4.9e-324, 2.2e-308, 1e300, 1e-300, 1.7976931348623157e308};
    for (int k = 0; k < 30; ++k) {
        const int depth = 4 + static_cast<int>(rng() % 12);
        const uint64_t count = k % 5 == 0 ? 4096 + rng() % 6000 : 2 + rng() % 200;
        const int stride = row_stride(depth);
        std::vector<double> rows(count * stride);
        const double offset = std::uniform_real_distribution<double>(-280, 280)(rng);
        std::uniform_real_distribution<double> u(-8, 8);
        for (uint64_t s = 0; s < count; ++s)
            for (int c = 0; c < stride; ++c) {
                const int l = c / kNumQuantities;
                double x = std::pow(10.0, std::clamp(offset * (c % kNumQuantities == activation_rms ? -1 : 1) + u(rng) - 0.1 * l, -320.0, 307.0));
                if (rng() % 60 == 0) x = specials[rng() % (sizeof specials / sizeof specials[0])];
                rows[s * stride + c] = x;
            }
        Cell cell;
        cell.layer_sizes.assign(depth + 1, 3);
        INFO("case " << k << " depth " << depth << " seeds " << count);
        std::vector<double> copy = rows;
        const CellResult want = summarize_cell(cell, copy.data(), count);
        const CellResult got = emu::emulate_cell_summary_of_rows(cell, rows, count);
        check_cell(got, want);
    }
}
