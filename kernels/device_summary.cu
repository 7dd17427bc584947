// Device-side aggregation over seeds (see device_summary.cuh).
#include <cub/device/device_segmented_sort.cuh>

#include <limits>

#include "cuda_util.cuh"
#include "device_summary.cuh"
#include "summary_body.cuh"

namespace gs::kern {

namespace {

constexpr int kSummaryThreads = 256;

// rows [count][stride] -> cols [stride][count]; non-finite -> +inf so that the
// ascending sort puts them after every finite value (a NaN's sign bit would
// otherwise send it to either end of a radix order).
__global__ void transpose_sanitize(const double* __restrict__ rows, double* __restrict__ cols, uint64_t count, int stride) {
    const uint64_t total = count * static_cast<uint64_t>(stride);
    for (uint64_t k = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; k < total;
         k += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
        const uint64_t r = k / static_cast<uint64_t>(stride), c = k % static_cast<uint64_t>(stride);
        const double x = rows[k];
        cols[c * count + r] = isfinite(x) ? x : std::numeric_limits<double>::infinity();
    }
}

__global__ void fill_offsets(int64_t* off, int segments, uint64_t count) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s <= segments) off[s] = static_cast<int64_t>(count) * s;
}

__global__ void __launch_bounds__(kSummaryThreads) summarize_sorted(const double* sorted, uint64_t count, Summary* out) {
    __shared__ double red[kSummarySums * kSummaryThreads];
    BlockSync sync;
    summary_body(sorted + blockIdx.x * count, count, static_cast<int>(threadIdx.x), kSummaryThreads, red, sync,
                 out + blockIdx.x);
}

size_t sort_temp_bytes(uint64_t count, int stride) {
    size_t bytes = 0;
    const int64_t* no_offsets = nullptr;
    cuda_check(cub::DeviceSegmentedSort::SortKeys(nullptr, bytes, static_cast<const double*>(nullptr),
                                                  static_cast<double*>(nullptr), static_cast<int64_t>(count * stride),
                                                  static_cast<int64_t>(stride), no_offsets, no_offsets + 1),
               "segmented sort size query");
    return bytes;
}

}  // namespace

uint64_t summary_workspace_bytes(uint64_t count, int stride) {
    const uint64_t n = count * static_cast<uint64_t>(stride);
    return n * sizeof(double) + sort_temp_bytes(count, stride) + (stride + 1) * sizeof(int64_t) + stride * sizeof(Summary) +
           1024;
}

void summarize_rows_on_device(double* d_rows, uint64_t count, int stride, std::vector<Summary>& out, cudaStream_t stream) {
    out.assign(stride, Summary{});
    if (count == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        for (auto& s : out) s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return;
    }
    const uint64_t n = count * static_cast<uint64_t>(stride);
    DeviceBuffer cols, temp, offsets, sums;
    double* d_cols = static_cast<double*>(cols.reserve(n * sizeof(double), "summary columns"));
    int64_t* d_off = static_cast<int64_t*>(offsets.reserve((stride + 1) * sizeof(int64_t), "summary offsets"));
    Summary* d_sum = static_cast<Summary*>(sums.reserve(stride * sizeof(Summary), "summaries"));

    const int threads = 256;
    const uint64_t want_blocks = (n + threads - 1) / threads;
    const unsigned blocks = static_cast<unsigned>(want_blocks < 65535 * 8 ? want_blocks : 65535 * 8);
    transpose_sanitize<<<blocks, threads, 0, stream>>>(d_rows, d_cols, count, stride);
    cuda_check(cudaGetLastError(), "transpose kernel launch");
    fill_offsets<<<(stride + 1 + threads - 1) / threads, threads, 0, stream>>>(d_off, stride, count);
    cuda_check(cudaGetLastError(), "offsets kernel launch");

    size_t temp_bytes = sort_temp_bytes(count, stride);
    void* d_temp = temp.reserve(temp_bytes > 0 ? temp_bytes : 1, "segmented sort storage");
    // Sorted values land back in d_rows (the caller's rows are consumed).
    cuda_check(cub::DeviceSegmentedSort::SortKeys(d_temp, temp_bytes, static_cast<const double*>(d_cols), d_rows,
                                                  static_cast<int64_t>(n), static_cast<int64_t>(stride), d_off, d_off + 1,
                                                  stream),
               "segmented sort");
    summarize_sorted<<<stride, kSummaryThreads, 0, stream>>>(d_rows, count, d_sum);
    cuda_check(cudaGetLastError(), "summary kernel launch");
    cuda_check(cudaMemcpyAsync(out.data(), d_sum, stride * sizeof(Summary), cudaMemcpyDeviceToHost, stream),
               "copy summaries");
    cuda_check(cudaStreamSynchronize(stream), "summary");
}

}  // namespace gs::kern
