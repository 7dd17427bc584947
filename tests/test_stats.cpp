#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "gradsweep/stats.hpp"

using namespace gs;

TEST_CASE("summary of hand-computable values", "[stats]") {
    std::vector<double> v = {4, 1, 3, 2, 5};
    const Summary s = summarize(v);
    CHECK(s.n == 5);
    CHECK(s.mean == 3);
    CHECK(s.std == Approx(std::sqrt(2.5)));
    CHECK(s.min == 1);
    CHECK(s.max == 5);
    CHECK(s.median == 3);
    CHECK(s.q05 == Approx(1.2));   // numpy: 1 + 0.05 * 4 * (2 - 1)
    CHECK(s.q95 == Approx(4.8));
    CHECK(s.geomean == Approx(std::pow(120.0, 0.2)));
    CHECK(s.n_nonfinite == 0);
    CHECK(s.n_zero == 0);
}

TEST_CASE("even count median interpolates; single value has std 0", "[stats]") {
    std::vector<double> v = {10, 0, 30, 20};
    const Summary s = summarize(v);
    CHECK(s.median == 15);
    CHECK(s.n_zero == 1);
    CHECK(s.geomean == Approx(std::cbrt(6000.0)));  // zeros are left out of the geomean
    std::vector<double> one = {2.5};
    const Summary t = summarize(one);
    CHECK(t.std == 0);
    CHECK(t.q05 == 2.5);
    CHECK(t.q95 == 2.5);
}

TEST_CASE("non-finite values are counted and kept out of every other statistic", "[stats]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    std::vector<double> v = {1, inf, 2, nan, -inf, 3};
    const Summary s = summarize(v);
    CHECK(s.n == 3);
    CHECK(s.n_nonfinite == 3);
    CHECK(s.mean == 2);
    CHECK(s.max == 3);
    CHECK(s.median == 2);
    std::vector<double> all_bad = {nan, inf};
    const Summary b = summarize(all_bad);
    CHECK(b.n == 0);
    CHECK(b.n_nonfinite == 2);
    CHECK(std::isnan(b.mean));
    std::vector<double> zeros = {0, 0, 0};
    const Summary z = summarize(zeros);
    CHECK(z.n_zero == 3);
    CHECK(std::isnan(z.geomean));  // no positive values
}
