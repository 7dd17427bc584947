// The classic signal-propagation results, reproduced by the engine on cut-down
// versions of the studies (issue 18). Every tolerance comes from the seeds'
// standard error (growth_rate.hpp), plus the 5 % of the predicted rate that
// finite width is allowed to shift it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/theory.hpp"
#include "run_sweep.hpp"

using namespace gs;

namespace {

// |measured - predicted| within 3 standard errors (a 0.3 % chance for an unbiased
// estimate: the seeds are fixed, so the outcome is too) plus 5 % of the prediction.
void check_rate(const GrowthRate& g, double predicted) {
    INFO("measured " << g.rate << " +- " << g.stderr_ << " over " << g.seeds << " seeds, predicted " << predicted);
    REQUIRE(g.defined());
    CHECK(std::fabs(g.rate - predicted) <= 3 * g.stderr_ + 0.05 * std::fabs(predicted));
}

}  // namespace

TEST_CASE("He criticality: relu, no bias, sigma_w^2 = 2(1 + eps): deltas grow ln(1 + eps) per layer, weight gradients not at all", "[studies][slow]") {
    // He et al., "Delving Deep into Rectifiers", 2015: E[relu'(z)^2] = 1/2, so the
    // backpropagated gradient grows by chi_1 = sigma_w^2 / 2 per layer at any
    // forward variance, and 2 is critical. The forward variance grows by the same
    // factor per layer, so the weight gradients (delta times the layer's input)
    // are balanced across layers whatever sigma_w: their rate is 0.
    for (double eps : {0.0, -0.25, 0.25}) {
        const double sw = std::sqrt(2 * (1 + eps));
        const std::string spec_text = R"({"name": "he", "seeds": {"count": 256, "first": 1},
          "network": {"depth": 10, "width": 256, "input_dim": 16, "activation": "relu", "bias": false,
                      "last_activation": false, "init": {"kind": "normal", "sigma_w": )" +
                                      std::to_string(sw) + R"(}},
          "input": {"distribution": "normal", "batch": 1}})";
        const Spec spec = parse_spec_text(spec_text);
        auto backend = make_cpu_backend(0);
        const SweepResult r = run_sweep(spec, *backend);
        INFO("eps " << eps);
        check_rate(r.cells[0].delta_growth, std::log1p(eps));
        check_rate(r.cells[0].growth, 0.0);
        // The mean-field prediction's slopes are the same (exactly, for relu).
        const CellTheory th = cell_theory(spec, spec.cells[0]);
        REQUIRE(th.applies);
        const int D = spec.cells[0].depth();
        CHECK(theory_growth_rate(D, th.weight_grad_rms, &th.activation_rms) == Approx(std::log1p(eps)).margin(1e-6));
        CHECK(theory_growth_rate(D, th.weight_grad_rms) == Approx(0).margin(1e-6));
    }
}

