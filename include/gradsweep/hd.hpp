// One spelling for functions that both g++ and nvcc compile, so the CPU backend,
// the CUDA kernels and the tests share a single definition of the math.
#pragma once
#if defined(__CUDACC__)
#define GS_HD __host__ __device__ __forceinline__
#else
#define GS_HD inline __attribute__((always_inline))
#endif
