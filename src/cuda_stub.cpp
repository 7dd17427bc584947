// Without a CUDA build the backend is absent but the names still resolve, so the
// CLI can say "no CUDA" instead of failing to link.
#ifndef GS_HAVE_CUDA
#include <stdexcept>

#include "gradsweep/backend.hpp"

namespace gs {
bool cuda_available(std::string* device_name, int) {
    if (device_name) *device_name = "built without CUDA";
    return false;
}
std::unique_ptr<Backend> make_cuda_backend(int) { throw std::runtime_error("gradsweep was built without CUDA"); }
}  // namespace gs
#endif
