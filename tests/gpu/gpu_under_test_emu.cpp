// The CUDA backend's host emulation behind the gs::Backend interface.
#include <algorithm>
#include <limits>
#include <new>
#include <stdexcept>

#include "emu_cell.hpp"
#include "emu_device.hpp"
#include "cell_runner.hpp"  // summarize_cell_kept: CudaBackend::summarize_cell's steps
#include "gradsweep/cuda_sizing.hpp"  // the device's workspace sizes
#include "gpu_under_test.hpp"

namespace gs::gputest {

namespace {

// The emulated device's memory for the buffers a backend keeps: host memory,
// filled with NaN as every emulated device buffer is (a read of anything not
// written first shows).
struct EmuAlloc {
    static void* allocate(size_t bytes, const char*) {
        auto* p = static_cast<double*>(::operator new(bytes));
        std::fill(p, p + bytes / sizeof(double), std::numeric_limits<double>::quiet_NaN());
        return p;
    }
    static void deallocate(void* p) { ::operator delete(p); }
};
using EmuBuffer = kern::GrowOnlyBuffer<EmuAlloc>;

class EmulatedCudaBackend final : public Backend {
public:
    explicit EmulatedCudaBackend(const CudaTestHooks& hooks = {}) : hooks_(hooks) {}
    std::string name() const override { return "cuda"; }
    std::string device_name() const override { return "host emulation"; }
    void run(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, double* out) override {
        if (count == 0) return;
        const auto rows = spec.precision == Precision::float32 ? emu::emulate_run_hooked<float>(spec, cell, off, count, hooks_)
                                                               : emu::emulate_run_hooked<double>(spec, cell, off, count, hooks_);
        std::copy(rows.begin(), rows.end(), out);
    }
    // CudaBackend::summarize_cell: the same steps (summarize_cell_kept,
    // cell_runner.hpp: the fit rule, the rows and the workspace in buffers kept
    // across cells), the rows by the emulated kernel, the summary emulated step
    // by step (emu_cell.hpp) in the workspace's slices as the device takes them.
    bool summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) override {
        CellDev dev{*this, spec, cell, count};
        return kern::summarize_cell_kept(dev, cell_, cell, count, hooks_, out);
    }

private:
    struct CellDev {
        EmulatedCudaBackend& b;
        const Spec& spec;
        const Cell& cell;
        uint64_t count;
        // The emulated device's 1 GiB less what this backend keeps (its chunk
        // loop keeps nothing between calls).
        uint64_t free_bytes() { return gpu_free_bytes() - std::min(gpu_free_bytes(), b.cell_.held()); }
        uint64_t chunk_held() { return 0; }
        void release_chunk_buffers() {}
        void run_rows(double* d_rows) {
            const auto rows = spec.precision == Precision::float32 ? emu::emulate_run_hooked<float>(spec, cell, 0, count, b.hooks_)
                                                                   : emu::emulate_run_hooked<double>(spec, cell, 0, count, b.hooks_);
            std::copy(rows.begin(), rows.end(), d_rows);
        }
        void summarize(double* d_rows, kern::Slices& work, CellResult& r) {
            // The slices the device takes, in its order, CUB's storage at its
            // bound: the non-finite count's, then the summary's with the growth
            // fits' after them (they run while the summary's columns exist).
            const int D = cell.depth(), stride = row_stride(D);
            {
                kern::SliceScope nonfinite(work);
                work.take<unsigned long long>(1, "non-finite count");
            }
            kern::SliceScope scope(work);
            const kern::SummarySlices w =
                kern::take_summary_slices(work, count, stride, std::max(kern::cub_sort_temp_bound(count, stride), kern::cub_select_temp_bound(count)));
            int64_t first = 0, last = -1;
            growth_layers(D, first, last);
            kern::take_growth_slices(work, count, static_cast<int>(std::max<int64_t>(0, last - first + 1)),
                                     kern::cub_select_temp_bound(count));
            r = emu::emulate_cell_summary_of_rows(cell, d_rows, count, w.cols);
        }
    };

    CudaTestHooks hooks_;
    kern::CellBuffers<EmuBuffer> cell_;
};

std::vector<Summary> summarize_columns(const double* rows, uint64_t count, int stride) {
    std::vector<Summary> out;
    for (int c = 0; c < stride; ++c) {
        std::vector<double> col;
        for (uint64_t r = 0; r < count; ++r) col.push_back(rows[r * stride + c]);
        out.push_back(emu::emulate_summary(col));
    }
    return out;
}
}  // namespace

const bool kEmulated = true;
std::unique_ptr<Backend> gpu_backend() { return std::make_unique<EmulatedCudaBackend>(); }
std::unique_ptr<Backend> gpu_backend_with(const CudaTestHooks& hooks) {
    if (hooks.threads_per_net) {
        kern::NetLayout probe;
        kern::force_threads_per_net(probe, hooks.threads_per_net);  // same argument check as the device
    }
    return std::make_unique<EmulatedCudaBackend>(hooks);
}
std::unique_ptr<Backend> gpu_backend_on(int device) {
    if (device != 0) throw std::runtime_error("emulation: no device " + std::to_string(device));
    return gpu_backend();
}
uint64_t gpu_free_bytes() { return uint64_t{1} << 30; }
bool gpu_summarize_rows(const double* rows, uint64_t count, int stride, std::vector<Summary>& out) {
    out = summarize_columns(rows, count, stride);
    return true;
}
bool gpu_run_summarized(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, std::vector<Summary>& out) {
    const auto rows = emu::emulate_run_precision(spec, cell, off, count);
    out = summarize_columns(rows.data(), count, row_stride(cell.depth()));
    return true;
}
bool gpu_summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) {
    out = emu::emulate_cell_summary(spec, cell, 0, count);
    return true;
}

}  // namespace gs::gputest
