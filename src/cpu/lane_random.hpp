// Weights, biases and inputs of L networks at once, one network per lane, drawn
// 16 Philox lanes at a time (philox_simd.hpp) straight into the [element][lane]
// layout the forward pass reads; each value is exactly draw_value's
// (random_values.hpp) for that lane's seed. Torch mode copies each lane's
// PyTorch-generated tensors instead.
//
// Part of network.cpp, split out to be read on its own: only network.cpp includes
// it. Everything stays in an unnamed namespace, as it was there, so GCC makes the
// same inlining decisions (internal linkage) and the hot loops compile unchanged.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/network.hpp"
#include "cpu/philox_simd.hpp"
#include "gradsweep/random_values.hpp"
#include "gradsweep/torch_params.hpp"

namespace gs::cpu {
namespace {

// Philox keys for the 16 Philox lanes: lane m draws for network m % L.
using LaneKeys = PhiloxKeys16;

template <int L>
LaneKeys lane_keys(const uint64_t* seeds) {
    LaneKeys k;
    for (int m = 0; m < 16; ++m) {
        k.k0[m] = static_cast<uint32_t>(seeds[m % L]);
        k.k1[m] = static_cast<uint32_t>(seeds[m % L] >> 32);
    }
    k.set_round_keys();
    return k;
}

// The values of one 16-lane group's words, w[q][m] being word q of Philox lane m's
// block, exactly as draw_from_block makes them: put(q, m, value of word q).
// (Uniform words that are already in a register take uniform_values16 instead.)
template <class T, class Put>
GS_INLINE void block_values16(const uint32_t (&w)[4][16], Dist::Kind kind, T scale, Put&& put) {
    if (kind == Dist::uniform) {
        const T s = uniform_scale(scale);
        for (int q = 0; q < 4; ++q)
            for (int m = 0; m < 16; ++m) put(q, m, uniform_value<T>(w[q][m], s));
    } else {  // Box-Muller pairs: words 0, 1 and words 2, 3
        for (int m = 0; m < 16; ++m) {
            T z[4];
            normal_pair<T>(w[0][m], w[1][m], z[0], z[1]);
            normal_pair<T>(w[2][m], w[3][m], z[2], z[3]);
            for (int q = 0; q < 4; ++q) put(q, m, scale * z[q]);
        }
    }
}

// G groups of 16 Philox lanes starting at block `blk`. A 16-lane group covers 16 / L
// consecutive blocks for L networks; word q of block b is element 4b + q, stored at
// dst[(4b + q) * L + network], i.e. draw_value's element e for every lane.
template <class T, int L, int G>
GS_INLINE void gen_step(const LaneKeys& keys, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t blk,
                            Dist::Kind kind, T scale, T* dst) {
    constexpr int BPV = 16 / L;
#if defined(__AVX512F__)
    // Uniform values (torch_default, kaiming/xavier uniform) from words in
    // registers, for one network per lane (lane m: block blk + g) or one network
    // vectorised over blocks (lane m: block blk + 16 g + m).
    if constexpr (L == 1 || (L == 16 && std::is_same_v<T, float>)) {
        if (kind == Dist::uniform) {
            const T s = uniform_scale(scale);
            __m512i cv[G][2];
            if constexpr (L == 1) {
                for (int g = 0; g < G; ++g) counters_consecutive(blk + 16u * static_cast<uint32_t>(g), cv[g]);
                philox16_elements<G>(cv, layer, static_cast<uint32_t>(stream), rng_key, keys, [&](int g, const __m512i (&e)[4]) {
                    T* o = dst + 4 * (static_cast<size_t>(blk) + 16 * g);
                    for (int v = 0; v < 4; ++v) uniform_values16(e[v], s, o + 16 * v);
                });
            } else {
                uint32_t c1[G], c2[G];
                for (int g = 0; g < G; ++g) {
                    counters_same(blk + static_cast<uint32_t>(g), cv[g]);
                    c1[g] = layer;
                    c2[g] = static_cast<uint32_t>(stream);
                }
                philox16_words<G>(cv, c1, c2, rng_key, keys, [&](int g, const __m512i (&w)[4]) {
                    for (int q = 0; q < 4; ++q) uniform_values16(w[q], s, dst + (4 * (static_cast<size_t>(blk) + g) + q) * 16);
                });
            }
            return;
        }
    }
#endif
    alignas(64) uint32_t c0[G][16];
    for (int g = 0; g < G; ++g)
        for (int m = 0; m < 16; ++m) c0[g][m] = blk + static_cast<uint32_t>(g * BPV + m / L);
    alignas(64) uint32_t w[G][4][16];
    philox16<G>(c0, layer, static_cast<uint32_t>(stream), rng_key, keys, w);
    if constexpr (L == 1) {
        if (kind == Dist::uniform) {  // words into element order first, then values in one contiguous pass
            const T s = uniform_scale(scale);
            alignas(64) uint32_t e[64];
            for (int g = 0; g < G; ++g) {
                blocks_to_elements(w[g], e);
                T* o = dst + 4 * (static_cast<size_t>(blk) + 16 * g);
                for (int i = 0; i < 64; ++i) o[i] = uniform_value<T>(e[i], s);
            }
            return;
        }
    }
    for (int g = 0; g < G; ++g)
        block_values16<T>(w[g], kind, scale, [&](int q, int m, T v) {
            dst[(4 * (static_cast<size_t>(blk) + g * BPV + m / L) + q) * L + m % L] = v;
        });
}

// dst[e * L + k] = element e of tensor (stream, layer) for lane k's seed, for e in
// [e0, e1) and possibly a little either side: generation starts at the 16-lane group
// holding e0 and writes up to 255 values past e1 (Scratch::kPad). Values outside the
// range are the tensor's own, so overlapping calls write identical numbers.
template <class T, int L>
void gen_range(const LaneKeys& keys, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t e0, uint32_t e1, Dist d,
               T* dst) {
    if (e1 <= e0) return;
    if (d.kind == Dist::zero) {
        std::fill(dst + static_cast<size_t>(e0) * L, dst + static_cast<size_t>(e1) * L, T(0));
        return;
    }
    const T scale = static_cast<T>(d.scale);
    constexpr uint32_t BPV = 16 / L;
    const uint32_t nb = (e1 + 3) / 4;
    uint32_t blk = e0 / 4 / BPV * BPV;
    while (blk < nb) {
        const uint32_t groups = (nb - blk + BPV - 1) / BPV;
        if (groups >= 4) {
            gen_step<T, L, 4>(keys, rng_key, stream, layer, blk, d.kind, scale, dst);
            blk += 4 * BPV;
        } else if (groups == 3) {
            gen_step<T, L, 3>(keys, rng_key, stream, layer, blk, d.kind, scale, dst);
            blk += 3 * BPV;
        } else if (groups == 2) {
            gen_step<T, L, 2>(keys, rng_key, stream, layer, blk, d.kind, scale, dst);
            blk += 2 * BPV;
        } else {
            gen_step<T, L, 1>(keys, rng_key, stream, layer, blk, d.kind, scale, dst);
            blk += BPV;
        }
    }
}

template <class T, int L>
void gen_tensor(const LaneKeys& keys, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t numel, Dist d, T* dst) {
    gen_range<T, L>(keys, rng_key, stream, layer, 0, numel, d, dst);
}

template <class T, int L>
void torch_fill(const Scratch<T, L>& s, bool is_bias, int l, int e0, int e1, T* dst) {
    for (int lane = 0; lane < L; ++lane) {
        const auto& src = is_bias ? s.torch[lane].bias[l] : s.torch[lane].weight[l];
        for (int e = e0; e < e1; ++e) dst[static_cast<size_t>(e) * L + lane] = static_cast<T>(src[e]);
    }
}

// Rows [i0, i1) of layer l's weights, [out][in][lane], into the store (or the one-layer buffer).
template <class T, int L>
T* make_weight_rows(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l, int i0, int i1) {
    T* w = s.w.data() + s.woff[l];
    const int n_in = p.n[l];
    if (p.torch) torch_fill(s, false, l, i0 * n_in, i1 * n_in, w);
    else gen_range<T, L>(keys, p.rng_key, Stream::weight, static_cast<uint32_t>(l), static_cast<uint32_t>(i0 * n_in),
                         static_cast<uint32_t>(i1 * n_in), p.wdist[l], w);
    return w;
}

template <class T, int L>
void make_bias(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l) {
    const int n_out = p.n[l + 1];
    T* b = s.bias.data();
    if (!p.bias) std::fill(b, b + static_cast<size_t>(n_out) * L, T(0));
    else if (p.torch) torch_fill(s, true, l, 0, n_out, b);
    else gen_tensor<T, L>(keys, p.rng_key, Stream::bias, static_cast<uint32_t>(l), static_cast<uint32_t>(n_out), p.bdist[l], b);
}

// Every weight and bias of an L = 16 group (Scratch::pregenerate), Philox blocks
// of different tensors in flight together (two at a time, four per call). Values are exactly gen_step's:
// element e of a tensor at dst[e * 16 + lane].
template <class T, int L>
void pregenerate_all(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s) {
    if constexpr (L == 16) {
        const auto& jobs = s.jobs;
        const size_t n = jobs.size();
        auto emit = [&](const typename Scratch<T, L>::GenJob& j, const uint32_t (&w)[4][16]) {
            T* dst = (j.to_bias ? s.ball.data() : s.w.data()) + j.offset + static_cast<size_t>(4) * j.block * 16;
            block_values16<T>(w, j.d.kind, static_cast<T>(j.d.scale), [&](int q, int m, T v) { dst[q * 16 + m] = v; });
        };
        auto batch = [&]<int G>(size_t at) {
            uint32_t c1[G], c2[G];
            for (int g = 0; g < G; ++g) {
                c1[g] = jobs[at + g].layer;
                c2[g] = jobs[at + g].stream;
            }
#if defined(__AVX512F__)
            // Counters in registers (a lane's block is the job's for every lane), and
            // uniform words made values without a trip through memory.
            __m512i cv[G][2];
            for (int g = 0; g < G; ++g) counters_same(jobs[at + g].block, cv[g]);
            philox16_words<G>(cv, c1, c2, p.rng_key, keys, [&](int g, const __m512i (&w)[4]) {
                const auto& j = jobs[at + g];
                if constexpr (std::is_same_v<T, float>) {
                    if (j.d.kind == Dist::uniform) {
                        T* dst = (j.to_bias ? s.ball.data() : s.w.data()) + j.offset + static_cast<size_t>(4) * j.block * 16;
                        const T sc = uniform_scale(static_cast<T>(j.d.scale));
                        for (int q = 0; q < 4; ++q) uniform_values16(w[q], sc, dst + 16 * q);
                        return;
                    }
                }
                alignas(64) uint32_t words[4][16];
                for (int q = 0; q < 4; ++q) _mm512_store_si512(words[q], w[q]);
                emit(j, words);
            });
#else
            alignas(64) uint32_t c0[G][16];
            for (int g = 0; g < G; ++g)
                for (int m = 0; m < 16; ++m) c0[g][m] = jobs[at + g].block;
            alignas(64) uint32_t w[G][4][16];
            philox16<G>(c0, c1, c2, p.rng_key, keys, w);
            for (int g = 0; g < G; ++g) emit(jobs[at + g], w[g]);
#endif
        };
        size_t at = 0;
        for (; at + 4 <= n; at += 4) batch.template operator()<4>(at);
        switch (n - at) {
            case 3: batch.template operator()<3>(at); break;
            case 2: batch.template operator()<2>(at); break;
            case 1: batch.template operator()<1>(at); break;
            default: break;
        }
    }
}

// Each lane's PyTorch-generated parameters and input (torch mode only).
template <class T, int L>
GS_INLINE void draw_torch_params(const CellPlan& p, const uint64_t* seeds, Scratch<T, L>& s) {
    for (int k = 0; k < L; ++k) s.torch[k] = torch_params(*p.cell, *p.input_spec, seeds[k]);
}

}  // namespace
}  // namespace gs::cpu
