// Whole networks at the edges of the number range: NaN that must stay NaN through
// every activation, float64 statistics whose sums of squares leave double's range,
// PyTorch's float32 loss, one seed, the last 64-bit seed.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"
#include "reference_net.hpp"
#include "run_sweep.hpp"

using namespace gs;

namespace {

std::vector<double> rows_of(const Spec& spec, const Cell& c, int threads = 1) {
    std::vector<double> rows(spec.seed_count * row_stride(c.depth()), -1.0);
    make_cpu_backend(threads)->run(spec, c, 0, spec.seed_count, rows.data());
    return rows;
}

double slot(const std::vector<double>& rows, const Cell& c, uint64_t seed, int layer, int q) {
    return rows[seed * row_stride(c.depth()) + layer * kNumQuantities + q];
}
double loss_of(const std::vector<double>& rows, const Cell& c, uint64_t seed) {
    return rows[seed * row_stride(c.depth()) + loss_index(c.depth())];
}

// sqrt(mean(v^2)) and mean(|v|) in long double (x87: 15 exponent bits, so no
// float64 square overflows or underflows there).
struct Exact {
    double rms, mean_abs;
};
Exact exact_moments(const std::vector<double>& v) {
    long double s1 = 0, s2 = 0;
    for (double x : v) {
        s1 += std::fabs(static_cast<long double>(x));
        s2 += static_cast<long double>(x) * x;
    }
    const long double n = static_cast<long double>(v.size());
    return {static_cast<double>(std::sqrt(s2 / n)), static_cast<double>(s1 / n)};
}

}  // namespace

