// What a tiny network must cost on this CPU, whatever the rest of the code does.
//
// The speed target for depth 5 x width 3 (GELU + shortcut) asks for 20x
// PyTorch's best ensemble. This program times, per network and on one core, the
// three parts of that work that are fixed by the engine's contract and not by how
// the kernel is written, each with the production code and nothing around it:
//   philox  every weight and bias is one Philox4x32-10 word, counters per tensor
//           (18 blocks for layer sizes 3,3,3,3,3,1), made into floats;
//   act     the activation and its slope for every unit, with the float formulas
//           whose bits the results are defined by (src/cpu/activation_lanes.hpp);
//   stats   the divisions and square roots in double that turn each layer's sums
//           into the per-network statistics (4 divisions and 2 roots per layer,
//           1 division for the loss).
// Their sum is a lower bound on the backend's time per network; the rest
// (matrix-vector products, backward pass, sums of |g|, output rows) only adds.
// With --pytorch-best R (networks/s, measured in the same run by
// scripts/bench_vs_pytorch.py) and --threads T it prints the largest ratio to
// PyTorch that any kernel could reach here: T / bound / R.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/activation_lanes.hpp"
#include "cpu/philox_simd.hpp"
#include "gradsweep/random_values.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Best of `repeats` runs of body(groups) over about `seconds`; ns per network (16 per group).
template <class F>
double time_per_network(double seconds, int repeats, F&& body) {
    uint64_t groups = 1024;
    for (;;) {  // calibrate
        const auto t0 = Clock::now();
        body(groups);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (s > seconds / 4) break;
        groups *= 2;
    }
    double best = 1e300;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        body(groups);
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best / static_cast<double>(groups * 16) * 1e9;
}

