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

TEST_CASE("even count median interpolates; single value has std NaN", "[stats]") {
    std::vector<double> v = {10, 0, 30, 20};
    const Summary s = summarize(v);
    CHECK(s.median == 15);
    CHECK(s.n_zero == 1);
    CHECK(s.geomean == Approx(std::cbrt(6000.0)));  // zeros are left out of the geomean
    std::vector<double> one = {2.5};
    const Summary t = summarize(one);
    CHECK(std::isnan(t.std));  // ddof 1 over one value: numpy.std(ddof=1) and pandas' std give NaN
    CHECK(t.mean == 2.5);
    CHECK(t.q05 == 2.5);
    CHECK(t.q95 == 2.5);
    // One finite value among non-finite ones is one value too, on both selection paths.
    for (size_t size : {size_t{5}, size_t{20000}}) {
        std::vector<double> mostly_bad(size, std::numeric_limits<double>::infinity());
        mostly_bad[size / 2] = 7;
        const Summary m = summarize(mostly_bad);
        CHECK(m.n == 1);
        CHECK(m.median == 7);
        CHECK(std::isnan(m.std));
    }
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
