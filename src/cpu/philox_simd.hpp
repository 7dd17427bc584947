// Philox4x32-10 for 16 lanes at a time, G independent 16-lane groups in flight.
// The CPU backend spends much of its time here (a 256-wide layer needs 65536
// weights, each a Philox word, and every weight is drawn once per network), so the
// AVX-512 path is hand-written: GCC's auto-vectorised version uses 64-bit
// multiplies and one dependency chain and runs about 4x slower. Without AVX-512 the
// scalar reference in gradsweep/philox.hpp is called per lane, giving the same words.
//
// Why this layout: where 512-bit operations issue at half rate, every vector
// operation counts, not just the multiplies. Each 32-bit word lives in the low half
// of a 64-bit lane (8 lanes per register, two registers per 16 lanes): one vpmuludq
// then yields the whole 64-bit product, its low half already in place and its
// high half one shift away. That is 4 multiplies, 4 shifts and 4 three-way xors per
// round and 16 lanes, against 4 multiplies, 2 vpmulld, 6 shuffles and 2 xors for
// 32-bit lanes. The upper halves collect garbage that never reaches a low half
// (vpmuludq ignores them, xor is lane-wise), and the round keys are computed once
// per 16 networks (PhiloxKeys16) rather than once per block. Two groups (eight
// registers of state each) in flight use 18 of the 32 registers; a third group
// made GCC spill. Measurements: docs/cpu_backend.md.
#pragma once
#include <cstdint>

#include "gradsweep/philox.hpp"
#include "gradsweep/random_values.hpp"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gs::cpu {

constexpr int kPhiloxLanes = 16;

#if defined(__AVX512F__)
// Eight 32-bit words into the low halves of eight 64-bit lanes. (The maskz form:
// GCC 12's unmasked one trips -Wmaybe-uninitialized inside its own header.)
GS_INLINE __m512i widen8(const uint32_t* p) {
    return _mm512_maskz_cvtepu32_epi64(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
#endif

// The keys {k0[m], k1[m]} of the 16 Philox lanes, and (AVX-512) every round's keys.
struct PhiloxKeys16 {
    alignas(64) uint32_t k0[16];
    alignas(64) uint32_t k1[16];
#if defined(__AVX512F__)
    __m512i rk0[10][2], rk1[10][2];  // round r, lanes 0-7 / 8-15, in the low halves of 64-bit lanes

    void set_round_keys() {
        __m512i x[2] = {widen8(k0), widen8(k0 + 8)}, y[2] = {widen8(k1), widen8(k1 + 8)};
        const __m512i w0 = _mm512_set1_epi64(philox_detail::kW0), w1 = _mm512_set1_epi64(philox_detail::kW1);
        for (int r = 0; r < 10; ++r)
            for (int h = 0; h < 2; ++h) {
                rk0[r][h] = x[h];
                rk1[r][h] = y[h];
                x[h] = _mm512_add_epi32(x[h], w0);  // 32-bit adds: the low halves wrap as the key schedule does
                y[h] = _mm512_add_epi32(y[h], w1);
            }
    }
#else
    void set_round_keys() {}
#endif
};

#if defined(__AVX512F__)
namespace philox_simd_detail {
// The rounds for G <= 2 groups; then emit(g, x) for each group, x[q][h] = word q of
// lanes 8h..8h+7, in the low halves of 64-bit lanes (the high halves are garbage).
template <int G, class Emit>
GS_INLINE void rounds_x64(const __m512i (*c0)[2], const uint32_t* c1, const uint32_t* c2,
                                                      uint32_t c3, const PhiloxKeys16& keys, Emit&& emit) {
    constexpr int H = 2 * G;
    __m512i x0[H], x1[H], x2[H], x3[H];
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
        x0[2 * g] = c0[g][0];
        x0[2 * g + 1] = c0[g][1];
        x1[2 * g] = x1[2 * g + 1] = _mm512_set1_epi64(c1[g]);
        x2[2 * g] = x2[2 * g + 1] = _mm512_set1_epi64(c2[g]);
        x3[2 * g] = x3[2 * g + 1] = _mm512_set1_epi64(c3);
    }
    const __m512i m0 = _mm512_set1_epi64(philox_detail::kM0), m1 = _mm512_set1_epi64(philox_detail::kM1);
#pragma GCC unroll 10
    for (int r = 0; r < 10; ++r) {
#pragma GCC unroll 4
        for (int i = 0; i < H; ++i) {
            const __m512i p0 = _mm512_mul_epu32(x0[i], m0), p1 = _mm512_mul_epu32(x2[i], m1);
            x0[i] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p1, 32), x1[i], keys.rk0[r][i & 1], 0x96);  // hi1 ^ c1 ^ k0
            x2[i] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p0, 32), x3[i], keys.rk1[r][i & 1], 0x96);  // hi0 ^ c3 ^ k1
            x1[i] = p1;  // lo1
            x3[i] = p0;  // lo0
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
        const __m512i x[4][2] = {{x0[2 * g], x0[2 * g + 1]}, {x1[2 * g], x1[2 * g + 1]},
                                 {x2[2 * g], x2[2 * g + 1]}, {x3[2 * g], x3[2 * g + 1]}};
        emit(g, x);
    }
}

