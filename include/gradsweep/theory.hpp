// The infinite-width (mean-field) prediction of per-layer gradient scales, to put
// beside the measured ones. Derivation and limits of validity: docs/theory.md.
#pragma once
#include <string>
#include <vector>

#include "gradsweep/activation.hpp"
#include "gradsweep/spec.hpp"

namespace gs {

// Per layer l of a cell, the expectation over seeds that the network semantics
// (spec.hpp) give as width -> infinity with input_dim, output_dim and batch held fixed.
struct LayerPrediction {
    double weight_grad_ms = 0;  // E[weight_grad_rms^2] = E[mean_ij (dLoss/dW_l)_ij^2]
    double activation_ms = 0;   // E[activation_rms^2]  = E[mean over batch and units of a_{l+1}^2]
};

std::vector<LayerPrediction> predict_layers(const Spec& spec, const Cell& cell);

// One value per layer: E[weight_grad_rms^2]. NaN where the recursion overflows.
// Cost: depth x (pairs of distinct input rows) two-dimensional quadratures of ~4000
// points; a random input counts as 2 rows, a fixed one as its batch.
std::vector<double> predict_weight_grad_ms(const Spec& spec, const Cell& cell);

// What the outputs carry for one cell (results.json "theory", theory.csv).
struct CellTheory {
    bool applies = false;
    std::string reason;                   // why there is no prediction, when !applies
    std::vector<double> weight_grad_rms;  // per layer: sqrt(E[weight_grad_rms^2]); NaN where the recursion overflows
    std::vector<double> activation_rms;   // per layer: sqrt(E[activation_rms^2]); NaN likewise
};

// Cells whose prediction would cost more than this many two-dimensional quadratures
// (depth x distinct pairs of input rows) get none: a fixed batch of B rows costs
// B(B+1)/2 per layer, a random input 3.
inline constexpr long kTheoryMaxPairIntegrals = 20000;

// The prediction for one cell, or the reason there is none. Deterministic: a
// function of the spec and cell only, so sharded, resumed and merged runs agree.
CellTheory cell_theory(const Spec& spec, const Cell& cell);

// The forward fixed point of a plain network's pre-activation variance and the
// per-layer gradient factor there (Poole et al., "Exponential expressivity in
// deep neural networks through transient chaos", NeurIPS 2016; Schoenholz et al.,
// "Deep Information Propagation", ICLR 2017). With W ~ N(0, sigma_w2 / fan_in)
// and b ~ N(0, sigma_b2), the variance q_l of a pre-activation follows
//   q_{l+1} = sigma_w2 E[f(sqrt(q_l) z)^2] + sigma_b2,   z ~ N(0, 1),
// and a backpropagated gradient's mean square is multiplied, per layer towards
// the input, by chi_1(q) = sigma_w2 E[f'(sqrt(q) z)^2]. The iteration starts at
// q0 (a unit-variance input gives q0 = sigma_w2 + sigma_b2) and stops once q
// changes by less than 1e-14 relatively, or leaves [1e-30, 1e30] (q* = 0 or
// infinity: reported as such, with chi_1 at the last q, which is its limit
// there). Integrals by the same quadrature as the prediction (docs/theory.md).
struct FixedPoint {
    double q_star = 0;       // pre-activation variance at the fixed point (0 or inf where it runs off)
    double chi1 = 0;         // sigma_w2 E[f'(sqrt(q*) z)^2]; the critical line is chi1 = 1
    double q_last = 0;       // the last iterate (q_star when converged to a finite positive value)
    int iterations = 0;
    bool converged = false;  // false: still moving after kFixedPointMaxIterations (e.g. tanh at sigma_b2 = 0,
                             // sigma_w2 = 1, where q decays like 1/l)
};
inline constexpr int kFixedPointMaxIterations = 100000;
FixedPoint mean_field_fixed_point(Activation a, double leaky_slope, double sigma_w2, double sigma_b2, double q0);

// Building blocks, exposed for the tests.

// Variance of one value drawn from d (uniform: scale^2/3, normal: scale^2).
double dist_variance(const Dist& d);

// E[f(z1) f(z2)], E[f(z1)], E[f'(z1) f'(z2)] for (z1, z2) ~ N(0, [[k11, k12], [k12, k22]]),
// by quadrature in polar coordinates with the angular intervals split where z1 or z2
// changes sign, so kinked activations (relu) integrate as accurately as smooth ones.
struct PairMoments {
    double f1 = 0, f2 = 0;  // E[f(z1)], E[f(z2)]
    double ff = 0;          // E[f(z1) f(z2)]
    double dd = 0;          // E[f'(z1) f'(z2)]
};
PairMoments gaussian_pair_moments(Activation a, double slope, double k11, double k12, double k22);

}  // namespace gs
