// Accuracy and speed of the CPU backend's vectorisable float exp/erf/tanh
// (src/cpu/vec_math.hpp) against libm. Sweeps every float in the range where the
// function is not constant and reports the worst error in ulps of the correctly
// rounded result (computed in double), the worst relative error, how often the
// result differs from glibc's float function, and the speed of a 16-lane loop.
// Tests every 7th float by default, every float with --full.
// Exits 1 if an error exceeds the bound the backend relies on (4 ulp).
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/vec_math.hpp"

namespace {

// Distance in representable floats between a and b (same sign assumed for near values).
int64_t ulp_distance(float a, float b) {
    if (a == b) return 0;
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INT64_MAX;
    auto key = [](float f) {
        const int32_t i = std::bit_cast<int32_t>(f);
        return i < 0 ? static_cast<int64_t>(INT32_MIN) - i : static_cast<int64_t>(i);
    };
    const int64_t d = key(a) - key(b);
    return d < 0 ? -d : d;
}

struct Report {
    int64_t worst_ulp = 0;
    float worst_x = 0;
    double worst_rel = 0;
    uint64_t n = 0, differ_libm = 0, fast_not_cr = 0, libm_not_cr = 0;
};

uint64_t g_stride = 7;  // test every 7th float unless --full (all ~2e9 per function take minutes)

template <class Fast, class RefD, class Libm>
Report sweep(float lo, float hi, Fast fast, RefD refd, Libm libm) {
    Report r;
    // Every float in [lo, hi]: walk the bit patterns from lo upwards.
    for (float x = lo; x <= hi;) {
        const float got = fast(x);
        const float want = static_cast<float>(refd(static_cast<double>(x)));
        const int64_t u = ulp_distance(got, want);
        if (u > r.worst_ulp) {
            r.worst_ulp = u;
            r.worst_x = x;
        }
        const double rel = std::fabs(want) >= 1.1754944e-38f ? std::fabs((static_cast<double>(got) - refd(x)) / refd(x)) : std::fabs(got);
        if (rel > r.worst_rel) r.worst_rel = rel;
        const float lib = libm(x);
        if (got != lib) ++r.differ_libm;
        if (got != want) ++r.fast_not_cr;
        if (lib != want) ++r.libm_not_cr;
        ++r.n;
        // Next tested float: g_stride representable values further up.
        const int32_t i = std::bit_cast<int32_t>(x);
        const int64_t step = static_cast<int64_t>(g_stride);
        if (i < 0) {  // negative: the magnitude shrinks as the bits decrease, crossing -0 into +0
            const int64_t m = (i & 0x7fffffff) - step;
            x = m >= 0 ? std::bit_cast<float>(static_cast<int32_t>(m) | INT32_MIN) : std::bit_cast<float>(static_cast<int32_t>(-m - 1));
        } else {
            x = std::bit_cast<float>(static_cast<int32_t>(i + step));
        }
    }
    return r;
}

template <class F>
double ns_per_value(F f) {
    constexpr int L = 16, N = 1 << 12;
    std::vector<float> in(N * L), out(N * L);
    for (size_t i = 0; i < in.size(); ++i) in[i] = -6.0f + 12.0f * static_cast<float>(i) / static_cast<float>(in.size());
    double best = 1e300;
    for (int rep = 0; rep < 20; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < N; ++i)
            for (int k = 0; k < L; ++k) out[i * L + k] = f(in[i * L + k]);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        __asm__ volatile("" : : "r"(out.data()) : "memory");
    }
    return best / (N * L) * 1e9;
}

bool print(const char* name, const Report& r, double fast_ns, double libm_ns) {
    const double n = static_cast<double>(r.n);
    std::printf("%-5s %11llu floats: worst %lld ulp (x = %.9g), worst rel %.3g (normal results); not correctly rounded: "
                "%.3f%% (libm %.3f%%); differs from libm %.3f%%; %.3f ns/value vs libm %.3f ns/value\n",
                name, static_cast<unsigned long long>(r.n), static_cast<long long>(r.worst_ulp), r.worst_x, r.worst_rel,
                100.0 * r.fast_not_cr / n, 100.0 * r.libm_not_cr / n, 100.0 * r.differ_libm / n, fast_ns, libm_ns);
    std::printf("{\"function\": \"%s\", \"floats\": %llu, \"worst_ulp\": %lld, \"worst_rel\": %.4g, \"differ_libm\": %llu, "
                "\"ns_per_value\": %.4f, \"libm_ns_per_value\": %.4f}\n",
                name, static_cast<unsigned long long>(r.n), static_cast<long long>(r.worst_ulp), r.worst_rel,
                static_cast<unsigned long long>(r.differ_libm), fast_ns, libm_ns);
    return r.worst_ulp <= 4;
}

}  // namespace

int main(int argc, char** argv) {
    namespace vm = gs::cpu::vm;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--full") g_stride = 1;
    bool ok = true;
    // exp: the whole range where the result is a normal float.
    ok &= print("exp", sweep(-87.3f, 88.7f, [](float x) { return vm::exp(x); }, [](double x) { return std::exp(x); },
                             [](float x) { return std::exp(x); }),
                ns_per_value([](float x) { return vm::exp(x); }), ns_per_value([](float x) { return std::exp(x); }));
    // erf and tanh: beyond these they are +-1 in float.
    ok &= print("erf", sweep(-4.0f, 4.0f, [](float x) { return vm::erf(x); }, [](double x) { return std::erf(x); },
                             [](float x) { return std::erf(x); }),
                ns_per_value([](float x) { return vm::erf(x); }), ns_per_value([](float x) { return std::erf(x); }));
    ok &= print("tanh", sweep(-9.5f, 9.5f, [](float x) { return vm::tanh(x); }, [](double x) { return std::tanh(x); },
                              [](float x) { return std::tanh(x); }),
                ns_per_value([](float x) { return vm::tanh(x); }), ns_per_value([](float x) { return std::tanh(x); }));
    // Special values.
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 1e30f, -1e30f, 200.0f, -200.0f};
    for (float x : specials) {
        const float e = vm::exp(x), f = vm::erf(x), t = vm::tanh(x);
        const bool good = ulp_distance(e, std::exp(x)) <= 1 && ulp_distance(f, std::erf(x)) <= 1 &&
                          ulp_distance(t, std::tanh(x)) <= 1 && std::signbit(f) == std::signbit(std::erf(x));
        if (!good) {
            std::printf("special x = %g: exp %g (libm %g), erf %g (libm %g), tanh %g (libm %g)\n", x, e, std::exp(x), f,
                        std::erf(x), t, std::tanh(x));
            ok = false;
        }
    }
    std::printf(ok ? "all within 4 ulp\n" : "ERROR: an error bound is exceeded\n");
    return ok ? 0 : 1;
}
