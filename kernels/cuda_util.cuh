// Error checking and an owning device buffer for the CUDA host code.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "gradsweep/hd.hpp"

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

// Grow-only device allocation: reused across chunks and calls, freed with its owner.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { release(); }

    void* reserve(size_t bytes, const char* what) {
        if (bytes <= size_) return ptr_;
        release();
        cuda_check(cudaMalloc(&ptr_, bytes), what);
        size_ = bytes;
        return ptr_;
    }
    void release() {
        if (ptr_) cudaFree(ptr_);
        ptr_ = nullptr;
        size_ = 0;
    }
    void* get() const { return ptr_; }
    size_t size() const { return size_; }

private:
    void* ptr_ = nullptr;
    size_t size_ = 0;
};

// Grow-only pinned (page-locked) host allocation: what asynchronous copies from
// the device need to be asynchronous (to pageable memory cudaMemcpyAsync returns
// only when the copy is done). Reused across calls, freed with its owner.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() { release(); }

    void* reserve(size_t bytes, const char* what) {
        if (bytes <= size_) return ptr_;
        release();
        cuda_check(cudaMallocHost(&ptr_, bytes), what);
        size_ = bytes;
        return ptr_;
    }
    void release() {
        if (ptr_) cudaFreeHost(ptr_);
        ptr_ = nullptr;
        size_ = 0;
    }
    size_t size() const { return size_; }

private:
    void* ptr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace gs::kern
