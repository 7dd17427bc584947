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

GS_HD void round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    // 64-bit products rather than __umulhi keep one source for host and device;
    // nvcc lowers them to mul.hi/mul.lo.
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
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
