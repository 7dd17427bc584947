// PyTorch 1.13's CPU random number generator, reproduced bit for bit: the
// Mersenne Twister behind torch.manual_seed and the three samplers nn.Linear and
// torch.randn use (uniform_ on float32, normal_ on float32 in its two paths).
// docs/torch_exact.md explains every detail and how it was verified.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

namespace gs {

// MT19937 as at::mt19937 seeds it: init_genrand with the low 32 bits of the seed,
// so its output is the classic mt19937ar sequence (and std::mt19937's).
class Mt19937 {
public:
    explicit Mt19937(uint64_t seed);
    uint32_t operator()() {
        if (next_ == kN) refill();
        return temper(state_[next_++]);
    }

private:
    static constexpr int kN = 624;
    static uint32_t temper(uint32_t y) {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        return y ^ (y >> 18);
    }
    void refill();
    uint32_t state_[kN];
    int next_ = kN;
};

// PyTorch compiles its CPU kernels once per instruction set and picks one at
// start-up (ATEN_CPU_CAPABILITY). The random kernels differ between the builds in
// the last bits: the AVX2 (and AVX512) build fuses multiply-adds and draws
// randn's >= 16-element tensors through a vectorised Cephes log/sincos; the
// "default" build does neither. avx2 is what PyTorch uses on any x86-64 CPU with
// AVX2+FMA (2013 onwards) unless ATEN_CPU_CAPABILITY=default is set.
enum class TorchKernels : int { avx2, generic };

// One torch.Generator on the CPU, right after torch.manual_seed(seed).
class TorchGenerator {
public:
    explicit TorchGenerator(uint64_t seed, TorchKernels kernels = TorchKernels::avx2)
        : engine_(seed), kernels_(kernels) {}

    uint32_t random() { return engine_(); }
    uint64_t random64() {  // two draws, the first is the high word
        const uint64_t hi = engine_();
        return (hi << 32) | engine_();
    }

    // tensor.uniform_(from, to) on a contiguous float32 tensor of n elements.
    // from/to are the Python floats; PyTorch rounds them to float first.
    void uniform_(float* data, size_t n, double from, double to);

    // torch.randn(n) (any shape with n elements, contiguous float32): the
    // scalar Box-Muller path below 16 elements, normal_fill from 16 on.
    void randn(float* data, size_t n);

    // One at::normal_distribution<double>(0, 1) draw, with PyTorch's cache of
    // the second Box-Muller value (the generator keeps it across calls).
    double normal_double();

private:
    void normal_fill(float* data, size_t n);
    Mt19937 engine_;
    TorchKernels kernels_;
    std::optional<double> next_double_normal_;
};

// nn.Linear(fan_in, ...).reset_parameters() bounds, computed as Python does:
// weight: kaiming_uniform_(a=sqrt(5)) => sqrt(3) * (gain / sqrt(fan_in)),
// gain = sqrt(2 / (1 + a**2)); bias: 1 / sqrt(fan_in).
double torch_linear_weight_bound(int fan_in);
double torch_linear_bias_bound(int fan_in);

}  // namespace gs
