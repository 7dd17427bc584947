// How the CUDA backend sizes its work, as plain functions of a cell: the
// backend (kernels/net_layout.cuh, kernels/chunk_runner.cuh) and `gradsweep plan`
// (src/run/memory_plan.cpp) both call these, so the plan counts what the backend
// allocates. Host C++ only, no CUDA API: the CPU-only build compiles the plan.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gradsweep/column_sums.hpp"  // sum_blocks, Summary

namespace gs::kern {

// Device row buffers per network in flight on the path that copies rows to the
// host (run_chunks, chunk_runner.cuh): chunk k + 1 is computed into one while
// chunk k's rows are copied out of the other. The pinned host staging buffer
// those copies land in holds as many rows.
inline constexpr int kRowBuffers = 2;

// Threads that cooperate on one network. Up to width 32 (the widest layer, the
// input included) a thread runs a whole network (thousands per launch); wider
// layers get a block, sized so the row sweep (one thread per output unit) and
// the column sweep (one thread per four input units) both keep most threads
// busy. A function of the cell only, never of the seed count, so a network's
// result never depends on how seeds were split.
inline int threads_per_network(int max_width) {
    if (max_width <= 32) return 1;
    int p = 32;
    const int want = (max_width + 3) / 4;
    while (p < want && p < 256) p *= 2;
    return p;
}

// Most networks per launch: enough to fill any GPU, few enough that one launch
// stays well under a second for the small networks that reach the cap.
inline uint64_t launch_cap(int threads_per_net) { return threads_per_net == 1 ? (uint64_t{1} << 20) : (uint64_t{1} << 16); }

// Elements of the column sweep's row cache (kernels/network_body.cuh), at P
// threads per network: with a thread per network (P = 1), a layer past the first
// whose input width is not a multiple of 4 keeps, per output row, the four values
// of the Philox block the row's column group straddles into, for the next group;
// two buffers (by the group's parity) of four values per row, rows as many as the
// widest layer. Blocks per network (P > 1) have no cache: a neighbouring group
// belongs to another thread.
template <class U = uint64_t>
U weight_cache_elements(const std::vector<int>& n, int P) {
    if (P != 1) return 0;
    bool unaligned = false;
    for (size_t l = 1; l + 1 < n.size(); ++l) unaligned = unaligned || n[l] % 4 != 0;
    return unaligned ? 8 * static_cast<U>(*std::max_element(n.begin(), n.end())) : 0;
}

// A network's scratch elements: `rest` for the vectors, then the row cache, when
// there is one, from the next multiple of 4. The cache holds four values per row
// as one unit, interleaved over the networks of a launch like the rest of the
// P = 1 scratch; starting at a multiple of 4 elements puts every unit on a 16-byte
// boundary, so a row's four values are one vector load (two in double).
template <class U = uint64_t>
U weight_cache_start(U rest) {
    return (rest + 3) / 4 * 4;
}
template <class U = uint64_t>
U scratch_with_cache(U rest, U cache) {
    return cache ? weight_cache_start<U>(rest) + cache : rest;
}

// Elements of one network's scratch for layer sizes n and batch B: a_l of every
// layer (the input too), z of every layer after the input, three gradient
// vectors (g twice, delta) as wide as the widest layer, input included, and the
// row cache at the cell's threads per network.
// U: the plan counts in a wider type, so an absurd spec saturates instead of wrapping.
template <class U = uint64_t>
U network_scratch_elements(const std::vector<int>& n, int batch) {
    const U B = static_cast<U>(batch);
    U acts = 0, zs = 0;
    int widest = 0;
    for (size_t l = 0; l < n.size(); ++l) {
        acts += B * static_cast<U>(n[l]);
        if (l > 0) zs += B * static_cast<U>(n[l]);
        widest = std::max(widest, n[l]);
    }
    return scratch_with_cache<U>(acts + zs + 3 * B * static_cast<U>(widest), weight_cache_elements<U>(n, threads_per_network(widest)));
}

// Elements of one network's torch-mode parameters: W and (with bias) b of every
// layer, and the input batch when it is drawn (a fixed input is shared).
template <class U = uint64_t>
U torch_param_elements(const std::vector<int>& n, bool bias, bool random_input, int batch) {
    U p = 0;
    for (size_t l = 0; l + 1 < n.size(); ++l) p += static_cast<U>(n[l]) * static_cast<U>(n[l + 1]) + (bias ? static_cast<U>(n[l + 1]) : 0);
    return p + (random_input ? static_cast<U>(batch) * static_cast<U>(n[0]) : 0);
}

// Upper bounds on the temporary storage CUB asks for (CUDA 13's CUB; cub/device/
// dispatch/dispatch_segmented_sort.cuh, dispatch_select_if.cuh, cub/agent/
// single_pass_scan_operators.cuh). The plan cannot ask CUB: the CPU-only build has
// no CUB, and a planning machine may have no device. gpu_workspace_test.cpp holds
// CUB's own answers to these bounds on a device.
// - SortKeys into another buffer: a copy of the keys (8 bytes each); with more
//   than 300 segments (the lowest partitioning threshold of its policies) two
//   uint32 index arrays and a three-way partition's tile states over the segments
//   (at most 32 bytes per segment and its padding tiles); five slots, each
//   rounded to 256 bytes.
// - DeviceSelect::If/Flagged: tile states of at most 32 bytes per tile of at
//   least 128 items, plus 32 padding tiles and the rounding; no virtual shared
//   memory (its agents fit in shared memory).
// 16 KiB of slack covers the constant parts of both.
// U (here and below): the plan counts in a wider type, so an absurd spec
// saturates instead of wrapping; it is never deduced, so a narrow count still
// computes in uint64_t.
template <class U = uint64_t>
U cub_sort_temp_bound(std::type_identity_t<U> count, int stride) {
    const U segments = static_cast<U>(stride);
    return count * segments * 8 + segments * (2 * 4 + 32) + 16384;
}
template <class U = uint64_t>
U cub_select_temp_bound(std::type_identity_t<U> count) {
    return count / 4 + 16384;
}

// Device bytes summarize_rows_on_device (kernels/device_summary.cu) needs beyond
// the rows (cuda_summarize_cell checks them against free memory; the plan counts
// them): the columns and their finite values, CUB's storage (the compaction's
// and the sort's share one buffer), and per column its block partials, counts,
// term parameters and summary; 4096 for the buffers' rounding.
template <class U = uint64_t>
U summary_workspace_bytes(std::type_identity_t<U> count, int stride) {
    const U columns = static_cast<U>(stride);
    return 2 * count * columns * 8 + std::max(cub_sort_temp_bound<U>(count, stride), cub_select_temp_bound<U>(count)) +
           columns * (static_cast<U>(sum_blocks(static_cast<uint64_t>(count))) * 8 + 8 * 8 + sizeof(Summary)) + 4096;
}

// Device bytes fit_growth_on_device (kernels/device_growth.cu) needs for `count`
// seeds and a network of `depth` layers: per seed a usable flag, its number, the
// selected numbers and a term value (8 bytes each), the block partials, three
// doubles per layer, CUB's compaction storage; 4096 for the buffers' rounding.
template <class U = uint64_t>
U growth_workspace_bytes(std::type_identity_t<U> count, int depth) {
    return count * (1 + 3 * 8) + static_cast<U>(sum_blocks(static_cast<uint64_t>(count))) * 8 +
           3 * 8 * static_cast<U>(std::max(depth, 1)) + cub_select_temp_bound<U>(count) + 4096;
}

// What a whole cell summarised on the device (Backend::summarize_cell of the
// CUDA backend) holds at once: its rows (count x row_stride(depth) doubles) and
// one workspace (kernels/kept_memory.hpp) for the non-finite count (a slice within
// the summary's rounding), the summary and the growth fits, which run while the
// summary's columns exist. The backend keeps both buffers across cells.
template <class U = uint64_t>
struct DeviceCellBytes {
    U rows = 0, workspace = 0;
    U total() const { return rows + workspace; }
};
template <class U = uint64_t>
DeviceCellBytes<U> device_cell_bytes(std::type_identity_t<U> count, int depth) {
    const int stride = row_stride(depth);
    return {count * static_cast<U>(stride) * 8,
            summary_workspace_bytes<U>(count, stride) + growth_workspace_bytes<U>(count, depth)};
}

// The one rule of whether a whole cell is summarised on the device: its rows and
// workspace within `budget`, the device memory usable now, where memory the
// backend already holds (the chunk loop's buffers, a previous cell's) counts as
// usable, as the chunk loop's budget() counts its own kept buffers. The CUDA
// backend (kernels/cell_runner.hpp, for the device and the emulated backend) and
// `gradsweep plan` (src/run/memory_plan.cpp, device_cell_bytes) size it alike.
inline bool device_cell_fits(uint64_t count, int depth, uint64_t budget) {
    return device_cell_bytes(count, depth).total() <= budget;
}

}  // namespace gs::kern
