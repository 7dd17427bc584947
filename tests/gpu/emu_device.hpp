// A host stand-in for the GPU: runs the kernel bodies (network_body.cuh,
// summary_body.cuh) and the backend's chunk loop (chunk_runner.cuh) exactly as
// the device does, with one fiber (ucontext) per CUDA thread and __syncthreads
// as a switch to the next fiber. Device memory is host memory filled with NaN,
// so any read of a value the kernel never wrote shows up in the results.
#pragma once
#include <ucontext.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "chunk_runner.cuh"
#include "network_body.cuh"
#include "summary_body.cuh"

namespace gs::emu {

struct NoSync {
    void sync() {}
};

// One emulated block: P fibers on the calling thread, taking turns. A fiber runs
// until its next barrier (or its end), then the next one in the round's order
// runs; the body's barriers are block-uniform, so when the last fiber of a round
// reaches a barrier every fiber has, and the next round begins, in the opposite
// order: a value read before the barrier that should have separated it from
// its write (a missing __syncthreads) is then read before it is written in one
// of the two orders, and the results show it.
// Fibers rather than P threads meeting at a std::barrier: one OS thread whatever
// P, so the emulation takes the same CPU time on a busy machine as on an idle
// one (P threads that must all be scheduled to pass each barrier slowed a test
// under load from ~70 s to past its 900 s timeout), and every run interleaves
// the threads' work the same way.
class FiberBlock {
public:
    FiberBlock(int P, std::function<void(int, FiberBlock&)> body)
        : P_(P), live_(P), body_(std::move(body)), ctx_(P), done_(P, 0) {
        stacks_.reserve(P);
        const auto addr = reinterpret_cast<uintptr_t>(this);
        for (int t = 0; t < P; ++t) {
            stacks_.emplace_back(new char[kStackBytes]);
            getcontext(&ctx_[t]);
            ctx_[t].uc_stack.ss_sp = stacks_[t].get();
            ctx_[t].uc_stack.ss_size = kStackBytes;
            ctx_[t].uc_link = nullptr;  // a fiber never returns: entry() switches away at its end
            // makecontext passes ints: the block's address in two halves.
            makecontext(&ctx_[t], reinterpret_cast<void (*)()>(&FiberBlock::entry), 3, static_cast<int>(addr & 0xffffffffu),
                        static_cast<int>(addr >> 32), t);
        }
    }
    // Runs every fiber to its end; rethrows the first exception one of them threw.
    void run() {
        swapcontext(&main_, &ctx_[0]);
        if (error_) std::rethrow_exception(error_);
    }
    // __syncthreads from fiber t.
    void barrier(int t) {
        const int u = after_arrival(t);
        if (u != t) swapcontext(&ctx_[t], &ctx_[u]);
    }

private:
    static constexpr size_t kStackBytes = size_t{1} << 19;  // the bodies' locals are small; untouched pages cost nothing

    static void entry(int lo, int hi, int t) {
        auto* b = reinterpret_cast<FiberBlock*>((static_cast<uintptr_t>(static_cast<unsigned>(hi)) << 32) |
                                                static_cast<unsigned>(lo));
        try {
            b->body_(t, *b);
        } catch (...) {
            if (!b->error_) b->error_ = std::current_exception();
        }
        b->done_[t] = 1;
        --b->live_;
        if (b->live_ == 0) setcontext(&b->main_);
        --b->arrived_;  // after_arrival counts it once more: an ended fiber waits at no barrier
        setcontext(&b->ctx_[b->after_arrival(t)]);
    }
    // Fiber t has arrived (at a barrier or its end): the fiber to run next.
    int after_arrival(int t) {
        if (++arrived_ < live_) {
            for (int u = t + dir_; u >= 0 && u < P_; u += dir_)
                if (!done_[u]) return u;
        }
        arrived_ = 0;  // the round is complete: the next one runs in the other order
        dir_ = -dir_;
        for (int k = 0; k < P_; ++k) {
            const int u = dir_ > 0 ? k : P_ - 1 - k;
            if (!done_[u]) return u;
        }
        return t;
    }

