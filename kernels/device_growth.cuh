// The growth-rate fits (growth_rate.hpp) of a cell whose columns are in device
// memory: the per-seed work in kernels (growth_body.cuh, one thread per seed),
// the sums in column_sums.hpp's order (term_block_partial a thread per block,
// pairwise_tree on the host over the partials), finished on the host by
// fit_growth_with, the host fit's own finishing: the same bits as
// gs::fit_growth_rate on the same columns. Only counts, exponents and partial
// sums cross to the host.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gradsweep/cuda_sizing.hpp"  // growth_workspace_bytes: the bytes fit_growth_on_device needs
#include "gradsweep/growth_rate.hpp"
#include "kept_memory.hpp"  // Slices

namespace gs::kern {

// The temporary storage CUB asks for to list the used seeds: what
// cub_select_temp_bound (cuda_sizing.hpp) bounds, queried.
uint64_t growth_cub_temp_bytes(uint64_t count);

// Both fits of a cell from its columns d_cols (column-major: column l *
// kNumQuantities + q, `count` values each, in seed order; non-finite values may
// be +inf). work: device memory of at least growth_workspace_bytes(count, depth)
// from its current position, given back on return. Synchronous on `stream`.
void fit_growth_on_device(const double* d_cols, uint64_t count, int depth, GrowthRate& growth, GrowthRate& delta_growth,
                          Slices& work, cudaStream_t stream = 0);

}  // namespace gs::kern
