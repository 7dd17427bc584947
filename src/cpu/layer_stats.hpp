// The statistics run_lanes writes per layer and lane (stats.hpp's quantities):
// activation rms from the forward pass's sums, and the bias- and weight-gradient
// moments from the backward pass's delta, all into the lane-major staging area,
// then stage_to_rows turns that into one row per network.
//
// Part of network.cpp, split out to be read on its own: only network.cpp includes
// it. Everything stays in an unnamed namespace, as it was there, so GCC makes the
// same inlining decisions (internal linkage) and the hot loops compile unchanged.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cpu/network.hpp"
#include "gradsweep/stats.hpp"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gs::cpu {
namespace {

// NaN-propagating max, so a non-finite gradient is never hidden.
template <class T>
GS_INLINE T nan_max(T m, T x) { return (x > m || x != x) ? x : m; }

// The mean of |x| and the rms of n values at(i) (all of them finite when max|x|
// is), summed after scaling by rescale_factor(max|x|): for float64 statistics whose
// plain double sums left the range (stats.hpp, kSquaresLow). Out of line: the rescue
// path only, so the ordinary loops compile and round exactly as they always have.
struct RescaledMoments {
    double mean_abs, rms;
};
template <class At>
[[gnu::noinline]] RescaledMoments rescaled_moments(size_t n, At at) {
    double mx = 0;
    for (size_t i = 0; i < n; ++i) mx = nan_max(mx, std::fabs(at(i)));
    if (!(mx > 0) || !std::isfinite(mx)) return {mx, mx};  // all zero, or an inf/NaN the plain sums had too
    const double c = rescale_factor(mx);
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) {
        const double x = std::fabs(at(i)) * c;
        s1 += x;
        s2 += x * x;
    }
    return {s1 / static_cast<double>(n) / c, std::sqrt(s2 / static_cast<double>(n)) / c};
}

// Statistics of G = sum_b delta_b a_b^T element by element, into per-(j, lane)
// accumulators, rows i ascending. G is a T, as PyTorch's gradient would be; its
// square is taken and summed in double, so a gradient of 1e-20 (a vanishing one,
// still a normal float) does not read as an rms of 0.
template <class T, int L>
void weight_grad_elementwise(const T* __restrict delta, const T* __restrict ain, int B, int n_in, int n_out, int np_in,
                             int np_out, T* __restrict sabs, double* __restrict ssq, T* __restrict smax) {
    for (int i = 0; i < n_out; ++i)
        for (int j = 0; j < n_in; ++j)
            for (int k = 0; k < L; ++k) {
                T gij = T(0);
                for (int b = 0; b < B; ++b)
                    gij += delta[(static_cast<size_t>(b) * np_out + i) * L + k] * ain[(static_cast<size_t>(b) * np_in + j) * L + k];
                const T ag = std::fabs(gij);
                sabs[j * L + k] += ag;
                ssq[j * L + k] += static_cast<double>(ag) * static_cast<double>(ag);
                smax[j * L + k] = nan_max(smax[j * L + k], ag);
            }
}

// Sum, sum of squares (in double), max and smallest non-zero value of |v| over n
// units, per lane.
template <class T, int L>
void abs_moments(const T* __restrict v, int n, double* __restrict sum, double* __restrict sq, T* __restrict mx,
                 T* __restrict mn) {
    // Local accumulators: the compiler keeps them in registers across the loop.
    double s1[L], s2[L];
    T hi[L], lo[L];
    for (int k = 0; k < L; ++k) {
        s1[k] = 0;
        s2[k] = 0;
        hi[k] = T(0);
        lo[k] = std::numeric_limits<T>::infinity();
    }
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < L; ++k) {
            const T x = std::fabs(v[i * L + k]);
            const double xd = static_cast<double>(x);
            s1[k] += xd;
            s2[k] += xd * xd;
            hi[k] = nan_max(hi[k], x);
            lo[k] = (x > T(0) && x < lo[k]) ? x : lo[k];
        }
    for (int k = 0; k < L; ++k) {
        sum[k] = s1[k];
        sq[k] = s2[k];
        mx[k] = hi[k];
        mn[k] = lo[k];
    }
}

