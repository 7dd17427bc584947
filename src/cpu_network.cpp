#include "cpu_network.hpp"

#include <cstring>

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

enum class Layout { out_in, in_out };  // W[i][j] (backward) or W^T[j][i] (forward)

// Fills dst with layer l's weights (or biases) for all lanes. Philox blocks are
// computed 16 at a time over the flattened (block, lane) index so the loop
// vectorises whether L is 16 or 1.
template <class T, int L>
void philox_fill(const CellPlan& p, const uint64_t* seeds, Stream stream, int l, int n_out, int n_in, Layout layout,
                 Dist d, T* dst) {
    const uint32_t numel = static_cast<uint32_t>(n_out) * static_cast<uint32_t>(n_in);
    if (d.kind == Dist::zero) {
        std::fill(dst, dst + static_cast<size_t>(numel) * L, T(0));
        return;
    }
    uint32_t klo[L], khi[L];
    for (int k = 0; k < L; ++k) {
        klo[k] = static_cast<uint32_t>(seeds[k]);
        khi[k] = static_cast<uint32_t>(seeds[k] >> 32);
    }
    const T scale = static_cast<T>(d.scale);
    const uint32_t nb = (numel + 3) / 4;
    const uint64_t total = static_cast<uint64_t>(nb) * L;
    constexpr int C = 16;
    for (uint64_t t0 = 0; t0 < total; t0 += C) {
        uint32_t w0[C], w1[C], w2[C], w3[C];
        for (int k = 0; k < C; ++k) {
            const uint64_t t = t0 + k;
            const uint32_t lane = static_cast<uint32_t>(t % L), blk = static_cast<uint32_t>(t / L);
            const U32x4 r = philox4x32_10(U32x4{{blk, static_cast<uint32_t>(l), static_cast<uint32_t>(stream), p.rng_key}},
                                          klo[lane], khi[lane]);
            w0[k] = r.v[0]; w1[k] = r.v[1]; w2[k] = r.v[2]; w3[k] = r.v[3];
        }
        const int kmax = static_cast<int>(std::min<uint64_t>(C, total - t0));
        for (int k = 0; k < kmax; ++k) {
            const uint64_t t = t0 + k;
            const uint32_t lane = static_cast<uint32_t>(t % L), blk = static_cast<uint32_t>(t / L);
            const U32x4 r{{w0[k], w1[k], w2[k], w3[k]}};
            for (uint32_t q = 0; q < 4; ++q) {
                const uint32_t e = blk * 4 + q;
                if (e >= numel) break;
                const uint32_t i = e / n_in, j = e % n_in;
                const size_t idx = layout == Layout::out_in ? static_cast<size_t>(e) : static_cast<size_t>(j) * n_out + i;
                dst[idx * L + lane] = draw_from_block<T>(r, e, d.kind, scale);
            }
        }
    }
}

template <class T, int L>
void torch_fill(const Scratch<T, L>& s, bool is_bias, int l, int n_out, int n_in, Layout layout, T* dst) {
    for (int lane = 0; lane < L; ++lane) {
        const auto& src = is_bias ? s.torch[lane].bias[l] : s.torch[lane].weight[l];
        const int numel = is_bias ? n_out : n_out * n_in;
        for (int e = 0; e < numel; ++e) {
            const int i = e / n_in, j = e % n_in;
            const size_t idx = (is_bias || layout == Layout::out_in) ? static_cast<size_t>(e) : static_cast<size_t>(j) * n_out + i;
            dst[idx * L + lane] = static_cast<T>(src[e]);
        }
    }
}

template <class T, int L>
void fill_weights(const CellPlan& p, const uint64_t* seeds, Scratch<T, L>& s, int l, Layout layout) {
    const int n_in = p.n[l], n_out = p.n[l + 1];
    if (p.torch) torch_fill(s, false, l, n_out, n_in, layout, s.w.data());
    else philox_fill<T, L>(p, seeds, Stream::weight, l, n_out, n_in, layout, p.wdist[l], s.w.data());
}

template <class T, int L>
void fill_bias(const CellPlan& p, const uint64_t* seeds, Scratch<T, L>& s, int l) {
    const int n_out = p.n[l + 1];
    if (!p.bias) std::fill(s.bias.begin(), s.bias.begin() + static_cast<size_t>(n_out) * L, T(0));
    else if (p.torch) torch_fill(s, true, l, n_out, 1, Layout::out_in, s.bias.data());
    else philox_fill<T, L>(p, seeds, Stream::bias, l, n_out, 1, Layout::out_in, p.bdist[l], s.bias.data());
}

