// What the GPU tests test: the CUDA backend on a device (gpu_under_test_cuda.cpp,
// in gradsweep_gpu_tests) or its host emulation (gpu_under_test_emu.cpp, in
// gradsweep_emulation_tests). Running the same test file against the emulation
// checks the tests themselves (harness, tolerances) on a machine without a GPU.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"

namespace gs::gputest {

extern const bool kEmulated;
std::unique_ptr<Backend> gpu_backend();
std::unique_ptr<Backend> gpu_backend_on(int device);  // throws for a device that does not exist
// With the test hooks (forced P, capped memory budget, launch record); hooks.launches must outlive the backend.
std::unique_ptr<Backend> gpu_backend_with(const CudaTestHooks& hooks);
uint64_t gpu_free_bytes();  // free device memory now (emulation: its 1 GiB budget)
bool gpu_summarize_rows(const double* rows, uint64_t count, int stride, std::vector<Summary>& out);
bool gpu_run_summarized(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count, std::vector<Summary>& out);
// The cell's seeds [0, count) run and summarised on the device (cuda_summarize_cell; emulation: emu_cell.hpp).
bool gpu_summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out);

// Work sizes: full on a GPU, cut down under emulation (one std::thread per CUDA thread).
inline uint64_t scaled(uint64_t n, uint64_t emulation_divisor) {
    if (!kEmulated) return n;
    const uint64_t m = n / emulation_divisor;
    return m ? m : 1;
}

}  // namespace gs::gputest

// Test names say which of the two they ran against.
#define GS_GPU_CASE(name, tags) TEST_CASE((gs::gputest::kEmulated ? "emulated backend: " name : name), tags)
