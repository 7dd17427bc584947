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

// Odd multiples of 2^-24 in (-1, 1): symmetric, exact in float, and the same
// values in float32 and float64 runs.
template <class T>
GS_HD T uniform_pm1(uint32_t word) {
    const int32_t k = static_cast<int32_t>(word >> 8) * 2 - ((1 << 24) - 1);
    return static_cast<T>(k) * T(5.9604644775390625e-08);  // 2^-24
}

// Box-Muller on a word pair: u1 in (0, 1] so log(u1) is finite.
template <class T>
GS_HD void normal_pair(uint32_t w0, uint32_t w1, T& z0, T& z1) {
    using std::cos;
    using std::log;
    using std::sin;
    using std::sqrt;
    const T u1 = static_cast<T>((w0 >> 8) + 1u) * T(5.9604644775390625e-08);
    const T u2 = static_cast<T>(w1 >> 8) * T(5.9604644775390625e-08);
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
