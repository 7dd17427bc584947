// Aggregation over seeds on the device: rows (count x stride doubles, as the
// network kernel writes them) -> one gs::Summary per column, with the semantics of
// gs::summarize, and its bits. Pipeline: transpose to column-major while mapping
// non-finite values to +inf; each column's finite values compacted in seed order
// (CUB DeviceSelect); their sums in the order of column_sums.hpp (a thread per
// block of 4096 values, then a thread per column for the pairwise tree), finished
// on the host by moments_from_sums as the host summariser does; CUB
// DeviceSegmentedSort (one segment per column) and the order statistics from the
// sorted values (summary_body.cuh). Only sums and summaries cross to the host.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "gradsweep/cuda_sizing.hpp"  // summary_workspace_bytes: the bytes summarize_rows_on_device needs beyond d_rows
#include "gradsweep/stats.hpp"
#include "kept_memory.hpp"  // Slices

namespace gs::kern {

// The temporary storage CUB asks for (the compaction's and the sort's, one
// buffer): what cub_sort_temp_bound and cub_select_temp_bound (cuda_sizing.hpp)
// bound, queried.
uint64_t summary_cub_temp_bytes(uint64_t count, int stride);

// d_rows: device pointer, count x stride doubles; it is used as sort output and
// is overwritten. work: device memory of at least summary_workspace_bytes(count,
// stride) (a workspace the caller keeps across calls), its slices taken from
// work's current position and given back on return. Synchronous on `stream`.
// on_columns, when given, is called with the columns (column-major, count each,
// non-finite values as +inf) once they are made and before the sort, on the same
// stream, with work's remaining slices free: the growth fits run there.
void summarize_rows_on_device(double* d_rows, uint64_t count, int stride, std::vector<Summary>& out, Slices& work,
                              cudaStream_t stream = 0, const std::function<void(const double*)>& on_columns = nullptr);

// Rows (count x stride, device memory) with a non-finite value: the cell's
// nonfinite_networks. One slice of work (within summary_workspace_bytes' rounding),
// given back on return. Synchronous on `stream`.
uint64_t count_nonfinite_rows(const double* d_rows, uint64_t count, int stride, Slices& work, cudaStream_t stream = 0);

}  // namespace gs::kern
