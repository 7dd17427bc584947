// The small-width network body: one thread per network with every layer's
// vectors in registers, for the shapes most sweeps use (width 3 or 16, input 3,
// output 1, ...). Compiled per shape, so every index below is a constant and the
// arrays live in registers; cells of other shapes run network_body.cuh.
//
// Numbers: the same as network_body.cuh at P = 1 (batch 1, philox mode), value
// for value. Each sum runs in the same order (z_i = b_i + sum_j W_ij a_j with j
// ascending, input gradients and per-column weight-gradient sums over i
// ascending, layer sums over units ascending), with the same expressions, so the
// host emulation checks the two bodies bit for bit. What differs is the cost:
//   - a layer's weights come from one walk over its Philox blocks in counter
//     order (row-major, four words per block): each block is generated once per
//     pass, never twice for a row that straddles it, and every word is used;
//   - biases and a random input also take four values per block (network_body
//     makes one Philox call per bias);
//   - the activations flow from layer to layer in registers; only z and the layer
//     inputs go to scratch, for the backward pass (depth is a run-time value).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "gradsweep/stats.hpp"
#include "net_layout.cuh"
#include "net_math.cuh"

// Every loop below has a constant trip count: unrolled, its indices are constants
// and the arrays stay in registers (nvcc) or need no loop counter (g++, emulation).
#if defined(__CUDACC__)
#define GS_UNROLL _Pragma("unroll")
#else
#define GS_UNROLL _Pragma("GCC unroll 64")
#endif

