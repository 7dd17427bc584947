// Exploding and vanishing gradients are data: an inf or NaN in one network's
// statistics is counted (n_nonfinite), never aborts the run and never leaks into
// the aggregates of other seeds or other cells; underflow to exactly zero is
// counted too (n_zero).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gradsweep/backend.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"
#include "test_seed.hpp"
#include "run_sweep.hpp"

using namespace gs;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Identity layers with sigma_w = 3e4: the output grows like sigma_w^depth, so in
// float32 the gradients overflow for most seeds but not all (Philox is fixed, so
// "which seeds" is fixed too). The tanh cell saturates instead: its first
// layer's gradient vanishes to exactly zero.
std::string exploding_spec(const char* precision) {
    return std::string(R"({"seeds": {"count": 256, "first": 0}, "precision": ")") + precision + R"(",
        "grid": {"activation": ["identity", "tanh"]},
        "network": {"depth": 5, "width": 3, "last_activation": false,
                    "init": {"kind": "normal", "sigma_w": 3e4, "sigma_b": 0.0}},
        "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.5}})";
}

bool same(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }  // NaN == NaN, 0 != -0

bool same_summary(const Summary& a, const Summary& b) {
    return a.n == b.n && a.n_nonfinite == b.n_nonfinite && a.n_zero == b.n_zero && same(a.mean, b.mean) &&
           same(a.std, b.std) && same(a.min, b.min) && same(a.q05, b.q05) && same(a.median, b.median) &&
           same(a.q95, b.q95) && same(a.max, b.max) && same(a.geomean, b.geomean);
}

std::vector<double> rows_of(Backend& b, const Spec& spec, const Cell& c) {
    std::vector<double> rows(spec.seed_count * row_stride(c.depth()));
    b.run(spec, c, 0, spec.seed_count, rows.data());
    return rows;
}

std::vector<double> column(const std::vector<double>& rows, int stride, int slot) {
    std::vector<double> v;
    for (size_t s = 0; s * stride < rows.size(); ++s) v.push_back(rows[s * stride + slot]);
    return v;
}

}  // namespace

TEST_CASE("float32 overflow is counted per seed and never aborts the sweep", "[nonfinite]") {
    const Spec spec = parse_spec_text(exploding_spec("float32"));
    auto backend = make_cpu_backend(2);
    SweepResult result;
    REQUIRE_NOTHROW(result = run_sweep(spec, *backend));
    REQUIRE(result.cells.size() == 2);

    const CellResult& identity = result.cells[0];
    CHECK(identity.networks == 256);
    CHECK(identity.nonfinite_networks > 0);
    CHECK(identity.nonfinite_networks <= 256);
    // Some seeds overflow, others give finite, non-zero gradients: the mixed case.
    const Summary& g = identity.layers[0][weight_grad_mean_abs];
    CHECK(g.n_nonfinite > 0);
    CHECK(g.n > 0);
    CHECK(std::isfinite(g.median));
    CHECK(g.median > 0);
    CHECK(std::isfinite(g.mean));
    CHECK(std::isfinite(g.std));
    CHECK(std::isfinite(g.max));

    // Every statistic accounts for all 256 networks, finite or not.
    for (const CellResult& c : result.cells) {
        for (const auto& layer : c.layers)
            for (const Summary& s : layer) CHECK(s.n + s.n_nonfinite == 256);
        CHECK(c.loss.n + c.loss.n_nonfinite == 256);
    }

    // The tanh cell saturates: its first layer's gradient vanishes to exact zeros.
    const Summary& t = result.cells[1].layers[0][weight_grad_mean_abs];
    CHECK(t.n_nonfinite == 0);
    CHECK(t.n_zero > 0);
}

