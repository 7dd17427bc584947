// The seed-chunking loop of the CUDA backend, written against a small device
// interface so the host emulation tests run the very same loop (with host memory,
// a made-up memory budget and the emulated kernel) that the GPU path runs.
//
// Dev must provide, for element type T:
//   uint64_t budget();                                   bytes we may hold now, the buffers
//                                                        kept from earlier calls included
//   LayerDesc* upload_layers(const std::vector<LayerDesc>&);
//   T* upload_fixed_input(const std::vector<T>&);
//   T* alloc_scratch(uint64_t elements);  T* alloc_params(uint64_t elements);
//   double* alloc_rows(uint64_t doubles);
//   void upload_params(T* dst, const std::vector<T>& src);
//   void launch(const NetArgs<T>&, int threads_per_net);   runs a.nets networks, returns when done
//   void download_rows(double* host_dst, const double* dev_src, uint64_t doubles);
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradsweep/cuda_extras.hpp"
#include "gradsweep/cuda_sizing.hpp"  // launch_cap
#include "net_layout.cuh"
#include "small_net_body.cuh"  // small_shape_index

namespace gs::kern {

inline constexpr int kThreadsPerBlockSoa = 128;  // P = 1: networks per block

// Grid size of a launch of `nets` networks: 128 networks per block for P = 1, a
// block per network otherwise.
inline uint64_t launch_blocks(uint64_t nets, int P) {
    return P == 1 ? (nets + kThreadsPerBlockSoa - 1) / kThreadsPerBlockSoa : nets;
}

inline CudaLaunchRecord launch_record(uint64_t nets, uint64_t scratch_per_net, int P, int small_shape = -1) {
    CudaLaunchRecord r;
    r.small_kernel = small_shape >= 0;
    r.nets = nets;
    r.blocks = launch_blocks(nets, P);
    r.threads_per_net = P;
    r.scratch_elements = nets * scratch_per_net;
    return r;
}

// The test hooks' schedule override (CudaTestHooks::threads_per_net): 1, or a
// power of two the kernel's reductions and launch bounds allow.
inline void force_threads_per_net(NetLayout& L, int P) {
    if (P == 0) return;
    if (P != 1 && (P < 2 || P > 256 || (P & (P - 1)) != 0))
        throw std::invalid_argument("cuda backend: threads per network must be 1 or a power of two 2..256, got " +
                                    std::to_string(P));
    L.threads_per_net = P;
}

// The memory budget with the test hooks' cap (0: no cap).
inline uint64_t capped_budget(uint64_t budget, uint64_t cap) { return cap ? std::min(budget, cap) : budget; }

// Rows for seeds spec.seed_first + seed_offset + [0, count): to host_out
// (count x stride, host memory) or, when host_out is null, straight into the
// device buffer dev_rows (count x stride).
template <class T, class Dev>
void run_chunks(Dev& dev, const Spec& spec, const Cell& cell, const NetLayout& L, uint64_t seed_offset, uint64_t count,
                double* host_out, double* dev_rows) {
    if (count == 0) return;
    const uint64_t stride = static_cast<uint64_t>(row_stride(L.depth));
    const int P = L.threads_per_net;
    // The buffers of earlier calls are kept (a call of a few hundred thousand
    // networks cost a cudaFree and a cudaMalloc of each before): alloc_* grow
    // them only when this call needs more, and budget() counts them as ours.

    NetArgs<T> a = make_args<T>(spec, cell, L);
    a.small_shape = L.small_kernel ? small_shape_index(L) : -1;
    a.layers = dev.upload_layers(L.layers);
    if (!L.random_input) a.fixed_input = dev.upload_fixed_input(std::vector<T>(L.fixed_input.begin(), L.fixed_input.end()));

    const uint64_t chunk = networks_per_chunk(count, bytes_per_network(L, sizeof(T)), dev.budget(), launch_cap(P));
    a.scratch = dev.alloc_scratch(chunk * L.scratch_per_net);
    a.params = L.torch ? dev.alloc_params(chunk * L.params_per_net) : nullptr;
    double* const d_out = host_out ? dev.alloc_rows(chunk * stride) : nullptr;

    std::vector<T> host_params;
    for (uint64_t start = 0; start < count; start += chunk) {
        const uint64_t n = std::min(chunk, count - start);
        a.seed0 = spec.seed_first + seed_offset + start;
        a.nets = n;  // also the SoA stride of the scratch when P == 1
        a.out = host_out ? d_out : dev_rows + start * stride;
        if (L.torch) {
            make_torch_params<T>(spec, cell, L, a.seed0, n, host_params);
            dev.upload_params(const_cast<T*>(a.params), host_params);
        }
        dev.launch(a, P);
        if (host_out) dev.download_rows(host_out + start * stride, d_out, n * stride);
    }
}

}  // namespace gs::kern
