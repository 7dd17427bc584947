// The summation order the host and the device share (column_sums.hpp): its
// logarithm against std::log, and the sums' independence of where the
// non-finite values sit and of how a column's values were put together.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gradsweep/column_sums.hpp"
#include "gradsweep/stats.hpp"
#include "test_seed.hpp"

using namespace gs;

namespace {

// Distance in units in the last place between two positive finite doubles.
int64_t ulps_apart(double a, double b) {
    int64_t x, y;
    std::memcpy(&x, &a, 8);
    std::memcpy(&y, &b, 8);
    return x > y ? x - y : y - x;
}

}  // namespace

TEST_CASE("hd_log is within 1 ulp of std::log on positive doubles of every exponent, subnormals included", "[stats][sums]") {
    const uint64_t seed = gs::test::test_seed(2027);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    int64_t worst = 0;
    uint64_t exact = 0, total = 0;
    auto check = [&](double x) {
        const double want = std::log(x), got = hd_log(x);
        INFO("x " << x << " (" << std::hexfloat << x << ") log " << want << " got " << got);
        const int64_t d = want == 0 ? (got == 0 ? 0 : 1 << 20) : ulps_apart(std::fabs(want), std::fabs(got));
        REQUIRE((std::signbit(want) == std::signbit(got) || want == 0));
        REQUIRE(d <= 1);
        worst = std::max(worst, d);
        exact += d == 0;
        ++total;
    };
    for (int i = 0; i < 400000; ++i) {
        // Random bit patterns of positive finite doubles: every exponent, subnormals included.
        const uint64_t b = rng() & 0x7fffffffffffffffull;
        double x;
        std::memcpy(&x, &b, 8);
        if (x > 0 && std::isfinite(x)) check(x);
    }
    std::uniform_real_distribution<double> near1(0.5, 2.0);
    for (int i = 0; i < 400000; ++i) check(near1(rng));  // |log x| small: where relative error is hardest
    for (double x : {1.0, 2.0, 0.5, 0x1.6a09e667f3bcdp+0, 0x1.6a09e667f3bcep+0, std::numeric_limits<double>::min(),
                     std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(), 1 + 0x1p-52, 1 - 0x1p-53})
        check(x);
    CHECK(hd_log(1.0) == 0.0);
    CHECK_FALSE(std::signbit(hd_log(1.0)));
    WARN("hd_log vs std::log: " << exact << " of " << total << " equal, worst " << worst << " ulp");
    CHECK(exact > total * 9 / 10);  // mostly the correctly rounded value
}

TEST_CASE("column sums: the same bits whatever the non-finite values between the finite ones", "[stats][sums]") {
    const uint64_t seed = gs::test::test_seed(31);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> g;
    for (size_t n : {size_t{1}, size_t{31}, size_t{33}, size_t{4096}, size_t{4097}, size_t{50000}}) {
        std::vector<double> f(n);
        for (double& x : f) x = std::exp(3 * g(rng)) * (g(rng) < 0 ? -1 : 1);
        std::vector<double> mixed;
        for (double x : f) {
            if (rng() % 5 == 0) mixed.push_back(rng() % 2 ? std::numeric_limits<double>::quiet_NaN() : -std::numeric_limits<double>::infinity());
            mixed.push_back(x);
        }
        const ColumnSums a = column_sums(f.data(), f.size()), b = column_sums(mixed.data(), mixed.size());
        INFO("n " << n);
        CHECK(a.n == n);
        CHECK(b.n == n);
        CHECK(a.n_pos == b.n_pos);
        CHECK(std::memcmp(&a.sum, &b.sum, 8) == 0);
        CHECK(std::memcmp(&a.log_sum, &b.log_sum, 8) == 0);
    }
}
