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