    const int P_;
    int live_, arrived_ = 0, dir_ = 1;
    std::function<void(int, FiberBlock&)> body_;
    ucontext_t main_{};
    std::vector<ucontext_t> ctx_;
    std::vector<std::unique_ptr<char[]>> stacks_;
    std::vector<char> done_;
    std::exception_ptr error_;
};

struct FiberSync {
    FiberBlock* block;
    int t;
    void sync() { block->barrier(t); }
};

// Runs fn(t, sync) for t = 0..P-1 as one emulated block.
template <class Fn>
void run_block(int P, Fn&& fn) {
    if (P == 1) {
        NoSync s;
        fn(0, s);
        return;
    }
    FiberBlock block(P, [&fn](int t, FiberBlock& b) {
        FiberSync s{&b, t};
        fn(t, s);
    });
    block.run();
}

// The small-width body over a launch's networks (emu_small_launch.cpp: its
// shapes are compiled in that one file rather than in every test's).
template <class T>
void run_small_networks(const kern::NetArgs<T>& a);

// One device operation of the chunk loop, in the order run_chunks issued it
// (EmuDev::ops): what the tests of its overlap schedule read.
struct DevOp {
    enum Kind { upload_params, launch, download, wait_download, wait_launches } kind;
    int buffer = -1;  // the row buffer a launch writes (-1: a caller's device rows), a copy reads, a wait waits for
    bool operator==(const DevOp&) const = default;
};

template <class T>
struct EmuDev {
    uint64_t budget_bytes = uint64_t{1} << 30;
    std::vector<kern::LayerDesc> layers;
    std::vector<T> fixed, scratch, params;
    std::vector<double> rows, staging;
    std::vector<uint64_t> launches;  // networks per launch, in order
    std::vector<CudaLaunchRecord> records;  // what CudaTestHooks::launches gets on a device (kernel_ms 0)
    std::vector<DevOp> ops;

    // Launches run when issued, copies when waited for: the latest a copy on a
    // device may run. A launch that overwrote a row buffer before its copy was
    // waited for, or a copy into staging not yet stored, changes the rows.
    struct Copy {
        double* dst = nullptr;
        const double* src = nullptr;
        uint64_t n = 0;
    };
    Copy pending[kern::kRowBuffers];

    static T poison() { return std::numeric_limits<T>::quiet_NaN(); }

    // Bytes of shared memory a block may use, its 3 * P reduction doubles
    // included: a network's scratch (P > 1) goes there when it fits. 0 (the
    // default): every scratch in device memory, as on a device where shared
    // scratch would lower the kernel's occupancy.
    uint64_t shared_bytes_per_block = 0;

