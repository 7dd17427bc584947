// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator behind every
// random number in philox mode. Pure function of (counter, key): no state, so a
// value depends only on what it is for, never on which thread or batch made it.
#pragma once
#include <cstdint>
#include "gradsweep/hd.hpp"

namespace gs {

struct U32x4 {
    uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kW1 = 0xBB67AE85u;  // sqrt(3) - 1

// The high and low halves of the 32x32 -> 64-bit product a*b. On the device one
// mul.wide.u32 whose 64-bit result mov.b64 splits into its 32-bit halves, which
// ptxas makes one IMAD.WIDE.U32 into a register pair whatever the code around it:
// __umulhi plus a low multiply was fused in the rolled kernels but left as two
// IMADs in fully unrolled code, and a uint64 product costs moves around the pair
// (docs/cuda_backend.md has the counts). Correct by
// construction: mul.wide.u32 is the exact 64-bit product and mov.b64 {lo, hi} its
// low and high words, the host's uint64 product's integers (the host and the
// emulation run the portable form; no test can run inline PTX on the host).
// The multiplier B is a template argument so the PTX takes it as an immediate.
template <uint32_t B>
GS_HD void mulhilo32(uint32_t a, uint32_t& hi, uint32_t& lo) {
#if defined(__CUDA_ARCH__)
    asm("{\n\t.reg .b64 p;\n\tmul.wide.u32 p, %2, %3;\n\tmov.b64 {%1, %0}, p;\n\t}" : "=r"(hi), "=r"(lo) : "r"(a), "n"(B));
#else
    const uint64_t p = static_cast<uint64_t>(a) * B;
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
#endif
}

GS_HD void round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32<kM0>(c0, hi0, lo0);
    mulhilo32<kM1>(c2, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
}
}  // namespace philox_detail

GS_HD U32x4 philox4x32_10(U32x4 ctr, uint32_t k0, uint32_t k1) {
    uint32_t c0 = ctr.v[0], c1 = ctr.v[1], c2 = ctr.v[2], c3 = ctr.v[3];
#if defined(__CUDACC__)
#pragma unroll
#else
#pragma GCC unroll 10
#endif
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += philox_detail::kW0;
            k1 += philox_detail::kW1;
        }
        philox_detail::round(c0, c1, c2, c3, k0, k1);
    }
    return U32x4{{c0, c1, c2, c3}};
}

}  // namespace gs
