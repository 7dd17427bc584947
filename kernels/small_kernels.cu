// The small-width network kernels: small_net_body.cuh compiled per shape.
#include <cstdint>
#include <stdexcept>

#include "chunk_runner.cuh"  // kThreadsPerBlockSoa
#include "small_kernels.cuh"
#include "small_net_body.cuh"

namespace gs::kern {
namespace {

template <class T, int NI, int N, int NO>
__global__ void __launch_bounds__(kThreadsPerBlockSoa) small_network_kernel(NetArgs<T> a) {
    const uint64_t net = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
    if (net >= a.nets) return;
    small_network_body<T, NI, N, NO>(a, net);
}

}  // namespace

template <class T>
void launch_small_network_kernel(const NetArgs<T>& a, unsigned blocks, cudaStream_t stream) {
    if (a.nets > UINT32_MAX) throw std::logic_error("small-width kernel: more than 2^32 networks in one launch");
    dispatch_small_shape(a.small_shape, [&]<int NI, int N, int NO>() {
        small_network_kernel<T, NI, N, NO><<<blocks, kThreadsPerBlockSoa, 0, stream>>>(a);
    });
}

#ifndef GS_SMALL_KERNEL_PROBE  // the probe build compiles the probe alone (minutes less of ptxas)
template void launch_small_network_kernel<float>(const NetArgs<float>&, unsigned, cudaStream_t);
template void launch_small_network_kernel<double>(const NetArgs<double>&, unsigned, cudaStream_t);
#endif

}  // namespace gs::kern

#ifdef GS_SMALL_KERNEL_PROBE
// scripts/sass_report.sh only (never in the product): the cell of the benchmarks'
// depth 5 x width 3 row (sizes 3-3-3-3-3-1, shortcut, bias, torch_default init,
// fixed input, activation Act on every layer) with every setting a constant, so
// nvcc folds each branch on them and the entry's PTX is the straight-line path
// one such network runs: its instruction count is the instructions per network.
namespace gs::kern {

// constexpr, so every field read below folds into the code.
inline constexpr Dist kProbeInit{Dist::uniform, 0.57735026918962573};  // torch_default: 1/sqrt(fan_in 3)
__device__ constexpr LayerDesc kProbeLayers[5] = {
    {3, 3, 1, 1, kProbeInit, kProbeInit, 0, 3, 16, 0, 0},  {3, 3, 1, 1, kProbeInit, kProbeInit, 3, 6, 19, 0, 0},
    {3, 3, 1, 1, kProbeInit, kProbeInit, 6, 9, 22, 0, 0},  {3, 3, 1, 1, kProbeInit, kProbeInit, 9, 12, 25, 0, 0},
    {3, 1, 1, 0, kProbeInit, kProbeInit, 12, 15, 28, 0, 0},
};

template <class T, Activation Act>
__global__ void small_probe_kernel(NetArgs<T> a) {
    a.layers = kProbeLayers;
    a.depth = 5;
    a.batch = 1;
    a.activation = Act;
    a.torch = 0;
    a.random_input = 0;
    a.has_bias = 1;
    small_network_body<T, 3, 3, 1, 5>(a, blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x);
}

template __global__ void small_probe_kernel<float, Activation::relu>(NetArgs<float>);
template __global__ void small_probe_kernel<float, Activation::gelu>(NetArgs<float>);
template __global__ void small_probe_kernel<double, Activation::relu>(NetArgs<double>);

}  // namespace gs::kern
#endif
