// The CUDA backend on a real device against the CPU backend (the reference).
// Every run writes into NaN-poisoned buffers, so an unwritten value fails. The
// same file also runs against the host emulation (gpu_under_test.hpp), which is
// how these tests were themselves tested without a GPU.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "gpu_test_util.hpp"
#include "gpu_under_test.hpp"
#include "gradsweep/backend.hpp"
#include "gradsweep/torch_params.hpp"
#include "../torch/reference_cases.hpp"
#include "kink_reference.hpp"
#include "net_layout.cuh"

using namespace gs;
using namespace gs::gputest;

namespace {

Spec with_precision(Spec s, Precision p) {
    s.precision = p;
    return s;
}

struct Worst {
    double f64 = 0, f32 = 0;
    int kinks = 0;  // ReLU units found at the kink (kink_reference.hpp)
};

// The CPU backend's rows for one cell and seed range, and the tolerances the GPU
// is held to against CPU float64: float64 within 1e-8 (plus 1e-5 times float32's
// own error on ill-conditioned networks), float32 within 1e-4 plus ten times
// float32's own error (conditioned_tolerance), plus, only in networks with a ReLU
// pre-activation at the kink, what the other side of the kink does.
struct Reference {
    std::vector<double> cpu64, tol64, tol32;
    int kinks = 0;
};

Reference cpu_reference(Backend& cpu, const Spec& spec64, const Cell& cell, uint64_t off, uint64_t seeds) {
    const int stride = row_stride(cell.depth());
    Reference r;
    r.cpu64 = run_poisoned(cpu, spec64, cell, off, seeds);
    const auto cpu32 = run_poisoned(cpu, with_precision(spec64, Precision::float32), cell, off, seeds);
    r.tol64 = conditioned_tolerance(cpu32, r.cpu64, 1e-8, 1e-5, stride);
    r.tol32 = float32_tolerance(cpu32, r.cpu64, 1e-4, stride);
    r.kinks = add_kink_allowance(spec64, cell, off, seeds, r.cpu64, r.tol32);
    return r;
}

// GPU float64 and float32 rows for the same cell and seeds against the reference.
void check_against(Backend& gpu, const Reference& ref, const Spec& spec64, const Cell& cell, uint64_t off, uint64_t seeds,
                   Worst& worst) {
    const int stride = row_stride(cell.depth());
    const auto gpu64 = run_poisoned(gpu, spec64, cell, off, seeds);
    const auto gpu32 = run_poisoned(gpu, with_precision(spec64, Precision::float32), cell, off, seeds);
    INFO(describe(cell, spec64));
    {
        const Comparison c = compare_rows(gpu64, ref.cpu64, ref.tol64, 1e-300, stride);
        INFO("float64: " << c.first);
        CHECK(c.ok());
        worst.f64 = std::max(worst.f64, c.max_rel);
    }
    {
        const Comparison c = compare_rows(gpu32, ref.cpu64, ref.tol32, 1e-30, stride);
        INFO("float32 vs float64 reference: " << c.first << " (" << ref.kinks << " ReLU units at the kink)");
        CHECK(c.ok());
        worst.f32 = std::max(worst.f32, c.max_rel);
    }
    worst.kinks += ref.kinks;
}

// One cell, `seeds` networks, both precisions, against the CPU backend.
void check_cell(Backend& gpu, Backend& cpu, const Spec& spec64, const Cell& cell, uint64_t off, uint64_t seeds, Worst& worst) {
    check_against(gpu, cpu_reference(cpu, spec64, cell, off, seeds), spec64, cell, off, seeds, worst);
}

std::string worst_line(const Worst& w) {
    std::ostringstream o;
    o << "max relative difference to CPU float64: GPU float64 " << w.f64 << ", GPU float32 " << w.f32 << "; " << w.kinks
      << " ReLU units at the kink";
    return o.str();
}

void random_cells(int n, const CellOptions& opt, uint64_t seeds, uint64_t rng_seed, const char* what) {
    auto gpu = gpu_backend();
    auto cpu = make_cpu_backend(0);
    std::mt19937_64 rng(rng_seed);
    Worst worst;
    for (int k = 0; k < n; ++k) {
        const Cell cell = random_cell(rng, opt);
        const int batches[] = {1, 1, 3, 4, 5, 9};
        const Spec spec = make_spec(Precision::float64, batches[rng() % 6], rng() % 3 != 0, rng() % 100000, seeds,
                                    cell.input_dim(), static_cast<uint32_t>(rng()));
        check_cell(*gpu, *cpu, spec, cell, rng() % 1000, seeds, worst);
    }
    WARN(what << ": " << worst_line(worst));
}

}  // namespace

