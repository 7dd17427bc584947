// The growth fits on the device (see device_growth.cuh).
#include <cub/device/device_select.cuh>

#include <algorithm>
#include <vector>

#include "cuda_util.cuh"
#include "device_growth.cuh"
#include "growth_body.cuh"
#include "summary_body.cuh"

namespace gs::kern {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(uint64_t n) {
    const uint64_t want = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(want, 65535 * 8)));
}

#define GS_GRID_STRIDE(i, n) \
    for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<uint64_t>(gridDim.x) * blockDim.x)

__global__ void used_kernel(GrowthColumns c, unsigned char* used, uint64_t* iota) {
    GS_GRID_STRIDE(s, c.count) {
        used[s] = growth_used_body(c, s);
        iota[s] = s;
    }
}

__global__ void exponent_kernel(GrowthColumns c, const uint64_t* idx, uint64_t n, int k, int* E) {
    GS_GRID_STRIDE(j, n) {
        const int e = growth_exponent_body(c, idx, k, j);
        if (e != kNoExponent) atomicMax(E, e);  // a maximum: the same whatever the order
    }
}

__global__ void term_kernel(GrowthColumns c, const uint64_t* idx, uint64_t n, int k, int E, double* out) {
    GS_GRID_STRIDE(j, n) out[j] = growth_term_body(c, idx, k, E, j);
}

__global__ void value_kernel(GrowthColumns c, const uint64_t* idx, uint64_t n, const int* E, const double* r, double* out) {
    GS_GRID_STRIDE(j, n) out[j] = growth_value_body(c, idx, E, r, j);
}

__global__ void partial_kernel(const double* v, uint64_t n, SumTerm t, double a, double* partial) {
    GS_GRID_STRIDE(b, sum_blocks(n)) partial[b] = term_block_partial(v, n, b, t, a, 0.0);
}

}  // namespace

uint64_t growth_cub_temp_bytes(uint64_t count) {
    size_t bytes = 0;
    cuda_check(cub::DeviceSelect::Flagged(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                          static_cast<const unsigned char*>(nullptr), static_cast<uint64_t*>(nullptr),
                                          static_cast<uint64_t*>(nullptr), static_cast<int64_t>(count)),
               "growth select size query");
    return bytes;
}