// Any G, two groups at a time (a third group's state would spill).
template <int G, class Emit>
GS_INLINE void rounds(const __m512i (&c0)[G][2], const uint32_t* c1, const uint32_t* c2,
                                                  uint32_t c3, const PhiloxKeys16& keys, Emit&& emit) {
#pragma GCC unroll 4
    for (int g = 0; g + 2 <= G; g += 2)
        rounds_x64<2>(c0 + g, c1 + g, c2 + g, c3, keys, [&](int k, const __m512i (&x)[4][2]) { emit(g + k, x); });
    if constexpr (G % 2 == 1)
        rounds_x64<1>(c0 + G - 1, c1 + G - 1, c2 + G - 1, c3, keys, [&](int, const __m512i (&x)[4][2]) { emit(G - 1, x); });
}
}  // namespace philox_simd_detail

// Counters of 16 lanes in registers, as the rounds take them (low halves of 64-bit
// lanes, lanes 8h..8h+7 in [h]). Made in registers, not through an array: a vector
// load of words just stored one by one waits for the stores to retire.
GS_INLINE void counters_same(uint32_t c, __m512i (&v)[2]) { v[0] = v[1] = _mm512_set1_epi64(c); }
GS_INLINE void counters_consecutive(uint32_t c, __m512i (&v)[2]) {  // lane m: c + m
    const __m512i iota = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    v[0] = _mm512_add_epi64(_mm512_set1_epi64(c), iota);
    v[1] = _mm512_add_epi64(_mm512_set1_epi64(c + 8u), iota);
}

// Word q of each group's 16 lanes as one vector: emit(g, w), w[q] = words q.
template <int G, class Emit>
GS_INLINE void philox16_words(const __m512i (&c0)[G][2], const uint32_t (&c1)[G],
                                                          const uint32_t (&c2)[G], uint32_t c3, const PhiloxKeys16& keys,
                                                          Emit&& emit) {
    const __m512i low_halves = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    philox_simd_detail::rounds<G>(c0, c1, c2, c3, keys, [&](int g, const __m512i (&x)[4][2]) {
        const __m512i w[4] = {_mm512_permutex2var_epi32(x[0][0], low_halves, x[0][1]),
                              _mm512_permutex2var_epi32(x[1][0], low_halves, x[1][1]),
                              _mm512_permutex2var_epi32(x[2][0], low_halves, x[2][1]),
                              _mm512_permutex2var_epi32(x[3][0], low_halves, x[3][1])};
        emit(g, w);
    });
}
#endif