GS_GPU_CASE("CUDA = CPU on random narrow cells (thread per network)", "[gpu][network]") {
    random_cells(120, CellOptions{32, 16, true}, scaled(300, 30), 1, "narrow, uniform hidden");
    random_cells(60, CellOptions{32, 16, false}, scaled(200, 20), 2, "narrow, mixed hidden");
    random_cells(12, CellOptions{32, 64, true}, scaled(100, 10), 3, "narrow, deep");
}

GS_GPU_CASE("CUDA = CPU on random wide cells (block per network)", "[gpu][network]") {
    random_cells(static_cast<int>(scaled(24, 3)), CellOptions{160, 6, true}, scaled(6, 3), 4, "width <= 160");
    random_cells(static_cast<int>(scaled(12, 3)), CellOptions{600, 4, false}, scaled(2, 2), 5, "width <= 600, mixed");
    random_cells(static_cast<int>(scaled(6, 3)), CellOptions{1024, 3, true}, 1, 6, "width <= 1024");
}

GS_GPU_CASE("CUDA = CPU at width 1024 / depth 64 corners", "[gpu][network]") {
    auto gpu = gpu_backend();
    auto cpu = make_cpu_backend(0);
    Worst worst;
    for (Activation a : {Activation::relu, Activation::tanh, Activation::gelu}) {
        Cell wide;
        wide.layer_sizes = {1024, 1024, 1024, 1024, 1};
        wide.activation = a;
        wide.shortcut = a != Activation::tanh;
        check_cell(*gpu, *cpu, make_spec(Precision::float64, 2, true, 9, 2, 1024), wide, 0, 2, worst);
        Cell deep;
        deep.layer_sizes.assign(65, 16);
        deep.layer_sizes.front() = 3;
        deep.layer_sizes.back() = 1;
        deep.activation = a;
        deep.shortcut = true;
        deep.residual_scale = 0.5;
        check_cell(*gpu, *cpu, make_spec(Precision::float64, 1, false, 0, 64, 3), deep, 0, 64, worst);
        Cell deep_wide;
        deep_wide.layer_sizes.assign(65, 256);
        deep_wide.activation = a;
        deep_wide.shortcut = true;
        check_cell(*gpu, *cpu, make_spec(Precision::float64, 3, true, 0, 1, 256), deep_wide, 0, 1, worst);
    }
    WARN("corners: " << worst_line(worst));
}

GS_GPU_CASE("CUDA results are deterministic and independent of the seed split", "[gpu][determinism]") {
    auto gpu = gpu_backend();
    std::mt19937_64 rng(9);
    for (int k = 0; k < 8; ++k) {
        const Cell cell = random_cell(rng, CellOptions{k < 4 ? 24 : 300, 6, true});
        const Spec spec = make_spec(k % 2 ? Precision::float32 : Precision::float64, 1 + k % 3, true, 17, 1000, cell.input_dim());
        const uint64_t n = k < 4 ? scaled(1000, 10) : scaled(50, 10);
        const auto a = run_poisoned(*gpu, spec, cell, 0, n);
        const auto b = run_poisoned(*gpu, spec, cell, 0, n);
        CHECK(bit_equal(a, b));
        auto head = run_poisoned(*gpu, spec, cell, 0, n / 3);
        const auto tail = run_poisoned(*gpu, spec, cell, n / 3, n - n / 3);
        head.insert(head.end(), tail.begin(), tail.end());
        INFO(describe(cell, spec));
        CHECK(bit_equal(a, head));
    }
}