namespace gs::kern {

// A network shape the small body is compiled for: layer sizes
// [NI, N, ..., N, NO] at any depth >= 2.
struct SmallShape {
    int ni, n, no;
};

// The compiled shapes: widths 2..16 with input 3 (the project's sweeps) or the
// width itself, output 1 or the width. Each costs two kernels (float, double) of
// compile time; docs/cuda_backend.md ("The small-width kernel") says how they
// were chosen and what the bound 16 is worth.
inline constexpr SmallShape kSmallShapes[] = {
    {3, 2, 1},   {2, 2, 1},   {3, 3, 1}, {3, 3, 3},   {3, 4, 1},   {4, 4, 1},   {4, 4, 4},
    {3, 8, 1},   {8, 8, 1},   {8, 8, 8},
};
inline constexpr int kNumSmallShapes = static_cast<int>(sizeof(kSmallShapes) / sizeof(kSmallShapes[0]));

// Index into kSmallShapes of the cell's shape, or -1 where network_body runs:
// another shape, batch > 1, torch mode, depth 1, or more than one thread per network.
inline int small_shape_index(const NetLayout& L) {
    if (L.threads_per_net != 1 || L.batch != 1 || L.torch || L.depth < 2) return -1;
    const int ni = L.layers.front().n_in, n = L.layers.front().n_out, no = L.layers.back().n_out;
    for (int l = 1; l + 1 < L.depth; ++l)
        if (L.layers[l].n_in != n || L.layers[l].n_out != n) return -1;
    if (L.layers.back().n_in != n) return -1;
    for (int k = 0; k < kNumSmallShapes; ++k)
        if (kSmallShapes[k].ni == ni && kSmallShapes[k].n == n && kSmallShapes[k].no == no) return k;
    return -1;
}

// Calls f.template operator()<NI, N, NO>() for shape k of kSmallShapes.
template <class F, int... K>
void dispatch_small_shape(int k, F&& f, std::integer_sequence<int, K...>) {
    (void)((k == K ? (f.template operator()<kSmallShapes[K].ni, kSmallShapes[K].n, kSmallShapes[K].no>(), true) : false) || ...);
}
template <class F>
void dispatch_small_shape(int k, F&& f) {
    dispatch_small_shape(k, std::forward<F>(f), std::make_integer_sequence<int, kNumSmallShapes>{});
}

namespace small {

constexpr int max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

// Philox4x32-10's ten round keys for one seed, made once per network: every block
// of the network shares them, so the key schedule's two adds per round are paid
// once instead of per block (a fifth of a block's instructions).
struct RoundKeys {
    uint32_t k0[10], k1[10];
};
GS_HD RoundKeys round_keys(uint64_t seed) {
    RoundKeys k;
    k.k0[0] = static_cast<uint32_t>(seed);
    k.k1[0] = static_cast<uint32_t>(seed >> 32);
    GS_UNROLL for (int r = 1; r < 10; ++r) {
        k.k0[r] = k.k0[r - 1] + philox_detail::kW0;
        k.k1[r] = k.k1[r - 1] + philox_detail::kW1;
    }
    return k;
}
// philox_block(seed, rng_key, stream, layer, block) from the seed's round keys:
// the same rounds on the same words (a test checks it).
GS_HD U32x4 philox_block(const RoundKeys& k, uint32_t rng_key, Stream stream, uint32_t layer, uint32_t block) {
    uint32_t c0 = block, c1 = layer, c2 = static_cast<uint32_t>(stream), c3 = rng_key;
    GS_UNROLL for (int r = 0; r < 10; ++r) philox_detail::round(c0, c1, c2, c3, k.k0[r], k.k1[r]);
    return U32x4{{c0, c1, c2, c3}};
}

// rescale_factor(mx) (stats.hpp) and its inverse, for 0 <= mx <= DBL_MAX, from
// mx's exponent field: c = 2^-e with e = ilogb(mx) clamped to [-1000, 1000] (a
// field of 0, zero or subnormal, is an e below -1022: clamped alike). ilogb and
// ldexp are long library sequences on the device, and a division by c a full
// double division; c and 1/c are normal powers of two, so x * inv is x / c
// exactly. A test compares both with rescale_factor.
struct Rescale {
    double c, inv;
};
GS_HD Rescale rescale_pair(double mx) {
    uint64_t bits;
    std::memcpy(&bits, &mx, sizeof bits);
    int e = static_cast<int>(bits >> 52 & 0x7ff) - 1023;
    e = e < -1000 ? -1000 : (e > 1000 ? 1000 : e);
    const uint64_t cb = static_cast<uint64_t>(1023 - e) << 52, ib = static_cast<uint64_t>(1023 + e) << 52;
    Rescale r;
    std::memcpy(&r.c, &cb, sizeof cb);
    std::memcpy(&r.inv, &ib, sizeof ib);
    return r;
}

// Values 0..n-1 of tensor (stream, layer) with distribution d, four per Philox
// block: v[e] = draw_value(seed, key, stream, layer, e, d).
template <class T, int n>
GS_HD void draw_tensor(const RoundKeys& keys, uint32_t key, Stream stream, uint32_t layer, Dist d, T* v) {
    if (d.kind == Dist::zero) {
        GS_UNROLL for (int e = 0; e < n; ++e) v[e] = T(0);
        return;
    }
    GS_UNROLL for (int blk = 0; blk < (n + 3) / 4; ++blk) {
        T w[4];
        expand_block<T>(philox_block(keys, key, stream, layer, static_cast<uint32_t>(blk)), d.kind, static_cast<T>(d.scale), w);
        GS_UNROLL for (int q = 0; q < 4; ++q)
            if (4 * blk + q < n) v[4 * blk + q] = w[q];
    }
}

// Calls f(i, j, W_ij) for the NO x NI weights of layer l in counter order
// (row-major), one Philox block per four weights.
template <class T, int NI, int NO, class F>
GS_HD void for_each_weight(const NetArgs<T>& a, const LayerDesc& L, int l, const RoundKeys& keys, F&& f) {
    constexpr int n = NI * NO;
    GS_UNROLL for (int blk = 0; blk < (n + 3) / 4; ++blk) {
        T w[4];
        if (L.wdist.kind == Dist::zero) {
            GS_UNROLL for (int q = 0; q < 4; ++q) w[q] = T(0);
        } else {
            expand_block<T>(philox_block(keys, a.rng_key, Stream::weight, static_cast<uint32_t>(l), static_cast<uint32_t>(blk)),
                            L.wdist.kind, static_cast<T>(L.wdist.scale), w);
        }
        GS_UNROLL for (int q = 0; q < 4; ++q) {
            const int e = 4 * blk + q;
            if (e < n) f(e / NI, e % NI, w[q]);
        }
    }
}

// Forward pass of layer l: y = a_{l+1} from x = a_l, z and a_{l+1} stored for the
// backward pass, activation_rms written. network_body's forward_rows<T, 1> and
// its out-of-range branch, at P = 1.
template <class T, int NI, int NO, int W>
GS_HD void forward_layer(const NetArgs<T>& a, const LayerDesc& L, int l, const RoundKeys& keys, T* sb, uint64_t ss, const T (&x)[W],
                         T (&y)[W], double* row) {
    T z[NO];
    draw_tensor<T, NO>(keys, a.rng_key, Stream::bias, static_cast<uint32_t>(l), L.bdist, z);
    for_each_weight<T, NI, NO>(a, L, l, keys, [&](int i, int j, T w) { z[i] += w * x[j]; });
    const Activation act = a.activation;
    const T slope = a.slope, rs = a.rs;
    double act_ss = 0;
    GS_UNROLL for (int i = 0; i < NO; ++i) {
        const T yv = L.act ? act_fwd_rt<T>(act, z[i], slope) : z[i];
        const T v = L.res ? x[i] + rs * yv : yv;  // res: NI == NO (the spec allows nothing else)
        sb[(L.off_z + i) * ss] = z[i];
        sb[(L.off_a_out + i) * ss] = v;
        act_ss += static_cast<double>(v) * static_cast<double>(v);
        y[i] = v;
    }
    row[l * kNumQuantities + activation_rms] = std::sqrt(act_ss / static_cast<double>(NO));
    if constexpr (sizeof(T) == 8) {
        if (squares_out_of_range(act_ss)) {  // float64 squares that left double's range (stats.hpp)
            double mx = 0;
            GS_UNROLL for (int i = 0; i < NO; ++i) mx = nan_max(mx, std::fabs(static_cast<double>(y[i])));
            if (mx > 0 && mx <= 1.7976931348623157e308) {
                const Rescale r = rescale_pair(mx);
                double s2 = 0;
                GS_UNROLL for (int i = 0; i < NO; ++i) {
                    const double s = std::fabs(static_cast<double>(y[i])) * r.c;
                    s2 += s * s;
                }
                row[l * kNumQuantities + activation_rms] = std::sqrt(s2 / static_cast<double>(NO)) * r.inv;
            }
        }
    }
}

// Backward pass of layer l: g = dLoss/da_{l+1} in, gp = dLoss/da_l out (l > 0),
// the bias- and weight-gradient statistics written. network_body's delta loop and
// column_sweep<T, 1>, with their out-of-range branches, at P = 1.
template <class T, int NI, int NO, int W>
GS_HD void backward_layer(const NetArgs<T>& a, const LayerDesc& L, int l, const RoundKeys& keys, const T* sb, uint64_t ss, const T (&g)[W],
                          T (&gp)[W], double* row) {
    const Activation act = a.activation;
    const T slope = a.slope, rs = a.rs;
    double* const orow = row + l * kNumQuantities;
    T d[NO];
    double babs = 0;
    GS_UNROLL for (int i = 0; i < NO; ++i) {
        const T up = L.res ? rs * g[i] : g[i];
        d[i] = L.act ? act_bwd_rt<T>(act, act_der_rt<T>(act, sb[(L.off_z + i) * ss], slope), up) : up;
        T gb = T(0);
        gb += d[i];
        babs += std::fabs(static_cast<double>(gb));
    }
    orow[bias_grad_mean_abs] = a.has_bias ? babs / NO : 0.0;
    if constexpr (sizeof(T) == 8) {
        if (a.has_bias && babs > 1.7976931348623157e308) {  // the sum of finite |g| may overflow (stats.hpp)
            auto gb_at = [&](int i) {
                T gb = T(0);
                gb += d[i];
                return std::fabs(static_cast<double>(gb));
            };
            double mx = 0;
            GS_UNROLL for (int i = 0; i < NO; ++i) mx = nan_max(mx, gb_at(i));
            if (mx <= 1.7976931348623157e308) {
                const Rescale r = rescale_pair(mx);
                double s1 = 0;
                GS_UNROLL for (int i = 0; i < NO; ++i) s1 += gb_at(i) * r.c;
                orow[bias_grad_mean_abs] = s1 / NO * r.inv;
            }
        }
    }

    T ain[NI], cabs[NI], cmax[NI];
    double csq[NI];  // squares of T gradients in double, as the CPU backend: 1e-20 squared is no 0
    GS_UNROLL for (int j = 0; j < NI; ++j) {
        ain[j] = sb[(L.off_a_in + j) * ss];
        cabs[j] = cmax[j] = T(0);
        csq[j] = 0.0;
    }
    // G_ij = delta_i a_j, per column over i ascending (column_sweep's order).
    GS_UNROLL for (int i = 0; i < NO; ++i) {
        GS_UNROLL for (int j = 0; j < NI; ++j) {
            T G = T(0);
            G += d[i] * ain[j];
            const T ag = std::fabs(G);
            cabs[j] += ag;
            csq[j] += static_cast<double>(ag) * static_cast<double>(ag);
            cmax[j] = nan_max(cmax[j], ag);
        }
    }
    if (l > 0) {  // the input gradient, not needed below the first layer
        GS_UNROLL for (int j = 0; j < NI; ++j) gp[j] = L.res ? g[j] : T(0);
        for_each_weight<T, NI, NO>(a, L, l, keys, [&](int i, int j, T w) { gp[j] += w * d[i]; });
    }
    double wabs = 0, wsq = 0, wmax = 0;
    GS_UNROLL for (int j = 0; j < NI; ++j) {
        wabs += static_cast<double>(cabs[j]);
        wsq += csq[j];
        wmax = nan_max<double>(wmax, static_cast<double>(cmax[j]));
    }
    constexpr double numel = static_cast<double>(NI) * static_cast<double>(NO);
    orow[weight_grad_mean_abs] = wabs / numel;
    orow[weight_grad_rms] = std::sqrt(wsq / numel);
    orow[weight_grad_max_abs] = wmax;
    if constexpr (sizeof(T) == 8) {
        const bool abs_over = wabs > 1.7976931348623157e308;
        const bool sq_out = wmax > 0 && squares_out_of_range(wsq);
        if (wmax <= 1.7976931348623157e308 && (abs_over || sq_out)) {
            const Rescale r = rescale_pair(wmax);
            double s1 = 0, s2 = 0;
            GS_UNROLL for (int j = 0; j < NI; ++j)
                GS_UNROLL for (int i = 0; i < NO; ++i) {
                    T G = T(0);
                    G += d[i] * ain[j];
                    const double x = std::fabs(static_cast<double>(G)) * r.c;
                    s1 += x;
                    s2 += x * x;
                }
            if (abs_over) orow[weight_grad_mean_abs] = s1 / numel * r.inv;
            if (sq_out) orow[weight_grad_rms] = std::sqrt(s2 / numel) * r.inv;
        }
    }
}

}  // namespace small

// The whole network `net` of the launch: network_body(a, net, 0, 1, ...) for a
// cell of shape [NI, N, ..., N, NO], batch 1, philox mode (small_shape_index).
// kDepth > 0 (sass_report.sh's probe only) fixes the depth so the layer loops unroll.
template <class T, int NI, int N, int NO, int kDepth = 0>
GS_HD void small_network_body(const NetArgs<T>& a, uint64_t net) {
    constexpr int W = small::max3(NI, N, NO);
    T* const sb = a.scratch + net;  // thread per network: scratch is interleaved (soa)
    // The scratch stride, zero-extended from 32 bits so that each offset K * ss is
    // one 32 x 32 -> 64-bit multiply-add: a launch holds at most 2^20 networks
    // (launch_cap, cuda_sizing.hpp; launch_small_network_kernel checks < 2^32).
    const uint64_t ss = static_cast<uint32_t>(a.nets);
    const small::RoundKeys keys = small::round_keys(a.seed0 + net);
    double* const row = a.out + net * static_cast<uint64_t>(a.stride);
    const int D = kDepth > 0 ? kDepth : a.depth;

    T x[W], y[W];
    if (a.random_input) {
        small::draw_tensor<T, NI>(keys, a.rng_key, Stream::input, 0, Dist{Dist::normal, 1.0}, x);
    } else {
        GS_UNROLL for (int j = 0; j < NI; ++j) x[j] = a.fixed_input[j];
    }
    {
        const LayerDesc& L0 = a.layers[0];
        GS_UNROLL for (int j = 0; j < NI; ++j) sb[(L0.off_a_in + j) * ss] = x[j];
    }

    // Forward: the first layer, the hidden ones, the last; the output stays in y.
    small::forward_layer<T, NI, N>(a, a.layers[0], 0, keys, sb, ss, x, y, row);
    auto hidden_forward = [&](int l) {
        GS_UNROLL for (int k = 0; k < N; ++k) x[k] = y[k];
        small::forward_layer<T, N, N>(a, a.layers[l], l, keys, sb, ss, x, y, row);
    };
    if constexpr (kDepth > 0) {
        GS_UNROLL for (int l = 1; l < kDepth - 1; ++l) hidden_forward(l);
    } else {
        for (int l = 1; l < D - 1; ++l) hidden_forward(l);
    }
    GS_UNROLL for (int k = 0; k < N; ++k) x[k] = y[k];
    small::forward_layer<T, N, NO>(a, a.layers[D - 1], D - 1, keys, sb, ss, x, y, row);

    // Loss and dLoss/da_D (network_body's loss block), into x.
    {
        constexpr T numel = static_cast<T>(NO);
        const T gscale = T(2) / numel;
        double loss = 0;
        GS_UNROLL for (int i = 0; i < NO; ++i) {
            const T diff = y[i] - a.target;
            loss += static_cast<double>(diff * diff);  // squares in T, as PyTorch's mse_loss
            x[i] = gscale * diff;
        }
        row[D * kNumQuantities] = static_cast<double>(static_cast<T>(loss) / numel);
    }

    // Backward: the gradient flows x -> y -> x ... down the layers.
    small::backward_layer<T, N, NO>(a, a.layers[D - 1], D - 1, keys, sb, ss, x, y, row);
    auto hidden_backward = [&](int l) {
        GS_UNROLL for (int k = 0; k < N; ++k) x[k] = y[k];
        small::backward_layer<T, N, N>(a, a.layers[l], l, keys, sb, ss, x, y, row);
    };
    if constexpr (kDepth > 0) {
        GS_UNROLL for (int l = kDepth - 2; l >= 1; --l) hidden_backward(l);
    } else {
        for (int l = D - 2; l >= 1; --l) hidden_backward(l);
    }
    GS_UNROLL for (int k = 0; k < N; ++k) x[k] = y[k];
    small::backward_layer<T, NI, N>(a, a.layers[0], 0, keys, sb, ss, x, y, row);
}

}  // namespace gs::kern
