// Philox4x32-10 for 16 lanes at a time, G independent 16-lane groups in flight.
// The CPU backend spends most of its time here (a 256-wide layer needs 65536
// weights, each a Philox word, and every weight is drawn once per network), so the
// AVX-512 path is hand-written: GCC's auto-vectorised version uses 64-bit
// multiplies and one dependency chain and runs about 4x slower. Interleaving G = 4
// groups hides the multiply latency. Without AVX-512 the scalar reference in
// gradsweep/philox.hpp is called per lane, giving the same words.
#pragma once
#include <cstdint>

#include "gradsweep/philox.hpp"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gs::cpu {

constexpr int kPhiloxLanes = 16;

// out[g][q][m] = word q of philox4x32_10({c0[g][m], c1[g], c2[g], c3}, key {k0[m], k1[m]}):
// each group may draw from another tensor (layer c1, stream c2).
template <int G>
inline __attribute__((always_inline)) void philox16(const uint32_t (&c0)[G][16], const uint32_t (&c1)[G],
                                                    const uint32_t (&c2)[G], uint32_t c3, const uint32_t* k0,
                                                    const uint32_t* k1, uint32_t (&out)[G][4][16]) {
#if defined(__AVX512F__)
    __m512i x0[G], x1[G], x2[G], x3[G];
    for (int g = 0; g < G; ++g) {
        x0[g] = _mm512_loadu_si512(c0[g]);
        x1[g] = _mm512_set1_epi32(static_cast<int>(c1[g]));
        x2[g] = _mm512_set1_epi32(static_cast<int>(c2[g]));
        x3[g] = _mm512_set1_epi32(static_cast<int>(c3));
    }
    __m512i key0 = _mm512_loadu_si512(k0), key1 = _mm512_loadu_si512(k1);
    const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox_detail::kM0));
    const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox_detail::kM1));
    const __m512i w0 = _mm512_set1_epi32(static_cast<int>(philox_detail::kW0));
    const __m512i w1 = _mm512_set1_epi32(static_cast<int>(philox_detail::kW1));
    // hi/lo halves of the 32x32 -> 64 bit products: even lanes from one
    // vpmuludq, odd lanes from another on the shifted input, lo from vpmulld.
    auto mulhi = [](__m512i c, __m512i m) {
        const __m512i even = _mm512_mul_epu32(c, m);
        const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
        return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    };
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            key0 = _mm512_add_epi32(key0, w0);
            key1 = _mm512_add_epi32(key1, w1);
        }
        for (int g = 0; g < G; ++g) {
            const __m512i hi0 = mulhi(x0[g], m0), lo0 = _mm512_mullo_epi32(x0[g], m0);
            const __m512i hi1 = mulhi(x2[g], m1), lo1 = _mm512_mullo_epi32(x2[g], m1);
            x0[g] = _mm512_ternarylogic_epi32(hi1, x1[g], key0, 0x96);  // three-way xor
            x2[g] = _mm512_ternarylogic_epi32(hi0, x3[g], key1, 0x96);
            x1[g] = lo1;
            x3[g] = lo0;
        }
    }
    for (int g = 0; g < G; ++g) {
        _mm512_storeu_si512(out[g][0], x0[g]);
        _mm512_storeu_si512(out[g][1], x1[g]);
        _mm512_storeu_si512(out[g][2], x2[g]);
        _mm512_storeu_si512(out[g][3], x3[g]);
    }
#else
    for (int g = 0; g < G; ++g)
        for (int m = 0; m < 16; ++m) {
            const U32x4 r = philox4x32_10(U32x4{{c0[g][m], c1[g], c2[g], c3}}, k0[m], k1[m]);
            for (int q = 0; q < 4; ++q) out[g][q][m] = r.v[q];
        }
#endif
}

// All G groups from one tensor (layer c1, stream c2).
template <int G>
inline __attribute__((always_inline)) void philox16(const uint32_t (&c0)[G][16], uint32_t c1, uint32_t c2, uint32_t c3,
                                                    const uint32_t* k0, const uint32_t* k1, uint32_t (&out)[G][4][16]) {
    uint32_t c1s[G], c2s[G];
    for (int g = 0; g < G; ++g) {
        c1s[g] = c1;
        c2s[g] = c2;
    }
    philox16<G>(c0, c1s, c2s, c3, k0, k1, out);
}

// Reorders 16 blocks' words from word-major (w[q][m]: word q of block m) to element
// order (dst[4m + q]), for the one-network-at-a-time layout.
inline __attribute__((always_inline)) void blocks_to_elements(const uint32_t (&w)[4][16], uint32_t* dst) {
#if defined(__AVX512F__)
    const __m512i w0 = _mm512_loadu_si512(w[0]), w1 = _mm512_loadu_si512(w[1]);
    const __m512i w2 = _mm512_loadu_si512(w[2]), w3 = _mm512_loadu_si512(w[3]);
    // 4x4 transposes inside each 128-bit lane: u_r holds block 4p + r in lane p.
    const __m512i t0 = _mm512_unpacklo_epi32(w0, w1), t1 = _mm512_unpackhi_epi32(w0, w1);
    const __m512i t2 = _mm512_unpacklo_epi32(w2, w3), t3 = _mm512_unpackhi_epi32(w2, w3);
    const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    // Then a 4x4 transpose of the 128-bit lanes.
    const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u0, u1, 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(u2, u3, 0x44), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
    _mm512_storeu_si512(dst, _mm512_shuffle_i32x4(v0, v2, 0x88));
    _mm512_storeu_si512(dst + 16, _mm512_shuffle_i32x4(v0, v2, 0xDD));
    _mm512_storeu_si512(dst + 32, _mm512_shuffle_i32x4(v1, v3, 0x88));
    _mm512_storeu_si512(dst + 48, _mm512_shuffle_i32x4(v1, v3, 0xDD));
#else
    for (int m = 0; m < 16; ++m)
        for (int q = 0; q < 4; ++q) dst[4 * m + q] = w[q][m];
#endif
}

}  // namespace gs::cpu
