// One network's forward pass, MSE loss and backward pass with per-layer
// statistics, run by a group of P threads (P = 1: a thread per network; P = 32..256:
// a block per network). Written once, for host and device: the CUDA kernel calls it
// with threadIdx.x and __syncthreads, the host emulation tests call it from P
// std::threads with a std::barrier. So every index, offset and reduction below runs
// on this machine's CPU in the tests even though no GPU is here.
//
// Work split, per layer (T = float or double, BT = batch rows per register tile):
//   forward  (row sweep):    thread owns output rows i = t, t+P, ...; walks the
//       Philox blocks covering row i of W once per batch tile, so z = b + W a
//       accumulates in registers in the same order as the CPU backend (j ascending).
//   backward (column sweep): thread owns input columns 4J..4J+3, J = t, t+P, ...;
//       walks rows i ascending, regenerating W[i][4J..4J+3] (one Philox block, two
//       where a row does not start on a block boundary), and accumulates
//       gprev[b][j] = res*g + sum_i W_ij delta_bi and G_ij = sum_b delta_bi a_bj
//       reduced on the fly into per-column sum|G|, sum G^2, max|G| (never stored).
// No atomics anywhere: every sum has a fixed order that depends on P only, and P
// depends on the cell only, so a network's row is a function of its seed.
#pragma once
#include <cmath>
#include <cstdint>

#include "gradsweep/stats.hpp"
#include "net_layout.cuh"
#include "net_math.cuh"

// A loop the device compiler must not unroll: a runtime-bounded loop inside a sweep
// loop, where unrolled copies would only add code to every sweep iteration.
#if defined(__CUDACC__)
#define GS_NO_UNROLL _Pragma("unroll 1")
#else
#define GS_NO_UNROLL
#endif

