// Per-network, per-layer quantities and their aggregation over seeds.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradsweep/hd.hpp"

namespace gs {

enum Quantity : int {
    weight_grad_mean_abs = 0,
    weight_grad_rms,
    weight_grad_max_abs,
    bias_grad_mean_abs,
    activation_rms,
    kNumQuantities
};
inline constexpr const char* kQuantityNames[] = {"weight_grad_mean_abs", "weight_grad_rms", "weight_grad_max_abs",
                                                "bias_grad_mean_abs", "activation_rms"};

// Layout of one network's result row: [layer][quantity] then the loss.
inline int row_stride(int depth) { return depth * kNumQuantities + 1; }
inline int loss_index(int depth) { return depth * kNumQuantities; }

// Per-network sums in double of float64 values can leave double's range while every
// value and the statistic itself are representable: squares overflow above
// ~1.3e154 and underflow below ~1.5e-154 (sum|g| overflows only near 1e308 / n).
// Backends then redo that one statistic over the values scaled by
// rescale_factor(max|x|), out of the ordinary path, so ordinary results keep
// their bits. A sum of squares below kSquaresLow (2^-1022 * 2^54) may hold
// squares that were subnormal (inexact) or flushed to 0. float32 values never
// get there: their squares lie in [2e-90, 1.2e77].
inline constexpr double kSquaresLow = 0x1p-968;
GS_HD bool squares_out_of_range(double ss) { return !(ss >= kSquaresLow && ss <= 1.7976931348623157e308); }
// A power of two c with max_abs * c in [1, 2) (for max_abs > 0 finite), itself a
// normal number, so that x * c and the division by c are exact.
GS_HD double rescale_factor(double max_abs) {
    int e = ilogb(max_abs);
    e = e < -1000 ? -1000 : (e > 1000 ? 1000 : e);
    return ldexp(1.0, -e);
}

struct Summary {
    uint64_t n = 0;            // finite values summarised
    double mean = 0, std = 0, min = 0, q05 = 0, median = 0, q95 = 0, max = 0;
    double geomean = 0;        // over positive finite values; NaN when there are none
    uint64_t n_nonfinite = 0;  // inf or NaN: exploding gradients are data
    uint64_t n_zero = 0;       // exact zeros: vanished gradients
};

// Quantiles by linear interpolation between order statistics (numpy's default),
// computed over the finite values only. `values` is reordered.
// The counts and sums of a column in seed order, in the summation order the
// host and the device share (column_sums.hpp): over its finite values.
struct ColumnSums;
ColumnSums column_sums(const double* values, std::size_t size);
Summary summarize(std::vector<double>& values);
Summary summarize(double* values, std::size_t size);

// The order statistics of the finite values in values[0, size): out[i] is the
// ranks[i]-th smallest (0-based) of them. ranks ascending, each below the number
// of finite values. Values are ordered as their order-preserving bit keys, which
// puts -0.0 before +0.0. `values` is left as it is.
void select_order_statistics(const double* values, std::size_t size, const std::size_t* ranks, std::size_t nr, double* out);

}  // namespace gs
