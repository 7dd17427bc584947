// The CUDA backend's host emulation behind the gs::Backend interface.
#include <stdexcept>

#include "emu_cell.hpp"
#include "emu_device.hpp"
#include "gradsweep/cuda_sizing.hpp"  // the device's workspace sizes
#include "gpu_under_test.hpp"

namespace gs::gputest {

namespace {
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
    // CudaBackend::summarize_cell's steps: the rule of what fits (the hooks' budget
    // standing in for the device's free memory), the rows by the emulated kernel,
    // then the device summary emulated step by step (emu_cell.hpp).
    bool summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) override {
        if (count == 0) return false;
        const int D = cell.depth(), stride = row_stride(D);
        const uint64_t need = count * stride * sizeof(double) + kern::summary_workspace_bytes(count, stride) +
                              kern::growth_workspace_bytes(count, D);
        if (need > kern::capped_budget(gpu_free_bytes(), hooks_.memory_budget_bytes)) return false;
        const auto rows = spec.precision == Precision::float32 ? emu::emulate_run_hooked<float>(spec, cell, 0, count, hooks_)
                                                               : emu::emulate_run_hooked<double>(spec, cell, 0, count, hooks_);
        out = emu::emulate_cell_summary_of_rows(cell, rows, count);
        if (hooks_.cells_summarised) ++*hooks_.cells_summarised;
        return true;
    }

private:
    CudaTestHooks hooks_;
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