GS_GPU_CASE("CUDA: a million small networks in one call", "[gpu][chunks]") {
    auto cpu = make_cpu_backend(0);
    std::vector<CudaLaunchRecord> launches;
    CudaTestHooks hooks;
    hooks.launches = &launches;
    auto gpu = gpu_backend_with(hooks);
    Cell cell;
    cell.layer_sizes = {3, 3, 3, 3, 3, 1};
    cell.activation = Activation::gelu;
    cell.shortcut = true;
    // More than one launch: P = 1 launches at most 2^20 networks (8,192 blocks of 128).
    const uint64_t n = scaled(1500000, 100);
    const Spec spec = make_spec(Precision::float32, 1, false, 0, n, 3);
    const auto rows = run_poisoned(*gpu, spec, cell, 0, n);
    CHECK(launches.size() == (n + (uint64_t{1} << 20) - 1) >> 20);
    const int stride = row_stride(cell.depth());
    for (double v : rows) REQUIRE(!std::isnan(v));
    // At batch 1 every gradient is proportional to a_D - target, so a last-bit
    // difference there moves all of them: compare with CPU float64, conditioned.
    for (uint64_t start : {uint64_t{0}, std::min<uint64_t>(1048570, n / 2), n - 100}) {
        const Reference ref = cpu_reference(*cpu, with_precision(spec, Precision::float64), cell, start, 100);
        const std::vector<double> got(rows.begin() + start * stride, rows.begin() + (start + 100) * stride);
        const Comparison c = compare_rows(got, ref.cpu64, ref.tol32, 1e-30, stride);
        INFO("from seed " << start << ": " << c.first);
        CHECK(c.ok());
    }
}

// racecheck sees shared memory only, but the block-per-network schedule passes
// activations and deltas between threads through global scratch: running the same
// cells with P forced to 1 (no sharing at all), 32 and 256 on the device and
// holding each to the CPU is what shows a missing barrier there.
GS_GPU_CASE("CUDA = CPU with threads per network forced to 1, 32 and 256", "[gpu][network][schedule]") {
    CHECK_THROWS_AS(gpu_backend_with(CudaTestHooks{3, 0, nullptr}), std::invalid_argument);
    CHECK_THROWS_AS(gpu_backend_with(CudaTestHooks{512, 0, nullptr}), std::invalid_argument);
    auto cpu = make_cpu_backend(0);
    std::mt19937_64 rng(21);
    Worst worst;
    const int cells = static_cast<int>(scaled(24, 4));
    for (int k = 0; k < cells; ++k) {
        const Cell cell = random_cell(rng, CellOptions{k % 2 ? 300 : 40, k % 2 ? 4 : 8, k % 3 != 0});
        const int batches[] = {1, 3, 5};
        const uint64_t seeds = k % 2 ? scaled(8, 4) : scaled(40, 10);
        const Spec spec = make_spec(Precision::float64, batches[k % 3], k % 4 != 0, 500 + rng() % 1000, seeds, cell.input_dim(),
                                    static_cast<uint32_t>(rng()));
        const Reference ref = cpu_reference(*cpu, spec, cell, 7, seeds);
        for (int P : {1, 32, 256}) {
            std::vector<CudaLaunchRecord> launches;
            auto gpu = gpu_backend_with(CudaTestHooks{P, 0, &launches});
            INFO("P forced to " << P);
            check_against(*gpu, ref, spec, cell, 7, seeds, worst);
            REQUIRE(!launches.empty());
            for (const auto& r : launches) CHECK(r.threads_per_net == P);
        }
    }
    WARN("forced P: " << worst_line(worst));
}

