// CUDA-only entry points beyond gs::Backend. Every function is callable in any
// build: without CUDA (or without a usable device) it returns false and leaves
// `out` alone, so callers fall back to the CPU path.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"  // CellResult

namespace gs {

// Runs `cell` for seeds spec.seed_first + [seed_offset, seed_offset + count) on
// CUDA device `device` and summarises every row slot over those seeds on the
// device, so only the summaries cross PCIe. out gets row_stride(depth) summaries
// in row order: [layer][quantity] then the loss, each as gs::summarize would give
// for that column of rows. Throws std::runtime_error on CUDA errors or when the
// rows of all `count` networks do not fit in device memory at once.
bool cuda_run_summarized(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, int device,
                         std::vector<Summary>& out);

// A whole cell (its seeds spec.seed_first + [0, count)) run on CUDA device
// `device` and summarised there (Backend::summarize_cell of the CUDA backend, the
// one `gradsweep run` uses): the rows stay in device memory, the cell's column
// summaries, its count of networks with a non-finite value and both growth fits
// (kernels/device_growth.cu) are made on the device and only they cross to the
// host. out is then the CellResult that summarize_cell (the host path,
// src/aggregate/cell_columns.cpp) gives for the same rows, to the bit. False, out
// untouched, without CUDA or a usable device, or when the rows and the summary's
// workspace do not fit in device memory at once (the caller then runs the cell
// through the host path).
bool cuda_summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, int device, CellResult& out);

// The device summariser alone, on host rows: `rows` is count x stride doubles
// (row-major, as Backend::run writes them); out gets one summary per column.
bool cuda_summarize_rows(const double* rows, uint64_t count, int stride, int device, std::vector<Summary>& out);

// Test and benchmark hooks of the CUDA backend: the production path (the CLI) never
// sets them. They let a device run what the host emulation already runs: another
// schedule than the cell's own, a memory budget small enough that the chunk loop
// turns, and a record of every launch (kernel-only time from CUDA events).
struct CudaLaunchRecord {
    uint64_t nets = 0;              // networks in this launch
    uint64_t blocks = 0;            // grid size (x)
    int threads_per_net = 0;        // P: 1 = thread per network, else block (of P threads) per network
    bool small_kernel = false;      // the small-width body (kernels/small_net_body.cuh) ran, not network_body
    bool shared_scratch = false;    // each network's scratch was in its block's shared memory (P > 1)
    uint64_t scratch_elements = 0;  // largest device-scratch index + 1 the launch may touch (nets x per-network scratch; 0 when shared)
    double kernel_ms = 0;           // CUDA event time of the kernel alone (0 under emulation)
};
struct CudaTestHooks {
    int threads_per_net = 0;           // 0: the cell's own P; else 1 or a power of two 2..256 (others throw)
    uint64_t memory_budget_bytes = 0;  // 0: free device memory less the margin; else the smaller of the two
    std::vector<CudaLaunchRecord>* launches = nullptr;  // appended to by every launch when set
    bool general_kernel_only = false;  // true: network_body even where the small-width body applies
    bool device_scratch_only = false;  // true: the scratch in device memory even where shared memory would hold it
    // Incremented by every cell summarised on the device (Backend::summarize_cell).
    // Atomic: the workers of several devices may share one counter.
    std::atomic<uint64_t>* cells_summarised = nullptr;
    // Incremented by every allocation of the buffers a whole cell keeps on the
    // device between cells (its rows and its workspace, kernels/kept_memory.hpp).
    std::atomic<uint64_t>* cell_buffer_allocations = nullptr;
};
// make_cuda_backend with hooks; throws std::invalid_argument for a forced P out of
// range, std::runtime_error as make_cuda_backend does.
std::unique_ptr<Backend> make_cuda_backend(int device, const CudaTestHooks& hooks);

}  // namespace gs