    uint64_t budget() { return budget_bytes; }  // a made-up device: free memory plus what it holds, as on a GPU
    bool scratch_in_shared(uint64_t bytes, int P) { return 3 * static_cast<uint64_t>(P) * sizeof(double) + bytes <= shared_bytes_per_block; }
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
    double* alloc_staging(uint64_t n) {
        staging.assign(n, std::numeric_limits<double>::quiet_NaN());
        return staging.data();
    }
    void upload_params(T* dst, const std::vector<T>& src) {
        ops.push_back({DevOp::upload_params});
        std::memcpy(dst, src.data(), src.size() * sizeof(T));
    }
    void launch(const kern::NetArgs<T>& a, int P) {
        const bool own = !rows.empty() && a.out >= rows.data() && a.out < rows.data() + rows.size();
        ops.push_back({DevOp::launch, own ? static_cast<int>((a.out - rows.data()) / (rows.size() / kern::kRowBuffers)) : -1});
        launches.push_back(a.nets);
        records.push_back(kern::launch_record(a, P));
        // Scratch of the previous launch is stale: poison it so nothing can rely on it.
        std::fill(scratch.begin(), scratch.end(), poison());
        if (a.small_shape >= 0) {
            run_small_networks<T>(a);
            return;
        }
        // The block's shared memory: the reduction doubles and, with shared
        // scratch, the network's scratch after them, stale from the block before.
        const size_t shared_scratch = a.shared_scratch ? (a.scratch_per_net * sizeof(T) + sizeof(double) - 1) / sizeof(double) : 0;
        std::vector<double> red(3 * static_cast<size_t>(P) + shared_scratch, std::numeric_limits<double>::quiet_NaN());
        for (uint64_t net = 0; net < a.nets; ++net) {
            if (shared_scratch) {
                T* s = reinterpret_cast<T*>(red.data() + 3 * static_cast<size_t>(P));
                std::fill(s, s + a.scratch_per_net, poison());
            }
            run_block(P, [&](int t, auto& sync) { kern::network_body<T>(a, net, t, P, red.data(), sync); });
        }
    }
    void download_async(int b, double* dst, const double* src, uint64_t n) {
        ops.push_back({DevOp::download, b});
        finish_copy(b);  // a copy issued behind an unwaited one on the same stream: that one is done first
        pending[b] = Copy{dst, src, n};
    }
    void wait_download(int b) {
        ops.push_back({DevOp::wait_download, b});
        finish_copy(b);
    }
    void wait_launches() { ops.push_back({DevOp::wait_launches}); }

private:
    void finish_copy(int b) {
        if (pending[b].dst) std::memcpy(pending[b].dst, pending[b].src, pending[b].n * sizeof(double));
        pending[b] = Copy{};
    }
};

// What CudaBackend::run gives, computed on the host. threads_per_net = 0 keeps
// the backend's choice; otherwise it is forced (1, or a power of two >= 2).
template <class T>
std::vector<double> emulate_run(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, int threads_per_net = 0,
                                uint64_t budget = uint64_t{1} << 30, std::vector<uint64_t>* launches = nullptr,
                                bool small_kernel = true) {
    kern::NetLayout L = kern::make_layout(spec, cell);
    if (threads_per_net > 0) kern::force_threads_per_net(L, threads_per_net);
    L.small_kernel = small_kernel;
    EmuDev<T> dev;
    dev.budget_bytes = budget;
    std::vector<double> out(count * row_stride(cell.depth()), std::numeric_limits<double>::quiet_NaN());
    kern::run_chunks<T>(dev, spec, cell, L, off, count, out.data(), nullptr);
    if (launches) *launches = dev.launches;
    return out;
}

// emulate_run with the CUDA backend's test hooks, as make_cuda_backend(device, hooks)
// would run it: forced P, the budget capped (from the emulation's 1 GiB), launches
// recorded, shared scratch unless the hooks say device scratch only.
template <class T>
std::vector<double> emulate_run_hooked(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count,
                                       const CudaTestHooks& hooks) {
    kern::NetLayout L = kern::make_layout(spec, cell);
    kern::force_threads_per_net(L, hooks.threads_per_net);
    L.small_kernel = !hooks.general_kernel_only;
    EmuDev<T> dev;
    dev.budget_bytes = kern::capped_budget(uint64_t{1} << 30, hooks.memory_budget_bytes);
    // Shared scratch up to the 48 KiB any device gives a block without opting in.
    dev.shared_bytes_per_block = hooks.device_scratch_only ? 0 : uint64_t{48} << 10;
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

// The device summary of one column, emulated step by step as
// kern::summarize_rows_on_device runs it, with the same bodies: the finite values
// compacted in seed order, one term_block_partial per block (a device thread
// each) and pairwise_tree (the tree kernel) for every sum, count_signs,
// moments_from_sums on the host, then non-finite -> +inf, the values' order
// keys sorted and order_statistics_sorted_keys.
inline Summary emulate_summary(std::vector<double> v) {
    std::vector<double> finite;
    for (double x : v)
        if (std::isfinite(x)) finite.push_back(x);
    ColumnSums cs;
    cs.n = finite.size();
    kern::count_signs(finite.data(), cs.n, cs.n_pos, cs.n_zero);
    auto tree_sum = [&](SumTerm t, double a, double b) {
        std::vector<double> partial(sum_blocks(cs.n));
        for (uint64_t k = 0; k < partial.size(); ++k) partial[k] = kern::term_block_partial(finite.data(), cs.n, k, t, a, b);
        return pairwise_tree(partial.data(), partial.size());
    };
    cs.sum = tree_sum(SumTerm::value, 0, 0);
    cs.log_sum = tree_sum(SumTerm::log, 0, 0);
    Summary out;
    moments_from_sums(cs, v.size(), tree_sum, out);
    std::vector<uint64_t> keys(v.size());
    for (size_t i = 0; i < v.size(); ++i) keys[i] = order_key(std::isfinite(v[i]) ? v[i] : std::numeric_limits<double>::infinity());
    std::sort(keys.begin(), keys.end());  // keys_in_place, then the segmented sort
    if (cs.n) kern::order_statistics_sorted_keys(keys.data(), cs.n, out);
    return out;
}

}  // namespace gs::emu
