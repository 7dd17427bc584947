// A cell summarised on the device (emulated: the same bodies, tests/gpu/emu_cell.hpp)
// is the host's summary of the same rows, bit for bit: every column's summary,
// the count of networks with a non-finite value, and both growth fits. Also the
// memory the backend keeps for it (kernels/kept_memory.hpp): grow-only buffers and
// the workspace's slices within the bounds of cuda_sizing.hpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>

#include "../test_seed.hpp"
#include "emu_cell.hpp"
#include "gpu_test_util.hpp"
#include "gradsweep/cuda_sizing.hpp"
#include "kept_memory.hpp"

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

namespace {

// Host memory standing in for the device, counting what a GrowOnlyBuffer asks of it.
struct CountingAlloc {
    uint64_t* allocated;
    uint64_t* freed;
    void* allocate(size_t bytes, const char*) {
        ++*allocated;
        return ::operator new(bytes);
    }
    void deallocate(void* p) {
        ++*freed;
        ::operator delete(p);
    }
};

}  // namespace

TEST_CASE("a grow-only buffer allocates only when a reservation grows, and frees what it replaces", "[emu][kept]") {
    uint64_t allocated = 0, freed = 0;
    {
        kern::GrowOnlyBuffer<CountingAlloc> b(CountingAlloc{&allocated, &freed});
        CHECK(b.size() == 0);
        void* p = b.reserve(1000, "test");
        CHECK(b.size() == 1000);
        CHECK(b.reserve(10, "test") == p);  // smaller: the same memory
        CHECK(b.reserve(1000, "test") == p);
        CHECK(allocated == 1);
        b.reserve(1001, "test");  // larger: the old one freed first, then a new one
        CHECK(b.size() == 1001);
        CHECK(allocated == 2);
        CHECK(freed == 1);
        CHECK(b.allocations() == 2);
        b.release();
        CHECK(b.size() == 0);
        CHECK(b.get() == nullptr);
        CHECK(freed == 2);
    }
    CHECK(freed == allocated);
}

TEST_CASE("a kept cell workspace holds the slices the device summary and growth fits take, at CUB's bounds", "[emu][kept]") {
    const uint64_t seed = gs::test::test_seed(1618);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    // A made-up base: the slices are laid out, never touched.
    void* const base = reinterpret_cast<void*>(uintptr_t{1} << 40);
    for (int k = 0; k < 2000; ++k) {
        const uint64_t count = k < 8 ? uint64_t{1} << (3 * k) : 1 + rng() % (k % 3 ? 5000 : 3000000);
        const int depth = k < 8 ? 1 + k : 1 + static_cast<int>(rng() % 300);
        const int stride = row_stride(depth);
        INFO("case " << k << " depth " << depth << " seeds " << count);
        const uint64_t sort_cub = kern::cub_sort_temp_bound(count, stride), select_cub = kern::cub_select_temp_bound(count);
        int64_t first = 0, last = -1;
        growth_layers(depth, first, last);
        const int layers = static_cast<int>(std::max<int64_t>(0, last - first + 1));
        REQUIRE(layers <= depth);
        // A whole cell: the non-finite count's slice, then the summary's with the
        // growth fits' after it, in the workspace the fit rule counts.
        const kern::DeviceCellBytes<> need = kern::device_cell_bytes(count, depth);
        CHECK(need.rows == count * stride * 8);
        kern::Slices cell(base, need.workspace);
        {
            kern::SliceScope scope(cell);
            cell.take<unsigned long long>(1, "non-finite count");
        }
        CHECK(cell.used() == 0);
        CHECK_NOTHROW(kern::take_summary_slices(cell, count, stride, std::max(sort_cub, select_cub)));
        CHECK_NOTHROW(kern::take_growth_slices(cell, count, layers, select_cub));
        // cuda_run_summarized and cuda_summarize_rows: the summary alone in its own bound.
        kern::Slices summary(base, kern::summary_workspace_bytes(count, stride));
        CHECK_NOTHROW(kern::take_summary_slices(summary, count, stride, std::max(sort_cub, select_cub)));
        kern::Slices growth(base, kern::growth_workspace_bytes(count, depth));
        CHECK_NOTHROW(kern::take_growth_slices(growth, count, layers, select_cub));
        // The slices are what the bounds count, give or take their rounding.
        CHECK(summary.used() + 4096 >= kern::summary_workspace_bytes(count, stride));
        CHECK(growth.used() + 4096 + 24 * static_cast<uint64_t>(depth - layers) >= kern::growth_workspace_bytes(count, depth));
    }
}

TEST_CASE("slices of a workspace are aligned, and taking past its end throws", "[emu][kept]") {
    void* const base = reinterpret_cast<void*>(uintptr_t{1} << 40);
    kern::Slices w(base, 1000);
    char* a = static_cast<char*>(w.take_bytes(10, "a"));
    char* b = static_cast<char*>(w.take_bytes(1, "b"));
    CHECK(b - a == static_cast<ptrdiff_t>(kern::kSliceAlign));
    CHECK(w.take<double>(0, "c") != nullptr);  // at least one element
    CHECK(w.used() == 2 * kern::kSliceAlign + 8);
    const uint64_t mark = w.used();
    CHECK_THROWS_WITH(w.take_bytes(1000 - 3 * kern::kSliceAlign + 1, "d"), Catch::Contains("d: workspace of 1000 bytes too small"));
    CHECK(w.used() == mark);  // a refused slice takes nothing
    CHECK_NOTHROW(w.take_bytes(1000 - 3 * kern::kSliceAlign, "d"));
    CHECK_THROWS(w.take_bytes(1, "e"));
    w.rewind(mark);
    CHECK_NOTHROW(w.take_bytes(1, "e"));
}