namespace {

// The device's columns as a GrowthSumSource (growth_terms.hpp). Its device
// memory is slices of the caller's kept workspace (kept_memory.hpp).
class DeviceGrowthSums final : public GrowthSumSource {
public:
    DeviceGrowthSums(const GrowthColumns& c, Slices& work, cudaStream_t stream)
        : c_(c), stream_(stream), w_(take_growth_slices(work, c.count, c.layers, growth_cub_temp_bytes(c.count))) {
        used_ = w_.used;
        iota_ = w_.iota;
        idx_ = w_.idx;
        vals_ = w_.vals;
        partial_ = w_.partial;
        small_ = w_.small;
        params_ = w_.params;
    }
    uint64_t mark_used() override {
        used_kernel<<<grid_for(c_.count), kThreads, 0, stream_>>>(c_, used_, iota_);
        cuda_check(cudaGetLastError(), "growth flags kernel launch");
        size_t bytes = growth_cub_temp_bytes(c_.count);
        void* temp = w_.temp;
        // The used seeds' numbers, in seed order: the order every sum runs in.
        cuda_check(cub::DeviceSelect::Flagged(temp, bytes, iota_, used_, idx_, small_, static_cast<int64_t>(c_.count), stream_),
                   "growth select");
        cuda_check(cudaMemcpyAsync(&n_, small_, sizeof n_, cudaMemcpyDeviceToHost, stream_), "copy growth count");
        cuda_check(cudaStreamSynchronize(stream_), "growth count");
        return n_;
    }
    int max_exponent(int k) override {
        int E = kNoExponent;
        int* d_E = reinterpret_cast<int*>(small_ + 1);
        cuda_check(cudaMemcpyAsync(d_E, &E, sizeof E, cudaMemcpyHostToDevice, stream_), "copy growth exponent");
        exponent_kernel<<<grid_for(n_), kThreads, 0, stream_>>>(c_, idx_, n_, k, d_E);
        cuda_check(cudaGetLastError(), "growth exponent kernel launch");
        cuda_check(cudaMemcpyAsync(&E, d_E, sizeof E, cudaMemcpyDeviceToHost, stream_), "copy growth exponent");
        cuda_check(cudaStreamSynchronize(stream_), "growth exponent");
        return E;
    }
    double scaled_sum(int k, int E) override {
        term_kernel<<<grid_for(n_), kThreads, 0, stream_>>>(c_, idx_, n_, k, E, vals_);
        cuda_check(cudaGetLastError(), "growth term kernel launch");
        return sum(SumTerm::value, 0.0);
    }
    double seed_value_sum(const int* E, const double* r) override {
        values(E, r);
        return sum(SumTerm::value, 0.0);
    }
    double seed_square_dev_sum(const int* E, const double* r, double mean) override {
        values(E, r);
        return sum(SumTerm::square_dev, mean);
    }

private:
    void values(const int* E, const double* r) {
        const uint64_t L = static_cast<uint64_t>(c_.layers);
        std::vector<double> p(2 * L);
        std::copy(r, r + L, p.begin());
        // E as ints in the second half (L ints fit in L doubles)
        std::copy(E, E + L, reinterpret_cast<int*>(p.data() + L));
        cuda_check(cudaMemcpyAsync(params_, p.data(), p.size() * sizeof(double), cudaMemcpyHostToDevice, stream_),
                   "copy growth parameters");
        value_kernel<<<grid_for(n_), kThreads, 0, stream_>>>(c_, idx_, n_, reinterpret_cast<const int*>(params_ + L), params_, vals_);
        cuda_check(cudaGetLastError(), "growth value kernel launch");
        // No wait here for p, freed on return: a copy from pageable memory has
        // read its source when cudaMemcpyAsync returns (CUDA runtime API, "API
        // synchronization behavior"); sum() waits for the values it reads.
    }
    // The sum of a lane term over vals_[0 .. n_): block partials on the device,
    // their pairwise tree on the host (the same function, the same additions).
    double sum(SumTerm t, double a) {
        const uint64_t nb = sum_blocks(n_);
        partial_kernel<<<grid_for(nb), kThreads, 0, stream_>>>(vals_, n_, t, a, partial_);
        cuda_check(cudaGetLastError(), "growth partial kernel launch");
        std::vector<double> host(nb);
        cuda_check(cudaMemcpyAsync(host.data(), partial_, nb * sizeof(double), cudaMemcpyDeviceToHost, stream_),
                   "copy growth partials");
        cuda_check(cudaStreamSynchronize(stream_), "growth partials");
        return pairwise_tree(host.data(), nb);
    }

    GrowthColumns c_;
    cudaStream_t stream_;
    uint64_t n_ = 0;
    GrowthSlices w_;
    unsigned char* used_;
    uint64_t *iota_, *idx_, *small_;
    double *vals_, *partial_, *params_;
};

}  // namespace

void fit_growth_on_device(const double* d_cols, uint64_t count, int depth, GrowthRate& growth, GrowthRate& delta_growth,
                          Slices& work, cudaStream_t stream) {
    int64_t first = 0, last = -1;
    growth_layers(depth, first, last);
    GrowthColumns c;
    c.cols = d_cols;
    c.count = count;
    c.first = static_cast<int>(first);
    c.layers = static_cast<int>(std::max<int64_t>(0, last - first + 1));
    c.ratio = false;
    {
        SliceScope scope(work);  // synchronous: its slices are free again for the second fit
        DeviceGrowthSums sums(c, work, stream);
        growth = fit_growth_with(depth, sums);
    }
    c.ratio = true;
    SliceScope scope(work);
    DeviceGrowthSums sums(c, work, stream);
    delta_growth = fit_growth_with(depth, sums);
}

}  // namespace gs::kern
