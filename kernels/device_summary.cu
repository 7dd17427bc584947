// Device-side aggregation over seeds (see device_summary.cuh).
#include <cub/device/device_segmented_sort.cuh>
#include <cub/device/device_select.cuh>

#include <algorithm>
#include <initializer_list>
#include <limits>

#include "cuda_util.cuh"
#include "device_summary.cuh"
#include "summary_body.cuh"

namespace gs::kern {

namespace {


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

// The compaction's predicate: non-finite values are +inf in the columns.
struct IsFinite {
    __device__ bool operator()(double x) const { return x < std::numeric_limits<double>::infinity(); }
};

// Positive and zero finite values of each column: a thread per column runs
// count_signs (summary_body.cuh), the body the emulation runs.
__global__ void count_signs_kernel(const double* finite, uint64_t count, const uint64_t* n, int stride, uint64_t* pos_zero) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < stride) count_signs(finite + c * count, n[c], pos_zero[2 * c], pos_zero[2 * c + 1]);
}

// Each thread one block's partial of a column's lane term (summary_body.cuh), over
// a flat index (column, block), grid-stride: a deep network has more columns than
// a grid's y dimension allows.
__global__ void term_partials(const double* finite, uint64_t count, const uint64_t* n, int stride, uint64_t blocks_max,
                              SumTerm t, const double* a, const double* b, double* partial) {
    const uint64_t total = static_cast<uint64_t>(stride) * blocks_max;
    for (uint64_t idx = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; idx < total;
         idx += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
        const uint64_t c = idx / blocks_max, k = idx % blocks_max;
        if (k < sum_blocks(n[c])) partial[idx] = term_block_partial(finite + c * count, n[c], k, t, a[c], b[c]);
    }
}

// Each thread one column's pairwise tree over its partials.
__global__ void term_trees(double* partial, uint64_t blocks_max, const uint64_t* n, int stride, double* out) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < stride) out[c] = pairwise_tree(partial + c * blocks_max, sum_blocks(n[c]));
}

__global__ void order_statistics_kernel(const uint64_t* sorted, uint64_t count, const uint64_t* n, int stride, Summary* out) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < stride && n[c] > 0) order_statistics_sorted_keys(sorted + c * count, n[c], out[c]);
}

// The columns' values (non-finite ones already +inf) to their order keys, in
// place: the sort then orders -0.0 below +0.0 as the host's selection does
// (CUB's sort of doubles treats the two zeros as equal and keeps either first).
__global__ void keys_in_place(double* cols, uint64_t total) {
    for (uint64_t k = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; k < total;
         k += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
        const uint64_t key = order_key(cols[k]);
        memcpy(cols + k, &key, sizeof key);
    }
}

size_t sort_temp_bytes(uint64_t count, int stride) {
    size_t bytes = 0;
    const int64_t* no_offsets = nullptr;
    cuda_check(cub::DeviceSegmentedSort::SortKeys(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                                  static_cast<uint64_t*>(nullptr), static_cast<int64_t>(count * stride),
                                                  static_cast<int64_t>(stride), no_offsets, no_offsets + 1),
               "segmented sort size query");
    return bytes;
}

size_t select_temp_bytes(uint64_t count) {
    size_t bytes = 0;
    cuda_check(cub::DeviceSelect::If(nullptr, bytes, static_cast<const double*>(nullptr), static_cast<double*>(nullptr),
                                     static_cast<uint64_t*>(nullptr), static_cast<int64_t>(count), IsFinite{}),
               "select size query");
    return bytes;
}

}  // namespace

uint64_t summary_cub_temp_bytes(uint64_t count, int stride) {
    return std::max(select_temp_bytes(count), sort_temp_bytes(count, stride));
}

__global__ void nonfinite_rows_kernel(const double* rows, uint64_t count, int stride, unsigned long long* n) {
    for (uint64_t s = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; s < count;
         s += static_cast<uint64_t>(gridDim.x) * blockDim.x)
        if (row_has_nonfinite(rows, stride, s)) atomicAdd(n, 1ull);  // a count: the same in any order
}

