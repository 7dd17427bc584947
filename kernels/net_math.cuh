// Per-element math of the CUDA kernels, written once for host and device (GS_HD)
// so the host emulation tests (tests/gpu/emu_kernels_test.cpp) run exactly the code
// the GPU runs. Only the shared headers' formulas are used: activation.hpp for
// f and f', random_values.hpp for how Philox words become values.
#pragma once
#include <cmath>
#include <cstdint>

#include "gradsweep/activation.hpp"
#include "gradsweep/hd.hpp"
#include "gradsweep/random_values.hpp"

namespace gs::kern {

// The activation is a run-time value inside the kernels: it is applied once per
// unit while the weight loops cost n_in per unit, so a uniform switch is cheaper
// than eight times the instantiations (and eight times the compile time).
template <class T>
GS_HD T act_fwd_rt(Activation a, T x, T slope) {
    switch (a) {
        case Activation::relu: return act_forward<Activation::relu, T>(x, slope);
        case Activation::gelu: return act_forward<Activation::gelu, T>(x, slope);
        case Activation::gelu_tanh: return act_forward<Activation::gelu_tanh, T>(x, slope);
        case Activation::tanh: return act_forward<Activation::tanh, T>(x, slope);
        case Activation::sigmoid: return act_forward<Activation::sigmoid, T>(x, slope);
        case Activation::silu: return act_forward<Activation::silu, T>(x, slope);
        case Activation::identity: return act_forward<Activation::identity, T>(x, slope);
        case Activation::leaky_relu: break;
    }
    return act_forward<Activation::leaky_relu, T>(x, slope);
}

// f'(x) from x alone. tanh and sigmoid take y = f(x) and so recompute it, exactly
// as the CPU backend does (src/cpu/network.cpp, derivative_at), which keeps z the only
// per-unit value the forward pass has to store.
template <class T>
GS_HD T act_der_rt(Activation a, T x, T slope) {
    switch (a) {
        case Activation::relu: return act_derivative<Activation::relu, T>(x, T(0), slope);
        case Activation::gelu: return act_derivative<Activation::gelu, T>(x, T(0), slope);
        case Activation::gelu_tanh: return act_derivative<Activation::gelu_tanh, T>(x, T(0), slope);
        case Activation::tanh:
            return act_derivative<Activation::tanh, T>(x, act_forward<Activation::tanh, T>(x, slope), slope);
        case Activation::sigmoid:
            return act_derivative<Activation::sigmoid, T>(x, act_forward<Activation::sigmoid, T>(x, slope), slope);
        case Activation::silu: return act_derivative<Activation::silu, T>(x, T(0), slope);
        case Activation::identity: return act_derivative<Activation::identity, T>(x, T(0), slope);
        case Activation::leaky_relu: break;
    }
    return act_derivative<Activation::leaky_relu, T>(x, T(0), slope);
}

// dLoss/dz from f'(z) and the upstream gradient: activation.hpp's act_backward.
template <class T>
GS_HD T act_bwd_rt(Activation a, T dy, T up) {
    return a == Activation::relu ? act_backward<Activation::relu, T>(dy, up) : act_backward<Activation::identity, T>(dy, up);
}

// NaN-propagating max (same rule as the CPU backend), so a non-finite gradient is
// never hidden by a reduction, whatever order the reduction runs in.
template <class T>
GS_HD T nan_max(T m, T x) {
    return (x > m || x != x) ? x : m;
}

// All four values of one Philox block: element 4*blk + q is v[q]. Equal, value for
// value, to draw_from_block<T>(r, 4*blk + q, kind, scale) (a host test checks it),
// but each Box-Muller pair is evaluated once instead of twice.
template <class T>
GS_HD void expand_block(const U32x4& r, Dist::Kind kind, T scale, T v[4]) {
    if (kind == Dist::uniform) {
        for (int q = 0; q < 4; ++q) v[q] = scale * uniform_pm1<T>(r.v[q]);
    } else if (kind == Dist::normal) {
        T z0, z1, z2, z3;
        normal_pair<T>(r.v[0], r.v[1], z0, z1);
        normal_pair<T>(r.v[2], r.v[3], z2, z3);
        v[0] = scale * z0;
        v[1] = scale * z1;
        v[2] = scale * z2;
        v[3] = scale * z3;
    } else {
        for (int q = 0; q < 4; ++q) v[q] = T(0);
    }
}

}  // namespace gs::kern
