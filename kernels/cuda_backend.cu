// The CUDA backend: gs::Backend on one device. Per call it resolves the cell once
// (net_layout.cuh), then runs the seeds in chunks sized from cudaMemGetInfo, one
// fused kernel launch per chunk (network_body.cuh: whole forward + backward of
// every network in the chunk), and copies the rows back, each chunk's copy
// (through pinned memory) overlapping the next chunk's kernel. Also the device-side
// summary entry points of cuda_extras.hpp.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cell_runner.hpp"
#include "cuda_util.cuh"
#include "device_growth.cuh"
#include "device_summary.cuh"
#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"
#include "chunk_runner.cuh"
#include "net_layout.cuh"
#include "network_body.cuh"
#include "small_kernels.cuh"

namespace gs {

namespace kern {
namespace {

constexpr int kMaxThreadsPerNet = 256;

// P = 1: thread = network, many per block. P > 1: block (of P threads) = network.
template <class T>
__global__ void __launch_bounds__(kMaxThreadsPerNet) network_kernel(NetArgs<T> a, int P) {
    extern __shared__ double red[];  // 3 * P doubles, then (a.shared_scratch) the network's scratch
    BlockSync sync;
    if (P == 1) {
        const uint64_t net = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
        if (net >= a.nets) return;  // no barrier is ever called with P = 1
        network_body<T>(a, net, 0, 1, red, sync);
    } else {
        network_body<T>(a, blockIdx.x, static_cast<int>(threadIdx.x), P, red, sync);
    }
}

// Free device memory we allow ourselves: what is free now less a margin for the
// CUDA context, CUB and other processes.
uint64_t memory_budget() {
    size_t free_b = 0, total_b = 0;
    cuda_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    const uint64_t margin = std::max<uint64_t>(free_b / 10, uint64_t{256} << 20);
    return free_b > margin ? free_b - margin : 0;
}

// The chunk loop's streams and events (run_chunks, chunk_runner.cuh): kernels
// on `compute`, row copies on `copy`, so that a chunk's copy overlaps the next
// chunk's kernel. Non-blocking streams: nothing on the legacy default stream
// (the synchronous uploads, the device summary) joins them implicitly; the loop
// orders what it needs with these events and its waits. Made on first use, on
// the device current then (run_any sets the backend's first).
struct ChunkStreams {
    cudaStream_t compute = nullptr, copy = nullptr;
    cudaEvent_t launched = nullptr;        // recorded after each launch: the next copy waits for it
    cudaEvent_t copied[kRowBuffers] = {};  // row buffer b's last copy

    ChunkStreams() = default;
    ChunkStreams(const ChunkStreams&) = delete;
    ChunkStreams& operator=(const ChunkStreams&) = delete;
    ~ChunkStreams() {
        for (cudaEvent_t e : copied)
            if (e) cudaEventDestroy(e);
        if (launched) cudaEventDestroy(launched);
        if (copy) cudaStreamDestroy(copy);
        if (compute) cudaStreamDestroy(compute);
    }
    void ensure() {
        if (compute) return;
        cuda_check(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), "create compute stream");
        cuda_check(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking), "create copy stream");
        // Ordering only: no timing (cheaper to record and to wait on).
        cuda_check(cudaEventCreateWithFlags(&launched, cudaEventDisableTiming), "create launch event");
        for (cudaEvent_t& e : copied) cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "create copy event");
    }
};

// A launch record (CudaTestHooks::launches) waiting for its kernel's timing events.
struct PendingLaunch {
    CudaLaunchRecord record;
    cudaEvent_t start = nullptr, stop = nullptr;
    PendingLaunch(const PendingLaunch&) = delete;
    PendingLaunch& operator=(const PendingLaunch&) = delete;
    explicit PendingLaunch(const CudaLaunchRecord& r) : record(r) {}
    ~PendingLaunch() {
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
    }
};

// The device side of run_chunks (chunk_runner.cuh): launches and row copies
// asynchronous on two streams, the waits the loop asks for; uploads synchronous.
template <class T>
struct CudaDev {
    DeviceBuffer &layers, &fixed, &scratch, &params, &rows;
    PinnedBuffer& staging;
    ChunkStreams& streams;
    const CudaTestHooks& hooks;
    std::vector<std::unique_ptr<PendingLaunch>> timed{};  // with hooks.launches: resolved by wait_launches

    // A call that throws may leave kernels and copies running into buffers the
    // next call reuses (or frees): they end before this call does.
    ~CudaDev() {
        if (streams.compute) cudaStreamSynchronize(streams.compute);
        if (streams.copy) cudaStreamSynchronize(streams.copy);
    }

