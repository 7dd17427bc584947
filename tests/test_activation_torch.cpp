// Every activation and its backward, in every implementation the engine runs,
// against what PyTorch computes (tests/data/torch_activation_cases.json, made by
// scripts/torch_activation_cases.py) on NaN, +-inf, +-0, subnormals, the edges
// of the normal range and values where exp/erf/tanh saturate or x*x overflows:
// - the scalar formulas of activation.hpp (the float64 reference network),
// - the CPU backend's per-lane code (src/cpu/activation_lanes.hpp: float exp/erf/tanh are
//   its own polynomials), run over 16 float or 8 double lanes as the backend does,
// - the CUDA kernels' run-time dispatch (kernels/net_math.cuh), compiled here for
//   the host.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "../kernels/net_math.cuh"
#include "cpu/activation_lanes.hpp"
#include "gradsweep/activation.hpp"

using namespace gs;

namespace {

template <class T>
using BitsOf = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <class T>
T from_hex(const std::string& h) {
    return std::bit_cast<T>(static_cast<BitsOf<T>>(std::stoull(h, nullptr, 16)));
}

template <class T>
std::vector<T> values(const nlohmann::json& a) {
    std::vector<T> v;
    for (const auto& h : a) v.push_back(from_hex<T>(h.get<std::string>()));
    return v;
}

const nlohmann::json& cases() {
    static const nlohmann::json j = [] {
        const std::string path = std::string(GS_SOURCE_DIR) + "/tests/data/torch_activation_cases.json";
        std::ifstream f(path);
        if (!f) throw std::runtime_error("cannot open " + path + " (make it with scripts/torch_activation_cases.py)");
        return nlohmann::json::parse(f);
    }();
    return j;
}

// Agreement with PyTorch: NaN where it has NaN, the same infinity, a zero where it
// has a zero (of either sign: every statistic takes |g| or a square, so no output
// can show the sign of a zero, and PyTorch's own float32 and float64 GELU differ
// in it), otherwise a value of the same sign within `rel` (both sides' exp, erf
// and tanh differ in the last bits), or within 2 units of the smallest subnormal
// where the result is subnormal.
template <class T>
bool agrees(T got, T want, double rel) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    if (want == T(0)) return got == T(0);
    if (!std::isfinite(got) || got == T(0) || std::signbit(got) != std::signbit(want)) return false;
    const double d = std::fabs(static_cast<double>(got) - static_cast<double>(want));
    return d <= rel * std::fabs(static_cast<double>(want)) ||
           d <= 2 * static_cast<double>(std::numeric_limits<T>::denorm_min());
}

template <class T>
std::string show(T v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
    return b;
}

// The CPU backend's lane loop: L networks' units side by side, as run_lanes_act
// computes f and f' in its forward pass and applies them in its backward pass.
template <Activation A, class T, int L>
[[gnu::noinline]] void cpu_lanes(const T* __restrict x, T slope, T up, T* __restrict y, T* __restrict dx) {
    T dy[L];
    for (int k = 0; k < L; ++k) cpu::act_value_and_slope<A, T>(x[k], slope, y[k], dy[k]);
    for (int k = 0; k < L; ++k) dx[k] = act_backward<A, T>(dy[k], up);
}

struct Path {
    const char* name;
    int id;
};
constexpr Path kPaths[] = {{"activation.hpp (scalar)", 0}, {"activation_lanes.hpp (SIMD lanes)", 1}, {"net_math.cuh (CUDA kernels)", 2}};

