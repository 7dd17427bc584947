// y = f(x) and f'(x) together, so that erf/exp/tanh are evaluated once per unit and
// the backward pass needs none. Same formulas as activation.hpp, with vec_math.hpp's
// vectorisable functions for float (and std:: for double). Shared by the CPU
// backend (network.cpp) and bench/bench_tiny_floor.cpp.
#pragma once
#include "cpu/vec_math.hpp"
#include "gradsweep/activation.hpp"

namespace gs::cpu {

template <Activation A, class T>
GS_INLINE void act_value_and_slope(T x, T slope, T& y, T& dy) {
    if constexpr (A == Activation::relu) {
        const bool off = x <= T(0);  // false for NaN: relu(NaN) = NaN and passes the gradient, as in PyTorch
        y = off ? T(0) : x;
        dy = off ? T(0) : T(1);
    } else if constexpr (A == Activation::gelu) {
        const T e = vm::erf(x * ActConst<T>::inv_sqrt2);
        y = T(0.5) * x * (T(1) + e);
        const T cdf = T(0.5) * (T(1) + e);
        const T pdf = ActConst<T>::inv_sqrt2pi * vm::exp(T(-0.5) * x * x);
        dy = cdf + x * pdf;
    } else if constexpr (A == Activation::gelu_tanh) {
        const T x2 = x * x;
        const T inner = ActConst<T>::sqrt_2_over_pi * (x + ActConst<T>::gelu_tanh_c * x2 * x);
        const T t = vm::tanh(inner);
        y = T(0.5) * x * (T(1) + t);
        const T dinner = ActConst<T>::sqrt_2_over_pi * (T(1) + T(3) * ActConst<T>::gelu_tanh_c * x2);
        dy = T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    } else if constexpr (A == Activation::tanh) {
        y = vm::tanh(x);
        dy = T(1) - y * y;
    } else if constexpr (A == Activation::sigmoid) {
        y = T(1) / (T(1) + vm::exp(-x));
        dy = y * (T(1) - y);
    } else if constexpr (A == Activation::silu) {
        const T d = T(1) + vm::exp(-x);
        y = x / d;
        const T s = T(1) / d;
        dy = s * (T(1) + x * (T(1) - s));
    } else if constexpr (A == Activation::identity) {
        y = x;
        dy = T(1);
    } else {
        y = x > T(0) ? x : slope * x;
        dy = x > T(0) ? T(1) : slope;
    }
}

}  // namespace gs::cpu