// out[g][q][m] = word q of philox4x32_10({c0[g][m], c1[g], c2[g], c3}, key {k0[m], k1[m]}):
// each group may draw from another tensor (layer c1, stream c2).
template <int G>
GS_INLINE void philox16(const uint32_t (&c0)[G][16], const uint32_t (&c1)[G],
                                                    const uint32_t (&c2)[G], uint32_t c3, const PhiloxKeys16& keys,
                                                    uint32_t (&out)[G][4][16]) {
#if defined(__AVX512F__)
    __m512i cv[G][2];
    for (int g = 0; g < G; ++g) {
        cv[g][0] = widen8(c0[g]);
        cv[g][1] = widen8(c0[g] + 8);
    }
    philox16_words<G>(cv, c1, c2, c3, keys, [&](int g, const __m512i (&w)[4]) {
        for (int q = 0; q < 4; ++q) _mm512_storeu_si512(out[g][q], w[q]);
    });
#else
    for (int g = 0; g < G; ++g)
        for (int m = 0; m < 16; ++m) {
            const U32x4 r = philox4x32_10(U32x4{{c0[g][m], c1[g], c2[g], c3}}, keys.k0[m], keys.k1[m]);
            for (int q = 0; q < 4; ++q) out[g][q][m] = r.v[q];
        }
#endif
}

// All G groups from one tensor (layer c1, stream c2).
template <int G>
GS_INLINE void philox16(const uint32_t (&c0)[G][16], uint32_t c1, uint32_t c2, uint32_t c3,
                                                    const PhiloxKeys16& keys, uint32_t (&out)[G][4][16]) {
    uint32_t c1s[G], c2s[G];
    for (int g = 0; g < G; ++g) {
        c1s[g] = c1;
        c2s[g] = c2;
    }
    philox16<G>(c0, c1s, c2s, c3, keys, out);
}

#if defined(__AVX512F__)
// 16 consecutive blocks of one network (the one-network-at-a-time layout): emit(g, e)
// gets group g's 64 words in element order, e[v] = words 16v .. 16v + 15, word q of
// block m being element 4m + q. Assembled straight from the rounds' 64-bit lanes:
// 4 shuffles per 8 blocks, against 4 + 12 through word-major order and memory.
template <int G, class Emit>
GS_INLINE void philox16_elements(const __m512i (&c0)[G][2], uint32_t c1, uint32_t c2,
                                                             uint32_t c3, const PhiloxKeys16& keys, Emit&& emit) {
    uint32_t c1s[G], c2s[G];
    for (int g = 0; g < G; ++g) {
        c1s[g] = c1;
        c2s[g] = c2;
    }
    const __m512i first4 = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), last4 = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    philox_simd_detail::rounds<G>(c0, c1s, c2s, c3, keys, [&](int g, const __m512i (&x)[4][2]) {
        __m512i e[4];
        for (int h = 0; h < 2; ++h) {
            // 64-bit lane m: (word 0, word 1) and (word 2, word 3) of block 8h + m.
            const __m512i w01 = _mm512_mask_shuffle_epi32(x[0][h], 0xAAAA, x[1][h], _MM_PERM_CCAA);
            const __m512i w23 = _mm512_mask_shuffle_epi32(x[2][h], 0xAAAA, x[3][h], _MM_PERM_CCAA);
            e[2 * h] = _mm512_permutex2var_epi64(w01, first4, w23);
            e[2 * h + 1] = _mm512_permutex2var_epi64(w01, last4, w23);
        }
        emit(g, e);
    });
}
#endif

#if defined(__AVX512F__)
// uniform_value (random_values.hpp) of 16 words at once, the same operations in
// the same order: uniform_pm1_numerator's k = 2 (w >> 8) - (2^24 - 1), then
// k * uniform_scale(scale).
GS_INLINE void uniform_values16(__m512i w, float scale_2m24, float* o) {
    const __m512i k = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_srli_epi32(w, 8), 1), _mm512_set1_epi32((1 << 24) - 1));
    _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_cvtepi32_ps(k), _mm512_set1_ps(scale_2m24)));
}
GS_INLINE void uniform_values16(__m512i w, double scale_2m24, double* o) {
    const __m512i k = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_srli_epi32(w, 8), 1), _mm512_set1_epi32((1 << 24) - 1));
    const __m512d s = _mm512_set1_pd(scale_2m24);
    _mm512_storeu_pd(o, _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(k)), s));
    _mm512_storeu_pd(o + 8, _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(k, 1)), s));
}
#endif

// Reorders 16 blocks' words from word-major (w[q][m]: word q of block m) to element
// order (dst[4m + q]), for the one-network-at-a-time layout.
GS_INLINE void blocks_to_elements(const uint32_t (&w)[4][16], uint32_t* dst) {
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
