#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "gradsweep/philox.hpp"
#include "gradsweep/random_values.hpp"

using namespace gs;

TEST_CASE("Philox4x32-10 matches Random123's published known-answer vectors", "[philox]") {
    struct Kat {
        U32x4 ctr;
        uint32_t k0, k1;
        U32x4 want;
    };
    const Kat kats[] = {
        {{{0u, 0u, 0u, 0u}}, 0u, 0u, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
        {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
         {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
        {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
         {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
    };
    for (const Kat& k : kats) {
        const U32x4 got = philox4x32_10(k.ctr, k.k0, k.k1);
        for (int i = 0; i < 4; ++i) CHECK(got.v[i] == k.want.v[i]);
    }
}

TEST_CASE("uniform values are symmetric, inside (-1, 1) and equal in float and double", "[philox]") {
    CHECK(uniform_pm1<double>(0u) == -1.0 + std::ldexp(1.0, -24));
    CHECK(uniform_pm1<double>(0xffffffffu) == 1.0 - std::ldexp(1.0, -24));
    for (uint32_t w : {0u, 1u, 255u, 256u, 0x80000000u, 0x7fffff00u, 0xdeadbeefu, 0xffffffffu}) {
        CHECK(static_cast<double>(uniform_pm1<float>(w)) == uniform_pm1<double>(w));
        CHECK(uniform_pm1<double>(w) == -uniform_pm1<double>(~w));
    }
}

TEST_CASE("the device's fma form of uniform values equals the host's for every 24-bit slice", "[philox]") {
    // uniform_pm1_fma runs on the GPU (net_math.cuh's expand_block), uniform_pm1's
    // integer form on the host and in the emulation: all 2^24 slices, each with
    // low bits that must not matter, in float and double.
    uint64_t bad = 0;
    for (uint32_t m = 0; m < (1u << 24); ++m) {
        const uint32_t w = (m << 8) | (m * 0x9e3779b9u >> 24);
        bad += uniform_pm1_fma<float>(w) != uniform_pm1<float>(w);
        bad += uniform_pm1_fma<double>(w) != uniform_pm1<double>(w);
    }
    CHECK(bad == 0);
}

TEST_CASE("a weight is a pure function of (key, seed, stream, layer, element)", "[philox]") {
    const Dist d{Dist::normal, 1.0};
    const double a = draw_value<double>(7, 0, Stream::weight, 2, 13, d);
    CHECK(a == draw_value<double>(7, 0, Stream::weight, 2, 13, d));
    std::set<double> distinct = {a,
                                 draw_value<double>(8, 0, Stream::weight, 2, 13, d),
                                 draw_value<double>(7, 1, Stream::weight, 2, 13, d),
                                 draw_value<double>(7, 0, Stream::bias, 2, 13, d),
                                 draw_value<double>(7, 0, Stream::weight, 3, 13, d),
                                 draw_value<double>(7, 0, Stream::weight, 2, 14, d),
                                 draw_value<double>(7ull | (1ull << 32), 0, Stream::weight, 2, 13, d)};
    CHECK(distinct.size() == 7);
}

TEST_CASE("Philox-derived normals have mean 0 and variance 1", "[philox]") {
    const int n = 200000;
    double s = 0, ss = 0;
    for (int e = 0; e < n; ++e) {
        const double z = draw_value<double>(3, 0, Stream::input, 0, e, Dist{Dist::normal, 1.0});
        s += z;
        ss += z * z;
    }
    const double mean = s / n, var = ss / n - mean * mean;
    CHECK(std::fabs(mean) < 5.0 / std::sqrt(n));
    CHECK(std::fabs(var - 1.0) < 5.0 * std::sqrt(2.0 / n));
}
