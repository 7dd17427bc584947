// How Philox words become weights, biases and inputs in philox mode.
// Element e of tensor (stream, layer) of seed s comes from word e%4 of the block
// philox4x32_10(ctr = {e/4, layer, stream, rng_key}, key = {lo32(s), hi32(s)}),
// so a value is a pure function of (rng_key, s, stream, layer, e) and four values
// share one Philox call.
#pragma once
#include <cmath>
#include <cstdint>
#include "gradsweep/hd.hpp"
#include "gradsweep/philox.hpp"

namespace gs {

enum class Stream : uint32_t { weight = 0, bias = 1, input = 2 };

GS_HD U32x4 philox_block(uint64_t seed, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t block) {
    return philox4x32_10(U32x4{{block, layer, static_cast<uint32_t>(stream), rng_key}},
                         static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// 2^-24, the unit of every value made from a 24-bit slice of a random word (here
// the top 24 bits of a Philox word; in torch mode PyTorch's unit float takes the
// low 24 bits of an MT19937 word, torch_rng.cpp). 24 because float's significand
// holds 24 bits (23 stored and the implicit one): every k * 2^-24 with |k| < 2^24
// is exact in float, so float32 and float64 runs draw the very same numbers.
inline constexpr double kWord24Unit = 0x1p-24;

// The odd integer k = 2 (word >> 8) - (2^24 - 1) in (-2^24, 2^24) behind a uniform value.
GS_HD int32_t uniform_pm1_numerator(uint32_t word) {
    return static_cast<int32_t>(word >> 8) * 2 - ((1 << 24) - 1);
}

// uniform_pm1's value as one fused multiply-add on the word's top 24 bits m:
// m * 2^-23 - (1 - 2^-24) = k * 2^-24. Every operand and the result are exact
// (m < 2^24, |k| < 2^24 odd), so the fma rounds nothing and the value is the same
// in every precision: the device's form, two instructions fewer per value than
// shift-mask-subtract-convert-scale (a test compares it with uniform_pm1 for
// every m).
template <class T>
GS_HD T uniform_pm1_fma(uint32_t word) {
    using std::fma;
    return fma(static_cast<T>(word >> 8), T(0x1p-23), T(-(1.0 - kWord24Unit)));
}

// Odd multiples of 2^-24 in (-1, 1): symmetric, exact in float, and the same
// values in float32 and float64 runs. The host keeps the integer form, which
// needs no fma instruction.
template <class T>
GS_HD T uniform_pm1(uint32_t word) {
#if defined(__CUDA_ARCH__)
    return uniform_pm1_fma<T>(word);
#else
    return static_cast<T>(uniform_pm1_numerator(word)) * T(kWord24Unit);
#endif
}

// A tensor's scale with 2^-24 folded in, once per tensor, for uniform_value.
template <class T>
GS_HD T uniform_scale(T scale) {
    return scale * T(kWord24Unit);
}

// scale * uniform_pm1<T>(w), exactly, given uniform_scale(scale): k * 2^-24 is
// exact, so folding 2^-24 into the scale rounds the same real number once, as
// draw_from_block does. (The CPU backend's 16-word AVX-512 form: uniform_values16
// in src/cpu/philox_simd.hpp.)
template <class T>
GS_HD T uniform_value(uint32_t word, T scaled_unit) {
    return static_cast<T>(uniform_pm1_numerator(word)) * scaled_unit;
}

// Box-Muller on a word pair: u1 in (0, 1] so log(u1) is finite.
template <class T>
GS_HD void normal_pair(uint32_t w0, uint32_t w1, T& z0, T& z1) {
    using std::cos;
    using std::log;
    using std::sin;
    using std::sqrt;
    const T u1 = static_cast<T>((w0 >> 8) + 1u) * T(kWord24Unit);
    const T u2 = static_cast<T>(w1 >> 8) * T(kWord24Unit);
    const T r = sqrt(T(-2) * log(u1));
    const T theta = T(6.283185307179586477) * u2;
    z0 = r * cos(theta);
    z1 = r * sin(theta);
}

// How one tensor's values are drawn: value = scale * z, z uniform in (-1,1) or N(0,1).
struct Dist {
    enum Kind : int { zero = 0, uniform = 1, normal = 2 };
    Kind kind = zero;
    double scale = 0.0;
};

// Value of element e given its Philox block (the block for e/4).
template <class T>
GS_HD T draw_from_block(const U32x4& r, uint32_t e, Dist::Kind kind, T scale) {
    const uint32_t w = e & 3u;
    if (kind == Dist::uniform) return scale * uniform_pm1<T>(r.v[w]);
    if (kind == Dist::normal) {
        T z0, z1;
        normal_pair<T>(r.v[w & 2u], r.v[(w & 2u) + 1u], z0, z1);
        return scale * ((w & 1u) ? z1 : z0);
    }
    return T(0);
}

template <class T>
GS_HD T draw_value(uint64_t seed, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t e, Dist d) {
    if (d.kind == Dist::zero) return T(0);
    return draw_from_block<T>(philox_block(seed, rng_key, stream, layer, e >> 2), e, d.kind, static_cast<T>(d.scale));
}

}  // namespace gs
