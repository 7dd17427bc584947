// Throughput of the CUDA backend on a few representative cells, for comparing
// kernel versions: networks per second and weights per second (each weight is
// generated twice per network, forward and backward), and the speed-up over the
// CPU backend (all cores, timed on a smaller seed count). Without a CUDA device
// it says so and exits 0.
// usage: bench_cuda_kernels [--device N] [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

using namespace gs;

namespace {

struct Case {
    const char* label;
    std::vector<int> sizes;
    Activation act;
    bool shortcut;
    int batch;
    uint64_t seeds;
};

Spec make_spec(Precision p, int batch, uint64_t seeds) {
    Spec s;
    s.name = "bench";
    s.seed_count = seeds;
    s.precision = p;
    s.input.random = true;
    s.input.batch = batch;
    return s;
}

std::vector<int> uniform(int in, int width, int depth, int out) {
    std::vector<int> v{in};
    for (int l = 1; l < depth; ++l) v.push_back(width);
    v.push_back(out);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    int device = 0;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
    }
    std::string name;
    if (!cuda_available(&name, device)) {
        std::printf("SKIPPED: no CUDA device (%s)\n", name.c_str());
        return 0;
    }
    auto gpu = make_cuda_backend(device);
    auto cpu = make_cpu_backend(0);
    std::printf("device: %s\n", gpu->device_name().c_str());
    const uint64_t scale = quick ? 16 : 1;
    const std::vector<Case> cases = {
        {"notebook 3-3-3-3-3-1 relu", {3, 3, 3, 3, 3, 1}, Activation::relu, false, 1, (uint64_t{1} << 22) / scale},
        {"width 16 depth 20 gelu shortcut", uniform(16, 16, 20, 1), Activation::gelu, true, 1, (uint64_t{1} << 20) / scale},
        {"width 32 depth 64 tanh shortcut", uniform(32, 32, 64, 1), Activation::tanh, true, 1, (uint64_t{1} << 17) / scale},
        {"width 32 depth 8 relu batch 8", uniform(32, 32, 8, 1), Activation::relu, false, 8, (uint64_t{1} << 17) / scale},
        {"width 128 depth 8 gelu", uniform(128, 128, 8, 1), Activation::gelu, true, 1, (uint64_t{1} << 15) / scale},
        {"width 1024 depth 8 relu", uniform(1024, 1024, 8, 1), Activation::relu, true, 1, 1024 / scale},
        {"width 4096 depth 4 gelu", uniform(4096, 4096, 4, 1), Activation::gelu, true, 1, 64 / scale},
    };
    std::printf("%-34s %-8s %10s %10s %14s %14s %10s\n", "cell", "prec", "networks", "seconds", "networks/s", "weights/s",
                "vs cpu");
    for (const Case& c : cases) {
        Cell cell;
        cell.layer_sizes = c.sizes;
        cell.activation = c.act;
        cell.shortcut = c.shortcut;
        double weights = 0;
        for (size_t l = 0; l + 1 < c.sizes.size(); ++l) weights += static_cast<double>(c.sizes[l]) * c.sizes[l + 1];
        for (Precision p : {Precision::float32, Precision::float64}) {
            const Spec spec = make_spec(p, c.batch, c.seeds);
            std::vector<double> rows(c.seeds * row_stride(cell.depth()));
            gpu->run(spec, cell, 0, std::min<uint64_t>(c.seeds, 64), rows.data());  // warm-up: context, allocations
            const auto t0 = std::chrono::steady_clock::now();
            gpu->run(spec, cell, 0, c.seeds, rows.data());
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const uint64_t cpu_seeds = std::max<uint64_t>(1, c.seeds / 256);
            const auto t1 = std::chrono::steady_clock::now();
            cpu->run(spec, cell, 0, cpu_seeds, rows.data());
            const double cs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
            std::printf("%-34s %-8s %10llu %10.4f %14.4g %14.4g %9.1fx\n", c.label, precision_name(p),
                        static_cast<unsigned long long>(c.seeds), s, c.seeds / s, c.seeds * weights / s,
                        (c.seeds / s) / (cpu_seeds / cs));
        }
    }
    return 0;
}