TEST_CASE("edge of chaos: tanh backpropagates by chi_1 at the fixed point, on both sides of chi_1 = 1", "[studies][slow]") {
    // Poole et al., "Exponential expressivity in deep neural networks through
    // transient chaos" (NeurIPS 2016); Schoenholz et al., "Deep Information
    // Propagation" (ICLR 2017): at the forward fixed point q*, dL/dz's mean square
    // grows by chi_1 = sigma_w^2 E[tanh'(sqrt(q*) z)^2] per layer towards the
    // input. The input row has mean square (q* - sigma_b^2) / sigma_w^2, so the
    // first pre-activations already have variance q*: no transient to fit around
    // (the shipped sweep's random input has one; docs/theory.md, "Edge of chaos").
    struct Point {
        double sw2, sb2;
    };
    for (const Point p : {Point{0.75, 0.05}, Point{1.25, 0.05}, Point{2.5, 0.05}, Point{4.0, 0.1}}) {
        const FixedPoint fp = mean_field_fixed_point(Activation::tanh, 0, p.sw2, p.sb2, p.sw2 + p.sb2);
        REQUIRE(fp.converged);
        const double x = std::sqrt((fp.q_star - p.sb2) / p.sw2);
        std::string row;
        for (int j = 0; j < 16; ++j) row += (j ? ", " : "") + std::to_string(j % 2 ? -x : x);
        const std::string spec_text = R"({"name": "chaos", "seeds": {"count": 128, "first": 1},
          "network": {"depth": 10, "width": 512, "input_dim": 16, "activation": "tanh", "last_activation": false,
                      "sigma_w2": )" + std::to_string(p.sw2) + R"(, "sigma_b2": )" + std::to_string(p.sb2) + R"(},
          "input": {"values": [[)" + row + "]]}}";
        const Spec spec = parse_spec_text(spec_text);
        const SweepResult r = run_sweep(spec, *make_cpu_backend(0));
        const double ln_chi = std::log(fp.chi1);
        INFO("sigma_w^2 " << p.sw2 << ", sigma_b^2 " << p.sb2 << ": q* " << fp.q_star << ", ln chi_1 " << ln_chi);
        check_rate(r.cells[0].delta_growth, ln_chi);
        // The prediction's own slope (the exact per-layer recursion) is ln chi_1 too: it starts at q*.
        const CellTheory th = cell_theory(spec, spec.cells[0]);
        REQUIRE(th.applies);
        CHECK(theory_growth_rate(10, th.weight_grad_rms, &th.activation_rms) == Approx(ln_chi).margin(1e-4));
        // Ordered below the line, chaotic above: the sign is measured, not only predicted.
        const GrowthRate& g = r.cells[0].delta_growth;
        CHECK((ln_chi < 0 ? -g.rate : g.rate) > 3 * g.stderr_);
    }
}

TEST_CASE("residual scale 0 (ReZero, SkipInit): hidden residual layers' weight gradients are exactly 0", "[studies]") {
    const Spec spec = parse_spec_text(R"({"name": "rezero", "seeds": {"count": 64},
      "grid": {"activation": ["relu", "gelu", "tanh"]},
      "network": {"depth": 6, "width": 16, "input_dim": 3, "shortcut": true, "residual_scale": 0, "last_activation": false},
      "input": {"distribution": "normal", "batch": 2}})");
    auto backend = make_cpu_backend(1);
    const SweepResult r = run_sweep(spec, *backend);
    for (const CellResult& c : r.cells) {
        const Cell& cell = spec.cells[c.cell];
        for (int l = 0; l < cell.depth(); ++l) {
            INFO("cell " << c.cell << " layer " << l);
            const Summary& s = c.layers[l][weight_grad_rms];
            if (cell.residual_at(l)) {
                CHECK(s.n_zero == 64);  // counted as vanished, never hidden
                CHECK(s.max == 0);
            } else {
                CHECK(s.n_zero == 0);  // the input and output layers still learn
            }
        }
        CHECK_FALSE(c.growth.defined());  // every fitted layer is exactly 0
        CHECK(c.growth.status == GrowthStatus::zero_layer);
        CHECK(c.delta_growth.status == GrowthStatus::zero_layer);
    }
}

