// The CPU backend's 16-lane Philox (src/cpu/philox_simd.hpp) must give exactly the
// scalar reference's words, whatever the number of groups in flight and for keys
// and counters with the high bits set (where a lost carry or a wrong half would show).
#include <catch2/catch.hpp>
#include <random>

#include "cpu/philox_simd.hpp"
#include "gradsweep/philox.hpp"
#include "test_seed.hpp"

using namespace gs;

namespace {
template <int G>
void check_groups(std::mt19937& rng) {
    cpu::PhiloxKeys16 keys;
    for (int m = 0; m < 16; ++m) {
        keys.k0[m] = rng();
        keys.k1[m] = m == 3 ? 0xffffffffu : rng();  // the key schedule's wrap-around
    }
    keys.set_round_keys();
    alignas(64) uint32_t c0[G][16];
    uint32_t c1[G], c2[G];
    for (int g = 0; g < G; ++g) {
        for (int m = 0; m < 16; ++m) c0[g][m] = m == 5 ? 0xffffffffu : rng();
        c1[g] = rng();
        c2[g] = g == 0 ? 0u : rng();
    }
    const uint32_t c3 = rng();
    alignas(64) uint32_t out[G][4][16];
    cpu::philox16<G>(c0, c1, c2, c3, keys, out);
    for (int g = 0; g < G; ++g)
        for (int m = 0; m < 16; ++m) {
            const U32x4 want = philox4x32_10(U32x4{{c0[g][m], c1[g], c2[g], c3}}, keys.k0[m], keys.k1[m]);
            for (int q = 0; q < 4; ++q) REQUIRE(out[g][q][m] == want.v[q]);
        }
}
}  // namespace

TEST_CASE("16-lane Philox equals the scalar reference for 1 to 5 groups in flight", "[philox]") {
    const uint64_t seed = test::test_seed(20261127);
    SEED_INFO(seed);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (int rep = 0; rep < 200; ++rep) {
        check_groups<1>(rng);
        check_groups<2>(rng);
        check_groups<3>(rng);
        check_groups<4>(rng);
        check_groups<5>(rng);
    }
}

TEST_CASE("16-lane Philox reproduces Random123's known-answer vector in every lane", "[philox]") {
    cpu::PhiloxKeys16 keys;
    for (int m = 0; m < 16; ++m) keys.k0[m] = keys.k1[m] = 0xffffffffu;
    keys.set_round_keys();
    alignas(64) uint32_t c0[1][16];
    for (int m = 0; m < 16; ++m) c0[0][m] = 0xffffffffu;
    const uint32_t c1[1] = {0xffffffffu}, c2[1] = {0xffffffffu};
    alignas(64) uint32_t out[1][4][16];
    cpu::philox16<1>(c0, c1, c2, 0xffffffffu, keys, out);
    const uint32_t want[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    for (int m = 0; m < 16; ++m)
        for (int q = 0; q < 4; ++q) CHECK(out[0][q][m] == want[q]);
}
