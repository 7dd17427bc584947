#include <cuda_runtime.h>

#include <stdexcept>

#include "gpu_device.hpp"
#include "gpu_under_test.hpp"
#include "gradsweep/cuda_extras.hpp"

namespace gs::gputest {
const bool kEmulated = false;
std::unique_ptr<Backend> gpu_backend() { return make_cuda_backend(test_device()); }
std::unique_ptr<Backend> gpu_backend_on(int device) { return make_cuda_backend(device); }
std::unique_ptr<Backend> gpu_backend_with(const CudaTestHooks& hooks) { return make_cuda_backend(test_device(), hooks); }
uint64_t gpu_free_bytes() {
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(test_device()) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
        throw std::runtime_error("cudaMemGetInfo failed");
    return free_b;
}
bool gpu_summarize_rows(const double* rows, uint64_t count, int stride, std::vector<Summary>& out) {
    return cuda_summarize_rows(rows, count, stride, test_device(), out);
}
bool gpu_run_summarized(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, std::vector<Summary>& out) {
    return cuda_run_summarized(spec, cell, off, count, test_device(), out);
}
bool gpu_summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) {
    return cuda_summarize_cell(spec, cell, count, test_device(), out);
}
}  // namespace gs::gputest