TEST_CASE("the aggregates of finite seeds are exactly those of the finite seeds alone", "[nonfinite]") {
    const Spec spec = parse_spec_text(exploding_spec("float32"));
    auto backend = make_cpu_backend(1);
    const SweepResult result = run_sweep(spec, *backend);
    int mixed = 0;
    for (const Cell& cell : spec.cells) {
        const auto rows = rows_of(*backend, spec, cell);
        const int stride = row_stride(cell.depth());
        for (int l = 0; l < cell.depth(); ++l)
            for (int q = 0; q < kNumQuantities; ++q) {
                const auto all = column(rows, stride, l * kNumQuantities + q);
                std::vector<double> finite;
                std::copy_if(all.begin(), all.end(), std::back_inserter(finite), [](double x) { return std::isfinite(x); });
                const size_t bad = all.size() - finite.size();
                mixed += bad > 0 && !finite.empty();
                Summary alone = summarize(finite);
                alone.n_nonfinite = bad;  // the only field the bad seeds may touch
                INFO("cell " << cell.index << " layer " << l << " quantity " << kQuantityNames[q]);
                CHECK(same_summary(result.cells[cell.index].layers[l][q], alone));
            }
    }
    CHECK(mixed > 0);  // the property was tested on statistics that really mix both
}

TEST_CASE("an exploding cell does not change its neighbour's results", "[nonfinite]") {
    const Spec both = parse_spec_text(exploding_spec("float32"));
    std::string alone_text = exploding_spec("float32");
    alone_text.replace(alone_text.find(R"(["identity", "tanh"])"), std::strlen(R"(["identity", "tanh"])"), R"(["tanh"])");
    const Spec alone = parse_spec_text(alone_text);
    auto backend = make_cpu_backend(2);
    const SweepResult a = run_sweep(both, *backend), b = run_sweep(alone, *backend);
    REQUIRE(b.cells.size() == 1);
    const CellResult &x = a.cells[1], &y = b.cells[0];
    CHECK(x.nonfinite_networks == y.nonfinite_networks);
    for (size_t l = 0; l < x.layers.size(); ++l)
        for (int q = 0; q < kNumQuantities; ++q) CHECK(same_summary(x.layers[l][q], y.layers[l][q]));
    CHECK(same_summary(x.loss, y.loss));
}

TEST_CASE("results with non-finite values still write valid JSON and CSV", "[nonfinite]") {
    const Spec spec = parse_spec_text(exploding_spec("float32"));
    auto backend = make_cpu_backend(2);
    const SweepResult result = run_sweep(spec, *backend);
    ojson j;
    REQUIRE_NOTHROW(j = ojson::parse(results_json_text(spec, result)));
    const auto& rms = j["cells"][0]["layers"][0]["weight_grad_rms"];
    CHECK(rms["n_nonfinite"] == result.cells[0].layers[0][weight_grad_rms].n_nonfinite);
    CHECK(j["cells"][0]["nonfinite_networks"] == result.cells[0].nonfinite_networks);
    // A statistic with no finite value at all is null in JSON, NaN in the CSV.
    for (int l = 0; l < spec.cells[0].depth(); ++l)
        for (int q = 0; q < kNumQuantities; ++q)
            if (result.cells[0].layers[l][q].n == 0) {
                CHECK(j["cells"][0]["layers"][l][kQuantityNames[q]]["median"].is_null());
            }
    const std::string csv = results_csv_text(spec, result);
    CHECK(csv.find("inf") == std::string::npos);  // only "NaN"/"Infinity", which CSV readers understand
}

TEST_CASE("float64 holds what float32 cannot", "[nonfinite]") {
    const Spec spec = parse_spec_text(exploding_spec("float64"));
    auto backend = make_cpu_backend(2);
    const SweepResult result = run_sweep(spec, *backend);
    for (const CellResult& c : result.cells) {
        CHECK(c.nonfinite_networks == 0);
        for (const auto& layer : c.layers)
            for (const Summary& s : layer) CHECK(s.n_nonfinite == 0);
    }
}

