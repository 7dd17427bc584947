// exp, erf and tanh for float that the compiler can vectorise across SIMD lanes:
// straight-line code (both branches computed, then selected), no libm calls,
// no lookup tables. std::expf/erff/tanhf are scalar calls that stop a loop over
// 16 networks from vectorising; these stay within about 1-2 ulp of them (see
// bench/bench_cpu_math.cpp, which sweeps every float in the useful range).
// double keeps the std:: functions: float64 runs are the exact reference that the
// finite-difference tests compare against.
//
// Coefficients: minimax fits (Lawson's iteratively reweighted least squares,
// relative error, mpmath references) made for this file.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "gradsweep/hd.hpp"


namespace gs::cpu::vm {

GS_INLINE float pow2i(int32_t n) { return std::bit_cast<float>(static_cast<uint32_t>(n + 127) << 23); }  // n in [-126, 127]

// e^x: x = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), e^r = 1 + r + r^2 Q(r).
// The power of two is applied in two halves so results from the subnormal range
// up to overflow come out right without range-specific branches.
GS_INLINE float exp(float x) {
    // NaN is clamped too (to 0, by a select that vectorises): converting a NaN n to int
    // below is undefined behaviour; the NaN is restored at the end.
    const float xn = x != x ? 0.0f : x;
    const float xc = xn < -104.0f ? -104.0f : (xn > 89.0f ? 89.0f : xn);
    const float n = std::nearbyint(xc * 1.44269504088896341f);
    float r = std::fma(n, -0.693359375f, xc);  // ln2 high part: exact product for |n| < 2^15
    r = std::fma(n, 2.12194440054690583e-4f, r);  // ln2 low part (ln2 = 0.693359375 - 2.1219444e-4)
    float q = 1.3901280982319044e-3f;
    q = std::fma(q, r, 8.363140373602224e-3f);
    q = std::fma(q, r, 4.166685339445082e-2f);
    q = std::fma(q, r, 1.6666577319974413e-1f);
    q = std::fma(q, r, 4.999999955278761e-1f);
    const float p = std::fma(r * r, q, r) + 1.0f;
    const int32_t ni = static_cast<int32_t>(n);
    const int32_t n1 = ni >> 1;
    const float y = (p * pow2i(n1)) * pow2i(ni - n1);
    return x != x ? x : y;  // NaN stays NaN
}

// erf: |x| < 1: x P(x^2) = x + x (P(x^2) - 1); otherwise 1 - e^{-x^2} R(t) with t = 1/(1 + |x|/2), where
// R(a) = erfc(a) e^{a^2} on [1, 3.93] (erf rounds to 1 beyond). e^{-x^2} uses the
// exact split x^2 = hi + lo so that the rounding of x^2 does not reach the result.
GS_INLINE float erf(float x) {
    const float a = std::fabs(x);
    const float s = x * x;
    float p = 7.853857649214868e-05f;
    p = std::fma(p, s, -8.010192504937647e-04f);
    p = std::fma(p, s, 5.1883275583945315e-03f);
    p = std::fma(p, s, -2.685381186836966e-02f);
    p = std::fma(p, s, 1.1283585147016606e-01f);
    p = std::fma(p, s, -3.7612625824092694e-01f);
    p = std::fma(p, s, 0.128379165726688f);  // P - 1: x + x (P - 1) rounds once, and correctly far more often
    const float small = std::fma(x, p, x);

    const float t = 1.0f / std::fma(0.5f, a, 1.0f);
    float r = -5.7329786140702145e-02f;
    r = std::fma(r, t, -4.615698737492224e-02f);
    r = std::fma(r, t, 3.9025813810379134e-01f);
    r = std::fma(r, t, 1.0995299634787807e-01f);
    r = std::fma(r, t, 3.2775727563691853e-01f);
    r = std::fma(r, t, 2.7419424487306443e-01f);
    r = std::fma(r, t, 5.621632928151752e-04f);
    const float lo = std::fma(a, a, -s);  // s + lo = a^2 exactly
    const float erfc = exp(-s) * std::fma(-lo, r, r);  // e^{-s-lo} R ~ e^{-s} (1 - lo) R
    const float big = std::copysign(1.0f - erfc, x);
    const float y = a < 1.0f ? small : big;  // NaN: the comparison fails and big is NaN
    return a >= 3.95f ? std::copysign(1.0f, x) : y;  // also keeps inf * 0 out of big
}

// tanh: |x| < 0.55: x + x^3 T(x^2); otherwise sign(x) (1 - 2 / (e^{2|x|} + 1)), which
// has no cancellation there since tanh >= 0.5.
GS_INLINE float tanh(float x) {
    const float a = std::fabs(x);
    const float s = x * x;
    float p = -6.610375615299125e-03f;
    p = std::fma(p, s, 2.1309478428633094e-02f);
    p = std::fma(p, s, -5.390944589318382e-02f);
    p = std::fma(p, s, 1.3333113833139784e-01f);
    p = std::fma(p, s, -3.3333332008975325e-01f);
    const float small = std::fma(x * s, p, x);
    const float e = exp(2.0f * (a < 20.0f ? a : 20.0f));
    const float big = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.55f ? small : (x != x ? x : big);
}

GS_INLINE double exp(double x) { return std::exp(x); }
GS_INLINE double erf(double x) { return std::erf(x); }
GS_INLINE double tanh(double x) { return std::tanh(x); }

}  // namespace gs::cpu::vm
