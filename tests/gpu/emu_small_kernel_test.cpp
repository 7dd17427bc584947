// The small-width body (kernels/small_net_body.cuh) under the host emulation:
// where it applies, its rows equal network_body's bit for bit (the same sums in
// the same order), and so the CPU backend's within the usual tolerance; where it
// does not apply, the backend keeps network_body.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "emu_device.hpp"
#include "gpu_test_util.hpp"
#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"
#include "../test_seed.hpp"

using namespace gs;
using namespace gs::gputest;

namespace {

// A cell of shape k of kSmallShapes, every other setting drawn.
Cell small_cell(std::mt19937_64& rng, int k, int depth) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const kern::SmallShape s = kern::kSmallShapes[k];
    Cell c;
    c.layer_sizes.push_back(s.ni);
    for (int l = 1; l < depth; ++l) c.layer_sizes.push_back(s.n);
    c.layer_sizes.push_back(s.no);
    c.activation = static_cast<Activation>(pick(0, kNumActivations - 1));
    c.leaky_slope = 0.05;
    c.shortcut = pick(0, 1) == 1;
    c.bias = pick(0, 3) != 0;
    c.last_activation = pick(0, 1) == 1;
    c.residual_scale = pick(0, 1) ? 1.0 : 0.5;
    c.init.kind = static_cast<InitKind>(pick(0, kNumInits - 1));
    if (c.init.kind == InitKind::normal) {
        c.init.sigma_w = pick(0, 1) ? 1.3 : 0.7;
        c.init.sigma_b = pick(0, 1) ? 0.0 : 0.2;
    }
    return c;
}

template <class T>
std::vector<double> run_body(const Spec& spec, const Cell& cell, uint64_t count, bool small, bool* small_ran = nullptr) {
    std::vector<CudaLaunchRecord> rec;
    CudaTestHooks hooks;
    hooks.general_kernel_only = !small;
    hooks.launches = &rec;
    auto rows = emu::emulate_run_hooked<T>(spec, cell, 2, count, hooks);
    if (small_ran) {
        *small_ran = !rec.empty();
        for (const auto& r : rec) *small_ran = *small_ran && r.small_kernel;
    }
    return rows;
}

std::vector<double> run_body_precision(const Spec& spec, const Cell& cell, uint64_t count, bool small, bool* small_ran = nullptr) {
    return spec.precision == Precision::float32 ? run_body<float>(spec, cell, count, small, small_ran)
                                                : run_body<double>(spec, cell, count, small, small_ran);
}

// The first slot where a and b differ in any bit, or -1.
long first_difference(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return 0;
    for (size_t k = 0; k < a.size(); ++k)
        if (std::memcmp(&a[k], &b[k], sizeof(double)) != 0) return static_cast<long>(k);
    return -1;
}

}  // namespace

TEST_CASE("small-width body = network_body bit for bit, every compiled shape", "[emu][small]") {
    const uint64_t seed = test::test_seed(1701);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    int compared = 0;
    for (int k = 0; k < kern::kNumSmallShapes; ++k) {
        for (int trial = 0; trial < 6; ++trial) {
            const int depth = trial == 0 ? 2 : std::uniform_int_distribution<int>(2, 12)(rng);
            const Cell cell = small_cell(rng, k, depth);
            const Precision precision = trial % 2 ? Precision::float32 : Precision::float64;
            const Spec spec = make_spec(precision, 1, rng() % 3 != 0, 1000 + rng() % 1000, 7, cell.input_dim(),
                                        static_cast<uint32_t>(rng()));
            bool small_ran = false;
            const auto small = run_body_precision(spec, cell, 7, true, &small_ran);
            const auto general = run_body_precision(spec, cell, 7, false);
            INFO(describe(cell, spec));
            REQUIRE(small_ran);
            const long d = first_difference(small, general);
            INFO("first difference at slot " << d << ": small " << (d >= 0 ? small[d] : 0) << ", general " << (d >= 0 ? general[d] : 0));
            CHECK(d == -1);
            ++compared;
        }
    }
    CHECK(compared == 6 * kern::kNumSmallShapes);
}

TEST_CASE("small-width body = CPU backend", "[emu][small]") {
    const uint64_t seed = test::test_seed(1702);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    auto cpu = make_cpu_backend(1);
    for (int k = 0; k < kern::kNumSmallShapes; ++k) {
        for (Precision precision : {Precision::float64, Precision::float32}) {
            const Cell cell = small_cell(rng, k, std::uniform_int_distribution<int>(2, 9)(rng));
            const Spec spec = make_spec(precision, 1, rng() % 2 == 0, 50, 5, cell.input_dim(), static_cast<uint32_t>(rng()));
            bool small_ran = false;
            const auto got = run_body_precision(spec, cell, 5, true, &small_ran);
            const auto want = run_poisoned(*cpu, spec, cell, 2, 5);
            const std::vector<double> tols = cpu_row_tolerances(*cpu, spec, cell, 2, 5, want, 1e-12, 2e-5);
            const Comparison c = compare_rows(got, want, tols, 1e-300, row_stride(cell.depth()));
            INFO(describe(cell, spec) << ": " << c.first);
            REQUIRE(small_ran);
            CHECK(c.ok());
        }
    }
}

