// The seed-chunking loop of the CUDA backend, written against a small device
// interface so the host emulation tests run the very same loop (with host memory,
// a made-up memory budget and the emulated kernel) that the GPU path runs.
//
// Dev must provide, for element type T:
//   uint64_t budget();                                   bytes we may hold now, the buffers
//                                                        kept from earlier calls included
//   LayerDesc* upload_layers(const std::vector<LayerDesc>&);
//   T* upload_fixed_input(const std::vector<T>&);
//   bool scratch_in_shared(uint64_t bytes, int threads_per_net);
//        whether a network's scratch of `bytes` goes in its block's shared memory
//        (P > 1 only): where it fits without lowering the kernel's occupancy
//   T* alloc_scratch(uint64_t elements);  T* alloc_params(uint64_t elements);
//   double* alloc_rows(uint64_t doubles);                device memory
//   double* alloc_staging(uint64_t doubles);             pinned host memory
//   void upload_params(T* dst, const std::vector<T>& src);
//        returns when copied; runs after the launches issued before it, so it
//        may overwrite the parameters they read
//   void launch(const NetArgs<T>&, int threads_per_net);
//        issues a.nets networks on the compute stream and returns
//   void download_async(int b, double* staging_dst, const double* dev_src, uint64_t doubles);
//        issues the copy of row buffer b, on the copy stream after the launches
//        issued so far, and returns
//   void wait_download(int b);    returns when buffer b's copy is done: its staging
//                                 may be read and its device rows overwritten
//   void wait_launches();         returns when every launch issued is done
//
// Uploads of the layer table and the fixed input are synchronous: they happen
// once per call, before any launch.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradsweep/cuda_extras.hpp"
#include "gradsweep/cuda_sizing.hpp"  // launch_cap, kRowBuffers
#include "net_layout.cuh"
#include "small_net_body.cuh"  // small_shape_index