// A block per network keeps its scratch in shared memory where the device's
// occupancy allows (CudaDev::scratch_in_shared); racecheck and synccheck
// (sanitize.sh) see those accesses. The rows must be the device-scratch rows
// bit for bit, for every P, both precisions, batch 1 and 4, philox and torch.
GS_GPU_CASE("CUDA: shared-memory scratch = device scratch, bit for bit", "[gpu][network][shared]") {
    std::mt19937_64 rng(1717);
    int shared_runs = 0;
    const int cells = static_cast<int>(scaled(12, 4));
    for (int k = 0; k < cells; ++k) {
        const Cell cell = random_cell(rng, CellOptions{k % 2 ? 140 : 40, 5, k % 3 != 0});
        Spec spec = make_spec(k % 2 ? Precision::float64 : Precision::float32, k % 3 == 0 ? 4 : 1, k % 4 != 0, 500 + rng() % 1000,
                              scaled(16, 4), cell.input_dim(), static_cast<uint32_t>(rng()));
        if (k % 4 == 1) spec.rng = RngKind::torch;
        for (int P : {32, 64, 256}) {
            std::vector<CudaLaunchRecord> device_launches, default_launches;
            CudaTestHooks device_only{P, 0, &device_launches};
            device_only.device_scratch_only = true;
            auto a = gpu_backend_with(device_only);
            auto b = gpu_backend_with(CudaTestHooks{P, 0, &default_launches});
            INFO(describe(cell, spec) << " P=" << P);
            const auto want = run_poisoned(*a, spec, cell, 3, spec.seed_count);
            const auto got = run_poisoned(*b, spec, cell, 3, spec.seed_count);
            REQUIRE(!device_launches.empty());
            REQUIRE(!default_launches.empty());
            CHECK(!device_launches[0].shared_scratch);
            shared_runs += default_launches[0].shared_scratch;
            CHECK(bit_equal(want, got));
        }
    }
    // Most of these cells' scratch is a few KiB: some must have run in shared memory.
    INFO(shared_runs << " of " << 3 * cells << " runs in shared memory");
    CHECK(shared_runs > 0);
}

// Launch-size limits: a grid over 65,535 blocks (the y/z limit, and x's before
// sm_30) with the block-per-network schedule, and a launch whose scratch indices
// pass 2^32. Too big to emulate (a std::thread per CUDA thread): skipped there.
GS_GPU_CASE("CUDA: more than 65,535 blocks in one launch (P > 1)", "[gpu][chunks][large]") {
    if (kEmulated) {
        WARN("SKIPPED under emulation: 65,836 networks of 32 host threads each; this case runs on a device");
        return;
    }
    auto cpu = make_cpu_backend(0);
    std::vector<CudaLaunchRecord> launches;
    auto gpu = gpu_backend_with(CudaTestHooks{0, 0, &launches});
    Cell cell;
    cell.layer_sizes = {40, 40, 40, 2};
    cell.activation = Activation::tanh;
    cell.shortcut = true;
    const uint64_t n = 65536 + 300;
    const Spec spec = make_spec(Precision::float64, 2, true, 11, n, 40);
    const auto rows = run_poisoned(*gpu, spec, cell, 0, n);
    REQUIRE(launches.size() == 2);
    CHECK(launches[0].threads_per_net == 32);
    CHECK(launches[0].blocks == 65536);
    for (double v : rows) REQUIRE(!std::isnan(v));
    const int stride = row_stride(cell.depth());
    Worst worst;
    for (uint64_t start : {uint64_t{0}, uint64_t{65536 - 100}, n - 100}) {
        const Reference ref = cpu_reference(*cpu, spec, cell, start, 200 <= n - start ? 200 : 100);
        const uint64_t m = ref.cpu64.size() / stride;
        const std::vector<double> got(rows.begin() + start * stride, rows.begin() + (start + m) * stride);
        const Comparison c = compare_rows(got, ref.cpu64, ref.tol64, 1e-300, stride);
        INFO("from seed " << start << ": " << c.first);
        CHECK(c.ok());
        worst.f64 = std::max(worst.f64, c.max_rel);
    }
    WARN("65,536-block launch: " << worst_line(worst));
}