// Issue 13, item 2: relu(NaN) was 0, so a network whose activations overflowed to
// inf and then NaN came back as zeros: a finite loss of target^2 and its last
// layers counted in n_zero as "vanished".
TEST_CASE("NaN propagates through every activation to the loss and is counted, never read as zero", "[nonfinite][torch]") {
    const Spec spec = parse_spec_text(R"({"seeds": {"count": 256, "first": 0}, "precision": "float32",
        "grid": {"activation": ["relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "identity", "leaky_relu"]},
        "network": {"depth": 50, "width": 3, "init": {"kind": "normal", "sigma_w": 1000, "sigma_b": 0}},
        "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 2.0}})");
    auto backend = make_cpu_backend(2);
    const SweepResult result = run_sweep(spec, *backend);
    int nan_networks_relu = 0;
    for (const Cell& c : spec.cells) {
        const auto rows = rows_of(spec, c);
        const int D = c.depth();
        uint64_t nan_nets = 0, finite_zero_last = 0;
        for (uint64_t s = 0; s < spec.seed_count; ++s) {
            int first_nan = -1;
            for (int l = 0; l < D && first_nan < 0; ++l)
                if (std::isnan(slot(rows, c, s, l, activation_rms))) first_nan = l;
            if (first_nan < 0) {
                finite_zero_last += slot(rows, c, s, D - 1, activation_rms) == 0;
                continue;
            }
            ++nan_nets;
            INFO(kActivationNames[static_cast<int>(c.activation)] << " seed " << s << ": NaN from layer " << first_nan);
            // PyTorch: f(NaN) = NaN for every activation, so every later layer and
            // the loss are NaN, and so are the gradients that flow back from it.
            for (int l = first_nan; l < D; ++l) CHECK(std::isnan(slot(rows, c, s, l, activation_rms)));
            CHECK(std::isnan(loss_of(rows, c, s)));
            for (int l = 0; l < D; ++l) CHECK_FALSE(std::isfinite(slot(rows, c, s, l, weight_grad_max_abs)));
        }
        const CellResult& r = result.cells[c.index];
        INFO(kActivationNames[static_cast<int>(c.activation)]);
        CHECK(r.nonfinite_networks >= nan_nets);
        CHECK(r.loss.n_nonfinite >= nan_nets);
        const Summary& last = r.layers[D - 1][activation_rms];
        CHECK(last.n_nonfinite >= nan_nets);
        CHECK(last.n_zero == finite_zero_last);  // n_zero counts finite zeros only
        if (c.activation == Activation::relu) nan_networks_relu = static_cast<int>(nan_nets);
    }
    // The case of the issue: float32, sigma_w 1000, depth 50, relu, no shortcut.
    CHECK(nan_networks_relu > 0);
}

// Issue 13, item 4: float64 squares overflow above ~1.3e154 (sigma_w 1e10: max|g|
// 1.5e286, every gradient finite, weight_grad_rms inf) and underflow below
// ~1.5e-154 (sigma_w 1e-10: rms 0 for non-zero gradients).
TEST_CASE("float64 rms and mean |g| are finite and exact whenever every value is finite", "[nonfinite]") {
    // Gradients grow like sigma^(2 depth - 1), activations like sigma^layer (sigma_b 0):
    // 1e10 at depth 12 gives finite gradients near 1e230 (their squares overflow),
    // 3e7 at depth 24 activations near 1e179, 1e-10 squares that underflow.
    struct Case {
        const char *sigma, *depth, *sigma_b;
    };
    for (const Case& k : {Case{"1e10", "12", "0"}, Case{"3e7", "24", "0"}, Case{"1e-10", "24", "0"}}) {
        const char* sigma = k.sigma;
        int rescued = 0;
        for (const char* width : {"3", "80"})  // 8 networks per SIMD vector; one network vectorised over units
            for (const char* input : {R"({"values": [[1.0, 0.5, -1.0]]})", R"({"distribution": "normal", "batch": 3})"}) {
                const std::string text = std::string(R"({"seeds": {"count": 12, "first": 5}, "precision": "float64",
                    "network": {"depth": )") + k.depth + R"(, "width": )" + width + R"(, "input_dim": 3, "activation": "identity",
                    "init": {"kind": "normal", "sigma_w": )" + sigma + R"(, "sigma_b": )" + k.sigma_b + R"(}},
                    "input": )" + input + R"(, "loss": {"kind": "mse", "target": 0.0}})";
                const Spec spec = parse_spec_text(text);
                const Cell& c = spec.cells[0];
                const auto rows = rows_of(spec, c);
                for (uint64_t s = 0; s < spec.seed_count; ++s) {
                    const test::RefNet ref(spec, c, spec.seed_first + s);
                    std::vector<std::vector<double>> gW, gb, as;
                    ref.backward(gW, gb, &as);
                    for (int l = 0; l < c.depth(); ++l) {
                        INFO("sigma " << sigma << " depth " << k.depth << " width " << width << " input " << input << " seed " << s << " layer " << l);
                        // Values that are all finite must give finite, exact statistics; a
                        // value that overflowed makes the statistic non-finite, rightly.
                        auto check = [&](int q, const std::vector<double>& v, bool rms) {
                            double plain_ss = 0;
                            for (double x : v) {
                                if (!std::isfinite(x)) return;
                                plain_ss += x * x;
                            }
                            const Exact e = exact_moments(v);
                            const double want = rms ? e.rms : e.mean_abs;
                            INFO(kQuantityNames[q]);
                            CHECK(slot(rows, c, s, l, q) == Approx(want).epsilon(1e-9));
                            if (want > 0) CHECK(slot(rows, c, s, l, q) > 0);
                            rescued += rms && (std::isinf(plain_ss) || (want > 0 && plain_ss < 0x1p-968));
                        };
                        check(weight_grad_rms, gW[l], true);
                        check(weight_grad_mean_abs, gW[l], false);
                        check(bias_grad_mean_abs, gb[l], false);
                        check(activation_rms, as[l + 1], true);
                    }
                }
            }
        INFO("sigma " << sigma << " depth " << k.depth);
        CHECK(rescued > 0);  // the cases where plain sums of squares leave the range were reached
    }
}

// Issue 13, item 8: the float32 loss was computed in double (5.5e72 where
// PyTorch's float32 mse_loss gives inf). Zero weights and biases make the output
// exactly 0, so the loss is the mean of float32 target^2, whatever the seed.
TEST_CASE("the float32 loss is PyTorch's float32 mse_loss; float64 is unchanged", "[torch]") {
    auto loss_for = [](const char* precision, const char* target, const char* batch_rows) {
        const Spec spec = parse_spec_text(std::string(R"({"seeds": {"count": 3}, "precision": ")") + precision +
                                          R"(", "network": {"depth": 2, "width": 2, "output_dim": 2, "input_dim": 1,
                                          "init": {"kind": "normal", "sigma_w": 0, "sigma_b": 0}},
                                          "input": {"values": )" + batch_rows + R"(}, "loss": {"kind": "mse", "target": )" +
                                          target + "}}");
        const auto rows = rows_of(spec, spec.cells[0]);
        for (uint64_t s = 1; s < spec.seed_count; ++s) CHECK(loss_of(rows, spec.cells[0], s) == loss_of(rows, spec.cells[0], 0));
        return loss_of(rows, spec.cells[0], 0);
    };
    // torch.nn.functional.mse_loss(torch.zeros(n), torch.full((n,), t)) in float32:
    // t = 3e19: inf (3e19^2 overflows float32); t = 0.1: float32(0.1f * 0.1f).
    CHECK(std::isinf(loss_for("float32", "3e19", "[[1.0]]")));
    CHECK(std::isinf(loss_for("float32", "-3e19", "[[1.0], [2.0], [0.5]]")));
    CHECK(loss_for("float32", "0.1", "[[1.0]]") == static_cast<double>(0.1f * 0.1f));
    CHECK(loss_for("float32", "0.1", "[[1.0], [2.0], [0.5]]") == static_cast<double>(0.1f * 0.1f));
    // float32 sum, rounded, then divided in float32: 1.5e19^2 * 6 / 6 overflows in the sum as in PyTorch.
    CHECK(std::isinf(loss_for("float32", "1.5e19", "[[1.0], [2.0], [0.5]]")));
    CHECK(loss_for("float64", "3e19", "[[1.0]]") == 3e19 * 3e19);
    CHECK(loss_for("float64", "0.1", "[[1.0], [2.0]]") == 0.1 * 0.1);
}

// Issue 13, item 5: with one seed, std (ddof 1) is NaN, as numpy and pandas give.
TEST_CASE("one seed: every std is NaN, null in results.json and NaN in results.csv", "[stats]") {
    const Spec spec = parse_spec_text(R"({"seeds": {"count": 1, "first": 4},
        "network": {"depth": 3, "width": 3}, "input": {"values": [[1.0, 0.0, -1.0]]}})");
    auto backend = make_cpu_backend(1);
    const SweepResult result = run_sweep(spec, *backend);
    for (const auto& layer : result.cells[0].layers)
        for (const Summary& s : layer)
            if (s.n == 1) CHECK(std::isnan(s.std));
    CHECK(std::isnan(result.cells[0].loss.std));
    const ojson j = ojson::parse(results_json_text(spec, result));
    CHECK(j["cells"][0]["layers"][0]["weight_grad_rms"]["std"].is_null());
    CHECK(j["cells"][0]["loss"]["std"].is_null());
    const std::string csv = results_csv_text(spec, result);
    const auto header_end = csv.find('\n');
    const std::string header = csv.substr(0, header_end), first = csv.substr(header_end + 1, csv.find('\n', header_end + 1) - header_end - 1);
    auto field = [](const std::string& line, size_t k) {
        size_t a = 0;
        for (size_t i = 0; i < k; ++i) a = line.find(',', a) + 1;
        return line.substr(a, line.find(',', a) - a);
    };
    size_t std_col = 0;
    while (field(header, std_col) != "std") ++std_col;
    CHECK(field(first, std_col) == "NaN");
}

