// The CUDA backend's host emulation behind the gs::Backend interface.
#include <stdexcept>

#include "emu_device.hpp"
#include "gpu_under_test.hpp"

namespace gs::gputest {

namespace {
class EmulatedCudaBackend final : public Backend {
public:
    std::string name() const override { return "cuda"; }
    std::string device_name() const override { return "host emulation"; }
    void run(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, double* out) override {
        if (count == 0) return;
        const auto rows = emu::emulate_run_precision(spec, cell, off, count);
        std::copy(rows.begin(), rows.end(), out);
    }
};

std::vector<Summary> summarize_columns(const double* rows, uint64_t count, int stride) {
    std::vector<Summary> out;
    for (int c = 0; c < stride; ++c) {
        std::vector<double> col;
        for (uint64_t r = 0; r < count; ++r) col.push_back(rows[r * stride + c]);
        out.push_back(emu::emulate_summary(col, 256));
    }
    return out;
}
}  // namespace

const bool kEmulated = true;
std::unique_ptr<Backend> gpu_backend() { return std::make_unique<EmulatedCudaBackend>(); }
std::unique_ptr<Backend> gpu_backend_on(int device) {
    if (device != 0) throw std::runtime_error("emulation: no device " + std::to_string(device));
    return gpu_backend();
}
bool gpu_summarize_rows(const double* rows, uint64_t count, int stride, std::vector<Summary>& out) {
    out = summarize_columns(rows, count, stride);
    return true;
}
bool gpu_run_summarized(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, std::vector<Summary>& out) {
    const auto rows = emu::emulate_run_precision(spec, cell, off, count);
    out = summarize_columns(rows.data(), count, row_stride(cell.depth()));
    return true;
}

}  // namespace gs::gputest
