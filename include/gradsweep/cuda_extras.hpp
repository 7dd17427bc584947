// CUDA-only entry points beyond gs::Backend. Every function is callable in any
// build: without CUDA (or without a usable device) it returns false and leaves
// `out` alone, so callers fall back to the CPU path.
#pragma once
#include <cstdint>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

namespace gs {

// Runs `cell` for seeds spec.seed_first + [seed_offset, seed_offset + count) on
// CUDA device `device` and summarises every row slot over those seeds on the
// device, so only the summaries cross PCIe. out gets row_stride(depth) summaries
// in row order: [layer][quantity] then the loss, each as gs::summarize would give
// for that column of rows. Throws std::runtime_error on CUDA errors or when the
// rows of all `count` networks do not fit in device memory at once.
bool cuda_run_summarized(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, int device,
                         std::vector<Summary>& out);

// The device summariser alone, on host rows: `rows` is count x stride doubles
// (row-major, as Backend::run writes them); out gets one summary per column.
bool cuda_summarize_rows(const double* rows, uint64_t count, int stride, int device, std::vector<Summary>& out);

}  // namespace gs
