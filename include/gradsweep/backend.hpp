// A backend turns (cell, seed range) into per-network result rows. It knows
// nothing of files; the orchestrator knows nothing of kernels.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include "gradsweep/spec.hpp"

namespace gs {

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual std::string device_name() const = 0;
    virtual int threads() const { return 1; }
    // Rows for seeds spec.seed_first + [seed_offset, seed_offset + count), each
    // row_stride(cell.depth()) doubles, written to out[(k) * stride + ...].
    virtual void run(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* out) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(int threads);  // threads <= 0: all cores
bool cuda_available(std::string* device_name = nullptr, int device = 0);
std::unique_ptr<Backend> make_cuda_backend(int device);  // throws when no CUDA build / device

}  // namespace gs