GS_GPU_CASE("CUDA: scratch beyond 2^32 elements in one launch", "[gpu][chunks][large]") {
    // 2^20 networks (the P = 1 launch cap) of depth 64, width 32: 4,162 scratch
    // elements each, so the interleaved index e * nets + k passes 2^32 for every
    // network's upstream gradient and delta (e >= 4096).
    Cell cell;
    cell.layer_sizes.assign(64, 32);
    cell.layer_sizes.push_back(1);
    cell.activation = Activation::gelu;
    cell.shortcut = true;
    cell.residual_scale = 0.5;
    const uint64_t n = uint64_t{1} << 20;
    const Spec spec = make_spec(Precision::float32, 1, true, 3, n, 32);
    const kern::NetLayout L = kern::make_layout(spec, cell);
    REQUIRE(L.threads_per_net == 1);
    REQUIRE(L.scratch_per_net == 4162);
    const uint64_t need = n * kern::bytes_per_network(L, sizeof(float), true);
    if (kEmulated) {
        WARN("SKIPPED under emulation: " << (need >> 20) << " MiB of scratch and rows; this case runs on a device");
        return;
    }
    if (gpu_free_bytes() < need + need / 4) {
        WARN("SKIPPED: needs " << (need >> 20) << " MiB of free device memory, the device has " << (gpu_free_bytes() >> 20));
        return;
    }
    auto cpu = make_cpu_backend(0);
    std::vector<CudaLaunchRecord> launches;
    auto gpu = gpu_backend_with(CudaTestHooks{0, 0, &launches});
    const auto rows = run_poisoned(*gpu, spec, cell, 0, n);
    REQUIRE(launches.size() == 1);
    CHECK(launches[0].threads_per_net == 1);
    CHECK(launches[0].scratch_elements > (uint64_t{1} << 32));
    for (double v : rows) REQUIRE(!std::isnan(v));
    const int stride = row_stride(cell.depth());
    Worst worst;
    for (uint64_t start : {uint64_t{0}, n / 2 - 32, n - 64}) {
        const Reference ref = cpu_reference(*cpu, with_precision(spec, Precision::float64), cell, start, 64);
        const std::vector<double> got(rows.begin() + start * stride, rows.begin() + (start + 64) * stride);
        const Comparison c = compare_rows(got, ref.cpu64, ref.tol32, 1e-30, stride);
        INFO("from seed " << start << ": " << c.first);
        CHECK(c.ok());
        worst.f32 = std::max(worst.f32, c.max_rel);
    }
    WARN("scratch of " << launches[0].scratch_elements << " elements: " << worst_line(worst));
}

// Chunking by memory budget never triggers on a 141 GB card by itself: cap the
// budget so that the chunk loop turns on the device, for both schedules, and
// hold the rows to the uncapped run's, bit for bit.
GS_GPU_CASE("CUDA: a capped memory budget runs the chunk loop on the device", "[gpu][chunks]") {
    struct Case {
        std::vector<int> sizes;
        Activation act;
        uint64_t n;
    };
    const Case cases[] = {{{3, 7, 7, 2}, Activation::silu, scaled(5000, 50)}, {{50, 50, 50, 1}, Activation::relu, scaled(700, 70)}};
    for (const Case& cs : cases) {
        Cell cell;
        cell.layer_sizes = cs.sizes;
        cell.activation = cs.act;
        cell.shortcut = true;
        for (Precision p : {Precision::float32, Precision::float64}) {
            for (bool torch : {false, true}) {
                Spec spec = make_spec(p, 2, true, 100, cs.n, cs.sizes[0]);
                if (torch) spec.rng = RngKind::torch;
                INFO(describe(cell, spec) << " rng=" << (torch ? "torch" : "philox"));
                std::vector<CudaLaunchRecord> whole_launches, capped_launches;
                auto whole_gpu = gpu_backend_with(CudaTestHooks{0, 0, &whole_launches});
                const auto whole = run_poisoned(*whole_gpu, spec, cell, 5, cs.n);
                REQUIRE(whole_launches.size() == 1);
                const kern::NetLayout L = kern::make_layout(spec, cell);
                // A network's device bytes: its scratch only where it was not in shared memory.
                const uint64_t per_net = kern::bytes_per_network(L, p == Precision::float32 ? sizeof(float) : sizeof(double), true,
                                                                 whole_launches[0].shared_scratch);
                const uint64_t chunk = cs.n / 7 + 1;
                auto capped_gpu = gpu_backend_with(CudaTestHooks{0, chunk * per_net + per_net / 2, &capped_launches});
                const auto capped = run_poisoned(*capped_gpu, spec, cell, 5, cs.n);
                REQUIRE(capped_launches.size() == (cs.n + chunk - 1) / chunk);
                for (size_t k = 0; k + 1 < capped_launches.size(); ++k) CHECK(capped_launches[k].nets == chunk);
                CHECK(bit_equal(whole, capped));
                std::vector<double> none(row_stride(cell.depth()));
                auto tiny_gpu = gpu_backend_with(CudaTestHooks{0, per_net - 1, nullptr});
                CHECK_THROWS_AS(tiny_gpu->run(spec, cell, 0, 1, none.data()), std::runtime_error);
            }
        }
    }
}

