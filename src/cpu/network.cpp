#include "cpu/network.hpp"

#include "cpu/activation_lanes.hpp"
#include "cpu/philox_simd.hpp"
#include "cpu/vec_math.hpp"

#include <limits>
#include <type_traits>

namespace gs::cpu {

CellPlan::CellPlan(const Spec& spec, const Cell& c) {
    cell = &c;
    input_spec = &spec.input;
    n = c.layer_sizes;
    depth = c.depth();
    batch = spec.input.batch;
    max_width = *std::max_element(n.begin(), n.end());
    rs = c.residual_scale;
    slope = c.leaky_slope;
    target = spec.target;
    bias = c.bias;
    torch = spec.rng == RngKind::torch;
    rng_key = spec.rng_key;
    random_input = spec.input.random;
    for (int l = 0; l < depth; ++l) {
        wdist.push_back(weight_dist(c.init, n[l], n[l + 1]));
        bdist.push_back(c.bias ? bias_dist(c.init, n[l]) : Dist{});
        act.push_back(c.activation_at(l));
        res.push_back(c.residual_at(l));
    }
    if (!random_input)
        for (const auto& r : spec.input.values) input.insert(input.end(), r.begin(), r.end());
}

namespace {


// ---------------------------------------------------------------------------- random tensors

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
            const T s = scale * T(5.9604644775390625e-08);
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
    if (kind == Dist::uniform) {
        const T s = scale * T(5.9604644775390625e-08);
        if constexpr (L == 1) {
            alignas(64) uint32_t e[64];
            for (int g = 0; g < G; ++g) {
                blocks_to_elements(w[g], e);
                T* o = dst + 4 * (static_cast<size_t>(blk) + 16 * g);
                for (int i = 0; i < 64; ++i) o[i] = uniform_value<T>(e[i], s);
            }
        } else {
            for (int g = 0; g < G; ++g)
                for (int q = 0; q < 4; ++q)
                    for (int m = 0; m < 16; ++m)
                        dst[(4 * (static_cast<size_t>(blk) + g * BPV + m / L) + q) * L + m % L] = uniform_value<T>(w[g][q][m], s);
        }
    } else {  // Box-Muller pairs, exactly as draw_from_block computes them
        for (int g = 0; g < G; ++g)
            for (int m = 0; m < 16; ++m) {
                T z[4];
                normal_pair<T>(w[g][0][m], w[g][1][m], z[0], z[1]);
                normal_pair<T>(w[g][2][m], w[g][3][m], z[2], z[3]);
                const size_t b = static_cast<size_t>(blk) + g * BPV + m / L;
                for (int q = 0; q < 4; ++q) dst[(4 * b + q) * L + m % L] = scale * z[q];
            }
    }
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
            const T scale = static_cast<T>(j.d.scale);
            if (j.d.kind == Dist::uniform) {
                const T sc = scale * T(5.9604644775390625e-08);
                for (int q = 0; q < 4; ++q)
                    for (int m = 0; m < 16; ++m) dst[q * 16 + m] = uniform_value<T>(w[q][m], sc);
            } else {
                for (int m = 0; m < 16; ++m) {
                    T z[4];
                    normal_pair<T>(w[0][m], w[1][m], z[0], z[1]);
                    normal_pair<T>(w[2][m], w[3][m], z[2], z[3]);
                    for (int q = 0; q < 4; ++q) dst[q * 16 + m] = scale * z[q];
                }
            }
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
                        const T sc = static_cast<T>(j.d.scale) * T(5.9604644775390625e-08);
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

// ---------------------------------------------------------------------------- forward matvec

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

// ---------------------------------------------------------------------------- backward, one layer

// gprev[b][j] += sum_i W[i][j] delta[b][i], i ascending for every j; four rows per
// pass keep the running sum in a register instead of memory.
template <class T, int L>
void backprop_input(const T* __restrict W, const T* __restrict delta, int B, int n_in, int n_out, int np_in, int np_out,
                    T* __restrict gprev) {
    const size_t row = static_cast<size_t>(n_in) * L;
    for (int b = 0; b < B; ++b) {
        const T* d = delta + static_cast<size_t>(b) * np_out * L;
        T* gp = gprev + static_cast<size_t>(b) * np_in * L;
        int i = 0;
        for (; i + 4 <= n_out; i += 4) {
            const T *w0 = W + i * row, *w1 = w0 + row, *w2 = w1 + row, *w3 = w2 + row;
            const T *d0 = d + i * L, *d1 = d0 + L, *d2 = d1 + L, *d3 = d2 + L;
            for (int j = 0; j < n_in; ++j)
                for (int k = 0; k < L; ++k) {
                    const int q = j * L + k;
                    T v = gp[q];
                    v += w0[q] * d0[k];
                    v += w1[q] * d1[k];
                    v += w2[q] * d2[k];
                    v += w3[q] * d3[k];
                    gp[q] = v;
                }
        }
        for (; i < n_out; ++i) {
            const T* wi = W + i * row;
            const T* di = d + i * L;
            for (int j = 0; j < n_in; ++j)
                for (int k = 0; k < L; ++k) gp[j * L + k] += wi[j * L + k] * di[k];
        }
    }
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

// ---------------------------------------------------------------------------- one group of networks

template <class T, int L, Activation A>
void run_lanes_act(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s) {
    const int D = p.depth, B = p.batch;
    const T slope = static_cast<T>(p.slope), rs = static_cast<T>(p.rs);
    const int stride = row_stride(D);
    const LaneKeys keys = lane_keys<L>(seeds);
    double* stage = s.stage.data();
    auto a_at = [&](int l) { return s.a.data() + s.aoff[l]; };
    auto dact_at = [&](int l) { return s.dact.data() + s.aoff[l]; };

    if (p.torch)
        for (int k = 0; k < L; ++k) s.torch[k] = torch_params(*p.cell, *p.input_spec, seeds[k]);

    // Input, [b][unit][lane].
    {
        const int n0 = p.n[0], np0 = s.np[0];
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
        T* a0 = a_at(0);
        for (int b = 0; b < B; ++b)
            std::copy(tmp + static_cast<size_t>(b) * n0 * L, tmp + static_cast<size_t>(b + 1) * n0 * L,
                      a0 + static_cast<size_t>(b) * np0 * L);
    }

    if (s.pregenerate) pregenerate_all<T, L>(p, keys, s);

    double act_ss[L];
    // Forward.
    for (int l = 0; l < D; ++l) {
        const int n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
        const T* bias_l;
        if (s.pregenerate) {
            bias_l = s.ball.data() + s.boff[l];
        } else {
            make_bias<T, L>(p, keys, s, l);
            bias_l = s.bias.data();
        }
        const bool act = p.act[l], res = p.res[l];
        std::fill(act_ss, act_ss + L, 0.0);
        // Weights a block of rows at a time, used while they are still in L1.
        const size_t row_bytes = static_cast<size_t>(n_in) * L * sizeof(T);
        const int rb = std::max<int>(8, static_cast<int>(16384 / row_bytes) / 8 * 8);
        T* w = nullptr;
        for (int i0 = 0; i0 < n_out; i0 += rb) {
            const int i1 = std::min(n_out, i0 + rb);
            w = s.pregenerate ? s.w.data() + s.woff[l] : make_weight_rows<T, L>(p, keys, s, l, i0, i1);
            const T* wrows = w + static_cast<size_t>(i0) * n_in * L;
            for (int b = 0; b < B; ++b) {
                const T* ain = a_at(l) + static_cast<size_t>(b) * np_in * L;
                T* z = s.z.data() + static_cast<size_t>(b) * np_out * L + static_cast<size_t>(i0) * L;
                const T* bias = bias_l + static_cast<size_t>(i0) * L;
                if constexpr (L == 1) matvec_rows<T>(wrows, bias, ain, i1 - i0, n_in, z);
                else matvec_lanes<T, L>(wrows, bias, ain, i1 - i0, n_in, z);
            }
        }
        for (int b = 0; b < B; ++b) {
            const T* ain = a_at(l) + static_cast<size_t>(b) * np_in * L;
            T* aout = a_at(l + 1) + static_cast<size_t>(b) * np_out * L;
            T* da = dact_at(l + 1) + static_cast<size_t>(b) * np_out * L;
            const T* z = s.z.data() + static_cast<size_t>(b) * np_out * L;
            for (int i = 0; i < n_out; ++i)
                for (int k = 0; k < L; ++k) {
                    const int q = i * L + k;
                    T y = z[q], dy = T(1);
                    if (act) act_value_and_slope<A, T>(z[q], slope, y, dy);
                    const T v = res ? ain[q] + rs * y : y;
                    aout[q] = v;
                    da[q] = dy;
                    act_ss[k] += static_cast<double>(v) * static_cast<double>(v);
                }
        }
        for (int k = 0; k < L; ++k)
            stage[(l * kNumQuantities + activation_rms) * L + k] = std::sqrt(act_ss[k] / (static_cast<double>(B) * n_out));
        if constexpr (std::is_same_v<T, double>) {
            for (int k = 0; k < L; ++k)
                if (squares_out_of_range(act_ss[k])) {
                    const T* aout = a_at(l + 1);
                    stage[(l * kNumQuantities + activation_rms) * L + k] =
                        rescaled_moments(static_cast<size_t>(B) * n_out, [&](size_t e) {
                            return static_cast<double>(aout[((e / n_out) * np_out + e % n_out) * L + k]);
                        }).rms;
                }
        }
    }

    // Loss and its gradient; g is [b][unit][lane] with the padded unit stride. The
    // loss is PyTorch's mse_loss in T: squares in T (a float32 difference beyond
    // 1.8e19 squares to inf, as in PyTorch), their sum rounded to T and divided in
    // T, as torch.mean does; the sum itself runs in double, so it is at least as
    // exact as PyTorch's float sum and overflows exactly when the total does.
    // For float64 this is the plain double computation.
    {
        const int nD = p.n[D], npD = s.np[D];
        double loss[L];
        std::fill(loss, loss + L, 0.0);
        const T numel = static_cast<T>(static_cast<double>(B) * nD);
        const T gscale = T(2) / numel;
        const T target = static_cast<T>(p.target);
        for (int b = 0; b < B; ++b) {
            const T* y = a_at(D) + static_cast<size_t>(b) * npD * L;
            T* g = s.g.data() + static_cast<size_t>(b) * npD * L;
            for (int q = 0; q < nD * L; ++q) {
                const T diff = y[q] - target;
                loss[q % L] += static_cast<double>(diff * diff);
                g[q] = gscale * diff;
            }
        }
        for (int k = 0; k < L; ++k) stage[loss_index(D) * L + k] = static_cast<double>(static_cast<T>(loss[k]) / numel);
    }

    // Backward: s.g holds dLoss/da_{l+1} on entry to layer l.
    for (int l = D - 1; l >= 0; --l) {
        const int n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
        const bool act = p.act[l], res = p.res[l];
        const T* da = dact_at(l + 1);
        T* delta = s.delta.data();
        T* g = s.g.data();
        for (int b = 0; b < B; ++b) {
            const size_t o = static_cast<size_t>(b) * np_out * L;
            for (int q = 0; q < n_out * L; ++q) {
                const T up = res ? rs * g[o + q] : g[o + q];
                delta[o + q] = act ? act_backward<A, T>(da[o + q], up) : up;
            }
        }
        double* qrow = stage + static_cast<size_t>(l) * kNumQuantities * L;  // [quantity][lane]
        // Bias gradient: sum over the batch.
        {
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
        // Input gradient (not needed below the first layer): the residual path, then W^T delta.
        if (l > 0) {
            const T* w = s.keep_weights ? s.w.data() + s.woff[l] : make_weight_rows<T, L>(p, keys, s, l, 0, n_out);
            T* gprev = s.gprev.data();
            for (int b = 0; b < B; ++b) {
                const size_t o = static_cast<size_t>(b) * np_in * L;
                for (int q = 0; q < n_in * L; ++q) gprev[o + q] = res ? g[o + q] : T(0);
            }
            backprop_input<T, L>(w, delta, B, n_in, n_out, np_in, np_out, gprev);
        }
        // Weight-gradient statistics. One sample: G = delta a^T has rank one, so
        // sum|G| = sum|delta| sum|a|, sum G^2 = sum delta^2 sum a^2 and
        // max|G| = max|delta| max|a| (rounding is monotonic, so the float max is
        // exactly the elementwise one): O(n) instead of O(n^2). A lane is redone
        // elementwise when T could not have held every G_ij the way the elementwise
        // sums do: a non-finite result (inf * 0 is NaN elementwise), a product that
        // underflows T (to a subnormal or 0: zeros are counted), or sums near
        // overflow. So vanishing and exploding gradients read the same either way.
        const T* ain = a_at(l);
        double wabs[L], wsq[L], wmax[L];
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
        const double numel = static_cast<double>(n_in) * n_out;
        for (int k = 0; k < L; ++k) {
            qrow[weight_grad_mean_abs * L + k] = wabs[k] / numel;
            qrow[weight_grad_rms * L + k] = std::sqrt(wsq[k] / numel);
            qrow[weight_grad_max_abs * L + k] = wmax[k];
        }
        if constexpr (std::is_same_v<T, double>) {
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
        if (l > 0) std::swap(s.g, s.gprev);
    }
    // Rows out of the lane-major staging area: whole-lane loops above vectorise
    // (divisions and square roots 8 lanes at a time); this is the only strided pass.
    stage_to_rows<L>(stage, stride, nvalid, out);
}

}  // namespace

template <class T, int L>
void run_lanes(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s) {
    dispatch_activation(p.cell->activation, [&]<Activation A>() { run_lanes_act<T, L, A>(p, seeds, nvalid, out, s); });
}

template void run_lanes<float, 1>(const CellPlan&, const uint64_t*, int, double*, Scratch<float, 1>&);
template void run_lanes<float, 16>(const CellPlan&, const uint64_t*, int, double*, Scratch<float, 16>&);
template void run_lanes<double, 1>(const CellPlan&, const uint64_t*, int, double*, Scratch<double, 1>&);
template void run_lanes<double, 8>(const CellPlan&, const uint64_t*, int, double*, Scratch<double, 8>&);

}  // namespace gs::cpu
