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

using namespace gs;
using namespace gs::gputest;

namespace {

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

Spec with_precision(Spec s, Precision p) {
    s.precision = p;
    return s;
}

struct Worst {
    double f64 = 0, f32 = 0;
};

// One cell, `seeds` networks: GPU float64 vs CPU float64 (1e-8, plus 1e-5 times
// float32's own error on ill-conditioned networks), GPU float32 vs CPU float64
// (1e-4 plus ten times float32's own error); see conditioned_tolerance.
void check_cell(Backend& gpu, Backend& cpu, const Spec& spec64, const Cell& cell, uint64_t off, uint64_t seeds, Worst& worst) {
    const int stride = row_stride(cell.depth());
    const Spec spec32 = with_precision(spec64, Precision::float32);
    const auto cpu64 = run_poisoned(cpu, spec64, cell, off, seeds);
    const auto cpu32 = run_poisoned(cpu, spec32, cell, off, seeds);
    const auto gpu64 = run_poisoned(gpu, spec64, cell, off, seeds);
    const auto gpu32 = run_poisoned(gpu, spec32, cell, off, seeds);
    INFO(describe(cell, spec64));
    {
        const Comparison c = compare_rows(gpu64, cpu64, conditioned_tolerance(cpu32, cpu64, 1e-8, 1e-5, stride), 1e-300, stride);
        INFO("float64: " << c.first);
        CHECK(c.ok());
        worst.f64 = std::max(worst.f64, c.max_rel);
    }
    {
        const Comparison c = compare_rows(gpu32, cpu64, float32_tolerance(cpu32, cpu64, 1e-4, stride), 1e-30, stride);
        INFO("float32 vs float64 reference: " << c.first);
        CHECK(c.ok());
        worst.f32 = std::max(worst.f32, c.max_rel);
    }
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
    WARN(what << ": max relative difference to CPU float64: GPU float64 " << worst.f64 << ", GPU float32 " << worst.f32);
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
    WARN("corners: max relative difference GPU float64 " << worst.f64 << ", GPU float32 " << worst.f32);
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
    auto gpu = gpu_backend();
    auto cpu = make_cpu_backend(0);
    Cell cell;
    cell.layer_sizes = {3, 3, 3, 3, 3, 1};
    cell.activation = Activation::gelu;
    cell.shortcut = true;
    // More than one launch (cap 2^20) and more than 65535 blocks.
    const uint64_t n = scaled(1500000, 100);
    const Spec spec = make_spec(Precision::float32, 1, false, 0, n, 3);
    const auto rows = run_poisoned(*gpu, spec, cell, 0, n);
    const int stride = row_stride(cell.depth());
    for (double v : rows) REQUIRE(!std::isnan(v));
    for (uint64_t start : {uint64_t{0}, std::min<uint64_t>(1048570, n / 2), n - 100}) {
        const auto want = run_poisoned(*cpu, spec, cell, start, 100);
        const std::vector<double> got(rows.begin() + start * stride, rows.begin() + (start + 100) * stride);
        const Comparison c = compare_rows(got, want, 1e-4, 1e-30, stride);
        INFO("from seed " << start << ": " << c.first);
        CHECK(c.ok());
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

GS_GPU_CASE("CUDA torch mode = CPU torch mode on the seed notebooks' specs", "[gpu][torch]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(GS_SOURCE_DIR) / "sweeps" / "seeds";
    if (!fs::exists(dir)) {
        WARN("no " << dir << " yet: skipped");
        return;
    }
    auto gpu = gpu_backend();
    auto cpu = make_cpu_backend(0);
    int specs = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".json") continue;
        const Spec spec = load_spec_file(entry.path().string());
        ++specs;
        const uint64_t n = std::min<uint64_t>(spec.seed_count, 256);
        for (const Cell& cell : spec.cells) {
            const auto want = run_poisoned(*cpu, spec, cell, 0, n);
            const auto got = run_poisoned(*gpu, spec, cell, 0, n);
            const Comparison c = compare_rows(got, want, spec.precision == Precision::float32 ? 1e-4 : 1e-9, 1e-30,
                                              row_stride(cell.depth()));
            INFO(entry.path().filename().string() << " cell " << cell.index << ": " << c.first);
            CHECK(c.ok());
        }
    }
    WARN(specs << " seed-notebook specs compared");
}

GS_GPU_CASE("CUDA torch mode reproduces the PyTorch reference cases", "[gpu][torch]") {
    const nlohmann::json doc = torch_test::read_json(torch_test::kReferenceCasesPath);  // throws (fails) when missing
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
