// A whole cell summarised on the device (Backend::summarize_cell of the CUDA
// backend), written against a small device interface so that the emulated
// backend (tests/gpu/gpu_under_test_emu.cpp) runs the very same steps: the fit
// rule (device_cell_fits, cuda_sizing.hpp), the cell's buffers kept across cells
// and grown only when a cell needs more, the rows, then the summary.
//
// Dev must provide:
//   uint64_t free_bytes();         device memory free now, less the margin
//   uint64_t chunk_held();         bytes the chunk loop's kept buffers hold
//   void release_chunk_buffers();  frees them (the chunk loop makes them again)
//   void run_rows(double* d_rows); the cell's rows, seeds [0, count), into device memory
//   void summarize(double* d_rows, Slices& work, CellResult& r);
//        r's non-finite count, layers, loss and growth fits, from the rows (which
//        it may overwrite), with its device memory taken from `work`
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "chunk_runner.cuh"  // capped_budget
#include "gradsweep/cuda_extras.hpp"
#include "gradsweep/cuda_sizing.hpp"
#include "gradsweep/stats.hpp"  // row_stride, kNumQuantities
#include "gradsweep/sweep.hpp"  // Cell, CellResult
#include "kept_memory.hpp"

namespace gs::kern {

// False, out untouched, when the cell's rows and workspace do not fit in what the
// device has free plus what the backend already holds (its chunk buffers, the
// kept cell buffers): held memory counts as usable, as in the chunk loop's budget.
template <class Dev, class Buffer>
bool summarize_cell_kept(Dev& dev, CellBuffers<Buffer>& kept, const Cell& cell, uint64_t count, const CudaTestHooks& hooks,
                         CellResult& out) {
    if (count == 0) return false;
    const int D = cell.depth();
    const uint64_t held = dev.chunk_held() + kept.held();
    if (!device_cell_fits(count, D, capped_budget(dev.free_bytes() + held, hooks.memory_budget_bytes))) return false;
    const DeviceCellBytes<> need = device_cell_bytes(count, D);
    const uint64_t allocations = kept.allocations();
    // A kept buffer that grows frees its old allocation first; when free memory
    // cannot cover the growth, the chunk loop's buffers make the room (the fit
    // rule counted them as usable).
    auto make_room = [&](uint64_t bytes, const Buffer& b) {
        if (bytes > b.size() && bytes - b.size() > dev.free_bytes()) dev.release_chunk_buffers();
    };
    make_room(need.rows, kept.rows);
    double* d_rows = static_cast<double*>(kept.rows.reserve(need.rows, "cell rows"));
    dev.run_rows(d_rows);
    make_room(need.workspace, kept.work);
    Slices work(kept.work.reserve(need.workspace, "cell workspace"), need.workspace);
    if (hooks.cell_buffer_allocations) *hooks.cell_buffer_allocations += kept.allocations() - allocations;
    CellResult r;
    r.cell = cell.index;
    r.networks = count;
    dev.summarize(d_rows, work, r);
    out = std::move(r);
    if (hooks.cells_summarised) ++*hooks.cells_summarised;
    return true;
}

// A cell's column summaries (row_stride(depth) of them, in row order) into r.
inline void put_cell_summaries(const std::vector<Summary>& sums, int depth, CellResult& r) {
    r.layers.resize(depth);
    for (int c = 0; c < row_stride(depth); ++c) {
        if (c < depth * kNumQuantities) r.layers[c / kNumQuantities][c % kNumQuantities] = sums[c];
        else r.loss = sums[c];
    }
}

}  // namespace gs::kern