GS_GPU_CASE("CUDA device summary = gs::summarize", "[gpu][summary]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    std::mt19937_64 rng(4);
    std::normal_distribution<double> normal;
    const int stride = 7;
    for (uint64_t count : {uint64_t{1}, uint64_t{2}, uint64_t{20}, uint64_t{5000}}) {
        std::vector<double> rows(count * stride);
        for (uint64_t r = 0; r < count; ++r)
            for (int c = 0; c < stride; ++c) {
                double x = std::exp(2 * normal(rng));
                if (c == 1 && r % 3 == 0) x = 0.0;
                if (c == 2 && r % 5 == 1) x = nan;
                if (c == 3 && r % 7 == 2) x = (r % 2 ? inf : -inf);
                if (c == 4) x = -x;
                if (c == 5) x = nan;
                if (c == 6) x = 0.5;
                rows[r * stride + c] = x;
            }
        std::vector<Summary> got;
        REQUIRE(gpu_summarize_rows(rows.data(), count, stride, got));
        REQUIRE(got.size() == static_cast<size_t>(stride));
        for (int c = 0; c < stride; ++c) {
            std::vector<double> col;
            for (uint64_t r = 0; r < count; ++r) col.push_back(rows[r * stride + c]);
            const Summary w = summarize(col);
            const Summary& g = got[c];
            INFO("count " << count << " column " << c);
            CHECK(g.n == w.n);
            CHECK(g.n_nonfinite == w.n_nonfinite);
            CHECK(g.n_zero == w.n_zero);
            auto same = [](double a, double b, double rel) {
                if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
                return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
            };
            CHECK(same(g.min, w.min, 0));
            CHECK(same(g.max, w.max, 0));
            CHECK(same(g.q05, w.q05, 1e-14));
            CHECK(same(g.median, w.median, 1e-14));
            CHECK(same(g.q95, w.q95, 1e-14));
            CHECK(same(g.mean, w.mean, 1e-12));
            CHECK(same(g.std, w.std, 1e-9));
            CHECK(same(g.geomean, w.geomean, 1e-11));
        }
    }
}

GS_GPU_CASE("cuda_run_summarized = summaries of the CPU rows", "[gpu][summary]") {
    auto cpu = make_cpu_backend(0);
    Cell cell;
    cell.layer_sizes = {3, 16, 16, 16, 1};
    cell.activation = Activation::relu;
    cell.shortcut = true;
    const uint64_t n = 4096;
    const Spec spec = make_spec(Precision::float64, 1, true, 0, n, 3);
    std::vector<Summary> got;
    REQUIRE(gpu_run_summarized(spec, cell, 10, n, got));
    const int stride = row_stride(cell.depth());
    REQUIRE(got.size() == static_cast<size_t>(stride));
    const auto rows = run_poisoned(*cpu, spec, cell, 10, n);
    for (int c = 0; c < stride; ++c) {
        std::vector<double> col;
        for (uint64_t r = 0; r < n; ++r) col.push_back(rows[r * stride + c]);
        const Summary w = summarize(col);
        INFO("slot " << c);
        CHECK(got[c].n == w.n);
        CHECK(got[c].n_zero == w.n_zero);
        CHECK(got[c].median == Approx(w.median).epsilon(1e-8));
        CHECK(got[c].mean == Approx(w.mean).epsilon(1e-8));
        CHECK(got[c].q95 == Approx(w.q95).epsilon(1e-8));
    }
}

