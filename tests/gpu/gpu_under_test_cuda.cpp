#include "gpu_device.hpp"
#include "gpu_under_test.hpp"
#include "gradsweep/cuda_extras.hpp"

namespace gs::gputest {
const bool kEmulated = false;
std::unique_ptr<Backend> gpu_backend() { return make_cuda_backend(test_device()); }
std::unique_ptr<Backend> gpu_backend_on(int device) { return make_cuda_backend(device); }
bool gpu_summarize_rows(const double* rows, uint64_t count, int stride, std::vector<Summary>& out) {
    return cuda_summarize_rows(rows, count, stride, test_device(), out);
}
bool gpu_run_summarized(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, std::vector<Summary>& out) {
    return cuda_run_summarized(spec, cell, off, count, test_device(), out);
}
}  // namespace gs::gputest
