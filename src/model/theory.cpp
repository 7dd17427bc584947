// Mean-field recursion for the per-layer weight-gradient mean square; the
// derivation, term by term, is in docs/theory.md.
#include "gradsweep/theory.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <limits>
#include <string>

namespace gs {

namespace {

constexpr double kPi = std::numbers::pi;  // the double nearest pi (theory.cpp and torch_rng.cpp each spelled it out)

struct GaussLegendre {
    std::vector<double> x, w;  // on [-1, 1]
    explicit GaussLegendre(int n) : x(n), w(n) {
        for (int i = 0; i < n; ++i) {
            double t = std::cos(kPi * (i + 0.75) / (n + 0.5));
            double dp = 1;
            for (int it = 0; it < 100; ++it) {
                double p0 = 1, p1 = t;  // Legendre recurrence up to P_n
                for (int k = 2; k <= n; ++k) {
                    const double p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
                    p0 = p1;
                    p1 = p2;
                }
                dp = n * (t * p1 - p0) / (t * t - 1);
                const double step = p1 / dp;
                t -= step;
                if (std::fabs(step) < 1e-16) break;
            }
            x[i] = t;
            w[i] = 2 / ((1 - t * t) * dp * dp);
        }
    }
};

// Radial rule for the weight r exp(-r^2/2) on [0, inf), truncated at r = 11
// (the tail beyond is below 1e-25 of the mass even with an r^6 factor).
constexpr int kRadial = 48;
constexpr int kAngular = 20;  // per angular interval
constexpr double kRmax = 11.0;

constexpr int kHalfLine = 64;  // one variable: points per half-line, against exp(-x^2/2)

struct Rules {
    GaussLegendre radial{kRadial}, angular{kAngular}, half{kHalfLine};
    std::vector<double> r, wr, x, wx;
    Rules() {
        for (int i = 0; i < kRadial; ++i) {
            const double rr = 0.5 * kRmax * (radial.x[i] + 1);
            r.push_back(rr);
            wr.push_back(0.5 * kRmax * radial.w[i] * rr * std::exp(-0.5 * rr * rr));
        }
        for (int i = 0; i < kHalfLine; ++i) {
            const double xx = 0.5 * kRmax * (half.x[i] + 1);
            x.push_back(xx);
            wx.push_back(0.5 * kRmax * half.w[i] * std::exp(-0.5 * xx * xx) / std::sqrt(2 * kPi));
        }
    }
};
const Rules& rules() {
    static const Rules r;
    return r;
}

// Calls f(z1, z2, weight) at quadrature points of (z1, z2) ~ N(0, [[k11,k12],[k12,k22]]).
// In polar coordinates (u, v) = r (cos t, sin t) of a standard pair, z1 = a r cos t and
// z2 = b r cos(t - t0): each activation's kink at 0 lies on a ray, so splitting the
// angle there leaves integrands smooth on every piece.
template <class F>
void for_pair_points(double k11, double k12, double k22, F&& f) {
    const double a = std::sqrt(std::max(k11, 0.0)), b = std::sqrt(std::max(k22, 0.0));
    const Rules& R = rules();
    if (k11 == k12 && k12 == k22) {
        // One variable (a sample with itself): each half-line is smooth, kinks sit at 0.
        for (int i = 0; i < kHalfLine; ++i) {
            f(a * R.x[i], a * R.x[i], R.wx[i]);
            f(-a * R.x[i], -a * R.x[i], R.wx[i]);
        }
        return;
    }
    double rho = (a > 0 && b > 0) ? std::clamp(k12 / (a * b), -1.0, 1.0) : 0.0;
    if (1 - std::fabs(rho) < 1e-12) rho = rho > 0 ? 1.0 : -1.0;  // a rounded 1 - eps would open a spurious sliver
    const double t0 = std::acos(rho);
    double cuts[6] = {0, kPi / 2, 3 * kPi / 2, std::fmod(t0 + kPi / 2, 2 * kPi), std::fmod(t0 + 3 * kPi / 2, 2 * kPi), 2 * kPi};
    std::sort(cuts, cuts + 6);
    for (int c = 0; c + 1 < 6; ++c) {
        const double lo = cuts[c], hi = cuts[c + 1], half = 0.5 * (hi - lo);
        if (half < 1e-15) continue;
        for (int i = 0; i < kAngular; ++i) {
            const double t = lo + half * (R.angular.x[i] + 1);
            const double wt = half * R.angular.w[i] / (2 * kPi);
            const double c1 = a * std::cos(t), c2 = b * std::cos(t - t0);
            for (int j = 0; j < kRadial; ++j) f(c1 * R.r[j], c2 * R.r[j], wt * R.wr[j]);
        }
    }
}

// Everything one layer needs from one pair of samples. u = out_scale * f(z) - target
// is the output's deviation from the target when this is the last layer.
struct LayerMoments {
    double f1 = 0, f2 = 0, ff = 0, dd = 0;
    double dduu = 0, ddu1 = 0, ddu2 = 0;
};

LayerMoments layer_moments(Activation act, double slope, double k11, double k12, double k22, double out_scale,
                           double target) {
    return dispatch_activation(act, [&]<Activation A>() {
        LayerMoments m;
        if (!(std::isfinite(k11) && std::isfinite(k12) && std::isfinite(k22))) {
            const double nan = std::numeric_limits<double>::quiet_NaN();
            return LayerMoments{nan, nan, nan, nan, nan, nan, nan};
        }
        for_pair_points(k11, k12, k22, [&](double z1, double z2, double w) {
            const double y1 = act_forward<A, double>(z1, slope), y2 = act_forward<A, double>(z2, slope);
            const double d1 = act_derivative<A, double>(z1, y1, slope), d2 = act_derivative<A, double>(z2, y2, slope);
            const double u1 = out_scale * y1 - target, u2 = out_scale * y2 - target;
            const double dd = d1 * d2;
            m.f1 += w * y1;
            m.f2 += w * y2;
            m.ff += w * y1 * y2;
            m.dd += w * dd;
            m.dduu += w * dd * u1 * u2;
            m.ddu1 += w * dd * u1;
            m.ddu2 += w * dd * u2;
        });
        return m;
    });
}

using Matrix = std::vector<std::vector<double>>;

Matrix square(int n, double v = 0) { return Matrix(n, std::vector<double>(n, v)); }

double contract(const Matrix& w, const Matrix& p, const Matrix& q) {
    double s = 0;
    for (size_t b = 0; b < w.size(); ++b)
        for (size_t c = 0; c < w.size(); ++c) s += w[b][c] * p[b][c] * q[b][c];
    return s;
}

}  // namespace

double dist_variance(const Dist& d) {
    switch (d.kind) {
        case Dist::uniform: return d.scale * d.scale / 3;
        case Dist::normal: return d.scale * d.scale;
        case Dist::zero: return 0;
    }
    return 0;
}

PairMoments gaussian_pair_moments(Activation a, double slope, double k11, double k12, double k22) {
    const LayerMoments m = layer_moments(a, slope, k11, k12, k22, 1.0, 0.0);
    return {m.f1, m.f2, m.ff, m.dd};
}

FixedPoint mean_field_fixed_point(Activation a, double leaky_slope, double sigma_w2, double sigma_b2, double q0) {
    // One variable: k11 = k12 = k22 takes the half-line rule (kinks at 0 are exact).
    auto moments = [&](double q) { return layer_moments(a, leaky_slope, q, q, q, 1.0, 0.0); };
    FixedPoint fp;
    double q = q0;
    for (fp.iterations = 0; fp.iterations < kFixedPointMaxIterations; ++fp.iterations) {
        if (!(q >= 1e-30 && q <= 1e30)) break;
        const double next = sigma_w2 * moments(q).ff + sigma_b2;
        const bool still = std::fabs(next - q) <= 1e-14 * q;
        q = next;
        if (still) {
            fp.converged = true;
            break;
        }
    }
    fp.q_last = q;
    if (!(q >= 1e-30)) {  // runs off to 0: chi_1 is its limit, read at a small q
        fp.q_star = 0;
        fp.converged = true;
        q = std::max(q, 1e-30);
    } else if (!(q <= 1e30)) {
        fp.q_star = std::numeric_limits<double>::infinity();
        fp.converged = true;
        q = 1e30;
    } else {
        fp.q_star = q;
    }
    fp.chi1 = sigma_w2 * moments(q).dd;
    return fp;
}

std::vector<LayerPrediction> predict_layers(const Spec& spec, const Cell& cell) {
    const int D = cell.depth();
    const int B = spec.input.batch;
    const std::vector<int>& n = cell.layer_sizes;

    // Samples of a random input are exchangeable: two stand for all B, with
    // weights counting the B diagonal and B(B-1) off-diagonal pairs of the batch sum.
    int S = B;
    Matrix pair_weight;
    Matrix Q;  // Q[b][c] = mean over units j of E[a_j(b) a_j(c)] for the current layer's input
    std::vector<double> mean;  // mean over units j of E[a_j(b)]
    if (spec.input.random) {
        S = B >= 2 ? 2 : 1;
        pair_weight = square(S, B * (B - 1) / 2.0);
        for (int b = 0; b < S; ++b) pair_weight[b][b] = B / static_cast<double>(S);
        if (S == 1) pair_weight[0][0] = 1;
        Q = square(S);
        for (int b = 0; b < S; ++b) Q[b][b] = 1;
        mean.assign(S, 0.0);
    } else {
        pair_weight = square(S, 1.0);
        Q = square(S);
        mean.assign(S, 0.0);
        const auto& x = spec.input.values;
        for (int b = 0; b < S; ++b) {
            for (int c = 0; c < S; ++c) {
                for (int j = 0; j < n[0]; ++j) Q[b][c] += x[b][j] * x[c][j];
                Q[b][c] /= n[0];
            }
            for (int j = 0; j < n[0]; ++j) mean[b] += x[b][j];
            mean[b] /= n[0];
        }
    }
    double diag_weight_sum = 0;
    for (int b = 0; b < S; ++b) diag_weight_sum += pair_weight[b][b];

    const double rs = cell.residual_scale, t = spec.target;
    const double c = 2.0 / (static_cast<double>(B) * n[D]);  // dLoss/dy = c (y - t)
    std::vector<Matrix> Qs, dd;          // per layer: input second moments, E[f'f']
    std::vector<std::vector<double>> means;
    std::vector<double> vw(D);
    std::vector<LayerPrediction> out(D);
    Matrix P = square(S), R = square(S);  // E[delta delta'], E[g g'] per unit

    for (int l = 0; l < D; ++l) {
        vw[l] = dist_variance(weight_dist(cell.init, n[l], n[l + 1]));
        const double vb = cell.bias ? dist_variance(bias_dist(cell.init, n[l])) : 0.0;
        const Activation act = cell.activation_at(l) ? cell.activation : Activation::identity;
        const bool res = cell.residual_at(l), last = l == D - 1;
        Matrix K = square(S);
        for (int b = 0; b < S; ++b)
            for (int e = 0; e < S; ++e) K[b][e] = vw[l] * n[l] * Q[b][e] + vb;
        // z = W a + b is, at infinite width, Gaussian with covariance K across samples and
        // independent of any single unit of a: hence the factorised cross terms below.
        std::vector<std::vector<LayerMoments>> M(S, std::vector<LayerMoments>(S));
        for (int b = 0; b < S; ++b)
            for (int e = b; e < S; ++e) {
                // Exchangeable samples share kernels: reuse an identical pair's moments.
                bool found = false;
                for (int b2 = 0; b2 <= b && !found; ++b2)
                    for (int e2 = b2; e2 < S && !found; ++e2) {
                        if (b2 == b && e2 == e) break;
                        if (K[b2][b2] == K[b][b] && K[b2][e2] == K[b][e] && K[e2][e2] == K[e][e]) {
                            M[b][e] = M[b2][e2];
                            found = true;
                        }
                    }
                if (!found) M[b][e] = layer_moments(act, cell.leaky_slope, K[b][b], K[b][e], K[e][e], res ? rs : 1.0, t);
                M[e][b] = M[b][e];
                std::swap(M[e][b].f1, M[e][b].f2);
                std::swap(M[e][b].ddu1, M[e][b].ddu2);
            }
        Matrix ddl = square(S);
        for (int b = 0; b < S; ++b)
            for (int e = 0; e < S; ++e) ddl[b][e] = M[b][e].dd;
        if (last) {
            // Output unit i: y = [a_i +] s f(z_i), dLoss/dz_i = s f'(z_i) c (y - t).
            const double s = res ? rs : 1.0;
            for (int b = 0; b < S; ++b)
                for (int e = 0; e < S; ++e) {
                    const LayerMoments& m = M[b][e];
                    double v = m.dduu;
                    if (res) v += mean[e] * m.ddu1 + mean[b] * m.ddu2 + Q[b][e] * m.dd;
                    P[b][e] = s * s * c * c * v;
                }
        }
        Qs.push_back(Q);
        dd.push_back(std::move(ddl));
        means.push_back(mean);
        Matrix Qn = square(S);
        std::vector<double> mn(S);
        for (int b = 0; b < S; ++b) {
            const double fb = M[b][b].f1;
            mn[b] = res ? mean[b] + rs * fb : fb;
            for (int e = 0; e < S; ++e) {
                const double fe = M[e][e].f1;
                Qn[b][e] = res ? Q[b][e] + rs * (mean[b] * fe + mean[e] * fb) + rs * rs * M[b][e].ff : M[b][e].ff;
            }
        }
        Q = std::move(Qn);
        mean = std::move(mn);
        double act_ms = 0;
        for (int b = 0; b < S; ++b) act_ms += pair_weight[b][b] * Q[b][b];
        out[l].activation_ms = act_ms / diag_weight_sum;
    }

    // Backward. Q, mean now describe the output y = a_D.
    for (int b = 0; b < S; ++b)
        for (int e = 0; e < S; ++e) R[b][e] = c * c * (Q[b][e] - t * mean[b] - t * mean[e] + t * t);
    for (int l = D - 1; l >= 0; --l) {
        const bool res = cell.residual_at(l);
        if (l < D - 1) {
            const double s = res ? rs : 1.0;
            for (int b = 0; b < S; ++b)
                for (int e = 0; e < S; ++e) P[b][e] = s * s * dd[l][b][e] * R[b][e];
        }
        out[l].weight_grad_ms = contract(pair_weight, P, Qs[l]);
        // dLoss/da_l = [dLoss/da_{l+1} +] W_l^T delta_l; W^T is treated as independent of
        // delta (gradient independence), exact at infinite width for fixed output_dim.
        for (int b = 0; b < S; ++b)
            for (int e = 0; e < S; ++e) R[b][e] = vw[l] * n[l + 1] * P[b][e] + (res ? R[b][e] : 0.0);
    }
    for (LayerPrediction& p : out) {
        if (!std::isfinite(p.weight_grad_ms)) p.weight_grad_ms = std::numeric_limits<double>::quiet_NaN();
        if (!std::isfinite(p.activation_ms)) p.activation_ms = std::numeric_limits<double>::quiet_NaN();
    }
    return out;
}

std::vector<double> predict_weight_grad_ms(const Spec& spec, const Cell& cell) {
    std::vector<double> v;
    for (const LayerPrediction& p : predict_layers(spec, cell)) v.push_back(p.weight_grad_ms);
    return v;
}

CellTheory cell_theory(const Spec& spec, const Cell& cell) {
    CellTheory t;
    const long B = spec.input.batch;
    const long pairs = spec.input.random ? 3 : B * (B + 1) / 2;
    const long cost = pairs * cell.depth();
    if (cost > kTheoryMaxPairIntegrals) {
        t.reason = (spec.input.random ? std::string("a random input") : "a fixed input of " + std::to_string(B) + " rows") +
                   " at depth " + std::to_string(cell.depth()) + " needs " + std::to_string(cost) +
                   " two-dimensional Gaussian integrals (pairs of rows x layers); more than " +
                   std::to_string(kTheoryMaxPairIntegrals) + " are not computed";
        return t;
    }
    t.applies = true;
    auto root = [](double ms) { return std::isfinite(ms) && ms >= 0 ? std::sqrt(ms) : std::numeric_limits<double>::quiet_NaN(); };
    for (const LayerPrediction& p : predict_layers(spec, cell)) {
        t.weight_grad_rms.push_back(root(p.weight_grad_ms));
        t.activation_rms.push_back(root(p.activation_ms));
    }
    return t;
}

}  // namespace gs