TEST_CASE("residual scale 1/sqrt(L) tames the first layer's gradient where 1 explodes", "[studies][slow]") {
    // relu with shortcut: each residual add multiplies the forward second moment by
    // ~(1 + s^2 + 2 s c), c from the activations' nonzero mean: with s = 1 that is
    // exponential in L; with s = 1/sqrt(L) only the mean's cross term still grows
    // with depth, like e^{2c sqrt(L)}: tamed, not bounded. Medians over seeds: at
    // depth/width 1/4 the mean of rms^2 is dominated by rare large networks
    // (finite-width spread, Hanin 2018), the median is not.
    auto first_layer_median = [](int depth, double scale) {
        const Spec spec = parse_spec_text(R"({"name": "res", "seeds": {"count": 256},
          "network": {"depth": )" + std::to_string(depth) + R"(, "width": 128, "input_dim": 3, "shortcut": true,
                      "residual_scale": )" + std::to_string(scale) + R"(, "bias": false, "last_activation": false,
                      "init": "kaiming_normal"},
          "input": {"values": [[1.0, 0.5, -1.0]]}})");
        return run_sweep(spec, *make_cpu_backend(0)).cells[0].layers[0][weight_grad_rms].median;
    };
    const double one_4 = first_layer_median(4, 1.0), one_32 = first_layer_median(32, 1.0);
    const double inv_4 = first_layer_median(4, 0.5), inv_32 = first_layer_median(32, 1 / std::sqrt(32.0));
    INFO("median weight_grad_rms of layer 0, scale 1: " << one_4 << " -> " << one_32 << "; scale 1/sqrt(L): " << inv_4 << " -> "
                                                        << inv_32);
    CHECK(one_32 / one_4 > 1e9);   // explodes (mean field: 2^28 in rms^2 from the residual adds alone)
    CHECK(inv_32 / inv_4 < 1e2);   // at least 1e7 times less growth
    CHECK(inv_32 / inv_4 > 1);     // but it still grows: the activations' mean
}

TEST_CASE("residual_scale \"1/sqrt(depth)\": the shipped residual-scaling study, cut down", "[studies][slow]") {
    // sweeps/studies/residual_scaling.json at depths 4 and 16, 128 seeds, relu.
    // Per seed x = ln weight_grad_rms of layer 0; each depth's mean of x has a
    // standard error from the seeds, and so has the growth from depth 4 to 16.
    const Spec spec = parse_spec_text(R"js({"name": "res", "seeds": {"count": 128},
      "grid": {"residual_scale": [1, "1/sqrt(depth)", 0], "depth": [4, 16]},
      "network": {"width": 128, "input_dim": 3, "shortcut": true, "bias": false, "last_activation": false,
                  "init": "kaiming_normal"},
      "input": {"values": [[1.0, 0.5, -1.0]]}})js");
    REQUIRE(spec.cells.size() == 6);
    CHECK(spec.cells[2].residual_scale == 0.5);   // 1/sqrt(4)
    CHECK(spec.cells[3].residual_scale == 0.25);  // 1/sqrt(16)
    struct Mean {
        double m, se;
    };
    std::vector<Mean> first(6);
    std::vector<std::vector<double>> rows_of(6);
    for (const Cell& cell : spec.cells) {
        const int stride = row_stride(cell.depth());
        std::vector<double>& rows = rows_of[cell.index];
        rows.resize(spec.seed_count * stride);
        make_cpu_backend(0)->run(spec, cell, 0, spec.seed_count, rows.data());
        std::vector<double> x;
        for (uint64_t s = 0; s < spec.seed_count; ++s) {
            const double g = rows[s * stride + weight_grad_rms];  // layer 0
            REQUIRE(g > 0);
            x.push_back(std::log(g));
        }
        double m = 0, v = 0;
        for (double e : x) m += e / x.size();
        for (double e : x) v += (e - m) * (e - m) / (x.size() - 1);
        first[cell.index] = {m, std::sqrt(v / x.size())};
    }
    auto growth = [&](int at4) {  // cells at4 (depth 4) and at4 + 1 (depth 16)
        return Mean{first[at4 + 1].m - first[at4].m, std::hypot(first[at4].se, first[at4 + 1].se)};
    };
    const Mean one = growth(0), inv = growth(2), zero = growth(4);
    INFO("mean ln weight_grad_rms of layer 0, depth 4 -> 16: scale 1 grows " << one.m << " +- " << one.se << ", 1/sqrt(depth) "
                                                                              << inv.m << " +- " << inv.se << ", 0 " << zero.m
                                                                              << " +- " << zero.se);
    // Scale 1 explodes: e^(>= 7) = 1000-fold from depth 4 to 16, well beyond its error.
    CHECK(one.m - 3 * one.se > std::log(1e3));
    // 1/sqrt(depth) grows at least 100 times less (mean field: 4.6-fold), and significantly less than scale 1.
    CHECK(inv.m + 3 * inv.se < one.m - std::log(1e2));
    // ReZero: the network is layer 0 and the output layer whatever the depth, so
    // the first layer's gradient has the same distribution at depth 4 and 16.
    CHECK(std::fabs(zero.m) <= 3 * zero.se);
    // ... and every hidden residual layer's weight gradient is exactly 0.
    for (int c : {4, 5}) {
        const Cell& cell = spec.cells[c];
        const int stride = row_stride(cell.depth());
        for (int l = 1; l + 1 < cell.depth(); ++l) {
            REQUIRE(cell.residual_at(l));
            for (uint64_t s = 0; s < spec.seed_count; ++s)
                CHECK(rows_of[c][s * stride + l * kNumQuantities + weight_grad_rms] == 0);
        }
    }
}

