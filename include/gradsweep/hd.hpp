// One spelling for functions that both g++ and nvcc compile, so the CPU backend,
// the CUDA kernels and the tests share a single definition of the math.
// GS_INLINE is the one spelling of "always inline" for host-only code (the CPU
// backend's SIMD helpers), where a call left out of line would cost more than
// the work inside it.
#pragma once
#define GS_INLINE inline __attribute__((always_inline))
#if defined(__CUDACC__)
#define GS_HD __host__ __device__ __forceinline__
#else
#define GS_HD GS_INLINE
#endif
