// The forward pass of L networks at once: the input batch into a_0, then per layer
// z = W a + b (matvec_lanes for one network per lane, matvec_rows for one network
// vectorised over units) and a' = f(z) (+ the residual), storing f'(z) for the
// backward pass and the sums of squares activation_statistics needs.
//
// Part of network.cpp, split out to be read on its own: only network.cpp includes
// it. Everything stays in an unnamed namespace, as it was there, so GCC makes the
// same inlining decisions (internal linkage) and the hot loops compile unchanged.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/activation_lanes.hpp"
#include "cpu/lane_random.hpp"
#include "cpu/layer_stats.hpp"
#include "cpu/network.hpp"

namespace gs::cpu {
namespace {

// z[i][k] = bias[i][k] + sum_j W[i][j][k] a[j][k], lanes = networks. Blocks of IB
// output units keep IB independent accumulator chains in registers (the sum for
// each unit is still bias, then j ascending, whatever the blocking).
template <class T, int L>
void matvec_lanes(const T* __restrict W, const T* __restrict bias, const T* __restrict a, int n_out, int n_in,
                  T* __restrict z) {
    constexpr int IB = 8;
    int i = 0;
    for (; i + IB <= n_out; i += IB) {
        T acc[IB][L];
        for (int m = 0; m < IB; ++m)
            for (int k = 0; k < L; ++k) acc[m][k] = bias[(i + m) * L + k];
        for (int j = 0; j < n_in; ++j) {
            const T* aj = a + static_cast<size_t>(j) * L;
            for (int m = 0; m < IB; ++m) {
                const T* wij = W + (static_cast<size_t>(i + m) * n_in + j) * L;
                for (int k = 0; k < L; ++k) acc[m][k] += wij[k] * aj[k];
            }
        }
        for (int m = 0; m < IB; ++m)
            for (int k = 0; k < L; ++k) z[(i + m) * L + k] = acc[m][k];
    }
    for (; i < n_out; ++i) {
        T acc[L];
        for (int k = 0; k < L; ++k) acc[k] = bias[i * L + k];
        for (int j = 0; j < n_in; ++j) {
            const T* wij = W + (static_cast<size_t>(i) * n_in + j) * L;
            for (int k = 0; k < L; ++k) acc[k] += wij[k] * a[j * L + k];
        }
        for (int k = 0; k < L; ++k) z[i * L + k] = acc[k];
    }
}

// One 64-byte SIMD vector of T (GCC vector extension: AVX-512 here, pairs or
// quadruples of narrower registers elsewhere).
typedef float VecF __attribute__((vector_size(64)));
typedef double VecD __attribute__((vector_size(64)));
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
    using type = VecF;
};
template <>
struct VecOf<double> {
    using type = VecD;
};
template <class T>
using Vec = typename VecOf<T>::type;

template <class T>
GS_INLINE Vec<T> load_vec(const T* p) {
    Vec<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Sum of a vector's elements in a fixed tree: halves, then quarters, ...
GS_INLINE float tree_sum(VecF v) {
    typedef float v8 __attribute__((vector_size(32)));
    typedef float v4 __attribute__((vector_size(16)));
    const v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    const v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return ((b[0] + b[2]) + (b[1] + b[3]));
}
GS_INLINE double tree_sum(VecD v) {
    typedef double v4 __attribute__((vector_size(32)));
    const v4 b = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    return ((b[0] + b[2]) + (b[1] + b[3]));
}

// One network (L = 1): z[i] = bias[i] + dot(W[i][:], a), as one vector of partial
// sums per row added up in a fixed tree. `a` is zero-padded to a whole vector, so
// reading past the end of a row (into the next row, or the store's padding:
// finite values) adds exact zeros.
template <class T>
void matvec_rows(const T* __restrict W, const T* __restrict bias, const T* __restrict a, int n_out, int n_in,
                 T* __restrict z) {
    constexpr int V = 64 / sizeof(T);
    const int nj = (n_in + V - 1) / V * V;
    int i = 0;
    for (; i + 4 <= n_out; i += 4) {
        const T *w0 = W + static_cast<size_t>(i) * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        Vec<T> s0 = {}, s1 = {}, s2 = {}, s3 = {};
        for (int j = 0; j < nj; j += V) {
            const Vec<T> av = load_vec(a + j);
            s0 += load_vec(w0 + j) * av;
            s1 += load_vec(w1 + j) * av;
            s2 += load_vec(w2 + j) * av;
            s3 += load_vec(w3 + j) * av;
        }
        z[i] = bias[i] + tree_sum(s0);
        z[i + 1] = bias[i + 1] + tree_sum(s1);
        z[i + 2] = bias[i + 2] + tree_sum(s2);
        z[i + 3] = bias[i + 3] + tree_sum(s3);
    }
    for (; i < n_out; ++i) {
        const T* wi = W + static_cast<size_t>(i) * n_in;
        Vec<T> s0 = {};
        for (int j = 0; j < nj; j += V) s0 += load_vec(wi + j) * load_vec(a + j);
        z[i] = bias[i] + tree_sum(s0);
    }
}

// ---------------------------------------------------------------------------- steps of run_lanes

// acc + x^2 rounded once, spelled out: left to contraction (-march=native), GCC
// fused this in some lanes of the unrolled lane loop and not in others (its
// heuristic against FMA chains on AMD cores keeps an accumulator held in a
// register unfused), so a float64 seed's activation_rms depended on its lane,
// i.e. on where its seed block started. Fused, as the CUDA kernel's contracted
// sum is; without FMA hardware nothing can fuse, so mul + add is the same
// everywhere there. For float x the square is exact in double, so either way
// rounds once.
GS_INLINE double add_square(double acc, double x) {
#if defined(__FMA__)
    return std::fma(x, x, acc);
#else
    return acc + x * x;
#endif
}

// a_0, [b][unit][lane]: the spec's fixed rows, each lane's torch input, or Philox
// draws (stream input, N(0, 1)), made unpadded in tmp and then copied to a_0's
// padded rows.
template <class T, int L>
GS_INLINE void load_input(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s) {
    const int B = p.batch, n0 = p.n[0], np0 = s.np[0];
    T* tmp = s.tmp.data();
    const size_t numel = static_cast<size_t>(B) * n0;
    if (!p.random_input) {
        for (size_t e = 0; e < numel; ++e)
            for (int k = 0; k < L; ++k) tmp[e * L + k] = static_cast<T>(p.input[e]);
    } else if (p.torch) {
        for (size_t e = 0; e < numel; ++e)
            for (int k = 0; k < L; ++k) tmp[e * L + k] = static_cast<T>(s.torch[k].input[e]);
    } else {
        gen_tensor<T, L>(keys, p.rng_key, Stream::input, 0, static_cast<uint32_t>(numel), Dist{Dist::normal, 1.0}, tmp);
    }
    T* a0 = s.act_at(0);
    for (int b = 0; b < B; ++b)
        std::copy(tmp + static_cast<size_t>(b) * n0 * L, tmp + static_cast<size_t>(b + 1) * n0 * L,
                  a0 + static_cast<size_t>(b) * np0 * L);
}

// Layer l's bias, [unit][lane]: pre-generated, or drawn now into s.bias.
template <class T, int L>
GS_INLINE const T* layer_bias(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l) {
    if (s.pregenerate) return s.ball.data() + s.boff[l];
    make_bias<T, L>(p, keys, s, l);
    return s.bias.data();
}

// z = W a_l + bias for every sample, into s.z ([b][unit][lane]). The weights are
// drawn (unless pre-generated or kept) a block of rows at a time and used while
// they are still in L1.
template <class T, int L>
GS_INLINE void layer_matvec(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l, const T* bias_l) {
    const int B = p.batch, n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
    const size_t row_bytes = static_cast<size_t>(n_in) * L * sizeof(T);
    const int rb = std::max<int>(8, static_cast<int>(16384 / row_bytes) / 8 * 8);
    for (int i0 = 0; i0 < n_out; i0 += rb) {
        const int i1 = std::min(n_out, i0 + rb);
        const T* w = s.pregenerate ? s.w.data() + s.woff[l] : make_weight_rows<T, L>(p, keys, s, l, i0, i1);
        const T* wrows = w + static_cast<size_t>(i0) * n_in * L;
        for (int b = 0; b < B; ++b) {
            const T* ain = s.act_at(l) + static_cast<size_t>(b) * np_in * L;
            T* z = s.z.data() + static_cast<size_t>(b) * np_out * L + static_cast<size_t>(i0) * L;
            const T* bias = bias_l + static_cast<size_t>(i0) * L;
            if constexpr (L == 1) matvec_rows<T>(wrows, bias, ain, i1 - i0, n_in, z);
            else matvec_lanes<T, L>(wrows, bias, ain, i1 - i0, n_in, z);
        }
    }
}

// a_{l+1} = f(z) (z itself where the layer has no activation; a_l + rs f(z) where
// it has a residual connection); f'(z) into dact for the backward pass, and each
// lane's sum of squares of a_{l+1} added to act_ss (the same loop, while the
// values are in registers).
template <class T, int L, Activation A>
GS_INLINE void layer_activation(const CellPlan& p, Scratch<T, L>& s, int l, double* act_ss) {
    const int B = p.batch, n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
    const T slope = static_cast<T>(p.slope), rs = static_cast<T>(p.rs);
    const bool act = p.act[l], res = p.res[l];
    for (int b = 0; b < B; ++b) {
        const T* ain = s.act_at(l) + static_cast<size_t>(b) * np_in * L;
        T* aout = s.act_at(l + 1) + static_cast<size_t>(b) * np_out * L;
        T* da = s.dact_at(l + 1) + static_cast<size_t>(b) * np_out * L;
        const T* z = s.z.data() + static_cast<size_t>(b) * np_out * L;
        for (int i = 0; i < n_out; ++i)
            for (int k = 0; k < L; ++k) {
                const int q = i * L + k;
                T y = z[q], dy = T(1);
                if (act) act_value_and_slope<A, T>(z[q], slope, y, dy);
                const T v = res ? ain[q] + rs * y : y;
                aout[q] = v;
                da[q] = dy;
                act_ss[k] = add_square(act_ss[k], static_cast<double>(v));
            }
    }
}

// Layer l forward: a_{l+1} and f'(z_l) from a_l, and the layer's activation_rms.
template <class T, int L, Activation A>
GS_INLINE void forward_layer(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l, double* act_ss) {
    std::fill(act_ss, act_ss + L, 0.0);
    const T* bias = layer_bias<T, L>(p, keys, s, l);
    layer_matvec<T, L>(p, keys, s, l, bias);
    layer_activation<T, L, A>(p, s, l, act_ss);
    activation_statistics<T, L>(p, s, l, act_ss);
}

}  // namespace
}  // namespace gs::cpu
