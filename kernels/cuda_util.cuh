// Error checking and the owning device and pinned host buffers of the CUDA host code.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "gradsweep/hd.hpp"
#include "kept_memory.hpp"

namespace gs::kern {

// The barrier the shared bodies (network_body.cuh, summary_body.cuh) take as a
// parameter: __syncthreads on the device; the host emulation tests pass a
// std::barrier instead.
struct BlockSync {
    GS_HD void sync() {
#if defined(__CUDA_ARCH__)
        __syncthreads();
#endif
    }
};

inline void cuda_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
        throw std::runtime_error(std::string("cuda backend: ") + what + ": " + cudaGetErrorString(e));
    }
}

// The two kinds of kept memory (one grow-only template, kept_memory.hpp):
// device memory, and pinned (page-locked) host memory, which asynchronous copies
// from the device need to be asynchronous (to pageable memory cudaMemcpyAsync
// returns only when the copy is done).
struct DeviceAlloc {
    static void* allocate(size_t bytes, const char* what) {
        void* p = nullptr;
        cuda_check(cudaMalloc(&p, bytes), what);
        return p;
    }
    static void deallocate(void* p) { cudaFree(p); }
};
struct PinnedAlloc {
    static void* allocate(size_t bytes, const char* what) {
        void* p = nullptr;
        cuda_check(cudaMallocHost(&p, bytes), what);
        return p;
    }
    static void deallocate(void* p) { cudaFreeHost(p); }
};
using DeviceBuffer = GrowOnlyBuffer<DeviceAlloc>;
using PinnedBuffer = GrowOnlyBuffer<PinnedAlloc>;

}  // namespace gs::kern