TEST_CASE("small-width body at the edges of the number range = network_body", "[emu][small][nonfinite]") {
    // float32: sigma_w 1000 at depth 50 overflows to inf and then NaN; float64: the
    // out-of-range branches (sums of squares past 1e308 or below 1e-308, sums of
    // |g| past 1e308) with gradients near 1e230, activations near 1e179 and tiny
    // weights. Every value, NaN and inf included, the same bits.
    struct Case {
        Precision precision;
        double sigma;
        int depth;
    };
    for (const Case& c : {Case{Precision::float32, 1000.0, 50}, Case{Precision::float64, 1e10, 12}, Case{Precision::float64, 3e7, 24},
                          Case{Precision::float64, 1e-10, 24}, Case{Precision::float64, 1e80, 6}}) {
        for (int a = 0; a < kNumActivations; ++a) {
            for (bool bias : {false, true}) {
                Cell cell;
                cell.layer_sizes.assign(c.depth + 1, 3);
                cell.layer_sizes.back() = 1;
                cell.activation = static_cast<Activation>(a);
                cell.bias = bias;
                cell.shortcut = a % 2 == 1;
                cell.init = Init{InitKind::normal, c.sigma, bias ? c.sigma : 0.0};
                const Spec spec = make_spec(c.precision, 1, a % 3 != 0, 0, 16, 3, 7, 2.0);
                bool small_ran = false;
                const auto small = run_body_precision(spec, cell, 16, true, &small_ran);
                const auto general = run_body_precision(spec, cell, 16, false);
                INFO(describe(cell, spec) << " sigma " << c.sigma);
                REQUIRE(small_ran);
                int nonfinite = 0;
                for (double v : small) nonfinite += !std::isfinite(v);
                if (c.sigma == 1000.0 && cell.activation == Activation::relu) CHECK(nonfinite > 0);
                const long d = first_difference(small, general);
                INFO("first difference at slot " << d);
                CHECK(d == -1);
            }
        }
    }
}

TEST_CASE("small-width body: which cells it runs", "[emu][small]") {
    auto index = [](const Cell& cell, int batch, bool torch, int force_p = 0) {
        Spec spec = make_spec(Precision::float32, batch, true, 0, 1, cell.input_dim());
        if (torch) spec.rng = RngKind::torch;
        kern::NetLayout L = kern::make_layout(spec, cell);
        kern::force_threads_per_net(L, force_p);
        return kern::small_shape_index(L);
    };
    Cell c;
    c.layer_sizes = {3, 3, 3, 3, 3, 1};
    CHECK(index(c, 1, false) >= 0);
    CHECK(kern::kSmallShapes[index(c, 1, false)].n == 3);
    CHECK(index(c, 2, false) == -1);      // batch > 1: network_body
    CHECK(index(c, 1, true) == -1);       // torch mode
    CHECK(index(c, 1, false, 32) == -1);  // a forced block per network
    c.layer_sizes = {3, 1};
    CHECK(index(c, 1, false) == -1);  // depth 1
    c.layer_sizes = {3, 3, 4, 3, 1};
    CHECK(index(c, 1, false) == -1);  // hidden widths differ
    c.layer_sizes = {3, 32, 32, 1};
    CHECK(index(c, 1, false) == -1);  // wider than the compiled shapes
    c.layer_sizes = {8, 8, 8};
    CHECK(index(c, 1, false) >= 0);
    // The backend's own schedule for a compiled shape is P = 1, so the small body runs.
    for (const kern::SmallShape& s : kern::kSmallShapes) {
        INFO(s.ni << " " << s.n << " " << s.no);
        CHECK(kern::threads_per_network(std::max({s.ni, s.n, s.no})) == 1);
    }
}

TEST_CASE("small-width body: Philox blocks from the seed's round keys = philox_block", "[emu][small][philox]") {
    const uint64_t seed = test::test_seed(1703);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    for (int trial = 0; trial < 20000; ++trial) {
        const uint64_t s = trial < 3 ? (trial == 0 ? 0 : trial == 1 ? ~uint64_t{0} : uint64_t{0xffffffff}) : rng();
        const uint32_t key = static_cast<uint32_t>(rng()), layer = static_cast<uint32_t>(rng() % 1000), blk = static_cast<uint32_t>(rng());
        const Stream stream = static_cast<Stream>(trial % 3);
        const U32x4 want = philox_block(s, key, stream, layer, blk);
        const U32x4 got = kern::small::philox_block(kern::small::round_keys(s), key, stream, layer, blk);
        for (int q = 0; q < 4; ++q) REQUIRE(got.v[q] == want.v[q]);
    }
}

TEST_CASE("small-width body: rescale_pair = rescale_factor and its inverse", "[emu][small]") {
    const uint64_t seed = test::test_seed(1704);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    auto check = [](double mx) {
        const kern::small::Rescale r = kern::small::rescale_pair(mx);
        const double c = rescale_factor(mx);
        REQUIRE(r.c == c);
        REQUIRE(r.inv == 1.0 / c);
    };
    // zero, the smallest subnormal and normal, the largest finite, the clamps' edges,
    // and every power of two with its neighbours
    for (double mx : {0.0, 0x1p-1074, 0x1p-1022, 0x1.fffffffffffffp1023, 0x1p-1000, 0x1.fffffffffffffp-1001, 0x1p1000,
                      0x1.fffffffffffffp1000, 0x1p1001})
        check(mx);
    for (int e = -1074; e <= 1023; ++e) {
        const double p = std::ldexp(1.0, e);
        check(p);
        check(std::nextafter(p, 0.0));
        if (e < 1023) check(std::nextafter(p, 2 * p));
    }
    // random bit patterns of non-negative finite doubles
    for (int k = 0; k < 200000; ++k) {
        const uint64_t bits = rng() & 0x7fffffffffffffffull;
        double mx;
        std::memcpy(&mx, &bits, sizeof mx);
        if (std::isfinite(mx)) check(mx);
    }
}