    // Free memory, plus the buffers this backend already holds (run_chunks reuses them).
    uint64_t budget() {
        return capped_budget(memory_budget() + scratch.size() + params.size() + rows.size(), hooks.memory_budget_bytes);
    }
    LayerDesc* upload_layers(const std::vector<LayerDesc>& v) {
        void* p = layers.reserve(v.size() * sizeof(LayerDesc), "layer table");
        cuda_check(cudaMemcpy(p, v.data(), v.size() * sizeof(LayerDesc), cudaMemcpyHostToDevice), "copy layer table");
        return static_cast<LayerDesc*>(p);
    }
    T* upload_fixed_input(const std::vector<T>& v) {
        void* p = fixed.reserve(v.size() * sizeof(T), "fixed input");
        cuda_check(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "copy fixed input");
        return static_cast<T*>(p);
    }
    // A network's scratch goes in its block's shared memory (P > 1) when it fits
    // in a block and the kernel keeps as many blocks per SM as with the reduction
    // buffer alone: registers stay what bounds occupancy, so the move only turns
    // the sweeps' device-memory loads and stores into shared ones.
    bool scratch_in_shared(uint64_t bytes, int P) {
        if (hooks.device_scratch_only) return false;
        const uint64_t red = 3 * static_cast<uint64_t>(P) * sizeof(double);
        int device = 0, optin = 0;
        cuda_check(cudaGetDevice(&device), "cudaGetDevice");
        cuda_check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "shared memory per block");
        if (red + bytes > static_cast<uint64_t>(optin)) return false;
        // Launches past the default 48 KiB of dynamic shared memory need the opt-in;
        // the attribute only ever allows the device's maximum, so no other launch's
        // size can fall outside it.
        cuda_check(cudaFuncSetAttribute(network_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin),
                   "allow dynamic shared memory");
        int with = 0, without = 0;
        cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&with, network_kernel<T>, P, static_cast<size_t>(red + bytes)),
                   "occupancy with shared scratch");
        cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&without, network_kernel<T>, P, static_cast<size_t>(red)),
                   "occupancy without shared scratch");
        return with > 0 && with >= without;
    }
    T* alloc_scratch(uint64_t n) { return static_cast<T*>(scratch.reserve(n * sizeof(T), "scratch")); }
    T* alloc_params(uint64_t n) { return static_cast<T*>(params.reserve(n * sizeof(T), "torch parameters")); }
    double* alloc_rows(uint64_t n) { return static_cast<double*>(rows.reserve(n * sizeof(double), "rows")); }
    double* alloc_staging(uint64_t n) { return static_cast<double*>(staging.reserve(n * sizeof(double), "pinned row staging")); }
    void upload_params(T* dst, const std::vector<T>& src) {
        streams.ensure();
        // On the compute stream: after the launches that read the parameters replaced.
        cuda_check(cudaMemcpyAsync(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, streams.compute),
                   "copy torch parameters");
        cuda_check(cudaStreamSynchronize(streams.compute), "copy torch parameters");
    }
    void launch(const NetArgs<T>& a, int P) {
        streams.ensure();
        const size_t smem = 3 * static_cast<size_t>(P) * sizeof(double) + (a.shared_scratch ? a.scratch_per_net * sizeof(T) : 0);
        const unsigned blocks = static_cast<unsigned>(launch_blocks(a.nets, P));
        PendingLaunch* t = nullptr;
        if (hooks.launches) {  // events only when a test or benchmark asks for the launch record
            timed.push_back(std::make_unique<PendingLaunch>(launch_record(a, P)));
            t = timed.back().get();
            cuda_check(cudaEventCreate(&t->start), "cudaEventCreate");
            cuda_check(cudaEventCreate(&t->stop), "cudaEventCreate");
            cuda_check(cudaEventRecord(t->start, streams.compute), "cudaEventRecord");
        }
        if (a.small_shape >= 0)  // the cell's shape has a small-width kernel (small_net_body.cuh)
            launch_small_network_kernel<T>(a, blocks, streams.compute);
        else
            network_kernel<T><<<blocks, P == 1 ? kThreadsPerBlockSoa : P, smem, streams.compute>>>(a, P);
        cuda_check(cudaGetLastError(), "network kernel launch");
        if (t) cuda_check(cudaEventRecord(t->stop, streams.compute), "cudaEventRecord");
        cuda_check(cudaEventRecord(streams.launched, streams.compute), "record launch");
    }
    void download_async(int b, double* dst, const double* src, uint64_t n) {
        cuda_check(cudaStreamWaitEvent(streams.copy, streams.launched, 0), "copy waits for launch");
        cuda_check(cudaMemcpyAsync(dst, src, n * sizeof(double), cudaMemcpyDeviceToHost, streams.copy), "copy rows");
        cuda_check(cudaEventRecord(streams.copied[b], streams.copy), "record row copy");
    }
    void wait_download(int b) { cuda_check(cudaEventSynchronize(streams.copied[b]), "network kernel or row copy"); }
    void wait_launches() {
        if (streams.compute) cuda_check(cudaStreamSynchronize(streams.compute), "network kernel");
        for (const auto& t : timed) {
            float ms = 0;
            cuda_check(cudaEventElapsedTime(&ms, t->start, t->stop), "cudaEventElapsedTime");
            t->record.kernel_ms = ms;
            hooks.launches->push_back(t->record);
        }
        timed.clear();
    }
};

