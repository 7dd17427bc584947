// A deliberately plain float64 network, one seed at a time, with full gradient
// matrices: the reference that the fast backends are checked against, itself
// checked against finite differences.
#pragma once
#include <cmath>
#include <vector>

#include "gradsweep/activation.hpp"
#include "gradsweep/init.hpp"
#include "gradsweep/random_values.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

namespace gs::test {

struct RefNet {
    const Spec* spec;
    const Cell* cell;
    std::vector<std::vector<double>> W, b;  // W[l] row-major [out][in]
    std::vector<double> x;                  // [batch][in]
    // Pins the pre-activation of one unit (layer pin_layer, index batch_row * width
    // + unit pin_unit) to pin_z in the forward pass, and so in the backward pass:
    // the row as it would be had rounding put that z elsewhere (tests/gpu/kink_reference.hpp).
    int pin_layer = -1, pin_unit = -1;
    double pin_z = 0;

    RefNet(const Spec& s, const Cell& c, uint64_t seed) : spec(&s), cell(&c) {
        const auto& n = c.layer_sizes;
        for (int l = 0; l < c.depth(); ++l) {
            const Dist wd = weight_dist(c.init, n[l], n[l + 1]);
            const Dist bd = c.bias ? bias_dist(c.init, n[l]) : Dist{};
            W.emplace_back(n[l] * n[l + 1]);
            b.emplace_back(n[l + 1]);
            for (int e = 0; e < n[l] * n[l + 1]; ++e) W[l][e] = draw_value<double>(seed, s.rng_key, Stream::weight, l, e, wd);
            for (int i = 0; i < n[l + 1]; ++i) b[l][i] = draw_value<double>(seed, s.rng_key, Stream::bias, l, i, bd);
        }
        const int B = s.input.batch;
        for (int e = 0; e < B * n[0]; ++e)
            x.push_back(s.input.random ? draw_value<double>(seed, s.rng_key, Stream::input, 0, e, Dist{Dist::normal, 1.0})
                                       : s.input.values[e / n[0]][e % n[0]]);
    }

    double act(double z) const {
        return dispatch_activation(cell->activation, [&]<Activation A>() { return act_forward<A, double>(z, cell->leaky_slope); });
    }
    double dact(double z) const {
        return dispatch_activation(cell->activation, [&]<Activation A>() {
            return act_derivative<A, double>(z, act_forward<A, double>(z, cell->leaky_slope), cell->leaky_slope);
        });
    }

    double backward_at(double dy, double up) const {
        return dispatch_activation(cell->activation, [&]<Activation A>() { return act_backward<A, double>(dy, up); });
    }

    // Forward pass; keeps z (pre-activations) and a (layer outputs) per layer.
    double forward(std::vector<std::vector<double>>& zs, std::vector<std::vector<double>>& as) const {
        const auto& n = cell->layer_sizes;
        const int B = spec->input.batch, D = cell->depth();
        as.assign(D + 1, {});
        zs.assign(D, {});
        as[0] = x;
        for (int l = 0; l < D; ++l) {
            zs[l].assign(B * n[l + 1], 0.0);
            as[l + 1].assign(B * n[l + 1], 0.0);
            for (int bb = 0; bb < B; ++bb)
                for (int i = 0; i < n[l + 1]; ++i) {
                    double z = b[l][i];
                    for (int j = 0; j < n[l]; ++j) z += W[l][i * n[l] + j] * as[l][bb * n[l] + j];
                    if (l == pin_layer && bb * n[l + 1] + i == pin_unit) z = pin_z;
                    zs[l][bb * n[l + 1] + i] = z;
                    const double y = cell->activation_at(l) ? act(z) : z;
                    as[l + 1][bb * n[l + 1] + i] = cell->residual_at(l) ? as[l][bb * n[l] + i] + cell->residual_scale * y : y;
                }
        }
        double loss = 0;
        for (double v : as[D]) loss += (v - spec->target) * (v - spec->target);
        return loss / static_cast<double>(as[D].size());
    }

    double loss() const {
        std::vector<std::vector<double>> zs, as;
        return forward(zs, as);
    }

    // Full gradients dLoss/dW[l], dLoss/db[l]; returns the loss.
    double backward(std::vector<std::vector<double>>& gW, std::vector<std::vector<double>>& gb,
                    std::vector<std::vector<double>>* acts = nullptr) const {
        const auto& n = cell->layer_sizes;
        const int B = spec->input.batch, D = cell->depth();
        std::vector<std::vector<double>> zs, as;
        const double L = forward(zs, as);
        std::vector<double> g(as[D].size());
        for (size_t q = 0; q < g.size(); ++q) g[q] = 2.0 * (as[D][q] - spec->target) / static_cast<double>(g.size());
        gW.assign(D, {});
        gb.assign(D, {});
        for (int l = D - 1; l >= 0; --l) {
            gW[l].assign(n[l] * n[l + 1], 0.0);
            gb[l].assign(n[l + 1], 0.0);
            std::vector<double> gprev(B * n[l], 0.0);
            for (int bb = 0; bb < B; ++bb)
                for (int i = 0; i < n[l + 1]; ++i) {
                    const double up = g[bb * n[l + 1] + i] * (cell->residual_at(l) ? cell->residual_scale : 1.0);
                    const double d = cell->activation_at(l) ? backward_at(dact(zs[l][bb * n[l + 1] + i]), up) : up;
                    gb[l][i] += d;
                    for (int j = 0; j < n[l]; ++j) {
                        gW[l][i * n[l] + j] += d * as[l][bb * n[l] + j];
                        gprev[bb * n[l] + j] += W[l][i * n[l] + j] * d;
                    }
                    if (cell->residual_at(l)) gprev[bb * n[l] + i] += g[bb * n[l + 1] + i];
                }
            g = std::move(gprev);
        }
        if (acts) *acts = as;
        return L;
    }

    // The statistics row a backend must produce for this network.
    std::vector<double> stats_row() const {
        std::vector<std::vector<double>> gW, gb, as;
        const double L = backward(gW, gb, &as);
        const int D = cell->depth();
        std::vector<double> row(row_stride(D), 0.0);
        for (int l = 0; l < D; ++l) {
            double sa = 0, sq = 0, mx = 0;
            for (double v : gW[l]) { sa += std::fabs(v); sq += v * v; mx = std::max(mx, std::fabs(v)); }
            double ba = 0;
            for (double v : gb[l]) ba += std::fabs(v);
            double ass = 0;
            for (double v : as[l + 1]) ass += v * v;
            double* r = row.data() + l * kNumQuantities;
            r[weight_grad_mean_abs] = sa / gW[l].size();
            r[weight_grad_rms] = std::sqrt(sq / gW[l].size());
            r[weight_grad_max_abs] = mx;
            r[bias_grad_mean_abs] = cell->bias ? ba / gb[l].size() : 0.0;
            r[activation_rms] = std::sqrt(ass / as[l + 1].size());
        }
        row[loss_index(D)] = L;
        return row;
    }
};

}  // namespace gs::test