// A cell summarised on the device is the host's summary of the same device's
// rows, to the bit: the same kernel makes the rows either way, and the summary
// and the growth fits run in the shared order (column_sums.hpp, growth_terms.hpp).
GS_GPU_CASE("a cell summarised on the device = summarize_cell of its rows, bit for bit", "[gpu][summary][cell]") {
    auto gpu = gpu_backend();
    struct Case {
        int depth, width;
        double sigma;  // 0: the default init
        Activation act;
        uint64_t seeds;
    };
    // 1e5 with identity: values past 1e154 and past double (inf, NaN); 5000 seeds: two summation blocks.
    for (const Case k : {Case{6, 16, 0, Activation::relu, 5000}, Case{34, 3, 1e5, Activation::identity, 300},
                         Case{32, 3, 300, Activation::tanh, 257}, Case{5, 40, 0, Activation::gelu, 100}}) {
        Cell cell;
        cell.layer_sizes.assign(k.depth + 1, k.width);
        cell.layer_sizes.front() = 3;
        cell.layer_sizes.back() = 1;
        cell.activation = k.act;
        cell.bias = true;
        if (k.sigma > 0) cell.init = Init{InitKind::normal, k.sigma, 0.0};
        const uint64_t n = scaled(k.seeds, 4);
        for (const Precision p : {Precision::float64, Precision::float32}) {
            const Spec spec = make_spec(p, 2, true, 3, n, 3);
            INFO("depth " << k.depth << " width " << k.width << " sigma " << k.sigma << " seeds " << n << " float" << (p == Precision::float32 ? 32 : 64));
            const auto rows = run_poisoned(*gpu, spec, cell, 0, n);
            const CellResult want = summarize_cell(cell, rows.data(), n);
            // Through the backend `gradsweep run` uses (one backend for every cell:
            // its device buffers are reused), and through cuda_summarize_cell.
            for (const bool run_path : {true, false}) {
                INFO((run_path ? "Backend::summarize_cell" : "cuda_summarize_cell"));
                CellResult got;
                REQUIRE((run_path ? gpu->summarize_cell(spec, cell, n, got) : gpu_summarize_cell(spec, cell, n, got)));
                auto same = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; };
                CHECK(got.networks == want.networks);
                CHECK(got.nonfinite_networks == want.nonfinite_networks);
                for (const auto& [g, w] : {std::pair{&got.growth, &want.growth}, std::pair{&got.delta_growth, &want.delta_growth}}) {
                    CHECK(g->status == w->status);
                    CHECK(g->seeds == w->seeds);
                    CHECK(same(g->rate, w->rate));
                    CHECK(same(g->stderr_, w->stderr_));
                }
                REQUIRE(got.layers.size() == want.layers.size());
                for (int c = 0; c < row_stride(k.depth); ++c) {
                    const Summary& g = c < k.depth * kNumQuantities ? got.layers[c / kNumQuantities][c % kNumQuantities] : got.loss;
                    const Summary& w = c < k.depth * kNumQuantities ? want.layers[c / kNumQuantities][c % kNumQuantities] : want.loss;
                    INFO("slot " << c);
                    CHECK(g.n == w.n);
                    CHECK(g.n_nonfinite == w.n_nonfinite);
                    CHECK(g.n_zero == w.n_zero);
                    for (const auto& [a, b] : {std::pair{g.mean, w.mean}, std::pair{g.std, w.std}, std::pair{g.geomean, w.geomean},
                                               std::pair{g.min, w.min}, std::pair{g.q05, w.q05}, std::pair{g.median, w.median},
                                               std::pair{g.q95, w.q95}, std::pair{g.max, w.max}})
                        CHECK(same(a, b));
                }
            }
        }
    }
}

