// The seed of a test that draws random cases. By default each such test uses its
// own fixed seed, so the suite checks the same cases on every run and never fails
// by the luck of a draw. GS_TEST_SEED=N draws other cases (every such test then
// uses N); GS_TEST_SEED=random draws a fresh seed. The test reports the seed
// with any failure (SEED_INFO), so `GS_TEST_SEED=<seed> ctest -R <test>`
// repeats exactly the cases that failed.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace gs::test {

inline uint64_t test_seed(uint64_t fixed) {
    const char* v = std::getenv("GS_TEST_SEED");
    if (!v || !*v) return fixed;
    const std::string s = v;
    if (s == "random") return (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    size_t pos = 0;
    uint64_t x = 0;
    try {
        x = std::stoull(s, &pos, 0);
    } catch (const std::exception&) {
        pos = 0;
    }
    if (pos == 0 || pos != s.size() || s[0] == '-') throw std::invalid_argument("GS_TEST_SEED: want a number or \"random\", got \"" + s + "\"");
    return x;
}

}  // namespace gs::test

// Inside a TEST_CASE: every failure below it in scope names the seed to repeat it with.
#define SEED_INFO(seed) INFO("random cases drawn with seed " << (seed) << "; GS_TEST_SEED=" << (seed) << " repeats them")