// Forward and backward of activation A on every input for every upstream gradient,
// by one path; returns the number of disagreements (each one reported).
template <Activation A, class T>
int check_activation(const nlohmann::json& dt, double rel, const Path& path) {
    const char* name = kActivationNames[static_cast<int>(A)];
    const auto x = values<T>(dt.at("x"));
    const auto ups = values<T>(dt.at("upstream"));
    const auto& ref = dt.at("activations").at(name);
    const auto want_y = values<T>(ref.at("y"));
    const T slope = static_cast<T>(cases().at("leaky_slope").get<double>());
    REQUIRE(want_y.size() == x.size());
    REQUIRE(ref.at("dx").size() == ups.size());
    constexpr int L = 64 / sizeof(T);
    const size_t n = (x.size() + L - 1) / L * L;
    std::vector<T> xp(n, T(1));
    std::copy(x.begin(), x.end(), xp.begin());
    int bad = 0;
    for (size_t u = 0; u < ups.size(); ++u) {
        const auto want_dx = values<T>(ref.at("dx")[u]);
        std::vector<T> y(n), dx(n);
        for (size_t i = 0; i < n; i += L) {
            if (path.id == 1) {
                cpu_lanes<A, T, L>(xp.data() + i, slope, ups[u], y.data() + i, dx.data() + i);
            } else {
                for (int k = 0; k < L; ++k) {
                    const T v = xp[i + k];
                    if (path.id == 0) {
                        y[i + k] = act_forward<A, T>(v, slope);
                        dx[i + k] = act_backward<A, T>(act_derivative<A, T>(v, y[i + k], slope), ups[u]);
                    } else {
                        y[i + k] = kern::act_fwd_rt<T>(A, v, slope);
                        dx[i + k] = kern::act_bwd_rt<T>(A, kern::act_der_rt<T>(A, v, slope), ups[u]);
                    }
                }
            }
        }
        for (size_t i = 0; i < x.size(); ++i) {
            if (u == 0 && !agrees(y[i], want_y[i], rel)) {
                ++bad;
                UNSCOPED_INFO(path.name << ": " << name << "(" << show(x[i]) << ") = " << show(y[i]) << ", torch "
                                        << show(want_y[i]));
            }
            if (!agrees(dx[i], want_dx[i], rel)) {
                ++bad;
                UNSCOPED_INFO(path.name << ": " << name << " backward at x = " << show(x[i]) << ", dL/dy = " << show(ups[u])
                                        << ": " << show(dx[i]) << ", torch " << show(want_dx[i]));
            }
        }
    }
    return bad;
}

template <class T>
void check_precision(const char* key, double rel) {
    const auto& dt = cases().at(key);
    for (const Path& p : kPaths)
        for (int a = 0; a < kNumActivations; ++a) {
            const int bad = dispatch_activation(static_cast<Activation>(a), [&]<Activation A>() {
                return check_activation<A, T>(dt, rel, p);
            });
            INFO(key << ", " << p.name << ", " << kActivationNames[a]);
            CHECK(bad == 0);
        }
}

}  // namespace

TEST_CASE("the reference file covers every activation, both precisions and the special inputs", "[activation][torch]") {
    const auto& j = cases();
    for (const char* key : {"float32", "float64"}) {
        const auto& dt = j.at(key);
        for (int a = 0; a < kNumActivations; ++a) CHECK(dt.at("activations").contains(kActivationNames[a]));
        if (std::string(key) == "float32") {
            const auto x = values<float>(dt.at("x"));
            CHECK(std::count_if(x.begin(), x.end(), [](float v) { return std::isnan(v); }) >= 1);
            CHECK(std::count(x.begin(), x.end(), std::numeric_limits<float>::infinity()) == 1);
            CHECK(std::count(x.begin(), x.end(), -std::numeric_limits<float>::infinity()) == 1);
            CHECK(std::count(x.begin(), x.end(), std::numeric_limits<float>::denorm_min()) == 1);
        } else {
            const auto x = values<double>(dt.at("x"));
            CHECK(std::count(x.begin(), x.end(), std::numeric_limits<double>::denorm_min()) == 1);
            CHECK(std::count(x.begin(), x.end(), -std::numeric_limits<double>::infinity()) == 1);
        }
    }
}

TEST_CASE("float32 activations and their backward agree with PyTorch on NaN, inf, zeros and subnormals",
          "[activation][torch]") {
    check_precision<float>("float32", 1e-5);
}

TEST_CASE("float64 activations and their backward agree with PyTorch on NaN, inf, zeros and subnormals",
          "[activation][torch]") {
    check_precision<double>("float64", 1e-12);
}
