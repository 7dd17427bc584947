// Without a CUDA build the backend is absent but the names still resolve, so the
// CLI can say "no CUDA" instead of failing to link. With CUDA, kernels/*.cu
// define all of these.
#ifndef GS_HAVE_CUDA
#include <stdexcept>

#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"

namespace gs {
bool cuda_available(std::string* device_name, int) {
    if (device_name) *device_name = "built without CUDA";
    return false;
}
std::unique_ptr<Backend> make_cuda_backend(int) { throw std::runtime_error("gradsweep was built without CUDA"); }
std::unique_ptr<Backend> make_cuda_backend(int, const CudaTestHooks&) {
    throw std::runtime_error("gradsweep was built without CUDA");
}
bool cuda_run_summarized(const Spec&, const Cell&, uint64_t, uint64_t, int, std::vector<Summary>&) { return false; }
bool cuda_summarize_rows(const double*, uint64_t, int, int, std::vector<Summary>&) { return false; }
bool cuda_summarize_cell(const Spec&, const Cell&, uint64_t, int, CellResult&) { return false; }
}  // namespace gs
#endif
