// Multi-threaded CPU backend: threads pull groups of seeds from a shared counter;
// each network's row depends only on its seed, so the thread count never
// changes a result.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <functional>
#include <thread>
#include <vector>

#include "cpu/network.hpp"
#include "gradsweep/backend.hpp"

namespace gs {

namespace {

// Threads that live as long as the backend: the engine calls run() once per work
// unit (4096 seeds by default, well under a millisecond of work at small widths),
// so starting threads per call would cost a noticeable share of the run.
class ThreadPool {
public:
    explicit ThreadPool(int extra) {
        for (int t = 0; t < extra; ++t) threads_.emplace_back([this] { loop(); });
    }
    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Runs job on `n` threads (the caller and n - 1 pool threads) and waits for all.
    void run(int n, const std::function<void()>& job) {
        n = std::max(1, std::min(n, static_cast<int>(threads_.size()) + 1));
        if (n > 1) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                job_ = &job;
                wanted_ = n - 1;
                running_ = n - 1;
                ++generation_;
            }
            cv_.notify_all();
        }
        job();
        if (n > 1) {
            std::unique_lock<std::mutex> lock(mu_);
            done_cv_.wait(lock, [this] { return running_ == 0; });
            job_ = nullptr;
        }
    }

private:
    void loop() {
        uint64_t seen = 0;
        for (;;) {
            const std::function<void()>* job = nullptr;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return quit_ || (generation_ != seen && wanted_ > 0); });
                if (quit_) return;
                seen = generation_;
                --wanted_;
                job = job_;
            }
            (*job)();
            std::lock_guard<std::mutex> lock(mu_);
            if (--running_ == 0) done_cv_.notify_all();
        }
    }

    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    const std::function<void()>* job_ = nullptr;
    uint64_t generation_ = 0;
    int wanted_ = 0, running_ = 0;
    bool quit_ = false;
};

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads)
        : threads_(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
          pool_(threads_ - 1) {}
    std::string name() const override { return "cpu"; }
    std::string device_name() const override;
    int threads() const override { return threads_; }

    void run(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* out) override {
        const cpu::CellPlan plan(spec, cell);
        // Narrow networks: one per SIMD lane. Wide ones: one at a time, vectorised over units.
        cpu::with_lane_layout(spec.precision, plan.max_width,
                              [&]<class T, int L>() { run_typed<T, L>(spec, plan, seed_offset, count, out); });
    }

private:
    template <class T, int L>
    void run_typed(const Spec& spec, const cpu::CellPlan& plan, uint64_t seed_offset, uint64_t count, double* out) {
        const uint64_t groups = (count + L - 1) / L;
        const int stride = row_stride(plan.depth);
        // Small chunks keep threads balanced; a chunk of groups amortises the counter.
        const uint64_t chunk = std::max<uint64_t>(1, std::min<uint64_t>(64, groups / (8 * threads_) + 1));
        std::atomic<uint64_t> next{0};
        std::exception_ptr error;
        std::mutex error_mu;
        auto worker = [&]() {
            try {
                cpu::Scratch<T, L> scratch(plan);
                uint64_t seeds[L];
                for (;;) {
                    const uint64_t g0 = next.fetch_add(chunk);
                    if (g0 >= groups) break;
                    const uint64_t g1 = std::min(groups, g0 + chunk);
                    for (uint64_t g = g0; g < g1; ++g) {
                        const uint64_t first = g * L;
                        const int nvalid = static_cast<int>(std::min<uint64_t>(L, count - first));
                        for (int k = 0; k < L; ++k)  // padding lanes repeat the last valid seed
                            seeds[k] = spec.seed_first + seed_offset + first + static_cast<uint64_t>(std::min(k, nvalid - 1));
                        cpu::run_lanes<T, L>(plan, seeds, nvalid, out + first * stride, scratch);
                    }
                }
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mu);
                if (!error) error = std::current_exception();
                next.store(groups);
            }
        };
        const int n = static_cast<int>(cpu::threads_for_call(threads_, count, L));  // what the plan counts
        const std::function<void()> job = worker;
        pool_.run(n, job);
        if (error) std::rethrow_exception(error);
    }

    int threads_;
    ThreadPool pool_;
};

std::string CpuBackend::device_name() const {
    std::string model = "cpu";
    if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
        char line[512];
        while (std::fgets(line, sizeof line, f)) {
            if (std::strncmp(line, "model name", 10) == 0) {
                const char* c = std::strchr(line, ':');
                if (c) {
                    model = c + 1;
                    while (!model.empty() && (model.front() == ' ' || model.front() == '\t')) model.erase(model.begin());
                    while (!model.empty() && (model.back() == '\n' || model.back() == ' ')) model.pop_back();
                }
                break;
            }
        }
        std::fclose(f);
    }
    return model + " (" + std::to_string(std::thread::hardware_concurrency()) + " cores)";
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace gs
