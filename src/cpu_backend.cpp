// Multi-threaded CPU backend: threads pull groups of seeds from a shared counter;
// each network's row depends only on its seed, so the thread count never
// changes a result.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "cpu_network.hpp"
#include "gradsweep/backend.hpp"

namespace gs {

namespace {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency())) {}
    std::string name() const override { return "cpu"; }
    std::string device_name() const override;
    int threads() const override { return threads_; }

    void run(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* out) override {
        const cpu::CellPlan plan(spec, cell);
        // Narrow networks: one per SIMD lane. Wide ones: one at a time, vectorised over units.
        const bool narrow = plan.max_width <= 64;
        if (spec.precision == Precision::float32) {
            if (narrow) run_typed<float, 16>(spec, plan, seed_offset, count, out);
            else run_typed<float, 1>(spec, plan, seed_offset, count, out);
        } else {
            if (narrow) run_typed<double, 8>(spec, plan, seed_offset, count, out);
            else run_typed<double, 1>(spec, plan, seed_offset, count, out);
        }
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
        const int n = static_cast<int>(std::min<uint64_t>(threads_, groups));
        if (n <= 1) {
            worker();
        } else {
            std::vector<std::thread> pool;
            for (int t = 0; t < n; ++t) pool.emplace_back(worker);
            for (auto& t : pool) t.join();
        }
        if (error) std::rethrow_exception(error);
    }

    int threads_;
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