template <Activation A, class T>
inline T derivative_at(T x, T slope) {
    if constexpr (A == Activation::tanh || A == Activation::sigmoid) return act_derivative<A, T>(x, act_forward<A, T>(x, slope), slope);
    else return act_derivative<A, T>(x, T(0), slope);
}

// NaN-propagating max, so a non-finite gradient is never hidden.
template <class T>
inline T nan_max(T m, T x) { return (x > m || x != x) ? x : m; }

template <class T, int L, Activation A>
void run_lanes_act(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s) {
    const int D = p.depth, B = p.batch;
    const T slope = static_cast<T>(p.slope), rs = static_cast<T>(p.rs);
    const int stride = row_stride(D);

    if (p.torch)
        for (int k = 0; k < L; ++k) s.torch[k] = torch_params(*p.cell, *p.input_spec, seeds[k]);

    // Input.
    const int n0 = p.n[0];
    T* a0 = s.a.data();
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < n0; ++j)
            for (int k = 0; k < L; ++k) {
                const size_t e = static_cast<size_t>(b) * n0 + j;
                T v;
                if (!p.random_input) v = static_cast<T>(p.input[e]);
                else if (p.torch) v = static_cast<T>(s.torch[k].input[e]);
                else v = draw_value<T>(seeds[k], p.rng_key, Stream::input, 0, static_cast<uint32_t>(e), Dist{Dist::normal, 1.0});
                a0[e * L + k] = v;
            }

    double act_ss[L];
    // Forward.
    for (int l = 0; l < D; ++l) {
        const int n_in = p.n[l], n_out = p.n[l + 1];
        fill_weights<T, L>(p, seeds, s, l, Layout::in_out);
        fill_bias<T, L>(p, seeds, s, l);
        const T* wt = s.w.data();
        const T* bias = s.bias.data();
        std::fill(act_ss, act_ss + L, 0.0);
        for (int b = 0; b < B; ++b) {
            const T* ain = s.a.data() + s.off[l] + static_cast<size_t>(b) * n_in * L;
            T* aout = s.a.data() + s.off[l + 1] + static_cast<size_t>(b) * n_out * L;
            T* z = s.z.data() + s.off[l + 1] + static_cast<size_t>(b) * n_out * L;
            for (int q = 0; q < n_out * L; ++q) z[q] = bias[q];
            for (int j = 0; j < n_in; ++j) {
                const T* wj = wt + static_cast<size_t>(j) * n_out * L;
                const T* aj = ain + static_cast<size_t>(j) * L;
                for (int i = 0; i < n_out; ++i)
                    for (int k = 0; k < L; ++k) z[i * L + k] += wj[i * L + k] * aj[k];
            }
            const bool act = p.act[l], res = p.res[l];
            for (int i = 0; i < n_out; ++i)
                for (int k = 0; k < L; ++k) {
                    const T zz = z[i * L + k];
                    const T y = act ? act_forward<A, T>(zz, slope) : zz;
                    const T v = res ? ain[i * L + k] + rs * y : y;
                    aout[i * L + k] = v;
                    act_ss[k] += static_cast<double>(v) * static_cast<double>(v);
                }
        }
        for (int k = 0; k < nvalid; ++k)
            out[k * stride + l * kNumQuantities + activation_rms] = std::sqrt(act_ss[k] / (static_cast<double>(B) * n_out));
    }

    // Loss and its gradient.
    const int nD = p.n[D];
    const T* y = s.a.data() + s.off[D];
    double loss[L];
    std::fill(loss, loss + L, 0.0);
    const T gscale = T(2) / static_cast<T>(static_cast<double>(B) * nD);
    const T target = static_cast<T>(p.target);
    for (int q = 0; q < B * nD; ++q)
        for (int k = 0; k < L; ++k) {
            const T diff = y[q * L + k] - target;
            loss[k] += static_cast<double>(diff) * static_cast<double>(diff);
            s.g[q * L + k] = gscale * diff;
        }
    for (int k = 0; k < nvalid; ++k) out[k * stride + loss_index(D)] = loss[k] / (static_cast<double>(B) * nD);

    // Backward: s.g holds dLoss/da_{l+1} on entry to layer l.
    for (int l = D - 1; l >= 0; --l) {
        const int n_in = p.n[l], n_out = p.n[l + 1];
        const bool act = p.act[l], res = p.res[l];
        const T* z = s.z.data() + s.off[l + 1];
        const T* ain = s.a.data() + s.off[l];
        T* delta = s.delta.data();
        for (int q = 0; q < B * n_out; ++q)
            for (int k = 0; k < L; ++k) {
                const T up = res ? rs * s.g[q * L + k] : s.g[q * L + k];
                delta[q * L + k] = act ? derivative_at<A, T>(z[q * L + k], slope) * up : up;
            }
        double* orow = out + l * kNumQuantities;
        // Bias gradient: sum over the batch.
        {
            double babs[L];
            std::fill(babs, babs + L, 0.0);
            for (int i = 0; i < n_out; ++i)
                for (int k = 0; k < L; ++k) {
                    T gb = T(0);
                    for (int b = 0; b < B; ++b) gb += delta[(static_cast<size_t>(b) * n_out + i) * L + k];
                    babs[k] += std::fabs(static_cast<double>(gb));
                }
            for (int k = 0; k < nvalid; ++k) orow[k * stride + bias_grad_mean_abs] = p.bias ? babs[k] / n_out : 0.0;
        }
        fill_weights<T, L>(p, seeds, s, l, Layout::out_in);
        const T* w = s.w.data();
        // Input gradient (not needed below the first layer).
        if (l > 0) {
            for (int q = 0; q < B * n_in * L; ++q) s.gprev[q] = res ? s.g[q] : T(0);
            for (int b = 0; b < B; ++b) {
                T* gp = s.gprev.data() + static_cast<size_t>(b) * n_in * L;
                const T* db = delta + static_cast<size_t>(b) * n_out * L;
                for (int i = 0; i < n_out; ++i) {
                    const T* wi = w + static_cast<size_t>(i) * n_in * L;
                    const T* di = db + static_cast<size_t>(i) * L;
                    for (int j = 0; j < n_in; ++j)
                        for (int k = 0; k < L; ++k) gp[j * L + k] += wi[j * L + k] * di[k];
                }
            }
        }
        // Weight-gradient statistics, G = sum_b delta_b a_b^T, reduced row by row.
        std::fill(s.sabs.begin(), s.sabs.begin() + static_cast<size_t>(n_in) * L, T(0));
        std::fill(s.ssq.begin(), s.ssq.begin() + static_cast<size_t>(n_in) * L, T(0));
        std::fill(s.smax.begin(), s.smax.begin() + static_cast<size_t>(n_in) * L, T(0));
        T* gr = s.row.data();
        for (int i = 0; i < n_out; ++i) {
            for (int q = 0; q < n_in * L; ++q) gr[q] = T(0);
            for (int b = 0; b < B; ++b) {
                const T* ab = ain + static_cast<size_t>(b) * n_in * L;
                const T* di = delta + (static_cast<size_t>(b) * n_out + i) * L;
                for (int j = 0; j < n_in; ++j)
                    for (int k = 0; k < L; ++k) gr[j * L + k] += di[k] * ab[j * L + k];
            }
            for (int q = 0; q < n_in * L; ++q) {
                const T ag = std::fabs(gr[q]);
                s.sabs[q] += ag;
                s.ssq[q] += ag * ag;
                s.smax[q] = nan_max(s.smax[q], ag);
            }
        }
        double wabs[L], wsq[L], wmax[L];
        std::fill(wabs, wabs + L, 0.0);
        std::fill(wsq, wsq + L, 0.0);
        std::fill(wmax, wmax + L, 0.0);
        for (int j = 0; j < n_in; ++j)
            for (int k = 0; k < L; ++k) {
                wabs[k] += s.sabs[j * L + k];
                wsq[k] += s.ssq[j * L + k];
                wmax[k] = nan_max<double>(wmax[k], s.smax[j * L + k]);
            }
        const double numel = static_cast<double>(n_in) * n_out;
        for (int k = 0; k < nvalid; ++k) {
            orow[k * stride + weight_grad_mean_abs] = wabs[k] / numel;
            orow[k * stride + weight_grad_rms] = std::sqrt(wsq[k] / numel);
            orow[k * stride + weight_grad_max_abs] = wmax[k];
        }
        if (l > 0) std::swap(s.g, s.gprev);
    }
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
