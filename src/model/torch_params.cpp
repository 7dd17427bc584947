// rng = "torch": a network's parameters as PyTorch 1.13 makes them on the CPU.
// The draw order is the seed notebooks': torch.manual_seed(seed), then the
// random input (if any), then each nn.Linear in turn, weight before bias.
#include "gradsweep/torch_params.hpp"

namespace gs {

HostParams torch_params(const Cell& cell, const InputSpec& input, uint64_t seed, TorchKernels kernels) {
    TorchGenerator gen(seed, kernels);
    HostParams p;
    if (input.random) {
        p.input.resize(static_cast<size_t>(input.batch) * static_cast<size_t>(cell.input_dim()));
        gen.randn(p.input.data(), p.input.size());
    }
    const int depth = cell.depth();
    p.weight.resize(depth);
    p.bias.resize(depth);
    for (int l = 0; l < depth; ++l) {
        const int fan_in = cell.layer_sizes[l], fan_out = cell.layer_sizes[l + 1];
        auto& w = p.weight[l];
        w.resize(static_cast<size_t>(fan_out) * static_cast<size_t>(fan_in));
        const double wb = torch_linear_weight_bound(fan_in);
        gen.uniform_(w.data(), w.size(), -wb, wb);
        if (cell.bias) {
            auto& b = p.bias[l];
            b.resize(fan_out);
            const double bb = torch_linear_bias_bound(fan_in);
            gen.uniform_(b.data(), b.size(), -bb, bb);
        }
    }
    return p;
}

HostParams torch_params(const Cell& cell, const InputSpec& input, uint64_t seed) {
    return torch_params(cell, input, seed, TorchKernels::avx2);
}

}  // namespace gs
