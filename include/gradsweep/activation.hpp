// Activations and their derivatives, shared by the CPU backend, the CUDA kernels
// and the finite-difference tests.
#pragma once
#include <cmath>
#include "gradsweep/hd.hpp"

namespace gs {

enum class Activation : int { relu, gelu, gelu_tanh, tanh, sigmoid, silu, identity, leaky_relu };

// Names as written in specs and outputs; index = enum value.
inline constexpr const char* kActivationNames[] = {"relu", "gelu", "gelu_tanh", "tanh",
                                                  "sigmoid", "silu", "identity", "leaky_relu"};
inline constexpr int kNumActivations = 8;

template <class T>
struct ActConst {
    static constexpr T inv_sqrt2 = T(0.70710678118654752440);
    static constexpr T inv_sqrt2pi = T(0.39894228040143267794);
    static constexpr T sqrt_2_over_pi = T(0.79788456080286535588);
    static constexpr T gelu_tanh_c = T(0.044715);
};

// Non-finite values are data: every activation and derivative below gives what
// PyTorch 1.13 gives on NaN, +-inf, +-0 and subnormals (tests/test_activation_torch.cpp
// checks each against tests/data/torch_activation_cases.json), so an exploding
// network stays non-finite instead of coming back as zeros.

// y = f(x). `slope` is only read by leaky_relu.
template <Activation A, class T>
GS_HD T act_forward(T x, T slope) {
    using std::erf;
    using std::exp;
    using std::tanh;
    if constexpr (A == Activation::relu) {
        return x <= T(0) ? T(0) : x;  // torch.relu: NaN stays NaN
    } else if constexpr (A == Activation::gelu) {
        return T(0.5) * x * (T(1) + erf(x * ActConst<T>::inv_sqrt2));
    } else if constexpr (A == Activation::gelu_tanh) {
        const T inner = ActConst<T>::sqrt_2_over_pi * (x + ActConst<T>::gelu_tanh_c * x * x * x);
        return T(0.5) * x * (T(1) + tanh(inner));
    } else if constexpr (A == Activation::tanh) {
        return tanh(x);
    } else if constexpr (A == Activation::sigmoid) {
        return T(1) / (T(1) + exp(-x));
    } else if constexpr (A == Activation::silu) {
        return x / (T(1) + exp(-x));
    } else if constexpr (A == Activation::identity) {
        return x;
    } else {
        return x > T(0) ? x : slope * x;
    }
}

// f'(x), given x and y = f(x) (some derivatives are cheapest from y).
template <Activation A, class T>
GS_HD T act_derivative(T x, T y, T slope) {
    using std::erf;
    using std::exp;
    using std::tanh;
    if constexpr (A == Activation::relu) {
        return x <= T(0) ? T(0) : T(1);  // 1 at NaN: PyTorch passes the gradient where relu(x) is NaN
    } else if constexpr (A == Activation::gelu) {
        const T cdf = T(0.5) * (T(1) + erf(x * ActConst<T>::inv_sqrt2));
        const T pdf = ActConst<T>::inv_sqrt2pi * exp(T(-0.5) * x * x);
        return cdf + x * pdf;
    } else if constexpr (A == Activation::gelu_tanh) {
        const T x2 = x * x;
        const T inner = ActConst<T>::sqrt_2_over_pi * (x + ActConst<T>::gelu_tanh_c * x2 * x);
        const T t = tanh(inner);
        const T dinner = ActConst<T>::sqrt_2_over_pi * (T(1) + T(3) * ActConst<T>::gelu_tanh_c * x2);
        return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    } else if constexpr (A == Activation::tanh) {
        return T(1) - y * y;
    } else if constexpr (A == Activation::sigmoid) {
        return y * (T(1) - y);
    } else if constexpr (A == Activation::silu) {
        const T s = T(1) / (T(1) + exp(-x));
        return s * (T(1) + x * (T(1) - s));
    } else if constexpr (A == Activation::identity) {
        return T(1);
    } else {
        return x > T(0) ? T(1) : slope;
    }
}

// dLoss/dx from f'(x) (act_derivative) and the upstream dLoss/dy, as PyTorch's
// backward computes it: the product, except for relu, whose backward is a select
// (threshold_backward): where f'(x) = 0 it passes exactly 0, even for an upstream
// inf or NaN, where the product would be NaN.
template <Activation A, class T>
GS_HD T act_backward(T dy, T up) {
    if constexpr (A == Activation::relu) {
        return dy != T(0) ? up : T(0);
    } else {
        return dy * up;
    }
}

// Runtime dispatch: calls f.template operator()<A>() with A as a compile-time constant,
// so hot loops are instantiated once per activation.
template <class F>
decltype(auto) dispatch_activation(Activation a, F&& f) {
    switch (a) {
        case Activation::relu: return f.template operator()<Activation::relu>();
        case Activation::gelu: return f.template operator()<Activation::gelu>();
        case Activation::gelu_tanh: return f.template operator()<Activation::gelu_tanh>();
        case Activation::tanh: return f.template operator()<Activation::tanh>();
        case Activation::sigmoid: return f.template operator()<Activation::sigmoid>();
        case Activation::silu: return f.template operator()<Activation::silu>();
        case Activation::identity: return f.template operator()<Activation::identity>();
        case Activation::leaky_relu: break;
    }
    return f.template operator()<Activation::leaky_relu>();
}

}  // namespace gs
