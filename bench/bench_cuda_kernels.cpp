// Throughput of the CUDA backend on a few representative cells, for comparing
// kernel versions: networks per second and weights per second (each weight is
// generated twice per network, forward and backward), and the speed-up over the
// CPU backend (all cores, timed on a smaller seed count). Without a CUDA device
// it says so and exits 0.
// --accept: the acceptance cells (depth x width 5x3, 20x64, 10x256, 64x1024,
// float32 and float64), each timed end to end and kernel-only (CUDA events around
// every launch), with the seed count sized from a warm-up run to about --seconds
// per timing; every row is printed as it completes ("ROW {json}") and all rows go
// to --json FILE at the end (scripts/gpu_accept.sh).
// usage: bench_cuda_kernels [--device N] [--quick] [--accept [--seconds S] [--json FILE]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"
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

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// The acceptance cells: end to end (Backend::run, rows copied back) and kernel
// alone (sum of the CUDA event times of its launches), median of three runs.
int run_accept(int device, double seconds, const std::string& json_path) {
    struct AcceptCell {
        int depth, width;
        uint64_t max_seeds;
    };
    const AcceptCell cells[] = {{5, 3, uint64_t{1} << 24}, {20, 64, uint64_t{1} << 20}, {10, 256, uint64_t{1} << 17},
                                {64, 1024, uint64_t{1} << 12}};
    std::vector<CudaLaunchRecord> launches;
    CudaTestHooks hooks;
    hooks.launches = &launches;
    auto gpu = make_cuda_backend(device, hooks);
    std::printf("device: %s\n", gpu->device_name().c_str());
    std::printf("%-9s %-8s %10s %8s %10s %10s %14s %14s %14s\n", "cell", "prec", "networks", "launches", "e2e s", "kernel s",
                "nets/s e2e", "nets/s kernel", "weights/s kern");
    std::fflush(stdout);
    nlohmann::json rows = nlohmann::json::array();
    for (const AcceptCell& c : cells) {
        Cell cell;
        cell.layer_sizes = uniform(c.width, c.width, c.depth, 1);
        cell.activation = Activation::relu;
        cell.shortcut = true;
        double weights = 0;
        for (size_t l = 0; l + 1 < cell.layer_sizes.size(); ++l)
            weights += static_cast<double>(cell.layer_sizes[l]) * cell.layer_sizes[l + 1];
        for (Precision p : {Precision::float32, Precision::float64}) {
            // Warm-up (context, allocations), then seed counts growing 8x until a run
            // takes an eighth of the target, for a rate that launch overhead does not hide.
            uint64_t w = std::min<uint64_t>(c.max_seeds, 256);
            std::vector<double> out;
            double tw = 0;
            for (;;) {
                out.assign(w * row_stride(cell.depth()), 0.0);
                const auto t0 = std::chrono::steady_clock::now();
                gpu->run(make_spec(p, 1, w), cell, 0, w, out.data());
                tw = std::max(seconds_since(t0), 1e-6);
                if (tw >= seconds / 8 || w >= c.max_seeds) break;
                w = std::min(c.max_seeds, w * 8);
            }
            const uint64_t n = std::clamp<uint64_t>(static_cast<uint64_t>(w / tw * seconds), 1, c.max_seeds);
            const Spec spec = make_spec(p, 1, n);
            out.assign(n * row_stride(cell.depth()), 0.0);
            std::vector<double> e2e, kern;
            size_t nlaunch = 0;
            for (int rep = 0; rep < 3; ++rep) {
                launches.clear();
                const auto t0 = std::chrono::steady_clock::now();
                gpu->run(spec, cell, 0, n, out.data());
                e2e.push_back(seconds_since(t0));
                double ms = 0;
                for (const auto& r : launches) ms += r.kernel_ms;
                kern.push_back(ms / 1e3);
                nlaunch = launches.size();
            }
            const double es = median(e2e), ks = median(kern);
            char label[32];
            std::snprintf(label, sizeof label, "%dx%d", c.depth, c.width);
            std::printf("%-9s %-8s %10llu %8zu %10.4f %10.4f %14.4g %14.4g %14.4g\n", label, precision_name(p),
                        static_cast<unsigned long long>(n), nlaunch, es, ks, n / es, n / ks, n * weights / ks);
            const nlohmann::json row = {{"cell", label},
                                        {"depth", c.depth},
                                        {"width", c.width},
                                        {"activation", "relu"},
                                        {"shortcut", true},
                                        {"batch", 1},
                                        {"precision", precision_name(p)},
                                        {"networks", n},
                                        {"launches", nlaunch},
                                        {"threads_per_net", launches.empty() ? 0 : launches[0].threads_per_net},
                                        {"e2e_s", es},
                                        {"kernel_s", ks},
                                        {"e2e_s_runs", e2e},
                                        {"kernel_s_runs", kern},
                                        {"networks_per_s_e2e", n / es},
                                        {"networks_per_s_kernel", n / ks},
                                        {"weights_per_s_kernel", n * weights / ks}};
            std::printf("ROW %s\n", row.dump().c_str());
            std::fflush(stdout);
            rows.push_back(row);
        }
    }
    if (!json_path.empty()) {
        const std::string tmp = json_path + ".tmp";
        {
            std::ofstream f(tmp);
            f << nlohmann::json{{"device", gpu->device_name()}, {"rows", rows}}.dump(1) << "\n";
            if (!f) {
                std::fprintf(stderr, "bench_cuda_kernels: cannot write %s\n", tmp.c_str());
                return 1;
            }
        }
        if (std::rename(tmp.c_str(), json_path.c_str()) != 0) {
            std::fprintf(stderr, "bench_cuda_kernels: cannot write %s\n", json_path.c_str());
            return 1;
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int device = 0;
    bool quick = false, accept = false;
    double seconds = 1.0;
    std::string json_path;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--accept")) accept = true;
        else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--help")) {
            std::printf("usage: bench_cuda_kernels [--device N] [--quick] [--accept [--seconds S] [--json FILE]]\n");
            return 0;
        } else {
            std::fprintf(stderr, "bench_cuda_kernels: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    std::string name;
    if (!cuda_available(&name, device)) {
        std::printf("SKIPPED: no CUDA device (%s)\n", name.c_str());
        return 0;
    }
    if (accept) return run_accept(device, seconds, json_path);
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
