// How fast a cell's weight gradients grow (or shrink) per layer of backpropagation:
// the least-squares slope of ln E[weight_grad_rms^2] against the number of layers
// between a layer and the output, over the cell's hidden layers, with a standard
// error from the spread over seeds. In mean-field theory that slope is ln(chi_1)
// (Schoenholz et al., "Deep Information Propagation", ICLR 2017), and -1/slope is
// their gradient depth scale xi. Derivation and choices: docs/theory.md, "Growth rate".
#pragma once
#include <cstdint>
#include <limits>
#include <vector>
#include <vector>


namespace gs {

// Why a cell has no rate (stored as a number in checkpoint cell files).
enum class GrowthStatus : uint64_t { ok = 0, few_layers = 1, few_seeds = 2, zero_layer = 3, not_computed = 4 };
const char* growth_reason(GrowthStatus s);  // "" for ok

struct GrowthRate {
    // Fitted layers: first_layer..last_layer (0-based), the layers whose input and
    // gradient both come from hidden layers (1..depth-2): the input layer sees the
    // data, not a hidden activation, and the output layer's gradient comes from the
    // loss, so neither follows the per-layer recursion.
    int64_t first_layer = 0, last_layer = -1;
    uint64_t seeds = 0;  // seeds whose fitted values are all finite: the ones used
    double rate = std::numeric_limits<double>::quiet_NaN();     // per layer, from the output towards the input
    double stderr_ = std::numeric_limits<double>::quiet_NaN();  // standard error of rate from the seeds (delta method)
    double depth_scale = std::numeric_limits<double>::quiet_NaN();  // -1/rate where rate < 0 (gradients vanish towards the input)
    GrowthStatus status = GrowthStatus::not_computed;  // until fit_growth_rate fills it
    bool defined() const { return status == GrowthStatus::ok; }
    const char* reason() const { return growth_reason(status); }
};

// The fitted layers of a network of this depth (first > last when it has fewer than 2 hidden layers).
void growth_layers(int depth, int64_t& first, int64_t& last);

// The measured rate of E[(num_l / den_l)^2] from a cell's columns: num[l] points
// at the `count` values of layer l in seed order, den[l] (unless den is null) at
// what they are divided by, also in seed order. Deterministic: a function of the values in seed order only (so whole,
// sharded, resumed and merged runs agree).
//  - weight gradients: num = weight_grad_rms, den = null;
//  - backpropagated gradients: num = weight_grad_rms of layer l, den =
//    activation_rms of layer l-1 (layer l's input): at batch 1 a weight gradient
//    is the outer product delta_l a^T, so its mean square is exactly
//    mean(delta_l^2) mean(a^2) and the ratio is mean(delta_l^2), the gradient
//    with respect to the layer's pre-activations (at batch B > 1 it is that of
//    the batch-summed outer product).
GrowthRate fit_growth_rate(int depth, const double* const* num, const double* const* den, uint64_t count);

// The same slope through the infinite-width prediction (theory.hpp: per layer
// sqrt(E[...^2])): of num_l, or of num_l / den_{l-1} when den is given; NaN where
// the prediction is missing, zero or not finite.
double theory_growth_rate(int depth, const std::vector<double>& num, const std::vector<double>* den_of_previous = nullptr);

}  // namespace gs