// Issue 13, item 6: docs/errors.md allows first + count <= 2^64.
TEST_CASE("the last 64-bit seed is usable", "[spec]") {
    const uint64_t last = std::numeric_limits<uint64_t>::max();
    const Spec one = parse_spec_text(R"({"seeds": {"first": 18446744073709551615, "count": 1},
        "precision": "float64", "network": {"depth": 2, "width": 3}})");
    CHECK(one.seed_first == last);
    CHECK(one.seed_count == 1);
    const Spec two = parse_spec_text(R"({"seeds": {"first": 18446744073709551614, "count": 2},
        "precision": "float64", "network": {"depth": 2, "width": 3}})");
    const auto rows = rows_of(two, two.cells[0]);
    const int stride = row_stride(two.cells[0].depth());
    for (uint64_t s = 0; s < 2; ++s) {
        const auto want = test::RefNet(two, two.cells[0], two.seed_first + s).stats_row();
        for (int x = 0; x < stride; ++x) CHECK(rows[s * stride + x] == Approx(want[x]).epsilon(1e-12));
    }
    // Its row is seed 2^64 - 1's own, the same whichever run it is part of.
    const auto single = rows_of(one, one.cells[0]);
    for (int x = 0; x < stride; ++x) CHECK(std::memcmp(&single[x], &rows[stride + x], sizeof(double)) == 0);
    std::string csv;
    append_per_seed_csv(csv, one, one.cells[0], single);
    CHECK(csv.find(",18446744073709551615,") != std::string::npos);
    CHECK_THROWS_WITH(parse_spec_text(R"({"seeds": {"first": 18446744073709551615, "count": 2}, "network": {"depth": 2, "width": 3}})"),
                      Catch::Contains("first + count must be at most 2^64"));
}