// out[k * stride + x] = stage[x * L + k] for lanes k < nvalid. With AVX-512, 8 x 8
// blocks are transposed in registers (24 shuffles instead of 64 scalar moves:
// for tiny networks this copy was a tenth of the time).
template <int L>
void stage_to_rows(const double* __restrict stage, int stride, int nvalid, double* __restrict out) {
    int k0 = 0;
#if defined(__AVX512F__)
    if constexpr (L % 8 == 0) {
        for (; k0 + 8 <= nvalid; k0 += 8) {
            int x = 0;
            for (; x + 8 <= stride; x += 8) {
                __m512d r[8], t[8], u[8];
                for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(stage + static_cast<size_t>(x + i) * L + k0);
                for (int i = 0; i < 8; i += 2) {
                    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);      // r_i[0] r_i+1[0] r_i[2] r_i+1[2] ...
                    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);  // r_i[1] r_i+1[1] r_i[3] r_i+1[3] ...
                }
                for (int h = 0; h < 8; h += 4) {
                    u[h] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);      // columns 0, 4 of rows h..h+3
                    u[h + 1] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xDD);  // columns 2, 6
                    u[h + 2] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88);  // columns 1, 5
                    u[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xDD);  // columns 3, 7
                }
                double* o = out + static_cast<size_t>(k0) * stride + x;
                const int col_of[4][2] = {{0, 4}, {2, 6}, {1, 5}, {3, 7}};
                for (int q = 0; q < 4; ++q) {
                    _mm512_storeu_pd(o + static_cast<size_t>(col_of[q][0]) * stride, _mm512_shuffle_f64x2(u[q], u[q + 4], 0x88));
                    _mm512_storeu_pd(o + static_cast<size_t>(col_of[q][1]) * stride, _mm512_shuffle_f64x2(u[q], u[q + 4], 0xDD));
                }
            }
            for (; x < stride; ++x)
                for (int k = k0; k < k0 + 8; ++k) out[static_cast<size_t>(k) * stride + x] = stage[x * L + k];
        }
    }
#endif
    for (int k = k0; k < nvalid; ++k)
        for (int x = 0; x < stride; ++x) out[static_cast<size_t>(k) * stride + x] = stage[x * L + k];
}

// ---------------------------------------------------------------------------- steps of run_lanes

// activation_rms of layer l from the forward pass's per-lane sums of squares
// act_ss over the batch. float64 sums that left the range are redone rescaled.
template <class T, int L>
GS_INLINE void activation_statistics(const CellPlan& p, Scratch<T, L>& s, int l, const double* act_ss) {
    const int B = p.batch, n_out = p.n[l + 1], np_out = s.np[l + 1];
    double* qrow = s.stage_row(l);
    for (int k = 0; k < L; ++k) qrow[activation_rms * L + k] = std::sqrt(act_ss[k] / (static_cast<double>(B) * n_out));
    if constexpr (std::is_same_v<T, double>) {
        for (int k = 0; k < L; ++k)
            if (squares_out_of_range(act_ss[k])) {
                const T* aout = s.act_at(l + 1);
                qrow[activation_rms * L + k] = rescaled_moments(static_cast<size_t>(B) * n_out, [&](size_t e) {
                                                   return static_cast<double>(aout[((e / n_out) * np_out + e % n_out) * L + k]);
                                               }).rms;
            }
    }
}

// bias_grad_mean_abs of layer l: the bias gradient is delta summed over the batch.
template <class T, int L>
GS_INLINE void bias_grad_statistics(const CellPlan& p, Scratch<T, L>& s, int l) {
    const int B = p.batch, n_out = p.n[l + 1], np_out = s.np[l + 1];
    const T* delta = s.delta.data();
    double* qrow = s.stage_row(l);
    double babs[L];
    std::fill(babs, babs + L, 0.0);
    if (B == 1) {  // the sum over one sample is the sample itself
        for (int i = 0; i < n_out; ++i)
            for (int k = 0; k < L; ++k) babs[k] += std::fabs(static_cast<double>(delta[i * L + k]));
    } else {
        for (int i = 0; i < n_out; ++i)
            for (int k = 0; k < L; ++k) {
                T gb = T(0);
                for (int b = 0; b < B; ++b) gb += delta[(static_cast<size_t>(b) * np_out + i) * L + k];
                babs[k] += std::fabs(static_cast<double>(gb));
            }
    }
    for (int k = 0; k < L; ++k) qrow[bias_grad_mean_abs * L + k] = p.bias ? babs[k] / n_out : 0.0;
    if constexpr (std::is_same_v<T, double>) {
        for (int k = 0; k < L; ++k)
            if (p.bias && babs[k] > std::numeric_limits<double>::max())
                qrow[bias_grad_mean_abs * L + k] = rescaled_moments(static_cast<size_t>(n_out), [&](size_t i) {
                    T gb = T(0);
                    for (int b = 0; b < B; ++b) gb += delta[(static_cast<size_t>(b) * np_out + i) * L + k];
                    return static_cast<double>(gb);
                }).mean_abs;
    }
}