class CudaBackend final : public Backend {
public:
    CudaBackend(int device, const CudaTestHooks& hooks) : device_(device), hooks_(hooks) {
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        cudaDeviceProp prop{};
        cuda_check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
        name_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                std::to_string(prop.totalGlobalMem >> 20) + " MiB, " + std::to_string(prop.multiProcessorCount) + " SMs)";
    }
    std::string name() const override { return "cuda"; }
    std::string device_name() const override { return name_; }

    void run(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* out) override {
        // The buffers kept for whole cells are not used here: when they hold
        // more than the device has free, the chunk loop gets that memory back
        // (a worker that runs units after whole cells on a full device).
        if (count && cell_.held() && cell_.held() > memory_budget()) cell_.release();
        run_any(spec, cell, seed_offset, count, out, nullptr);
    }

    // Rows straight into device memory d_rows (count x stride doubles), for the
    // device-side summary.
    void run_to_device(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* d_rows) {
        run_any(spec, cell, seed_offset, count, nullptr, d_rows);
    }

    // The cell's rows and the summary's and growth fits' workspace go into
    // buffers kept across cells (cell_, kept_memory.hpp), as the chunk loop's
    // are: a run of many small cells does no cudaMalloc or cudaFree per cell. The
    // rows never leave the device: the non-finite count, every column's summary
    // and both growth fits are made there, on the chunk loop's compute stream
    // (ordered after the launches that wrote the rows), with a wait only where
    // the host reads a result back. The steps and the fit rule are
    // summarize_cell_kept's (cell_runner.hpp), which the emulated backend runs too.
    bool summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, CellResult& out) override {
        if (count == 0) return false;
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        CellDev dev{*this, spec, cell, count};
        return summarize_cell_kept(dev, cell_, cell, count, hooks_, out);
    }

    void release_buffers() {
        scratch_.release();
        params_.release();
        rows_.release();
    }

private:
    // The device side of summarize_cell_kept (cell_runner.hpp).
    struct CellDev {
        CudaBackend& b;
        const Spec& spec;
        const Cell& cell;
        uint64_t count;
        uint64_t free_bytes() { return memory_budget(); }
        uint64_t chunk_held() { return b.scratch_.size() + b.params_.size() + b.rows_.size(); }
        void release_chunk_buffers() { b.release_buffers(); }
        void run_rows(double* d_rows) { b.run_any(spec, cell, 0, count, nullptr, d_rows); }
        void summarize(double* d_rows, Slices& work, CellResult& r) {
            const int D = cell.depth(), stride = row_stride(D);
            const cudaStream_t s = b.streams_.compute;  // made by the launches that wrote the rows
            r.nonfinite_networks = count_nonfinite_rows(d_rows, count, stride, work, s);
            std::vector<Summary> sums;
            summarize_rows_on_device(d_rows, count, stride, sums, work, s, [&](const double* d_cols) {
                fit_growth_on_device(d_cols, count, D, r.growth, r.delta_growth, work, s);
            });
            put_cell_summaries(sums, D, r);
        }
    };

    void run_any(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, double* host_out, double* d_rows) {
        if (count == 0) return;
        cuda_check(cudaSetDevice(device_), "cudaSetDevice");
        NetLayout L = make_layout(spec, cell);
        force_threads_per_net(L, hooks_.threads_per_net);
        L.small_kernel = !hooks_.general_kernel_only;
        if (spec.precision == Precision::float32) {
            CudaDev<float> dev{layers_, fixed_, scratch_, params_, rows_, staging_, streams_, hooks_};
            run_chunks<float>(dev, spec, cell, L, seed_offset, count, host_out, d_rows);
        } else {
            CudaDev<double> dev{layers_, fixed_, scratch_, params_, rows_, staging_, streams_, hooks_};
            run_chunks<double>(dev, spec, cell, L, seed_offset, count, host_out, d_rows);
        }
    }

    int device_;
    CudaTestHooks hooks_;
    std::string name_;
    DeviceBuffer layers_, fixed_, scratch_, params_, rows_;
    CellBuffers<DeviceBuffer> cell_;  // a whole cell's rows and workspace, kept across cells
    PinnedBuffer staging_;   // host memory, kept across calls like the device buffers
    ChunkStreams streams_;   // the chunk loop's; no work is left on them between calls (CudaDev waits)
};

}  // namespace
}  // namespace kern