// Issue 13, item 7: a float32 run cannot hold 1e39; it would be inf before the first layer.
TEST_CASE("float32 specs refuse numbers beyond float32's range, float64 specs take them", "[spec]") {
    auto err = [](const std::string& text) {
        try {
            parse_spec_text(text);
        } catch (const SpecError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    const std::string net = R"("network": {"depth": 2, "width": 3})";
    CHECK_THAT(err(R"({"input": {"values": [[1.0, 1e39, 0.0]]}, )" + net + "}"),
               Catch::Contains("input.values[0][1]") && Catch::Contains("beyond float32's range"));
    CHECK(err(R"({"precision": "float64", "input": {"values": [[1.0, 1e39, 0.0]]}, )" + net + "}") == "accepted");
    // The largest float32 and what rounds to it are fine; what rounds to inf is not.
    CHECK(err(R"({"input": {"values": [[3.4028234663852886e38, -3.40282356e38, 1e-50]]}, )" + net + "}") == "accepted");
    CHECK_THAT(err(R"({"input": {"values": [[1.0, 0.0, -3.4028236e38]]}, )" + net + "}"), Catch::Contains("input.values[0][2]"));
    CHECK_THAT(err(R"({"loss": {"target": 1e39}, )" + net + "}"), Catch::Contains("loss.target"));
    CHECK_THAT(err(R"({"network": {"depth": 2, "width": 3, "shortcut": true, "residual_scale": -1e39}})"),
               Catch::Contains("network.residual_scale"));
    CHECK_THAT(err(R"({"network": {"depth": 2, "width": 3, "activation": "leaky_relu", "leaky_slope": 1e300}})"),
               Catch::Contains("network.leaky_slope"));
    CHECK_THAT(err(R"({"network": {"depth": 2, "width": 3, "init": {"kind": "normal", "sigma_w": 1.0, "sigma_b": 1e39}}})"),
               Catch::Contains("network.init.sigma_b"));
    // sigma_w is divided by sqrt(fan_in): 5e38 / sqrt(4) fits, 5e38 / sqrt(1) does not.
    CHECK(err(R"({"network": {"depth": 2, "width": 4, "init": {"kind": "normal", "sigma_w": 5e38, "sigma_b": 0}}})") == "accepted");
    CHECK_THAT(err(R"({"network": {"depth": 2, "width": 4, "input_dim": 1, "init": {"kind": "normal", "sigma_w": 5e38, "sigma_b": 0}}})"),
               Catch::Contains("network.init.sigma_w") && Catch::Contains("sqrt(fan_in 1)"));
}