// sum|G|, sum G^2 and max|G| per lane for layer l's weight gradient
// G = sum_b delta_b a_b^T. One sample: G = delta a^T has rank one, so
// sum|G| = sum|delta| sum|a|, sum G^2 = sum delta^2 sum a^2 and
// max|G| = max|delta| max|a| (rounding is monotonic, so the float max is
// exactly the elementwise one): O(n) instead of O(n^2). A lane is redone
// elementwise when T could not have held every G_ij the way the elementwise
// sums do: a non-finite result (inf * 0 is NaN elementwise), a product that
// underflows T (to a subnormal or 0: zeros are counted), or sums near
// overflow. So vanishing and exploding gradients read the same either way.
template <class T, int L>
GS_INLINE void weight_grad_sums(const CellPlan& p, Scratch<T, L>& s, int l, double* wabs, double* wsq, double* wmax) {
    const int B = p.batch, n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
    const T* delta = s.delta.data();
    const T* ain = s.act_at(l);
    bool elementwise[L];
    bool any_elementwise = B > 1;
    if (B == 1) {
        double dsum[L], dsq[L], asum[L], asq[L];
        T dmax[L], amax[L], dmin[L], amin[L];
        abs_moments<T, L>(delta, n_out, dsum, dsq, dmax, dmin);
        abs_moments<T, L>(ain, n_in, asum, asq, amax, amin);
        // Smallest product that is still a normal T; sums kept well below overflow.
        const double tiny = static_cast<double>(std::numeric_limits<T>::min());
        const double huge = static_cast<double>(std::numeric_limits<T>::max()) / 1024;
        int any = 0;
        for (int k = 0; k < L; ++k) {  // branch-free, so it vectorises across lanes
            wabs[k] = dsum[k] * asum[k];
            wsq[k] = dsq[k] * asq[k];
            wmax[k] = static_cast<double>(static_cast<T>(dmax[k] * amax[k]));
            const double smallest = static_cast<double>(dmin[k]) * static_cast<double>(amin[k]);
            const int safe = static_cast<int>(std::fabs(wmax[k]) <= std::numeric_limits<double>::max()) &
                             static_cast<int>(wabs[k] <= huge) & static_cast<int>(wsq[k] <= huge) &
                             static_cast<int>(!(smallest < tiny));
            elementwise[k] = !safe;
            any |= !safe;
        }
        any_elementwise = any != 0;
    } else {
        std::fill(elementwise, elementwise + L, true);
    }
    if (any_elementwise) {
        T *sabs = s.sabs.data(), *smax = s.smax.data();
        double* ssq = s.ssq.data();
        std::fill(sabs, sabs + static_cast<size_t>(n_in) * L, T(0));
        std::fill(ssq, ssq + static_cast<size_t>(n_in) * L, 0.0);
        std::fill(smax, smax + static_cast<size_t>(n_in) * L, T(0));
        weight_grad_elementwise<T, L>(delta, ain, B, n_in, n_out, np_in, np_out, sabs, ssq, smax);
        double eabs[L], esq[L], emax[L];
        std::fill(eabs, eabs + L, 0.0);
        std::fill(esq, esq + L, 0.0);
        std::fill(emax, emax + L, 0.0);
        for (int j = 0; j < n_in; ++j)
            for (int k = 0; k < L; ++k) {
                eabs[k] += sabs[j * L + k];
                esq[k] += ssq[j * L + k];
                emax[k] = nan_max<double>(emax[k], smax[j * L + k]);
            }
        for (int k = 0; k < L; ++k)
            if (elementwise[k]) {
                wabs[k] = eabs[k];
                wsq[k] = esq[k];
                wmax[k] = emax[k];
            }
    }
}

// weight_grad_mean_abs, _rms and _max_abs of layer l (needs delta, and a_l intact).
template <class T, int L>
GS_INLINE void weight_grad_statistics(const CellPlan& p, Scratch<T, L>& s, int l) {
    const int B = p.batch, n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
    double wabs[L], wsq[L], wmax[L];
    weight_grad_sums<T, L>(p, s, l, wabs, wsq, wmax);
    double* qrow = s.stage_row(l);
    const double numel = static_cast<double>(n_in) * n_out;
    for (int k = 0; k < L; ++k) {
        qrow[weight_grad_mean_abs * L + k] = wabs[k] / numel;
        qrow[weight_grad_rms * L + k] = std::sqrt(wsq[k] / numel);
        qrow[weight_grad_max_abs * L + k] = wmax[k];
    }
    if constexpr (std::is_same_v<T, double>) {
        const T* delta = s.delta.data();
        const T* ain = s.act_at(l);
        for (int k = 0; k < L; ++k) {
            // Every G_ij finite (wmax is max|G_ij|), but a sum left the range.
            const bool abs_over = wabs[k] > std::numeric_limits<double>::max();
            const bool sq_out = wmax[k] > 0 && squares_out_of_range(wsq[k]);
            if (!std::isfinite(wmax[k]) || !(abs_over || sq_out)) continue;
            // G_ij exactly as weight_grad_elementwise forms it (for B = 1, the rank-one path's delta_i a_j).
            const RescaledMoments m = rescaled_moments(static_cast<size_t>(n_in) * n_out, [&](size_t e) {
                const size_t i = e / n_in, j = e % n_in;
                T gij = T(0);
                for (int b = 0; b < B; ++b)
                    gij += delta[(static_cast<size_t>(b) * np_out + i) * L + k] * ain[(static_cast<size_t>(b) * np_in + j) * L + k];
                return static_cast<double>(gij);
            });
            if (abs_over) qrow[weight_grad_mean_abs * L + k] = m.mean_abs;
            if (sq_out) qrow[weight_grad_rms * L + k] = m.rms;
        }
    }
}

}  // namespace
}  // namespace gs::cpu
