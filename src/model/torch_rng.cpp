// PyTorch 1.13 CPU random numbers, bit for bit. Every rounding step matters
// here, so this file controls floating-point contraction itself: the compiler
// may not fuse a*b+c on its own (the build uses -march=native with GNU C++,
// whose default is to fuse), and std::fma appears exactly where PyTorch's AVX2
// build fuses. (Clang honours the pragma below except under -ffp-contract=fast;
// -ffast-math breaks this file with any compiler: tests/test_torch_rng.cpp
// would say so.) How each step was matched: docs/torch_exact.md.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gradsweep/torch_rng.hpp"
#include "gradsweep/random_values.hpp"

#include <cmath>
#include <numbers>
#include <cstring>

namespace gs {

// ---------------------------------------------------------------- MT19937

Mt19937::Mt19937(uint64_t seed) {
    state_[0] = static_cast<uint32_t>(seed);  // at::mt19937 keeps only the low word
    for (uint32_t j = 1; j < kN; ++j) state_[j] = 1812433253u * (state_[j - 1] ^ (state_[j - 1] >> 30)) + j;
    next_ = kN;
}

void Mt19937::refill() {
    constexpr int kM = 397;
    auto twist = [](uint32_t u, uint32_t v) {
        const uint32_t y = (u & 0x80000000u) | (v & 0x7fffffffu);
        return (y >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
    };
    int k = 0;
    for (; k < kN - kM; ++k) state_[k] = state_[k + kM] ^ twist(state_[k], state_[k + 1]);
    for (; k < kN - 1; ++k) state_[k] = state_[k + kM - kN] ^ twist(state_[k], state_[k + 1]);
    state_[kN - 1] = state_[kM - 1] ^ twist(state_[kN - 1], state_[0]);
    next_ = 0;
}

// ---------------------------------------------------------------- helpers

namespace {

uint32_t bits_of(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}
float float_of(uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// at::uniform_real_distribution<float>(0, 1): the low 24 bits of one 32-bit
// draw, times 2^-24 (exact in float: random_values.hpp's kWord24Unit).
float unit_float(uint32_t r) { return static_cast<float>(r & 0xffffffu) * static_cast<float>(kWord24Unit); }

// at::uniform_real_distribution<double>(0, 1): the low 53 bits of a 64-bit draw.
double unit_double(uint64_t r) {
    return static_cast<double>(r & ((uint64_t{1} << 53) - 1)) * 1.1102230246251565404e-16;
}

constexpr double kPi = std::numbers::pi;  // the double nearest pi (theory.cpp and torch_rng.cpp each spelled it out)

// The AVX2 build's log256_ps (Cephes logf, Julien Pommier's SSE/AVX port), one
// lane at a time. u is in (0, 1] here, never zero, negative or denormal.
// GCC compiled PyTorch's intrinsics with -mfma and contraction on, which fuses
// each Horner step and the y*z + e*q1 step; the other products are exact.
float cephes_log(float x) {
    const int exponent = static_cast<int>(bits_of(x) >> 23) - 0x7f;
    x = float_of((bits_of(x) & ~0x7f800000u) | bits_of(0.5f));  // mantissa in [0.5, 1)
    float e = static_cast<float>(exponent) + 1.0f;
    // Below sqrt(1/2) use 2m - 1 and one less in the exponent, keeping |x| small.
    const bool low = x < 0.707106781186547524f;
    const float x_again = low ? x : 0.0f;
    x = x - 1.0f;
    e = e - (low ? 1.0f : 0.0f);
    x = x + x_again;

    const float z = x * x;
    static constexpr float p[9] = {7.0376836292E-2f,  -1.1514610310E-1f, 1.1676998740E-1f,
                                   -1.2420140846E-1f, 1.4249322787E-1f,  -1.6668057665E-1f,
                                   2.0000714765E-1f,  -2.4999993993E-1f, 3.3333331174E-1f};
    float y = p[0];
    for (int k = 1; k < 9; ++k) y = std::fma(y, x, p[k]);
    y = y * x;
    y = std::fma(y, z, e * -2.12194440e-4f);
    y = y - z * 0.5f;
    x = x + y;
    return x + e * 0.693359375f;
}

// The AVX2 build's sincos256_ps (Cephes sinf/cosf), one lane at a time, with
// the same fused multiply-adds.
void cephes_sincos(float theta, float& s, float& c) {
    uint32_t sin_sign = bits_of(theta) & 0x80000000u;
    float x = std::fabs(theta);
    // Octant j (rounded up to even) and x reduced by j*pi/4 in three pieces.
    int32_t j = static_cast<int32_t>(x * 1.27323954473516f);
    j = (j + 1) & ~1;
    const float y = static_cast<float>(j);
    sin_sign ^= static_cast<uint32_t>(j & 4) << 29;
    const uint32_t cos_sign = static_cast<uint32_t>(~(j - 2) & 4) << 29;
    const bool sine_poly_for_sin = (j & 2) == 0;
    x = std::fma(y, -0.78515625f, x);
    x = std::fma(y, -2.4187564849853515625e-4f, x);
    x = std::fma(y, -3.77489497744594108e-8f, x);

    const float z = x * x;
    float pc = 2.443315711809948E-005f;  // cos polynomial on [-pi/4, pi/4]
    pc = std::fma(pc, z, -1.388731625493765E-003f);
    pc = std::fma(pc, z, 4.166664568298827E-002f);
    pc = pc * z;
    pc = std::fma(pc, z, -(z * 0.5f));
    pc = pc + 1.0f;
    float ps = -1.9515295891E-4f;  // sin polynomial on [-pi/4, pi/4]
    ps = std::fma(ps, z, 8.3321608736E-3f);
    ps = std::fma(ps, z, -1.6666654611E-1f);
    ps = ps * z;
    ps = std::fma(ps, x, x);

    // Select as the vector code does, by masking and adding (so a -0 from a
    // polynomial comes out as +0 exactly as there).
    const float to_sin_from_ps = sine_poly_for_sin ? ps : 0.0f;
    const float to_sin_from_pc = sine_poly_for_sin ? 0.0f : pc;
    const float sin_abs = to_sin_from_pc + to_sin_from_ps;
    const float cos_abs = (pc - to_sin_from_pc) + (ps - to_sin_from_ps);
    s = float_of(bits_of(sin_abs) ^ sin_sign);
    c = float_of(bits_of(cos_abs) ^ cos_sign);
}

// normal_fill_16_AVX2 with mean 0, std 1 (its final fmadd is then exact).
// data[j] and data[j+8] become the cos and sin values of one Box-Muller pair.
void normal_fill_16_avx2(float* data) {
    const float two_pi = static_cast<float>(2.0 * kPi);
    for (int j = 0; j < 8; ++j) {
        const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] for the log
        const float u2 = data[j + 8];
        const float radius = std::sqrt(-2.0f * cephes_log(u1));
        float s, c;
        cephes_sincos(two_pi * u2, s, c);
        data[j] = radius * c;
        data[j + 8] = radius * s;
    }
}

// normal_fill_16 of the default build: float log, an angle rounded to float,
// float cos/sin (glibc's logf, cosf, sinf, as PyTorch links).
void normal_fill_16_generic(float* data) {
    for (int j = 0; j < 8; ++j) {
        const float u1 = 1.0f - data[j];
        const float u2 = data[j + 8];
        const float radius = std::sqrt(-2.0f * std::log(u1));
        const float theta = static_cast<float>(2.0f * kPi * u2);
        data[j] = radius * std::cos(theta);
        data[j + 8] = radius * std::sin(theta);
    }
}

}  // namespace

// ---------------------------------------------------------------- samplers

void TorchGenerator::uniform_(float* data, size_t n, double from_d, double to_d) {
    const float from = static_cast<float>(from_d), to = static_cast<float>(to_d);
    const float range = to - from;
    if (kernels_ == TorchKernels::avx2) {
        for (size_t i = 0; i < n; ++i) data[i] = std::fma(unit_float(engine_()), range, from);
    } else {
        for (size_t i = 0; i < n; ++i) data[i] = unit_float(engine_()) * range + from;
    }
}

double TorchGenerator::normal_double() {
    if (next_double_normal_) {
        const double z = *next_double_normal_;
        next_double_normal_.reset();
        return z;
    }
    // PyTorch takes the angle from the first draw and the radius from the second.
    const double u1 = unit_double(random64());
    const double u2 = unit_double(random64());
    const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    const double theta = 2.0 * kPi * u1;
    next_double_normal_ = r * std::sin(theta);
    return r * std::cos(theta);
}

void TorchGenerator::normal_fill(float* data, size_t n) {
    auto fill16 = kernels_ == TorchKernels::avx2 ? normal_fill_16_avx2 : normal_fill_16_generic;
    for (size_t i = 0; i < n; ++i) data[i] = unit_float(engine_());
    for (size_t i = 0; i + 16 <= n; i += 16) fill16(data + i);
    if (n % 16 != 0) {
        // The tail: the last 16 slots (overlapping the last full block) get
        // fresh uniforms and one more block.
        float* tail = data + n - 16;
        for (int i = 0; i < 16; ++i) tail[i] = unit_float(engine_());
        fill16(tail);
    }
}

void TorchGenerator::randn(float* data, size_t n) {
    if (n >= 16) {
        normal_fill(data, n);
    } else {
        for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(normal_double());
    }
}

// ---------------------------------------------------------------- nn.Linear bounds

double torch_linear_weight_bound(int fan_in) {
    const double a = std::sqrt(5.0);
    const double gain = std::sqrt(2.0 / (1.0 + a * a));  // a**2 is 5.000000000000001 in Python too
    const double stdev = gain / std::sqrt(static_cast<double>(fan_in));
    return std::sqrt(3.0) * stdev;
}

double torch_linear_bias_bound(int fan_in) { return fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0; }

}  // namespace gs