volatile float g_sink_f;
volatile double g_sink_d;

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> n = {3, 3, 3, 3, 3, 1};
    double seconds = 1.0, pytorch_best = 0;
    int repeats = 3, threads = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_tiny_floor: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--layer-sizes") {
            n.clear();
            std::string s = next();
            for (size_t p = 0; p < s.size();) {
                const size_t q = s.find(',', p);
                n.push_back(std::atoi(s.substr(p, q - p).c_str()));
                if (q == std::string::npos) break;
                p = q + 1;
            }
        } else if (a == "--min-seconds") seconds = std::atof(next());
        else if (a == "--repeats") repeats = std::atoi(next());
        else if (a == "--pytorch-best") pytorch_best = std::atof(next());
        else if (a == "--threads") threads = std::atoi(next());
        else {
            std::fprintf(stderr,
                         "usage: bench_tiny_floor [--layer-sizes 3,3,3,3,3,1] [--min-seconds S] [--repeats R] "
                         "[--pytorch-best NETS_PER_S --threads T]\n");
            return 2;
        }
    }
    if (n.size() < 2 || *std::min_element(n.begin(), n.end()) < 1) {
        std::fprintf(stderr, "bench_tiny_floor: --layer-sizes needs at least two positive sizes\n");
        return 2;
    }
    const int D = static_cast<int>(n.size()) - 1;

    // Philox blocks per network, as the backend draws them: one counter space per
    // tensor (weight and bias of each layer), four words per block.
    struct Job {
        uint32_t block, layer, stream;
    };
    std::vector<Job> jobs;
    int units = 0;
    for (int l = 0; l < D; ++l) {
        for (uint32_t b = 0; b < static_cast<uint32_t>((n[l] * n[l + 1] + 3) / 4); ++b)
            jobs.push_back({b, static_cast<uint32_t>(l), static_cast<uint32_t>(gs::Stream::weight)});
        for (uint32_t b = 0; b < static_cast<uint32_t>((n[l + 1] + 3) / 4); ++b)
            jobs.push_back({b, static_cast<uint32_t>(l), static_cast<uint32_t>(gs::Stream::bias)});
        units += n[l + 1];
    }
    const size_t nj = jobs.size();

    // Values written as the backend's pre-generation writes them: block j's 64
    // floats at dst[64 j + 16 q + lane], from where the forward pass reads them.
    std::vector<float> params_buf(nj * 64 + 64);
    const double philox_ns = time_per_network(seconds, repeats, [&](uint64_t groups) {
        float* dst = params_buf.data();
        float acc = 0;
        for (uint64_t grp = 0; grp < groups; ++grp) {
            gs::cpu::PhiloxKeys16 keys;
            for (int m = 0; m < 16; ++m) {
                keys.k0[m] = static_cast<uint32_t>(grp * 16 + m);
                keys.k1[m] = 0;
            }
            keys.set_round_keys();
#if defined(__AVX512F__)
            // As Scratch::pregenerate does it: counters and words in registers.
            size_t j = 0;
            auto step = [&]<int G>() {
                __m512i cv[G][2];
                uint32_t c1[G], c2[G];
                for (int g = 0; g < G; ++g) {
                    gs::cpu::counters_same(jobs[j + g].block, cv[g]);
                    c1[g] = jobs[j + g].layer;
                    c2[g] = jobs[j + g].stream;
                }
                gs::cpu::philox16_words<G>(cv, c1, c2, 0u, keys, [&](int g, const __m512i (&w)[4]) {
                    for (int q = 0; q < 4; ++q) gs::cpu::uniform_values16(w[q], 3.4e-8f, dst + 64 * (j + g) + 16 * q);
                });
                j += G;
            };
            while (j + 4 <= nj) step.template operator()<4>();
            while (j < nj) step.template operator()<1>();
#else
            auto emit = [&](size_t j, const uint32_t (&w)[4][16]) {
                float* o = dst + 64 * j;
                for (int q = 0; q < 4; ++q)
                    for (int m = 0; m < 16; ++m) o[16 * q + m] = gs::uniform_value<float>(w[q][m], 3.4e-8f);
            };
            for (size_t j = 0; j < nj; ++j) {
                alignas(64) uint32_t c0[1][16], w[1][4][16];
                const uint32_t c1[1] = {jobs[j].layer}, c2[1] = {jobs[j].stream};
                for (int m = 0; m < 16; ++m) c0[0][m] = jobs[j].block;
                gs::cpu::philox16<1>(c0, c1, c2, 0u, keys, w);
                emit(j, w[0]);
            }
#endif
            acc += dst[grp % (nj * 64)];
        }
        g_sink_f = acc;
    });

    // Pre-activations drawn N(0, 1): a realistic mix of both erf branches.
    std::vector<float> z(static_cast<size_t>(units) * 16 * 64);
    for (size_t i = 0; i < z.size(); ++i)
        z[i] = static_cast<float>(gs::draw_value<double>(1, 0, gs::Stream::input, 0, static_cast<uint32_t>(i), gs::Dist{gs::Dist::normal, 1.0}));
    const double act_ns = time_per_network(seconds, repeats, [&](uint64_t groups) {
        alignas(64) float y[16], dy[16];
        float acc = 0;
        for (uint64_t grp = 0; grp < groups; ++grp) {
            const float* zg = z.data() + (grp % 64) * static_cast<size_t>(units) * 16;
            for (int u = 0; u < units; ++u) {
                for (int k = 0; k < 16; ++k)
                    gs::cpu::act_value_and_slope<gs::Activation::gelu, float>(zg[u * 16 + k], 0.01f, y[k], dy[k]);
                acc += y[u & 15] + dy[(u + 3) & 15];
            }
        }
        g_sink_f = acc;
    });

    // As the backend computes them: 16 lanes at a time, 8 doubles per vector.
    const double stats_ns = time_per_network(seconds, repeats, [&](uint64_t groups) {
        alignas(64) double sums[4][16], out[4][16], acc[16] = {};
        for (uint64_t grp = 0; grp < groups; ++grp) {
            for (int l = 0; l < D; ++l) {
                // New operands for every layer and group: nothing to reuse.
                const double shift = static_cast<double>((grp & 1023) * 8 + static_cast<uint64_t>(l));
                for (int q = 0; q < 4; ++q)
                    for (int k = 0; k < 16; ++k) sums[q][k] = shift + (1.0 + q + k * 0.125);
                const double numel = static_cast<double>(n[l]) * n[l + 1], nout = n[l + 1];
#if defined(__AVX512F__)
                const __m512d vn = _mm512_set1_pd(numel), vo = _mm512_set1_pd(nout);
                for (int h = 0; h < 16; h += 8) {
                    _mm512_store_pd(out[0] + h, _mm512_div_pd(_mm512_load_pd(sums[0] + h), vn));                 // weight_grad_mean_abs
                    _mm512_store_pd(out[1] + h, _mm512_sqrt_pd(_mm512_div_pd(_mm512_load_pd(sums[1] + h), vn)));  // weight_grad_rms
                    _mm512_store_pd(out[2] + h, _mm512_div_pd(_mm512_load_pd(sums[2] + h), vo));                 // bias_grad_mean_abs
                    _mm512_store_pd(out[3] + h, _mm512_sqrt_pd(_mm512_div_pd(_mm512_load_pd(sums[3] + h), vo)));  // activation_rms
                }
#else
                for (int k = 0; k < 16; ++k) {
                    out[0][k] = sums[0][k] / numel;
                    out[1][k] = std::sqrt(sums[1][k] / numel);
                    out[2][k] = sums[2][k] / nout;
                    out[3][k] = std::sqrt(sums[3][k] / nout);
                }
#endif
                for (int k = 0; k < 16; ++k) acc[k] += (out[0][k] + out[1][k]) + (out[2][k] + out[3][k]);
            }
            for (int k = 0; k < 16; ++k) acc[k] += (sums[0][k] + static_cast<double>(grp)) / static_cast<double>(n[D]);  // the loss
        }
        g_sink_d = acc[0] + acc[15];
    });

    const double bound_ns = philox_ns + act_ns + stats_ns;
    std::printf("# bench_tiny_floor: layer sizes");
    for (int x : n) std::printf(" %d", x);
    std::printf(", GELU, one core; %zu Philox blocks, %d activations, %d divisions + %d square roots per network\n", nj, units,
                4 * D + 1, 2 * D);
    std::printf("  philox %8.2f ns/network\n  act    %8.2f ns/network\n  stats  %8.2f ns/network\n", philox_ns, act_ns, stats_ns);
    std::printf("  bound  %8.2f ns/network = at most %.3g networks/s per core\n", bound_ns, 1e9 / bound_ns);
    if (pytorch_best > 0 && threads > 0)
        std::printf("  ceiling: %d cores / bound / PyTorch best %.4g networks/s = %.1fx at most\n", threads, pytorch_best,
                    threads * 1e9 / bound_ns / pytorch_best);
    std::printf("{\"philox_ns\": %.3f, \"act_ns\": %.3f, \"stats_ns\": %.3f, \"bound_ns\": %.3f}\n", philox_ns, act_ns, stats_ns,
                bound_ns);
    return 0;
}