TEST_CASE("gradients that underflow to zero are counted in n_zero", "[nonfinite]") {
    // sigma_w = 1e-12 over six identity layers: every weight gradient is a product
    // of about 1e-60, below float32's smallest subnormal but fine in float64.
    auto spec_for = [](const char* precision) {
        return parse_spec_text(std::string(R"({"seeds": {"count": 64}, "precision": ")") + precision + R"(",
            "network": {"depth": 6, "width": 3, "activation": "identity", "last_activation": false,
                        "init": {"kind": "normal", "sigma_w": 1e-12, "sigma_b": 0.0}},
            "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.5}})");
    };
    auto backend = make_cpu_backend(2);
    const Spec f32 = spec_for("float32"), f64 = spec_for("float64");
    const SweepResult a = run_sweep(f32, *backend), b = run_sweep(f64, *backend);
    for (int l = 0; l < 6; ++l)
        for (int q : {weight_grad_mean_abs, weight_grad_rms, weight_grad_max_abs}) {
            INFO("layer " << l << " " << kQuantityNames[q]);
            const Summary &s32 = a.cells[0].layers[l][q], &s64 = b.cells[0].layers[l][q];
            CHECK(s32.n == 64);
            CHECK(s32.n_nonfinite == 0);
            CHECK(s32.n_zero == 64);
            CHECK(s32.max == 0);
            CHECK(std::isnan(s32.geomean));  // no positive value to take a log of
            CHECK(s64.n_zero == 0);
            CHECK(s64.min > 0);
        }
    // The loss itself is unharmed: the output is ~0, so it is ~target^2.
    CHECK(a.cells[0].loss.n_zero == 0);
    CHECK(a.cells[0].loss.median == Approx(0.25));
}

TEST_CASE("vanishing float32 gradients keep their rms (squares summed in double)", "[nonfinite]") {
    // sigma_w = 1e-4 over six identity layers: first-layer gradients of about 1e-20,
    // normal floats whose squares (1e-40) are not. One sample takes the rank-one
    // path, a batch of three the elementwise one; both must match float64.
    auto spec_for = [](const char* precision, const char* input) {
        return parse_spec_text(std::string(R"({"seeds": {"count": 48}, "precision": ")") + precision + R"(",
            "network": {"depth": 6, "width": 3, "activation": "identity", "last_activation": false,
                        "init": {"kind": "normal", "sigma_w": 1e-4, "sigma_b": 0.0}},
            "input": )" + input + R"(, "loss": {"kind": "mse", "target": 0.5}})");
    };
    auto backend = make_cpu_backend(2);
    for (const char* input : {R"({"values": [[1.0, 0.0, -1.0]]})", R"({"distribution": "normal", "batch": 3})"}) {
        const SweepResult a = run_sweep(spec_for("float32", input), *backend), b = run_sweep(spec_for("float64", input), *backend);
        const Summary &rms32 = a.cells[0].layers[0][weight_grad_rms], &rms64 = b.cells[0].layers[0][weight_grad_rms];
        INFO(input << ": float64 median rms " << rms64.median << ", float32 " << rms32.median);
        REQUIRE(rms64.median > 1e-24);
        REQUIRE(rms64.median < 1e-19);  // the squares really are below float's normal range
        CHECK(rms32.n_zero == 0);
        CHECK(rms32.median == Approx(rms64.median).epsilon(1e-4));
        CHECK(rms32.min == Approx(rms64.min).epsilon(1e-4));
        CHECK(a.cells[0].layers[0][weight_grad_mean_abs].median == Approx(b.cells[0].layers[0][weight_grad_mean_abs].median).epsilon(1e-4));
    }
}

TEST_CASE("summarize: every kind of non-finite value, zeros and subnormals", "[nonfinite][stats]") {
    const double sub = std::numeric_limits<double>::denorm_min();
    std::vector<double> v = {kInf, 1.0, -kInf, 2.0, kNaN, -0.0, -kNaN, sub, 3.0, 0.0};
    const Summary s = summarize(v);
    CHECK(s.n == 6);
    CHECK(s.n_nonfinite == 4);
    CHECK(s.n_zero == 2);  // -0.0 is a zero too
    CHECK(s.min == 0);
    CHECK(s.max == 3.0);
    CHECK(s.median == Approx((sub + 1.0) / 2));
    CHECK(s.mean == Approx(6.0 / 6));
    CHECK(std::isfinite(s.std));
    CHECK(std::isfinite(s.geomean));  // the subnormal is positive: a huge negative log, still finite
    CHECK(s.geomean > 0);

    // The input order does not matter, bit for bit (without -0.0, which sorts
    // equal to 0.0 and may come out as either).
    std::vector<double> w = {kInf, 1.0, -kInf, 2.0, kNaN, 0.0, -kNaN, sub, 3.0, 0.0};
    std::vector<double> w0 = w;
    const Summary ref = summarize(w0);
    CHECK(ref.n_zero == 2);
    const uint64_t seed = test::test_seed(7);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (int k = 0; k < 20; ++k) {
        SEED_INFO(seed);
        std::shuffle(w.begin(), w.end(), rng);
        std::vector<double> copy = w;
        const Summary t = summarize(copy);
        CHECK(same_summary(t, ref));
    }

    // Only non-finite values: nothing to summarise, and it says so with NaN.
    std::vector<double> bad = {kNaN, kInf, -kInf};
    const Summary b = summarize(bad);
    CHECK(b.n == 0);
    CHECK(b.n_nonfinite == 3);
    CHECK(b.n_zero == 0);
    for (double x : {b.mean, b.std, b.min, b.q05, b.median, b.q95, b.max, b.geomean}) CHECK(std::isnan(x));

    std::vector<double> none;
    const Summary e = summarize(none);
    CHECK(e.n == 0);
    CHECK(e.n_nonfinite == 0);
}

TEST_CASE("summarize_cell: one network's NaN removes it from that statistic only", "[nonfinite][stats]") {
    const Spec spec = parse_spec_text(R"({"network": {"depth": 2, "width": 3}, "seeds": {"count": 3}})");
    const Cell& cell = spec.cells[0];
    const int stride = row_stride(2);
    std::vector<double> rows(3 * stride);
    for (int s = 0; s < 3; ++s)
        for (int k = 0; k < stride; ++k) rows[s * stride + k] = 1.0 + s;
    rows[1 * stride + kNumQuantities + weight_grad_rms] = kNaN;  // network 1, layer 1
    rows[2 * stride + loss_index(2)] = kInf;                     // network 2's loss
    const CellResult r = summarize_cell(cell, rows.data(), 3);
    CHECK(r.networks == 3);
    CHECK(r.nonfinite_networks == 2);
    CHECK(r.layers[1][weight_grad_rms].n == 2);
    CHECK(r.layers[1][weight_grad_rms].n_nonfinite == 1);
    CHECK(r.layers[1][weight_grad_rms].mean == 2.0);  // (1 + 3) / 2
    CHECK(r.layers[1][weight_grad_mean_abs].n == 3);
    CHECK(r.layers[1][weight_grad_mean_abs].mean == 2.0);
    CHECK(r.layers[0][weight_grad_rms].n == 3);
    CHECK(r.loss.n == 2);
    CHECK(r.loss.n_nonfinite == 1);
    CHECK(r.loss.max == 2.0);
}

// Large but finite values (float64 networks can reach 1e300) must not turn the
// mean or std into inf: the sum over seeds overflows where no single value does.
TEST_CASE("summarize: huge finite values keep a finite mean and std", "[nonfinite][stats]") {
    std::vector<double> v = {1e308, 1.5e308, 1.7e308, 1e300};
    const double mean = 1e308 / 4 + 1.5e308 / 4 + 1.7e308 / 4 + 1e300 / 4;
    double ss = 0;  // in units of 1e300, where nothing overflows
    for (double x : v) ss += (x / 1e300 - mean / 1e300) * (x / 1e300 - mean / 1e300);
    const Summary s = summarize(v);
    CHECK(s.n_nonfinite == 0);
    CHECK(std::isfinite(s.mean));
    CHECK(std::isfinite(s.std));
    CHECK(s.mean == Approx(mean).epsilon(1e-12));
    CHECK(s.std == Approx(std::sqrt(ss / 3) * 1e300).epsilon(1e-12));
    CHECK(s.max == 1.7e308);
    // Opposite signs: deviations that overflow although the mean does not.
    std::vector<double> w = {-1.7e308, 1.7e308, -1.6e308, 1.6e308};
    const Summary t = summarize(w);
    CHECK(t.mean == 0);
    CHECK(t.std == Approx(std::sqrt((2 * 1.7 * 1.7 + 2 * 1.6 * 1.6) / 3) * 1e308).epsilon(1e-12));
    // Ordinary values take the ordinary path (test_select.cpp checks its bits).
    std::vector<double> u = {1.0, 2.0, 4.0};
    const Summary o = summarize(u);
    CHECK(o.mean == 7.0 / 3);
    CHECK(o.std == Approx(std::sqrt(7.0 / 3)).epsilon(1e-15));
}
