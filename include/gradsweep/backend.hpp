// A backend turns (cell, seed range) into per-network result rows. It knows
// nothing of files; the orchestrator knows nothing of kernels.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include "gradsweep/spec.hpp"

namespace gs {

struct CellResult;  // sweep.hpp

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    virtual std::string device_name() const = 0;
    virtual int threads() const { return 1; }
    // Rows for seeds spec.seed_first + [seed_offset, seed_offset + count), each
    // row_stride(cell.depth()) doubles, written to out[(k) * stride + ...].
    virtual void run(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* out) = 0;
    // A whole cell (seeds spec.seed_first + [0, count)) computed and summarised
    // where its rows are made, so that only its summary moves: out is what
    // summarize_cell gives for those rows, to the bit. The CUDA backend does it on
    // the device. False, out untouched, where a backend does not (the CPU backend,
    // whose rows are in host memory anyway) or cannot now (the rows and the
    // summary's workspace do not fit): the caller then runs the cell through run().
    virtual bool summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) {
        (void)spec, (void)cell, (void)count, (void)out;
        return false;
    }
};

std::unique_ptr<Backend> make_cpu_backend(int threads);  // threads <= 0: all cores
bool cuda_available(std::string* device_name = nullptr, int device = 0);
std::unique_ptr<Backend> make_cuda_backend(int device);  // throws when no CUDA build / device

}  // namespace gs