uint64_t count_nonfinite_rows(const double* d_rows, uint64_t count, int stride, Slices& work, cudaStream_t stream) {
    if (count == 0) return 0;
    SliceScope scope(work);
    auto* d_n = work.take<unsigned long long>(1, "non-finite count");
    cuda_check(cudaMemsetAsync(d_n, 0, sizeof(unsigned long long), stream), "clear non-finite count");
    const uint64_t want = (count + 255) / 256;
    nonfinite_rows_kernel<<<static_cast<unsigned>(std::min<uint64_t>(want, 65535 * 8)), 256, 0, stream>>>(d_rows, count, stride, d_n);
    cuda_check(cudaGetLastError(), "non-finite rows kernel launch");
    unsigned long long n = 0;
    cuda_check(cudaMemcpyAsync(&n, d_n, sizeof n, cudaMemcpyDeviceToHost, stream), "copy non-finite count");
    cuda_check(cudaStreamSynchronize(stream), "non-finite count");
    return n;
}

void summarize_rows_on_device(double* d_rows, uint64_t count, int stride, std::vector<Summary>& out, Slices& work,
                              cudaStream_t stream, const std::function<void(const double*)>& on_columns) {
    out.assign(stride, Summary{});
    if (count == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        for (auto& s : out) s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return;
    }
    const uint64_t n = count * static_cast<uint64_t>(stride), blocks_max = sum_blocks(count);
    // Slices of the caller's kept workspace (kept_memory.hpp), not allocations:
    // a run of many small cells does no cudaMalloc per cell.
    SliceScope scope(work);
    const SummarySlices w = take_summary_slices(work, count, stride, summary_cub_temp_bytes(count, stride));
    double* const d_cols = w.cols;
    double* const d_fin = w.fin;
    int64_t* const d_off = w.offsets;
    uint64_t* const d_n = w.counts;               // finite values per column
    uint64_t* const d_signs = w.counts + stride;  // positive and zero values per column
    double* const d_partial = w.partial;
    double* const d_sums = w.sums;
    Summary* const d_stats = w.stats;

    const int threads = 256;
    const uint64_t want_blocks = (n + threads - 1) / threads;
    const unsigned blocks = static_cast<unsigned>(want_blocks < 65535 * 8 ? want_blocks : 65535 * 8);
    transpose_sanitize<<<blocks, threads, 0, stream>>>(d_rows, d_cols, count, stride);
    cuda_check(cudaGetLastError(), "transpose kernel launch");
    if (on_columns) on_columns(d_cols);  // same stream: sees the columns, done before the sort

    // Each column's finite values, in seed order: what the sums run over.
    size_t select_bytes = select_temp_bytes(count);
    void* const d_temp = w.temp;
    for (int c = 0; c < stride; ++c)
        cuda_check(cub::DeviceSelect::If(d_temp, select_bytes, d_cols + c * count, d_fin + c * count, d_n + c,
                                         static_cast<int64_t>(count), IsFinite{}, stream),
                   "select finite values");
    count_signs_kernel<<<(stride + 63) / 64, 64, 0, stream>>>(d_fin, count, d_n, stride, d_signs);
    cuda_check(cudaGetLastError(), "count kernel launch");
    // The finite, positive and zero counts are adjacent: one copy back.
    std::vector<uint64_t> counts_h(3 * static_cast<size_t>(stride));
    cuda_check(cudaMemcpyAsync(counts_h.data(), d_n, counts_h.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost, stream),
               "copy counts");
    cuda_check(cudaStreamSynchronize(stream), "counts");
    const uint64_t* const nf = counts_h.data();
    const uint64_t* const signs_h = counts_h.data() + stride;

    // Lane terms' sums for every column, with the same parameters a, b: one
    // upload of a and b, then each term's partials and trees (in stream order,
    // so a term's partials are read before the next term overwrites them), its
    // sums in its own part of d_sums, and one copy back of them all.
    auto sums_for = [&](std::initializer_list<SumTerm> terms, const std::vector<double>& a, const std::vector<double>& b) {
        std::vector<double> ab(a);
        ab.insert(ab.end(), b.begin(), b.end());
        double* const d_a = w.params;
        double* const d_b = w.params + stride;
        cuda_check(cudaMemcpyAsync(d_a, ab.data(), ab.size() * sizeof(double), cudaMemcpyHostToDevice, stream),
                   "copy parameters");
        const uint64_t want = (static_cast<uint64_t>(stride) * blocks_max + 127) / 128;
        size_t k = 0;
        for (SumTerm t : terms) {
            term_partials<<<static_cast<unsigned>(std::min<uint64_t>(want, 65535 * 8)), 128, 0, stream>>>(
                d_fin, count, d_n, stride, blocks_max, t, d_a, d_b, d_partial);
            cuda_check(cudaGetLastError(), "partial sums kernel launch");
            term_trees<<<(stride + 63) / 64, 64, 0, stream>>>(d_partial, blocks_max, d_n, stride, d_sums + k * stride);
            cuda_check(cudaGetLastError(), "tree kernel launch");
            ++k;
        }
        std::vector<double> r(k * stride);
        cuda_check(cudaMemcpyAsync(r.data(), d_sums, r.size() * sizeof(double), cudaMemcpyDeviceToHost, stream), "copy sums");
        cuda_check(cudaStreamSynchronize(stream), "column sums");
        return r;
    };
    const std::vector<double> zeros(stride, 0.0);
    const std::vector<double> value_logs = sums_for({SumTerm::value, SumTerm::log}, zeros, zeros);
    const double* const value = value_logs.data();
    const double* const logs = value_logs.data() + stride;
    std::vector<ColumnSums> cs(stride);
    std::vector<double> means(stride, 0.0);
    for (int c = 0; c < stride; ++c) {
        cs[c].n = nf[c];
        cs[c].n_pos = signs_h[2 * c];
        cs[c].n_zero = signs_h[2 * c + 1];
        cs[c].sum = value[c];
        cs[c].log_sum = logs[c];
        if (nf[c]) means[c] = mean_of(value[c], nf[c]);
    }
    const std::vector<double> squares = sums_for({SumTerm::square_dev}, means, zeros);
    // Mean, std and geomean as the host summariser finishes them; the rare
    // rescaled sums (a column beyond double's range) go back to the device.
    for (int c = 0; c < stride; ++c)
        moments_from_sums(
            cs[c], count,
            [&](SumTerm t, double a, double b) {
                if (t == SumTerm::square_dev && a == means[c]) return squares[c];
                std::vector<double> pa(stride, 0.0), pb(stride, 0.0);
                pa[c] = a;
                pb[c] = b;
                return sums_for({t}, pa, pb)[c];
            },
            out[c]);

    // Order statistics: the columns' keys sorted (non-finite values last, as +inf).
    keys_in_place<<<blocks, threads, 0, stream>>>(d_cols, n);
    cuda_check(cudaGetLastError(), "keys kernel launch");
    fill_offsets<<<(stride + 1 + threads - 1) / threads, threads, 0, stream>>>(d_off, stride, count);
    cuda_check(cudaGetLastError(), "offsets kernel launch");
    size_t sort_bytes = sort_temp_bytes(count, stride);
    // Sorted keys land back in d_rows (the caller's rows are consumed).
    uint64_t* const d_keys = reinterpret_cast<uint64_t*>(d_cols);
    uint64_t* const d_sorted = reinterpret_cast<uint64_t*>(d_rows);
    cuda_check(cub::DeviceSegmentedSort::SortKeys(d_temp, sort_bytes, static_cast<const uint64_t*>(d_keys), d_sorted,
                                                  static_cast<int64_t>(n), static_cast<int64_t>(stride), d_off, d_off + 1,
                                                  stream),
               "segmented sort");
    order_statistics_kernel<<<(stride + 63) / 64, 64, 0, stream>>>(d_sorted, count, d_n, stride, d_stats);
    cuda_check(cudaGetLastError(), "order statistics kernel launch");
    std::vector<Summary> order(stride);
    cuda_check(cudaMemcpyAsync(order.data(), d_stats, stride * sizeof(Summary), cudaMemcpyDeviceToHost, stream),
               "copy order statistics");
    cuda_check(cudaStreamSynchronize(stream), "summary");
    for (int c = 0; c < stride; ++c) {
        if (!nf[c]) continue;
        out[c].min = order[c].min;
        out[c].q05 = order[c].q05;
        out[c].median = order[c].median;
        out[c].q95 = order[c].q95;
        out[c].max = order[c].max;
    }
}

}  // namespace gs::kern