GS_GPU_CASE("CUDA torch mode = CPU torch mode on the seed notebooks' specs", "[gpu][torch]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(source_dir()) / "sweeps" / "seeds";
    INFO("seed-notebook specs in " << dir.string());
    REQUIRE(fs::is_directory(dir));
    auto gpu = gpu_backend();
    auto cpu = make_cpu_backend(0);
    int specs = 0;
    Worst worst;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".json") continue;
        const Spec spec = load_spec_file(entry.path().string());
        ++specs;
        const uint64_t n = std::min<uint64_t>(spec.seed_count, 256);
        for (const Cell& cell : spec.cells) {
            INFO(entry.path().filename().string() << " cell " << cell.index);
            // Against CPU float64 with the conditioned tolerances, as everywhere else.
            const Spec spec64 = with_precision(spec, Precision::float64);
            const Reference ref = cpu_reference(*cpu, spec64, cell, 0, n);
            const auto got = run_poisoned(*gpu, spec, cell, 0, n);
            const int stride = row_stride(cell.depth());
            const Comparison c = spec.precision == Precision::float32 ? compare_rows(got, ref.cpu64, ref.tol32, 1e-30, stride)
                                                                      : compare_rows(got, ref.cpu64, ref.tol64, 1e-300, stride);
            INFO(c.first);
            CHECK(c.ok());
            worst.f32 = std::max(worst.f32, c.max_rel);
            worst.kinks += ref.kinks;
        }
    }
    REQUIRE(specs > 0);
    WARN(specs << " seed-notebook specs compared; " << worst_line(worst));
}

GS_GPU_CASE("CUDA torch mode reproduces the PyTorch reference cases", "[gpu][torch]") {
    // The data path can be pointed elsewhere (GS_SOURCE_DIR) for a carried binary.
    const nlohmann::json doc = torch_test::read_json(source_dir() + "/tests/data/torch_cases.json");  // throws (fails) when missing
    REQUIRE(doc["cases"].size() == 36);
    auto gpu = gpu_backend();
    for (const auto& cs : doc["cases"]) {
        nlohmann::json s;
        s["seeds"] = {{"count", 1}, {"first", cs["seed"]}};
        s["rng"] = "torch";
        s["precision"] = "float32";
        s["network"] = {{"layer_sizes", cs["layer_sizes"]}, {"activation", cs["activation"]}, {"shortcut", cs["shortcut"]},
                        {"bias", cs["bias"]}, {"last_activation", cs["last_activation"]}};
        if (cs["input"].contains("values")) s["input"] = cs["input"];
        else s["input"] = {{"distribution", "normal"}, {"batch", cs["input"]["batch"]}};
        s["loss"] = {{"kind", "mse"}, {"target", cs["target"]}};
        const Spec spec = parse_spec_text(s.dump());
        const Cell& cell = spec.cells.at(0);
        const auto rows = run_poisoned(*gpu, spec, cell, 0, 1);
        const auto& exp = cs["expected"];
        auto close = [](double got, double want) { return std::fabs(got - want) <= 1e-4 * std::fabs(want) + 1e-7; };
        INFO(cs["name"].get<std::string>());
        CHECK(close(rows[loss_index(cell.depth())], exp["loss"].get<double>()));
        for (int l = 0; l < cell.depth(); ++l) {
            const auto& el = exp["layers"][l];
            for (int q : {int(weight_grad_mean_abs), int(weight_grad_rms), int(weight_grad_max_abs), int(bias_grad_mean_abs)}) {
                if (!el.contains(kQuantityNames[q])) continue;
                INFO("layer " << l << " " << kQuantityNames[q] << ": got " << rows[l * kNumQuantities + q] << " want "
                              << el[kQuantityNames[q]].get<double>());
                CHECK(close(rows[l * kNumQuantities + q], el[kQuantityNames[q]].get<double>()));
            }
        }
    }
}

GS_GPU_CASE("CUDA backend errors", "[gpu][errors]") {
    CHECK_THROWS_AS(gpu_backend_on(1000), std::runtime_error);
    auto gpu = gpu_backend();
    CHECK(gpu->name() == "cuda");
    CHECK(!gpu->device_name().empty());
    Cell cell;
    cell.layer_sizes = {3, 1};
    const Spec spec = make_spec(Precision::float32, 1, true, 0, 1, 3);
    std::vector<double> none;
    gpu->run(spec, cell, 0, 0, none.data());  // zero networks: nothing to do, no error
}