TEST_CASE("finite-width spread follows beta = sum of 1/width, not depth alone", "[studies][slow]") {
    // Hanin, "Which Neural Net Architectures Give Rise to Exploding and Vanishing
    // Gradients?", NeurIPS 2018: for relu networks the variance over seeds of
    // ln(gradient^2) grows with beta = sum_j 1/n_j. Four shapes with beta = 1/4
    // (depth 5 x width 16 ... depth 33 x width 128) agree within their standard
    // errors; at the same depth, width 16 (beta = 1) spreads far more than 64.
    struct Spread {
        double var, stderr_;
    };
    auto spread = [](int depth, int width) {
        const Spec spec = parse_spec_text(R"({"name": "spread", "seeds": {"count": 512},
          "network": {"depth": )" + std::to_string(depth) + R"(, "width": )" + std::to_string(width) + R"(, "input_dim": 3,
                      "activation": "relu", "bias": false, "last_activation": false, "init": "kaiming_normal"},
          "input": {"values": [[1.0, 0.5, -1.0]]}})");
        const Cell& cell = spec.cells[0];
        const int stride = row_stride(cell.depth());
        std::vector<double> rows(spec.seed_count * stride), x;
        make_cpu_backend(0)->run(spec, cell, 0, spec.seed_count, rows.data());
        for (uint64_t s = 0; s < spec.seed_count; ++s) {
            const double g = rows[s * stride + weight_grad_rms];  // layer 0
            REQUIRE(g > 0);
            x.push_back(2 * std::log(g));
        }
        const double n = static_cast<double>(x.size());
        double m = 0;
        for (double v : x) m += v / n;
        double m2 = 0, m4 = 0;
        for (double v : x) {
            m2 += (v - m) * (v - m);
            m4 += std::pow(v - m, 4) / n;
        }
        const double var = m2 / (n - 1);
        return Spread{var, std::sqrt(std::max(0.0, m4 - var * var * (n - 3) / (n - 1)) / n)};
    };
    const Spread a = spread(5, 16), b = spread(9, 32), c = spread(17, 64), d = spread(33, 128), wide = spread(17, 16);
    INFO("beta 1/4: depth 5 " << a.var << " +- " << a.stderr_ << ", depth 9 " << b.var << " +- " << b.stderr_ << ", depth 17 "
                              << c.var << " +- " << c.stderr_ << ", depth 33 " << d.var << " +- " << d.stderr_
                              << "; depth 17 width 16 (beta 1): " << wide.var << " +- " << wide.stderr_);
    const Spread same[] = {a, b, c, d};
    for (const Spread& p : same)
        for (const Spread& q : same) CHECK(std::fabs(p.var - q.var) <= 3 * std::hypot(p.stderr_, q.stderr_));
    CHECK(wide.var - c.var > 3 * std::hypot(wide.stderr_, c.stderr_));
}