namespace gs::kern {

inline constexpr int kBatchTile = 4;  // batch rows held in registers per sweep

// A group barrier. P = 1 never calls it.
template <class Sync>
GS_HD void group_barrier(int P, Sync& sync) {
    if (P > 1) sync.sync();
}

// Sums a and b and takes the NaN-propagating max of m over the group, in a fixed
// tree order; every thread gets the results. red holds 3*P doubles. Ends with a
// barrier, so it also publishes every scratch write made before it.
template <class Sync>
GS_HD void group_reduce3(double* red, int t, int P, Sync& sync, double& a, double& b, double& m) {
    if (P == 1) return;
    red[t] = a;
    red[P + t] = b;
    red[2 * P + t] = m;
    sync.sync();
    for (int s = P / 2; s > 0; s >>= 1) {
        if (t < s) {
            red[t] += red[t + s];
            red[P + t] += red[P + t + s];
            red[2 * P + t] = nan_max(red[2 * P + t], red[2 * P + t + s]);
        }
        sync.sync();
    }
    a = red[0];
    b = red[P];
    m = red[2 * P];
    sync.sync();  // everyone has read red before anyone writes it again
}

// Weights 4*blk .. 4*blk+3 of layer l (flattened row-major [out][in]).
template <class T>
GS_HD void weight_block(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, uint32_t blk, T v[4]) {
    if (a.torch) {
        const uint64_t numel = static_cast<uint64_t>(L.n_in) * static_cast<uint64_t>(L.n_out);
        for (int q = 0; q < 4; ++q) {
            const uint64_t e = static_cast<uint64_t>(blk) * 4 + q;
            v[q] = e < numel ? pb[L.off_w + e] : T(0);
        }
        return;
    }
    if (L.wdist.kind == Dist::zero) {
        for (int q = 0; q < 4; ++q) v[q] = T(0);
        return;
    }
    const U32x4 r = philox_block(seed, a.rng_key, Stream::weight, static_cast<uint32_t>(l), blk);
    expand_block<T>(r, L.wdist.kind, static_cast<T>(L.wdist.scale), v);
}

// y[q] = x[ph + q] for ph in 0..3: the eight values shifted in two select steps
// (by 1, then by 2) rather than a select chain per value.
template <class U>
GS_HD void shift8(const U x[8], int ph, U y[4]) {
    U s1[6];
    for (int m = 0; m < 6; ++m) s1[m] = (ph & 1) ? x[m + 1] : x[m];
    for (int q = 0; q < 4; ++q) y[q] = (ph & 2) ? s1[q + 2] : s1[q];
}

// Torch mode (stored weights) and a zero init: the run's weights without Philox,
// zero past c; false (v untouched) in philox mode with a drawn init. Their code
// stays in these two braced bodies, which scripts/ptx_loops.py tells apart.
template <class T>
GS_HD bool run4_without_philox(const NetArgs<T>& a, const LayerDesc& L, const T* pb, uint32_t e0, int c, T v[4]) {
    if (a.torch) {
        for (int q = 0; q < 4; ++q) v[q] = q < c ? pb[L.off_w + e0 + q] : T(0);
        return true;
    }
    if (L.wdist.kind == Dist::zero) {
        for (int q = 0; q < 4; ++q) v[q] = T(0);
        return true;
    }
    return false;
}

// The c <= 4 consecutive weights starting at flattened index e0 (all in one row);
// v[q] = 0 for q >= c, or (ZeroTail false, for a caller that never uses them)
// whatever the shift leaves there. Indices are 32-bit: a layer has fewer than 2^32
// weights (make_layout checks).
template <class T, bool ZeroTail = true>
GS_HD void weight_run4(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, uint32_t e0, int c, T v[4]) {
    if (run4_without_philox<T>(a, L, pb, e0, c, v)) return;
    const int ph = static_cast<int>(e0 & 3u);
    const U32x4 lo = philox_block(seed, a.rng_key, Stream::weight, static_cast<uint32_t>(l), e0 >> 2);
    const U32x4 hi = ph + c > 4 ? philox_block(seed, a.rng_key, Stream::weight, static_cast<uint32_t>(l), (e0 >> 2) + 1)
                                : U32x4{{0, 0, 0, 0}};
    const T scale = static_cast<T>(L.wdist.scale);
    if (L.wdist.kind == Dist::uniform) {
        // A uniform value takes one word: the words are shifted (one select per word,
        // where a double value takes two) and only the four kept are expanded, with
        // expand_block's expression.
        const uint32_t x[8] = {lo.v[0], lo.v[1], lo.v[2], lo.v[3], hi.v[0], hi.v[1], hi.v[2], hi.v[3]};
        uint32_t u[4];
        shift8(x, ph, u);
        for (int q = 0; q < 4; ++q) v[q] = (!ZeroTail || q < c) ? scale * uniform_pm1<T>(u[q]) : T(0);
    } else {
        // A normal value takes its Box-Muller pair: both blocks expanded, then shifted.
        T x[8];
        expand_block<T>(lo, L.wdist.kind, scale, x);
        if (ph + c > 4) {
            expand_block<T>(hi, L.wdist.kind, scale, x + 4);
        } else {
            for (int q = 4; q < 8; ++q) x[q] = T(0);
        }
        shift8(x, ph, v);
        for (int q = 0; q < 4; ++q)
            if (ZeroTail && q >= c) v[q] = T(0);
    }
}

// weight_run4 at P = 1, where one thread walks all of its network's column groups
// in order: row i's words of group J start in block lo = e0 / 4 and, when the row
// does not start on a block boundary (ph = e0 % 4 != 0, the same for every group
// of the row), end in block lo + 1, which is where group J + 1's words of row i
// start. So the values of lo come from the row cache, left there by group J - 1
// (or by cache_row_starts for group 0), and only lo + 1 is made, and left in the
// other buffer for group J + 1: one Philox block per row instead of two. Rows that
// start on a boundary make lo, as weight_block. rd/wr: this row's four values in
// buffers J % 2 and (J + 1) % 2. The same values as weight_run4 (expand_block's
// expressions, the same words); w[q >= c] unused.
template <class T>
GS_HD void weight_run4_cached(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, uint32_t e0, int c,
                              const Quad<T>* rd, Quad<T>* wr, T v[4]) {
    if (run4_without_philox<T>(a, L, pb, e0, c, v)) return;
    const int ph = static_cast<int>(e0 & 3u);
    Quad<T> f;
    expand_block<T>(philox_block(seed, a.rng_key, Stream::weight, static_cast<uint32_t>(l), (e0 >> 2) + (ph != 0 ? 1u : 0u)),
                    L.wdist.kind, static_cast<T>(L.wdist.scale), f.v);
    Quad<T> lo = f;
    if (ph != 0) {
        lo = *rd;
        *wr = f;
    }
    T x[8];
    for (int q = 0; q < 4; ++q) {
        x[q] = lo.v[q];
        x[4 + q] = f.v[q];
    }
    shift8(x, ph, v);
}

// Group 0's row cache: the first block of every row that does not start on a
// block boundary, into buffer 0 (weight_run4_cached); row i at wr + i * step.
template <class T>
GS_HD void cache_row_starts(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, Quad<T>* wr, uint64_t step) {
    if (a.torch || L.wdist.kind == Dist::zero) return;
    for (int i = 0; i < L.n_out; ++i, wr += step) {
        const uint32_t e = static_cast<uint32_t>(i) * static_cast<uint32_t>(L.n_in);
        if ((e & 3u) == 0) continue;
        expand_block<T>(philox_block(seed, a.rng_key, Stream::weight, static_cast<uint32_t>(l), e >> 2), L.wdist.kind,
                        static_cast<T>(L.wdist.scale), wr->v);
    }
}

template <class T>
GS_HD T bias_value(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, int i) {
    if (a.torch) return a.has_bias ? pb[L.off_b + i] : T(0);
    return draw_value<T>(seed, a.rng_key, Stream::bias, static_cast<uint32_t>(l), static_cast<uint32_t>(i), L.bdist);
}

// Words qa..qb-1 of one Philox block of row i into the tile's sums, each row's
// input pointer stepped by the scratch stride per word. Partial blocks only (a
// row's first and last): whole blocks take the unguarded loop in forward_rows.
template <class T, int BT>
GS_HD void forward_part(const T w[4], int qa, int qb, T acc[BT], const T* ap[BT], uint64_t ss) {
    for (int q = 0; q < 4; ++q) {
        if (q < qa || q >= qb) continue;
        for (int bb = 0; bb < BT; ++bb) {
            acc[bb] += w[q] * *ap[bb];
            ap[bb] += ss;
        }
    }
}

// Forward row sweep of layer l: rows i = t, t+P, ... of z = b + W a_in, the
// layer's output, and the thread's sum of squared outputs. BT batch rows share one
// walk over the row's Philox blocks; each row's sum runs j ascending whatever BT is,
// so BT changes the cost, never the numbers. The input is read through one pointer
// per batch row, stepped by the scratch stride, instead of an index multiplied
// out per weight. A row's partial first and last blocks are handled apart, so the
// blocks in between run without a per-word range check; tile rows past the batch
// point at a real row and accumulate unguarded (their sums are never stored), so
// the loop has no per-row guard either.
template <class T, int BT>
GS_HD double forward_rows(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, int t, int P, T* sb,
                          uint64_t ss) {
    auto S = [sb, ss](uint64_t k) -> T& { return sb[k * ss]; };
    const int B = a.batch, n_in = L.n_in, n_out = L.n_out;
    const Activation act = a.activation;
    const T slope = a.slope, rs = a.rs;
    double act_ss = 0;
    for (int i = t; i < n_out; i += P) {
        const T bias = bias_value<T>(a, L, l, seed, pb, i);
        const uint32_t e_begin = static_cast<uint32_t>(i) * static_cast<uint32_t>(n_in);
        const uint32_t e_last = e_begin + static_cast<uint32_t>(n_in) - 1u;
        const uint32_t blk_first = e_begin >> 2, blk_last = e_last >> 2;
        // Row i's words of its first block start at q0; of its last block end before q1.
        const int q0 = static_cast<int>(e_begin & 3u), q1 = static_cast<int>(e_last & 3u) + 1;
        const uint32_t whole_end = q1 == 4 ? blk_last + 1u : blk_last;  // blocks before it lie wholly in row i (from blk_first or blk_first+1)
        for (int b0 = 0; b0 < B; b0 += BT) {
            T acc[BT];
            const T* ap[BT];  // a_in[b0 + bb][j] for the next j
            for (int bb = 0; bb < BT; ++bb) {
                acc[bb] = bias;
                const int b = b0 + bb < B ? b0 + bb : b0;  // rows past the batch point at a real row, never stored
                ap[bb] = sb + (L.off_a_in + static_cast<uint64_t>(b) * static_cast<uint64_t>(n_in)) * ss;
            }
            uint32_t blk = blk_first;
            T w[4];
            if (q0 != 0) {  // the row starts inside a block
                weight_block<T>(a, L, l, seed, pb, blk, w);
                forward_part<T, BT>(w, q0, blk == blk_last ? q1 : 4, acc, ap, ss);
                ++blk;
            }
            for (; blk < whole_end; ++blk) {
                weight_block<T>(a, L, l, seed, pb, blk, w);
                for (int q = 0; q < 4; ++q)
                    for (int bb = 0; bb < BT; ++bb) {
                        acc[bb] += w[q] * *ap[bb];  // [sweep:forward weights=4]
                        ap[bb] += ss;
                    }
            }
            if (blk <= blk_last) {  // the row ends inside a block (not the one it started in)
                weight_block<T>(a, L, l, seed, pb, blk, w);
                forward_part<T, BT>(w, 0, q1, acc, ap, ss);
            }
            for (int bb = 0; bb < BT; ++bb) {
                if (b0 + bb >= B) break;
                const uint64_t b = static_cast<uint64_t>(b0 + bb);
                const T z = acc[bb];
                const T y = L.act ? act_fwd_rt<T>(act, z, slope) : z;
                const T v = L.res ? S(L.off_a_in + b * n_in + i) + rs * y : y;
                S(L.off_z + b * n_out + i) = z;
                S(L.off_a_out + b * n_out + i) = v;
                act_ss += static_cast<double>(v) * static_cast<double>(v);
            }
        }
    }
    return act_ss;
}

// Backward column sweep of layer l: columns 4J..4J+3, J = t, t+P, ..., of the input
// gradient gprev = res*g + W^T delta (not needed below layer 0, l = 0) and the
// weight-gradient statistics, added to wabs, wsq, wmax. BT batch rows per walk over
// the rows i (BT = 1: batch 1 only); every sum runs in the same order whatever BT
// is. Each delta is loaded once for both the input gradient and G_ij, and the
// tile's a_in values (four columns of BT rows) stay in registers, so
// G_ij = sum_b delta_bi a_bj needs scratch only for batch rows past the first tile.
// Aligned (n_in % 4 == 0, the common widths): every row's four words are one
// Philox block, i*(n_in/4) + J, and every group has four columns; otherwise
// weight_run4 picks them from one or two blocks, or, with a thread per network
// (Cached), weight_run4_cached from the row cache and one block. cq: the
// network's row cache (buffer 0, row 0; rows ss Quads apart), Cached only.
template <class T, int BT, bool Aligned, bool Cached = false>
GS_HD void column_sweep(const NetArgs<T>& a, const LayerDesc& L, int l, uint64_t seed, const T* pb, int t, int P, T* sb,
                        uint64_t ss, uint64_t gc, uint64_t gp, Quad<T>* cq, double& wabs, double& wsq, double& wmax) {
    auto S = [sb, ss](uint64_t k) -> T& { return sb[k * ss]; };
    const int B = a.batch, n_in = L.n_in, n_out = L.n_out;
    const bool need_gp = l > 0;
    const int nq = (n_in + 3) / 4;
    const uint64_t astep = static_cast<uint64_t>(n_in) * ss, dstep = static_cast<uint64_t>(n_out) * ss;  // one batch row
    if constexpr (Cached) {
        if (need_gp) cache_row_starts<T>(a, L, l, seed, cq, ss);
    }
    for (int J = t; J < nq; J += P) {
        const int j0 = 4 * J;
        const int c = Aligned ? 4 : (n_in - j0 < 4 ? n_in - j0 : 4);
        T cabs[4], cmax[4];
        double csq[4];  // squares of T gradients in double, as the CPU backend: 1e-20 squared is no 0
        for (int q = 0; q < 4; ++q) {
            cabs[q] = cmax[q] = T(0);
            csq[q] = 0.0;
        }
        for (int b0 = 0; b0 < (BT == 1 ? 1 : B); b0 += BT) {
            const bool first = b0 == 0;  // the statistics take the whole batch during the first tile
            if (!first && !need_gp) break;
            T g4[BT][4], ain[BT][4];
            bool real[BT];
            const T* dp[BT];  // delta[b0 + bb][i] for the next i
            for (int bb = 0; bb < BT; ++bb) {
                real[bb] = BT == 1 || b0 + bb < B;
                const uint64_t b = static_cast<uint64_t>(real[bb] ? b0 + bb : b0);  // rows past the batch: a real row, never used
                dp[bb] = sb + (a.off_delta + b * static_cast<uint64_t>(n_out)) * ss;
                for (int q = 0; q < 4; ++q) {
                    const bool in = real[bb] && q < c;
                    g4[bb][q] = (need_gp && L.res && in) ? S(gc + b * n_in + j0 + q) : T(0);
                    // 0 for rows past the batch: their d is 0 too, and 0 * 0 added to G
                    // changes no bit of |G| (at most -0 to +0), whatever G is.
                    ain[bb][q] = (first && in) ? S(L.off_a_in + b * n_in + j0 + q) : T(0);
                }
            }
            // Batch rows past the first tile (B > BT), for G: delta[BT][i] and a_in[BT][j0].
            const uint64_t rest = B > BT ? static_cast<uint64_t>(BT) : 0;  // B <= BT: never read, kept inside the buffer
            const T* dq = sb + (a.off_delta + rest * n_out) * ss;
            const T* const aq0 = sb + (L.off_a_in + rest * n_in + j0) * ss;
            uint32_t e0 = static_cast<uint32_t>(j0);  // flattened index of W[i][j0] (its block when aligned: e0 / 4)
            // Cached: row i's values in buffers J % 2 (read) and (J + 1) % 2 (written).
            const uint64_t cbuf = static_cast<uint64_t>(a.wcache_rows) * ss;
            const Quad<T>* crd = cq + (J & 1) * cbuf;
            Quad<T>* cwr = cq + ((J + 1) & 1) * cbuf;
            for (int i = 0; i < n_out; ++i, e0 += static_cast<uint32_t>(n_in), dq += ss) {
                T d[BT];
                for (int bb = 0; bb < BT; ++bb) {
                    const T x = *dp[bb];
                    d[bb] = real[bb] ? x : T(0);
                    dp[bb] += ss;
                }
                if (need_gp) {
                    T w[4];
                    if constexpr (Aligned) {
                        weight_block<T>(a, L, l, seed, pb, e0 >> 2, w);
                    } else if constexpr (Cached) {
                        weight_run4_cached<T>(a, L, l, seed, pb, e0, c, crd, cwr, w);  // w[q >= c] unused
                        crd += ss;
                        cwr += ss;
                    } else {
                        weight_run4<T, false>(a, L, l, seed, pb, e0, c, w);  // w[q >= c] unused
                    }
                    // Rows past the batch add w * 0 to a sum that is never stored.
                    for (int bb = 0; bb < BT; ++bb)
                        for (int q = 0; q < 4; ++q) g4[bb][q] += w[q] * d[bb];  // [sweep:backward weights=4]
                }
                if (first) {
                    T G[4];
                    for (int q = 0; q < 4; ++q) {
                        G[q] = T(0);
                        for (int bb = 0; bb < BT; ++bb) G[q] += d[bb] * ain[bb][q];
                    }
                    if constexpr (BT > 1) {
                        // The rest of the batch, b ascending as before: one delta load per
                        // row for the four columns.
                        const T* dr = dq;
                        const T* ar = aq0;
                        GS_NO_UNROLL
                        for (int b = BT; b < B; ++b, dr += dstep, ar += astep) {
                            const T dv = *dr;
                            for (int q = 0; q < 4; ++q)
                                if (q < c) G[q] += dv * ar[q * ss];
                        }
                    }
                    // All four columns, also past the layer's last (q >= c, the last
                    // group of an unaligned layer): those sums are never folded into
                    // wabs/wsq/wmax below, and the loop needs no per-column branch.
                    for (int q = 0; q < 4; ++q) {
                        const T ag = std::fabs(G[q]);
                        cabs[q] += ag;
                        csq[q] += static_cast<double>(ag) * static_cast<double>(ag);
                        cmax[q] = nan_max(cmax[q], ag);
                    }
                }
            }
            if (need_gp)
                for (int bb = 0; bb < BT; ++bb) {
                    if (!real[bb]) break;
                    for (int q = 0; q < c; ++q) S(gp + static_cast<uint64_t>(b0 + bb) * n_in + j0 + q) = g4[bb][q];
                }
        }
        for (int q = 0; q < c; ++q) {
            wabs += static_cast<double>(cabs[q]);
            wsq += csq[q];
            wmax = nan_max<double>(wmax, static_cast<double>(cmax[q]));
        }
    }
}

// The body for one scratch layout (Soa: element e of network k at e * nets + k,
// the P = 1 schedule; else contiguous per network, stride 1). The stride as a
// compile-time 1 lets the block-per-network sweeps address a row's words with
// immediate offsets instead of stepping a pointer per word.
// red: the group's 3 * P reduction doubles, followed, when a.shared_scratch, by
// the network's scratch (the kernel's shared memory).
template <class T, bool Soa, class Sync>
GS_HD void network_body_for(const NetArgs<T>& a, uint64_t net, int t, int P, double* red, Sync& sync) {
    T* const sb = Soa                ? a.scratch + net
                  : a.shared_scratch ? reinterpret_cast<T*>(red + 3 * P)
                                     : a.scratch + net * a.scratch_per_net;
    const uint64_t ss = Soa ? a.nets : 1;
    auto S = [sb, ss](uint64_t k) -> T& { return sb[k * ss]; };
    // The row cache (P = 1, unaligned layers): Quads interleaved over the launch's
    // networks, as the rest of the P = 1 scratch.
    Quad<T>* const cq = Soa && a.wcache_rows ? reinterpret_cast<Quad<T>*>(a.scratch + a.off_wcache * a.nets) + net : nullptr;

    const uint64_t seed = a.seed0 + net;
    const T* const pb = a.torch ? a.params + net * a.params_per_net : nullptr;
    double* const row = a.out + net * static_cast<uint64_t>(a.stride);
    const int B = a.batch, D = a.depth;
    const Activation act = a.activation;
    const T slope = a.slope, rs = a.rs;

    // Input a_0.
    {
        const LayerDesc& L0 = a.layers[0];
        const uint64_t n = static_cast<uint64_t>(B) * static_cast<uint64_t>(L0.n_in);
        for (uint64_t e = t; e < n; e += P) {
            T v;
            if (!a.random_input) v = a.fixed_input[e];
            else if (a.torch) v = pb[a.off_input + e];
            else v = draw_value<T>(seed, a.rng_key, Stream::input, 0, static_cast<uint32_t>(e), Dist{Dist::normal, 1.0});
            S(L0.off_a_in + e) = v;
        }
        group_barrier(P, sync);
    }

    // Forward: row sweep per layer.
    for (int l = 0; l < D; ++l) {
        const LayerDesc L = a.layers[l];
        const int n_out = L.n_out;
        // Batch 1 gets a one-row tile: no guards, addresses or accumulators for rows
        // that do not exist. Each row's sum has the same order in either tile.
        double act_ss = B == 1 ? forward_rows<T, 1>(a, L, l, seed, pb, t, P, sb, ss)
                               : forward_rows<T, kBatchTile>(a, L, l, seed, pb, t, P, sb, ss);
        double unused_sum = 0, unused_max = 0;
        group_reduce3(red, t, P, sync, act_ss, unused_sum, unused_max);
        if (t == 0) row[l * kNumQuantities + activation_rms] = std::sqrt(act_ss / (static_cast<double>(B) * n_out));
        if constexpr (sizeof(T) == 8) {
            // float64 squares that left double's range (stats.hpp): the rms again over
            // scaled values, as the CPU backend does. act_ss is the group's, so the
            // whole group takes this branch or none.
            if (squares_out_of_range(act_ss)) {
                double s1 = 0, s2 = 0, mx = 0;
                for (int i = t; i < n_out; i += P)
                    for (int b = 0; b < B; ++b)
                        mx = nan_max(mx, std::fabs(static_cast<double>(S(L.off_a_out + static_cast<uint64_t>(b) * n_out + i))));
                group_reduce3(red, t, P, sync, s1, s2, mx);
                if (mx > 0 && mx <= 1.7976931348623157e308) {
                    const double c = rescale_factor(mx);
                    for (int i = t; i < n_out; i += P)
                        for (int b = 0; b < B; ++b) {
                            const double x = std::fabs(static_cast<double>(S(L.off_a_out + static_cast<uint64_t>(b) * n_out + i))) * c;
                            s2 += x * x;
                        }
                    group_reduce3(red, t, P, sync, s1, s2, mx);
                    if (t == 0) row[l * kNumQuantities + activation_rms] = std::sqrt(s2 / (static_cast<double>(B) * n_out)) / c;
                }
            }
        }
    }

    // Loss and dLoss/da_D.
    {
        const LayerDesc& L = a.layers[D - 1];
        const uint64_t n = static_cast<uint64_t>(B) * static_cast<uint64_t>(L.n_out);
        const T numel = static_cast<T>(static_cast<double>(B) * L.n_out);
        const T gscale = T(2) / numel;
        double loss = 0;
        for (uint64_t e = t; e < n; e += P) {
            const T diff = S(L.off_a_out + e) - a.target;
            loss += static_cast<double>(diff * diff);  // squares in T, as PyTorch's mse_loss (the CPU backend's comment)
            S(a.off_g0 + e) = gscale * diff;
        }
        double unused_sum = 0, unused_max = 0;
        group_reduce3(red, t, P, sync, loss, unused_sum, unused_max);
        if (t == 0) row[D * kNumQuantities] = static_cast<double>(static_cast<T>(loss) / numel);
    }

    // Backward. g (offset gc) holds dLoss/da_{l+1} on entry to layer l.
    uint64_t gc = a.off_g0, gp = a.off_g1;
    for (int l = D - 1; l >= 0; --l) {
        const LayerDesc L = a.layers[l];
        const int n_in = L.n_in, n_out = L.n_out;
        double* const orow = row + l * kNumQuantities;

        // delta = f'(z) * upstream, and the bias gradient sum_b delta.
        double babs = 0;
        for (int i = t; i < n_out; i += P) {
            T gb = T(0);
            for (int b = 0; b < B; ++b) {
                const uint64_t k = static_cast<uint64_t>(b) * n_out + i;
                const T g = S(gc + k);
                const T up = L.res ? rs * g : g;
                const T d = L.act ? act_bwd_rt<T>(act, act_der_rt<T>(act, S(L.off_z + k), slope), up) : up;
                S(a.off_delta + k) = d;
                gb += d;
            }
            babs += std::fabs(static_cast<double>(gb));
        }
        {
            double unused_sum = 0, unused_max = 0;
            group_reduce3(red, t, P, sync, babs, unused_sum, unused_max);
        }
        if (t == 0) orow[bias_grad_mean_abs] = a.has_bias ? babs / n_out : 0.0;
        if constexpr (sizeof(T) == 8) {
            if (a.has_bias && babs > 1.7976931348623157e308) {  // the sum of finite |g| may overflow (stats.hpp)
                double s1 = 0, s2 = 0, mx = 0;
                auto gb_at = [&](int i) {
                    T gb = T(0);
                    for (int b = 0; b < B; ++b) gb += S(a.off_delta + static_cast<uint64_t>(b) * n_out + i);
                    return std::fabs(static_cast<double>(gb));
                };
                for (int i = t; i < n_out; i += P) mx = nan_max(mx, gb_at(i));
                group_reduce3(red, t, P, sync, s1, s2, mx);
                if (mx <= 1.7976931348623157e308) {
                    const double c = rescale_factor(mx);
                    for (int i = t; i < n_out; i += P) s1 += gb_at(i) * c;
                    group_reduce3(red, t, P, sync, s1, s2, mx);
                    if (t == 0) orow[bias_grad_mean_abs] = s1 / n_out / c;
                }
            }
        }

        // Column sweep: input gradient (not needed below layer 0) and weight-gradient statistics.
        double wabs = 0, wsq = 0, wmax = 0;
        // Batch 1 gets a one-row tile, every other batch the tile of 4; rows that start
        // on a block boundary (n_in % 4 == 0) one Philox block per row and group.
        // Each sum has the same order in every variant.
        const bool aligned = n_in % 4 == 0;
        // A thread per network (Soa) reads an unaligned layer's row cache.
        if (B == 1) {
            if (aligned) column_sweep<T, 1, true>(a, L, l, seed, pb, t, P, sb, ss, gc, gp, cq, wabs, wsq, wmax);
            else column_sweep<T, 1, false, Soa>(a, L, l, seed, pb, t, P, sb, ss, gc, gp, cq, wabs, wsq, wmax);
        } else {
            if (aligned) column_sweep<T, kBatchTile, true>(a, L, l, seed, pb, t, P, sb, ss, gc, gp, cq, wabs, wsq, wmax);
            else column_sweep<T, kBatchTile, false, Soa>(a, L, l, seed, pb, t, P, sb, ss, gc, gp, cq, wabs, wsq, wmax);
        }
        group_reduce3(red, t, P, sync, wabs, wsq, wmax);
        const double numel = static_cast<double>(n_in) * static_cast<double>(n_out);
        if (t == 0) {
            orow[weight_grad_mean_abs] = wabs / numel;
            orow[weight_grad_rms] = std::sqrt(wsq / numel);
            orow[weight_grad_max_abs] = wmax;
        }
        if constexpr (sizeof(T) == 8) {
            // Every G_ij finite (wmax is max|G_ij|) but a sum left double's range
            // (stats.hpp): the sums again over scaled G_ij, as the CPU backend does.
            const bool abs_over = wabs > 1.7976931348623157e308;
            const bool sq_out = wmax > 0 && squares_out_of_range(wsq);
            if (wmax <= 1.7976931348623157e308 && (abs_over || sq_out)) {
                const double c = rescale_factor(wmax);
                double s1 = 0, s2 = 0, unused_max = 0;
                for (int j = t; j < n_in; j += P)
                    for (int i = 0; i < n_out; ++i) {
                        T G = T(0);
                        for (int b = 0; b < B; ++b)
                            G += S(a.off_delta + static_cast<uint64_t>(b) * n_out + i) * S(L.off_a_in + static_cast<uint64_t>(b) * n_in + j);
                        const double x = std::fabs(static_cast<double>(G)) * c;
                        s1 += x;
                        s2 += x * x;
                    }
                group_reduce3(red, t, P, sync, s1, s2, unused_max);
                if (t == 0) {
                    if (abs_over) orow[weight_grad_mean_abs] = s1 / numel / c;
                    if (sq_out) orow[weight_grad_rms] = std::sqrt(s2 / numel) / c;
                }
            }
        }
        const uint64_t tmp = gc;
        gc = gp;
        gp = tmp;
    }
}

// One network, run by thread t of its group of P. The scratch layout follows P
// (make_args: soa exactly when P == 1), so the test on P both picks the layout
// and, in the kernel's P == 1 branch, is decided at compile time.
template <class T, class Sync>
GS_HD void network_body(const NetArgs<T>& a, uint64_t net, int t, int P, double* red, Sync& sync) {
    if (P == 1)
        network_body_for<T, true>(a, net, t, P, red, sync);
    else
        network_body_for<T, false>(a, net, t, P, red, sync);
}

}  // namespace gs::kern
