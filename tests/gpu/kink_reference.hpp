// ReLU-family kinks in the GPU-vs-CPU comparisons. relu and leaky_relu have a
// derivative that jumps at 0 (0 or 1, slope or 1). A pre-activation that float64
// puts within rounding distance of 0 can land on either side in float32, on the
// GPU on one side and on the CPU on the other (other FMA contraction, other math
// library), and then every gradient downstream of that unit changes by O(1):
// no tolerance on the smooth part covers it, and widening every tolerance would
// hide real errors. So the float64 reference (tests/reference_net.hpp) finds the
// units whose |z| is below a bound relative to the size of the terms that
// cancelled in it, recomputes the row with that z pinned just beyond either
// side of the bound (the derivative's jump and the unit's output both move),
// and adds the difference to the tolerance of that network alone.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../reference_net.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/torch_params.hpp"

namespace gs::gputest {

// |z| <= kKinkBound * (|b_i| + sum_j |W_ij a_j|): about 170 float32 roundings of
// the terms that cancelled, so a float32 z on the other side of 0 than float64's
// (the issue seen: |z| within ~1e-7) is always caught, with room for the error
// that earlier layers pass on; a unit this close to the kink is rare enough
// (~1e-5 per unit) that the allowance stays local.
inline constexpr double kKinkBound = 1e-5;

inline bool has_kink(const Cell& c) {
    return c.activation == Activation::relu || c.activation == Activation::leaky_relu;
}

struct KinkAllowance {
    int units = 0;                 // pre-activations found at the kink
    std::vector<double> abs_diff;  // per row slot: sum over those units of max |row(z pinned to +-bound*s) - row|
};

// The float64 reference network of (spec, cell, seed), philox or torch parameters.
inline test::RefNet reference_net(const Spec& spec, const Cell& cell, uint64_t seed) {
    test::RefNet ref(spec, cell, seed);
    if (spec.rng == RngKind::torch) {
        const HostParams hp = torch_params(cell, spec.input, seed);
        for (int l = 0; l < cell.depth(); ++l) {
            ref.W[l].assign(hp.weight[l].begin(), hp.weight[l].end());
            if (cell.bias) ref.b[l].assign(hp.bias[l].begin(), hp.bias[l].end());
            else ref.b[l].assign(ref.b[l].size(), 0.0);
        }
        if (spec.input.random) ref.x.assign(hp.input.begin(), hp.input.end());
    }
    return ref;
}

inline KinkAllowance kink_allowance(const test::RefNet& ref, double bound = kKinkBound) {
    const Cell& cell = *ref.cell;
    const auto& n = cell.layer_sizes;
    const int B = ref.spec->input.batch, D = cell.depth();
    KinkAllowance out;
    out.abs_diff.assign(row_stride(D), 0.0);
    if (!has_kink(cell)) return out;
    std::vector<std::vector<double>> zs, as;
    ref.forward(zs, as);
    std::vector<double> base;
    for (int l = 0; l < D; ++l) {
        if (!cell.activation_at(l)) continue;
        for (int bb = 0; bb < B; ++bb)
            for (int i = 0; i < n[l + 1]; ++i) {
                double s = std::fabs(ref.b[l][i]);
                for (int j = 0; j < n[l]; ++j) s += std::fabs(ref.W[l][i * n[l] + j] * as[l][bb * n[l] + j]);
                const double z = zs[l][bb * n[l + 1] + i];
                // s == 0: every term is an exact 0 (dead units upstream, zero init), so
                // is z in any precision; NaN: not a kink question.
                if (!(s > 0 && std::fabs(z) <= bound * s)) continue;
                if (base.empty()) base = ref.stats_row();
                test::RefNet pinned = ref;
                pinned.pin_layer = l;
                pinned.pin_unit = bb * n[l + 1] + i;
                std::vector<double> most(base.size(), 0.0);
                for (double side : {-1.0, 1.0}) {
                    pinned.pin_z = side * bound * s;
                    const std::vector<double> other = pinned.stats_row();
                    for (size_t k = 0; k < other.size(); ++k) {
                        const double d = std::fabs(other[k] - base[k]);
                        if (std::isfinite(d)) most[k] = std::max(most[k], d);
                    }
                }
                for (size_t k = 0; k < most.size(); ++k) out.abs_diff[k] += most[k];
                ++out.units;
            }
    }
    return out;
}

// Widens tol (relative, as compare_rows reads it) for networks off .. off+count-1
// by twice what their kinks can do (twice: float32's own error on top of it). want: the reference rows the
// comparison is against (want[k] scales the relative tolerance). Returns the
// number of kink units found.
inline int add_kink_allowance(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, const std::vector<double>& want,
                              std::vector<double>& tol) {
    if (!has_kink(cell)) return 0;
    const int stride = row_stride(cell.depth());
    int units = 0;
    for (uint64_t r = 0; r < count; ++r) {
        const KinkAllowance k = kink_allowance(reference_net(spec, cell, spec.seed_first + off + r));
        if (k.units == 0) continue;
        units += k.units;
        for (int q = 0; q < stride; ++q) {
            const double d = 2 * k.abs_diff[q];
            if (d == 0) continue;
            const double w = std::fabs(want[r * stride + q]);
            // want == 0: the reference itself goes from 0 to d at the kink; any value
            // up to that passes (max, not inf: compare_rows multiplies by the scale, 0 here).
            tol[r * stride + q] += w > 0 ? d / w : std::numeric_limits<double>::max();
        }
    }
    return units;
}

}  // namespace gs::gputest
