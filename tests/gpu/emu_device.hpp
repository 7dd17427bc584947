// A host stand-in for the GPU: runs the kernel bodies (network_body.cuh,
// summary_body.cuh) and the backend's chunk loop (chunk_runner.cuh) exactly as
// the device does, with one std::thread per CUDA thread and a std::barrier for
// __syncthreads. Device memory is host memory filled with NaN, so any read of a
// value the kernel never wrote shows up in the results.
#pragma once
#include <barrier>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "chunk_runner.cuh"
#include "network_body.cuh"
#include "summary_body.cuh"

namespace gs::emu {

struct NoSync {
    void sync() {}
};

struct BarrierSync {
    std::barrier<>* bar;
    void sync() { bar->arrive_and_wait(); }
};

// Runs fn(t, sync) on P threads that share one barrier: one emulated block.
template <class Fn>
void run_block(int P, Fn&& fn) {
    if (P == 1) {
        NoSync s;
        fn(0, s);
        return;
    }
    std::barrier<> bar(P);
    std::vector<std::thread> threads;
    threads.reserve(P);
    for (int t = 0; t < P; ++t)
        threads.emplace_back([&, t] {
            BarrierSync s{&bar};
            fn(t, s);
        });
    for (auto& th : threads) th.join();
}

template <class T>
struct EmuDev {
    uint64_t budget_bytes = uint64_t{1} << 30;
    std::vector<kern::LayerDesc> layers;
    std::vector<T> fixed, scratch, params;
    std::vector<double> rows;
    std::vector<uint64_t> launches;  // networks per launch, in order
    std::vector<CudaLaunchRecord> records;  // what CudaTestHooks::launches gets on a device (kernel_ms 0)

    static T poison() { return std::numeric_limits<T>::quiet_NaN(); }

    uint64_t budget() { return budget_bytes; }
    void release() {
        scratch = {};
        params = {};
        rows = {};
    }
    kern::LayerDesc* upload_layers(const std::vector<kern::LayerDesc>& v) {
        layers = v;
        return layers.data();
    }
    T* upload_fixed_input(const std::vector<T>& v) {
        fixed = v;
        return fixed.data();
    }
    T* alloc_scratch(uint64_t n) {
        scratch.assign(n, poison());
        return scratch.data();
    }
    T* alloc_params(uint64_t n) {
        params.assign(n, poison());
        return params.data();
    }
    double* alloc_rows(uint64_t n) {
        rows.assign(n, std::numeric_limits<double>::quiet_NaN());
        return rows.data();
    }
    void upload_params(T* dst, const std::vector<T>& src) { std::memcpy(dst, src.data(), src.size() * sizeof(T)); }
    void launch(const kern::NetArgs<T>& a, int P) {
        launches.push_back(a.nets);
        records.push_back(kern::launch_record(a.nets, a.scratch_per_net, P));
        // Scratch of the previous launch is stale: poison it so nothing can rely on it.
        std::fill(scratch.begin(), scratch.end(), poison());
        std::vector<double> red(3 * static_cast<size_t>(P), std::numeric_limits<double>::quiet_NaN());
        for (uint64_t net = 0; net < a.nets; ++net)
            run_block(P, [&](int t, auto& sync) { kern::network_body<T>(a, net, t, P, red.data(), sync); });
    }
    void download_rows(double* dst, const double* src, uint64_t n) { std::memcpy(dst, src, n * sizeof(double)); }
};

// What CudaBackend::run gives, computed on the host. threads_per_net = 0 keeps
// the backend's choice; otherwise it is forced (1, or a power of two >= 2).
template <class T>
std::vector<double> emulate_run(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, int threads_per_net = 0,
                                uint64_t budget = uint64_t{1} << 30, std::vector<uint64_t>* launches = nullptr) {
    kern::NetLayout L = kern::make_layout(spec, cell);
    if (threads_per_net > 0) L.threads_per_net = threads_per_net;
    EmuDev<T> dev;
    dev.budget_bytes = budget;
    std::vector<double> out(count * row_stride(cell.depth()), std::numeric_limits<double>::quiet_NaN());
    kern::run_chunks<T>(dev, spec, cell, L, off, count, out.data(), nullptr);
    if (launches) *launches = dev.launches;
    return out;
}

// emulate_run with the CUDA backend's test hooks, as make_cuda_backend(device, hooks)
// would run it: forced P, the budget capped (from the emulation's 1 GiB), launches recorded.
template <class T>
std::vector<double> emulate_run_hooked(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count,
                                       const CudaTestHooks& hooks) {
    kern::NetLayout L = kern::make_layout(spec, cell);
    kern::force_threads_per_net(L, hooks.threads_per_net);
    EmuDev<T> dev;
    dev.budget_bytes = kern::capped_budget(uint64_t{1} << 30, hooks.memory_budget_bytes);
    std::vector<double> out(count * row_stride(cell.depth()), std::numeric_limits<double>::quiet_NaN());
    kern::run_chunks<T>(dev, spec, cell, L, off, count, out.data(), nullptr);
    if (hooks.launches) hooks.launches->insert(hooks.launches->end(), dev.records.begin(), dev.records.end());
    return out;
}

inline std::vector<double> emulate_run_precision(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count,
                                                 int threads_per_net = 0) {
    return spec.precision == Precision::float32 ? emulate_run<float>(spec, cell, off, count, threads_per_net)
                                                : emulate_run<double>(spec, cell, off, count, threads_per_net);
}

// The device summary of one column, emulated: non-finite -> +inf, sort, then the
// summary body on P threads.
inline Summary emulate_summary(std::vector<double> v, int P) {
    for (double& x : v)
        if (!std::isfinite(x)) x = std::numeric_limits<double>::infinity();
    std::sort(v.begin(), v.end());
    Summary out;
    std::vector<double> red(kern::kSummarySums * static_cast<size_t>(P), std::numeric_limits<double>::quiet_NaN());
    run_block(P, [&](int t, auto& sync) { kern::summary_body(v.data(), v.size(), t, P, red.data(), sync, &out); });
    return out;
}

}  // namespace gs::emu