bool cuda_available(std::string* device_name, int device) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (device_name) *device_name = std::string("no CUDA device: ") + cudaGetErrorString(e);
        return false;
    }
    if (device < 0 || device >= n) {
        if (device_name) *device_name = "no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " present)";
        return false;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
        (void)cudaGetLastError();
        if (device_name) *device_name = "CUDA device " + std::to_string(device) + " not usable";
        return false;
    }
    // A device this build has no kernel image for (older than sm_80, no PTX JIT) is not usable.
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, kern::network_kernel<float>) != cudaSuccess) {
        (void)cudaGetLastError();
        if (device_name)
            *device_name = std::string(prop.name) + ": no kernel image for sm_" + std::to_string(prop.major) +
                           std::to_string(prop.minor);
        return false;
    }
    if (device_name) *device_name = prop.name;
    return true;
}

std::unique_ptr<Backend> make_cuda_backend(int device) { return make_cuda_backend(device, CudaTestHooks{}); }

std::unique_ptr<Backend> make_cuda_backend(int device, const CudaTestHooks& hooks) {
    if (hooks.threads_per_net) {
        kern::NetLayout probe;
        kern::force_threads_per_net(probe, hooks.threads_per_net);  // reject a bad P before touching the device
    }
    std::string why;
    if (!cuda_available(&why, device)) throw std::runtime_error("cuda backend: " + why);
    return std::make_unique<kern::CudaBackend>(device, hooks);
}

bool cuda_run_summarized(const Spec& spec, const Cell& cell, uint64_t seed_offset, uint64_t count, int device,
                         std::vector<Summary>& out) {
    if (!cuda_available(nullptr, device)) return false;
    kern::CudaBackend backend(device, CudaTestHooks{});
    const int stride = row_stride(cell.depth());
    kern::Slices none(nullptr, 0);
    if (count == 0) {
        kern::summarize_rows_on_device(nullptr, 0, stride, out, none);
        return true;
    }
    const uint64_t rows_bytes = count * stride * sizeof(double);
    const uint64_t need = rows_bytes + kern::summary_workspace_bytes(count, stride);
    if (need > kern::memory_budget())
        throw std::runtime_error("cuda_run_summarized: " + std::to_string(count) + " networks need " + std::to_string(need >> 20) +
                                 " MiB of device memory for their rows and the sort; run fewer seeds per call");
    kern::DeviceBuffer rows, work;  // one call: its own buffers
    double* d_rows = static_cast<double*>(rows.reserve(rows_bytes, "rows"));
    backend.run_to_device(spec, cell, seed_offset, count, d_rows);
    backend.release_buffers();  // the sort needs the room
    const uint64_t work_bytes = kern::summary_workspace_bytes(count, stride);
    kern::Slices slices(work.reserve(work_bytes, "summary workspace"), work_bytes);
    kern::summarize_rows_on_device(d_rows, count, stride, out, slices);
    return true;
}

bool cuda_summarize_cell(const Spec& spec, const Cell& cell, uint64_t count, int device, CellResult& out) {
    if (!cuda_available(nullptr, device)) return false;
    kern::CudaBackend backend(device, CudaTestHooks{});
    return backend.summarize_cell(spec, cell, count, out);
}

bool cuda_summarize_rows(const double* rows, uint64_t count, int stride, int device, std::vector<Summary>& out) {
    if (!cuda_available(nullptr, device)) return false;
    kern::cuda_check(cudaSetDevice(device), "cudaSetDevice");
    kern::Slices none(nullptr, 0);
    if (count == 0) {
        kern::summarize_rows_on_device(nullptr, 0, stride, out, none);
        return true;
    }
    const uint64_t bytes = count * stride * sizeof(double);
    const uint64_t work_bytes = kern::summary_workspace_bytes(count, stride);
    kern::DeviceBuffer buf, work;  // one call: its own buffers
    double* d = static_cast<double*>(buf.reserve(bytes, "rows"));
    kern::cuda_check(cudaMemcpy(d, rows, bytes, cudaMemcpyHostToDevice), "copy rows");
    kern::Slices slices(work.reserve(work_bytes, "summary workspace"), work_bytes);
    kern::summarize_rows_on_device(d, count, stride, out, slices);
    return true;
}

}  // namespace gs
