// The per-seed terms of the growth-rate fit (growth_rate.hpp), in double and
// written once for the host (src/aggregate/growth_rate.cpp) and the device
// (kernels/device_cell.cu), so that a fit computed from columns on either gives
// the same bits. The sums over seeds run in column_sums.hpp's order (the used
// seeds in seed order, blocks of kSumBlock, lanes, trees); the host finishes the
// rate from those sums in both cases (finish_growth_rate).
//
// Range: a fitted value x = num / den is any finite quotient of two finite
// doubles (up to 2^2098), and its square up to 2^4196: far outside double. So x
// is carried as m 2^e (|m| in (1/2, 2), exactly the rounded quotient of the two
// mantissas), and layer l's squares are summed as m^2 2^(2(e - E_l)), E_l the
// largest e of the layer's used seeds: every term is below 4 (no overflow in any
// sum) and the largest ones keep all their bits; a term 2^1100 below the
// largest is 0 (it would be under 2^-1074). ln E[x_l^2] = ln(S_l / n) +
// 2 E_l ln 2. The scaling is by powers of two, so it is exact except where a
// term lands among the subnormals, the same on host and device.
#pragma once
#include <cstdint>

#include <cmath>
#include <vector>

#include "gradsweep/column_sums.hpp"
#include "gradsweep/growth_rate.hpp"
#include "gradsweep/hd.hpp"

namespace gs {

// Below every exponent a used value can have (|x| >= 2^-2098): "no nonzero value".
inline constexpr int kNoExponent = -100000;

// x finite and nonzero: x = m 2^e with |m| in [1/2, 1) (frexp's convention), by
// the bits (the device's frexp is another library), subnormals included.
GS_HD int hd_frexp(double x, double& m) {
    const bool sub = (hd_bits(x) & 0x7ff0000000000000ull) == 0;
    const double xs = sub ? x * 0x1p54 : x;  // exact
    const uint64_t b = hd_bits(xs);
    m = hd_from_bits((b & 0x800fffffffffffffull) | 0x3fe0000000000000ull);
    return static_cast<int>((b >> 52) & 0x7ff) - 1022 - (sub ? 54 : 0);
}

// Whether a seed's value in one fitted layer can be used: num finite, den finite
// and nonzero (a zero den makes the ratio infinite). den is 1 for num alone.
GS_HD bool growth_usable(double num, double den) { return hd_finite(num) && hd_finite(den) && den != 0.0; }

// x = num / den as m 2^e; m = 0 (e = kNoExponent) for x = 0. Only for usable values.
GS_HD int growth_split(double num, double den, double& m) {
    if (num == 0.0) {
        m = 0.0;
        return kNoExponent;
    }
    double mn, md;
    const int en = hd_frexp(num, mn), ed = hd_frexp(den, md);
    m = mn / md;  // |m| in (1/2, 2): one rounding, the quotient's own
    return en - ed;
}

// growth_split's exponent alone (kNoExponent for x = 0), without the division:
// e = en - ed whatever the mantissas' quotient.
GS_HD int growth_exponent(double num, double den) {
    if (num == 0.0) return kNoExponent;
    double mn, md;
    return hd_frexp(num, mn) - hd_frexp(den, md);
}

// 2^k for -1022 <= k <= 1023, by the bits.
GS_HD double hd_pow2(int k) { return hd_from_bits(static_cast<uint64_t>(k + 1023) << 52); }

// x^2 / 2^(2E): m^2 (in (1/4, 4)) times 2^(2(e - E)), e <= E, in two exact
// steps and one final rounding; 0 for x = 0 or a term too small for a double.
GS_HD double growth_scaled_square(double num, double den, int E) {
    double m;
    const int e = growth_split(num, den, m);
    if (m == 0.0) return 0.0;
    const int k = 2 * (e - E);  // <= 0
    if (k < -1100) return 0.0;
    const int a = k / 2, b = k - a;  // each >= -550: m^2 2^a is a normal double
    return (m * m * hd_pow2(a)) * hd_pow2(b);
}

// The seed's delta-method value g_s = sum_l w_l x_l^2 / m_l (docs/theory.md,
// "Growth rate"), from its scaled squares t_l (layer l's term above) and
// r_l = w_l / q_l, q_l = S_l / n the layer's scaled mean: the 2^(2E_l) cancel.
// Layers in order, one fma each (r_l is computed once, on the host).
GS_HD double growth_seed_step(double v, double t, double r) { return std::fma(t, r, v); }
GS_HD double growth_seed_value(const double* t, const double* r, int layers) {
    double v = 0.0;
    for (int k = 0; k < layers; ++k) v = growth_seed_step(v, t[k], r[k]);
    return v;
}

// Least-squares weights of the slope against t_l = depth - 1 - l (layers between
// layer l and the output) over layers first..last: slope = sum_l w_l y_l.
std::vector<double> growth_slope_weights(int64_t depth, int64_t first, int64_t last);

// The fit, from sums a column store provides (the host's columns, or the
// device's): one finishing, compiled once (growth_rate.cpp), so both turn the
// same sums into the same bits. Every sum in column_sums.hpp's order over the
// used seeds in seed order.
struct GrowthSumSource {
    virtual ~GrowthSumSource() = default;
    // Marks the seeds usable in every fitted layer (kept for the calls below); their number.
    virtual uint64_t mark_used() = 0;
    // Largest growth_split exponent among fitted layer k's used seeds (k = 0: the
    // first fitted layer); kNoExponent when all of them are 0.
    virtual int max_exponent(int k) = 0;
    // Sum of growth_scaled_square(num, den, E) over layer k's used seeds.
    virtual double scaled_sum(int k, int E) = 0;
    // Sums over the used seeds of growth_seed_value(t, r), t_k the seed's
    // growth_scaled_square(.., E[k]) in layer k, and of add_square_dev's term of it around mean.
    virtual double seed_value_sum(const int* E, const double* r) = 0;
    virtual double seed_square_dev_sum(const int* E, const double* r, double mean) = 0;
};
GrowthRate fit_growth_with(int depth, GrowthSumSource& sums);

}  // namespace gs
