// CUB's temporary storage, asked on the device, within the bounds that the plan
// and cuda_summarize_cell count (cuda_sizing.hpp, summary_workspace_bytes and
// growth_workspace_bytes): a CUB that asks for more would make both undercount
// (and the workspace's slices, kept_memory.hpp, would throw).
// In gradsweep_gpu_tests only: the emulation has no CUB to ask.
#include <cuda_runtime.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>

#include "device_growth.cuh"
#include "device_summary.cuh"
#include "gpu_device.hpp"
#include "gradsweep/cuda_sizing.hpp"
#include "gradsweep/stats.hpp"
#include "kept_memory.hpp"

using namespace gs;

TEST_CASE("CUDA: CUB's temporary storage is within the plan's bounds", "[gpu][memory]") {
    REQUIRE(cudaSetDevice(gputest::test_device()) == cudaSuccess);
    // Counts around CUB's tiles and the summation blocks, up to a cell of 2^28
    // seeds; depths on both sides of the sort's partitioning thresholds (300 and
    // 500 segments: depth 60 and 100).
    for (uint64_t count : {uint64_t{1}, uint64_t{2}, uint64_t{127}, uint64_t{4096}, uint64_t{65537}, uint64_t{1} << 20,
                           (uint64_t{1} << 24) + 3, uint64_t{1} << 28}) {
        for (int depth : {1, 5, 20, 59, 60, 99, 100, 101, 1000}) {
            const int stride = row_stride(depth);
            if (count * stride >= (uint64_t{1} << 33)) continue;  // rows past 64 GiB: no device holds them with the workspace
            INFO("count " << count << " depth " << depth);
            CHECK(kern::summary_cub_temp_bytes(count, stride) <=
                  std::max(kern::cub_sort_temp_bound(count, stride), kern::cub_select_temp_bound(count)));
            // The slices a whole cell takes with CUB's own sizes fit the workspace
            // the fit rule counts (laid out over a made-up base, never touched).
            kern::Slices w(reinterpret_cast<void*>(uintptr_t{1} << 40), kern::device_cell_bytes(count, depth).workspace);
            CHECK_NOTHROW(kern::take_summary_slices(w, count, stride, kern::summary_cub_temp_bytes(count, stride)));
            CHECK_NOTHROW(kern::take_growth_slices(w, count, depth, kern::growth_cub_temp_bytes(count)));
        }
        INFO("count " << count);
        CHECK(kern::growth_cub_temp_bytes(count) <= kern::cub_select_temp_bound(count));
    }
}
