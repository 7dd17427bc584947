// The loss and the backward pass of L networks at once: the mse loss and its
// gradient g = dLoss/da_D, then per layer (last first) delta = dLoss/dz from g and
// f'(z), and g for the layer below (the residual path plus W^T delta).
//
// Part of network.cpp, split out to be read on its own: only network.cpp includes
// it. Everything stays in an unnamed namespace, as it was there, so GCC makes the
// same inlining decisions (internal linkage) and the hot loops compile unchanged.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/activation_lanes.hpp"
#include "cpu/lane_random.hpp"
#include "cpu/network.hpp"
#include "gradsweep/stats.hpp"

namespace gs::cpu {
namespace {

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

// ---------------------------------------------------------------------------- steps of run_lanes

// The loss into the staging area and its gradient into s.g ([b][unit][lane] with
// the padded unit stride). The loss is PyTorch's mse_loss in T: squares in T (a
// float32 difference beyond 1.8e19 squares to inf, as in PyTorch), their sum
// rounded to T and divided in T, as torch.mean does; the sum itself runs in
// double, so it is at least as exact as PyTorch's float sum and overflows exactly
// when the total does. For float64 this is the plain double computation.
template <class T, int L>
GS_INLINE void mse_loss(const CellPlan& p, Scratch<T, L>& s) {
    const int B = p.batch, D = p.depth, nD = p.n[D], npD = s.np[D];
    double loss[L];
    std::fill(loss, loss + L, 0.0);
    const T numel = static_cast<T>(static_cast<double>(B) * nD);
    const T gscale = T(2) / numel;
    const T target = static_cast<T>(p.target);
    for (int b = 0; b < B; ++b) {
        const T* y = s.act_at(D) + static_cast<size_t>(b) * npD * L;
        T* g = s.g.data() + static_cast<size_t>(b) * npD * L;
        for (int q = 0; q < nD * L; ++q) {
            const T diff = y[q] - target;
            loss[q % L] += static_cast<double>(diff * diff);
            g[q] = gscale * diff;
        }
    }
    double* stage = s.stage.data();
    for (int k = 0; k < L; ++k) stage[loss_index(D) * L + k] = static_cast<double>(static_cast<T>(loss[k]) / numel);
}

// delta = dLoss/dz_l from g = dLoss/da_{l+1}: through the residual scale and f'(z).
template <class T, int L, Activation A>
GS_INLINE void backward_delta(const CellPlan& p, Scratch<T, L>& s, int l) {
    const int B = p.batch, n_out = p.n[l + 1], np_out = s.np[l + 1];
    const T rs = static_cast<T>(p.rs);
    const bool act = p.act[l], res = p.res[l];
    const T* da = s.dact_at(l + 1);
    T* delta = s.delta.data();
    const T* g = s.g.data();
    for (int b = 0; b < B; ++b) {
        const size_t o = static_cast<size_t>(b) * np_out * L;
        for (int q = 0; q < n_out * L; ++q) {
            const T up = res ? rs * g[o + q] : g[o + q];
            delta[o + q] = act ? act_backward<A, T>(da[o + q], up) : up;
        }
    }
}

// gprev = dLoss/da_l (not needed below the first layer): the residual path, then
// W^T delta; the weights kept from the forward pass, or drawn again.
template <class T, int L>
GS_INLINE void backward_input(const CellPlan& p, const LaneKeys& keys, Scratch<T, L>& s, int l) {
    const int B = p.batch, n_in = p.n[l], n_out = p.n[l + 1], np_in = s.np[l], np_out = s.np[l + 1];
    const bool res = p.res[l];
    const T* w = s.keep_weights ? s.w.data() + s.woff[l] : make_weight_rows<T, L>(p, keys, s, l, 0, n_out);
    const T* g = s.g.data();
    T* gprev = s.gprev.data();
    for (int b = 0; b < B; ++b) {
        const size_t o = static_cast<size_t>(b) * np_in * L;
        for (int q = 0; q < n_in * L; ++q) gprev[o + q] = res ? g[o + q] : T(0);
    }
    backprop_input<T, L>(w, s.delta.data(), B, n_in, n_out, np_in, np_out, gprev);
}

}  // namespace
}  // namespace gs::cpu