namespace gs::kern {

inline constexpr int kThreadsPerBlockSoa = 128;  // P = 1: networks per block

// Grid size of a launch of `nets` networks: 128 networks per block for P = 1, a
// block per network otherwise.
inline uint64_t launch_blocks(uint64_t nets, int P) {
    return P == 1 ? (nets + kThreadsPerBlockSoa - 1) / kThreadsPerBlockSoa : nets;
}

template <class T>
CudaLaunchRecord launch_record(const NetArgs<T>& a, int P) {
    CudaLaunchRecord r;
    r.small_kernel = a.small_shape >= 0;
    r.nets = a.nets;
    r.blocks = launch_blocks(a.nets, P);
    r.threads_per_net = P;
    r.shared_scratch = a.shared_scratch != 0;
    r.scratch_elements = a.shared_scratch ? 0 : a.nets * a.scratch_per_net;
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
    size_weight_cache(L);  // the row cache exists at P = 1 only
}

// The memory budget with the test hooks' cap (0: no cap).
inline uint64_t capped_budget(uint64_t budget, uint64_t cap) { return cap ? std::min(budget, cap) : budget; }

// Rows for seeds spec.seed_first + seed_offset + [0, count): to host_out
// (count x stride, host memory) or, when host_out is null, straight into the
// device buffer dev_rows (count x stride). Returns when they are there.
//
// To the host, the rows of chunk k go through device row buffer b = k % 2 and
// pinned staging buffer b: chunk k is launched, its copy issued behind it on the
// copy stream, and only then are chunk k - 1's rows waited for and moved from
// staging into host_out, so the device computes chunk k while chunk k - 1's
// rows cross PCIe and the host stores them. Buffer b is next written by chunk
// k + 2, launched after chunk k's copy was waited for (in the iteration of
// chunk k + 1): no launch overwrites rows not yet copied, no copy overwrites
// staging not yet stored.
template <class T, class Dev>
void run_chunks(Dev& dev, const Spec& spec, const Cell& cell, const NetLayout& L, uint64_t seed_offset, uint64_t count,
                double* host_out, double* dev_rows) {
    if (count == 0) return;
    const uint64_t stride = static_cast<uint64_t>(row_stride(L.depth));
    const int P = L.threads_per_net;
    // The P = 1 body reads the row cache of an unaligned layer unchecked: P must
    // have been set through make_layout or force_threads_per_net, which size it.
    if (L.scratch_per_net != scratch_with_cache(L.vectors_end, weight_cache_elements(layer_sizes(L), P)))
        throw std::logic_error("cuda backend: threads per network set without sizing the row cache (force_threads_per_net)");
    // The buffers of earlier calls are kept (a call of a few hundred thousand
    // networks cost a cudaFree and a cudaMalloc of each before): alloc_* grow
    // them only when this call needs more, and budget() counts them as ours.

    NetArgs<T> a = make_args<T>(spec, cell, L);
    a.small_shape = L.small_kernel ? small_shape_index(L) : -1;
    a.layers = dev.upload_layers(L.layers);
    if (!L.random_input) a.fixed_input = dev.upload_fixed_input(std::vector<T>(L.fixed_input.begin(), L.fixed_input.end()));

    // A block per network (P > 1) keeps its activations and deltas in shared
    // memory where they fit: the sweeps' loads no longer go to device memory, and
    // the chunk needs no device scratch.
    a.shared_scratch = P > 1 && dev.scratch_in_shared(L.scratch_per_net * sizeof(T), P) ? 1 : 0;
    const bool to_host = host_out != nullptr;
    const uint64_t chunk =
        networks_per_chunk(count, bytes_per_network(L, sizeof(T), to_host, a.shared_scratch != 0), dev.budget(), launch_cap(P));
    a.scratch = a.shared_scratch ? nullptr : dev.alloc_scratch(chunk * L.scratch_per_net);
    a.params = L.torch ? dev.alloc_params(chunk * L.params_per_net) : nullptr;
    const uint64_t buffer = chunk * stride;  // doubles of one row buffer
    double* const d_out = to_host ? dev.alloc_rows(kRowBuffers * buffer) : nullptr;
    double* const staging = to_host ? dev.alloc_staging(kRowBuffers * buffer) : nullptr;

    const uint64_t chunks = (count + chunk - 1) / chunk;
    const uint64_t lag = kRowBuffers - 1;  // chunks whose copies are waited for only after the next launch
    auto store = [&](uint64_t k) {  // chunk k's rows, from staging into host_out
        const int b = static_cast<int>(k % kRowBuffers);
        const uint64_t start = k * chunk, n = std::min(chunk, count - start);
        dev.wait_download(b);
        std::memcpy(host_out + start * stride, staging + b * buffer, n * stride * sizeof(double));
    };
    std::vector<T> host_params;
    for (uint64_t k = 0; k < chunks; ++k) {
        const int b = static_cast<int>(k % kRowBuffers);
        const uint64_t start = k * chunk, n = std::min(chunk, count - start);
        a.seed0 = spec.seed_first + seed_offset + start;
        a.nets = n;  // also the SoA stride of the scratch when P == 1
        a.out = to_host ? d_out + b * buffer : dev_rows + start * stride;
        if (L.torch) {
            // Made on the host while the previous chunk computes. The upload waits
            // for that chunk (it reads the parameters being replaced); torch mode
            // exists for PyTorch's numbers, and making its parameters on the host
            // costs more than the wait.
            make_torch_params<T>(spec, cell, L, a.seed0, n, host_params);
            dev.upload_params(const_cast<T*>(a.params), host_params);
        }
        dev.launch(a, P);
        if (!to_host) continue;
        dev.download_async(b, staging + b * buffer, a.out, n * stride);
        if (k >= lag) store(k - lag);
    }
    if (to_host)
        for (uint64_t k = chunks > lag ? chunks - lag : 0; k < chunks; ++k) store(k);
    dev.wait_launches();
}

}  // namespace gs::kern
