// PyTorch-exact parameters (rng = "torch"): what torch.manual_seed(seed) followed by
// torch.randn(batch, in) (random input only) and each nn.Linear's construction gives.
#pragma once
#include <cstdint>
#include <vector>
#include "gradsweep/spec.hpp"
#include "gradsweep/torch_rng.hpp"

namespace gs {

struct HostParams {
    std::vector<std::vector<float>> weight;  // per layer, row-major [out][in] as nn.Linear stores it
    std::vector<std::vector<float>> bias;    // per layer (empty when the cell has no bias)
    std::vector<float> input;                // [batch][in], only for random input
};

HostParams torch_params(const Cell& cell, const InputSpec& input, uint64_t seed);
// The same for a chosen PyTorch CPU kernel build (the 3-argument form uses avx2).
HostParams torch_params(const Cell& cell, const InputSpec& input, uint64_t seed, TorchKernels kernels);

}  // namespace gs
