// Initialisation schemes: the distribution of each layer's weight and bias.
#pragma once
#include <cmath>
#include <string>
#include "gradsweep/random_values.hpp"

namespace gs {

enum class InitKind : int { torch_default, kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform, normal };
inline constexpr const char* kInitNames[] = {"torch_default", "kaiming_normal", "kaiming_uniform",
                                            "xavier_normal", "xavier_uniform", "normal"};
inline constexpr int kNumInits = 6;

struct Init {
    InitKind kind = InitKind::torch_default;
    double sigma_w = 1.0;  // only for kind == normal
    double sigma_b = 0.0;
    bool operator==(const Init&) const = default;
};

// torch_default is nn.Linear's reset_parameters: U(+-1/sqrt(fan_in)) for weight and bias.
// kaiming_* and xavier_* are torch.nn.init's (kaiming with the ReLU gain, fan_in mode),
// with zero bias as is usual with them. normal: N(0, sigma_w^2/fan_in), bias N(0, sigma_b^2).
inline Dist weight_dist(const Init& init, int fan_in, int fan_out) {
    const double fi = fan_in, fo = fan_out;
    switch (init.kind) {
        case InitKind::torch_default: return {Dist::uniform, 1.0 / std::sqrt(fi)};
        case InitKind::kaiming_normal: return {Dist::normal, std::sqrt(2.0 / fi)};
        case InitKind::kaiming_uniform: return {Dist::uniform, std::sqrt(6.0 / fi)};
        case InitKind::xavier_normal: return {Dist::normal, std::sqrt(2.0 / (fi + fo))};
        case InitKind::xavier_uniform: return {Dist::uniform, std::sqrt(6.0 / (fi + fo))};
        case InitKind::normal: return {init.sigma_w == 0 ? Dist::zero : Dist::normal, init.sigma_w / std::sqrt(fi)};
    }
    return {};
}

inline Dist bias_dist(const Init& init, int fan_in) {
    switch (init.kind) {
        case InitKind::torch_default: return {Dist::uniform, 1.0 / std::sqrt(static_cast<double>(fan_in))};
        case InitKind::normal: return {init.sigma_b == 0 ? Dist::zero : Dist::normal, init.sigma_b};
        default: return {Dist::zero, 0.0};
    }
}

std::string init_label(const Init& init);  // "torch_default" or "normal(sigma_w=1.4,sigma_b=0.1)"

}  // namespace gs
