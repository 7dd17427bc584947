// Memory the CUDA backend keeps across calls, written without the CUDA API so the
// host emulation tests run the same code over host memory: a grow-only buffer
// parameterised by its allocator (cuda_util.cuh makes the device and the pinned
// host kind of it), consecutive slices of one such buffer (a workspace), and the
// slices of the device summary's and growth fits' workspaces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "gradsweep/column_sums.hpp"  // sum_blocks, Summary

namespace gs::kern {

// Grow-only allocation: reused across calls, replaced only by a larger one, freed
// with its owner. Alloc: `void* allocate(size_t bytes, const char* what)` (throws
// on failure) and `void deallocate(void*)`. A buffer that grows frees its old
// allocation first, so the memory it held counts as usable for the new one.
template <class Alloc>
class GrowOnlyBuffer {
public:
    GrowOnlyBuffer() = default;
    explicit GrowOnlyBuffer(Alloc a) : alloc_(std::move(a)) {}
    GrowOnlyBuffer(const GrowOnlyBuffer&) = delete;
    GrowOnlyBuffer& operator=(const GrowOnlyBuffer&) = delete;
    ~GrowOnlyBuffer() { release(); }

    void* reserve(size_t bytes, const char* what) {
        if (bytes <= size_) return ptr_;
        release();
        ptr_ = alloc_.allocate(bytes, what);
        size_ = bytes;
        ++allocations_;
        return ptr_;
    }
    void release() {
        if (ptr_) alloc_.deallocate(ptr_);
        ptr_ = nullptr;
        size_ = 0;
    }
    void* get() const { return ptr_; }
    size_t size() const { return size_; }
    // Allocations made so far (what the tests count to see a buffer kept).
    uint64_t allocations() const { return allocations_; }

private:
    [[no_unique_address]] Alloc alloc_{};
    void* ptr_ = nullptr;
    size_t size_ = 0;
    uint64_t allocations_ = 0;
};

// Consecutive slices of one workspace: each starts kSliceAlign bytes aligned (as
// cudaMalloc's allocations do; CUB's temporary storage wants that) and holds at
// least one element. Taking more than the workspace holds throws rather than
// overrun: the bounds of cuda_sizing.hpp (CUB's storage among them) would then
// be too small. Never dereferences the base, so a dry run over a made-up base
// checks a layout against its bound (tests/gpu/emu_cell_test.cpp).
inline constexpr uint64_t kSliceAlign = 256;
class Slices {
public:
    Slices(void* base, uint64_t bytes) : base_(reinterpret_cast<uintptr_t>(base)), bytes_(bytes) {}
    template <class T>
    T* take(uint64_t elements, const char* what) {
        return static_cast<T*>(take_bytes((elements ? elements : 1) * sizeof(T), what));
    }
    void* take_bytes(uint64_t bytes, const char* what) {
        const uint64_t at = (used_ + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
        if (at > bytes_ || bytes > bytes_ - at)
            throw std::runtime_error(std::string("cuda backend: ") + what + ": workspace of " + std::to_string(bytes_) +
                                     " bytes too small (" + std::to_string(at + bytes) + " needed)");
        used_ = at + bytes;
        return reinterpret_cast<void*>(base_ + at);
    }
    uint64_t used() const { return used_; }
    uint64_t size() const { return bytes_; }
    // Back to an earlier used(): the slices taken since are free to take again.
    void rewind(uint64_t mark) { used_ = mark; }

private:
    uintptr_t base_;
    uint64_t bytes_;
    uint64_t used_ = 0;
};

// Rewinds on scope exit: a synchronous step's slices are free once it returns.
class SliceScope {
public:
    explicit SliceScope(Slices& s) : s_(s), mark_(s.used()) {}
    SliceScope(const SliceScope&) = delete;
    SliceScope& operator=(const SliceScope&) = delete;
    ~SliceScope() { s_.rewind(mark_); }

private:
    Slices& s_;
    uint64_t mark_;
};

// summarize_rows_on_device's workspace (kernels/device_summary.cu), bounded by
// summary_workspace_bytes (cuda_sizing.hpp) when cub_bytes is within its CUB
// bounds. Per column: its values (cols: transposed, then their order keys), its
// finite values, an offset (stride + 1), its counts (finite, then positive and
// zero pairs), block partials, two term parameters (a, then b), two sums (two
// terms summed in one go) and its order statistics.
struct SummarySlices {
    double* cols;
    double* fin;
    void* temp;
    int64_t* offsets;
    uint64_t* counts;  // [0, stride): finite values; [stride, 3 stride): positive, zero of each column
    double* partial;
    double* params;  // [0, stride): a; [stride, 2 stride): b
    double* sums;    // two terms' sums, stride each
    Summary* stats;
};
inline SummarySlices take_summary_slices(Slices& w, uint64_t count, int stride, uint64_t cub_bytes) {
    const uint64_t n = count * static_cast<uint64_t>(stride), cols = static_cast<uint64_t>(stride);
    SummarySlices s;
    s.cols = w.take<double>(n, "summary columns");
    s.fin = w.take<double>(n, "finite values");
    s.temp = w.take_bytes(cub_bytes + 1, "summary temporary storage");
    s.offsets = w.take<int64_t>(cols + 1, "summary offsets");
    s.counts = w.take<uint64_t>(3 * cols, "finite and sign counts");
    s.partial = w.take<double>(cols * sum_blocks(count), "partial sums");
    s.params = w.take<double>(2 * cols, "term parameters");
    s.sums = w.take<double>(2 * cols, "column sums");
    s.stats = w.take<Summary>(cols, "order statistics");
    return s;
}

// fit_growth_on_device's workspace (kernels/device_growth.cu), bounded by
// growth_workspace_bytes (cuda_sizing.hpp) when cub_bytes is within
// cub_select_temp_bound and layers <= depth.
struct GrowthSlices {
    unsigned char* used;
    uint64_t* iota;
    uint64_t* idx;
    double* vals;
    double* partial;
    uint64_t* small;  // the used seeds' count, then the largest exponent (an int)
    double* params;   // a layer's r, then its E as ints
    void* temp;
};
inline GrowthSlices take_growth_slices(Slices& w, uint64_t count, int layers, uint64_t cub_bytes) {
    GrowthSlices g;
    g.used = w.take<unsigned char>(count, "growth flags");
    g.iota = w.take<uint64_t>(count, "growth seed numbers");
    g.idx = w.take<uint64_t>(count, "growth used seeds");
    g.vals = w.take<double>(count, "growth terms");
    g.partial = w.take<double>(sum_blocks(count), "growth partial sums");
    g.small = w.take<uint64_t>(2, "growth counts");
    g.params = w.take<double>(3 * static_cast<uint64_t>(layers > 1 ? layers : 1), "growth parameters");
    g.temp = w.take_bytes(cub_bytes + 1, "growth select storage");
    return g;
}

// The buffers a whole cell summarised on the device keeps between cells: its
// rows and one workspace for the non-finite count, the summary and the growth
// fits (cell_workspace_bytes, cuda_sizing.hpp), so that a run of many small
// cells allocates them a few times, not per cell.
template <class Buffer>
struct CellBuffers {
    Buffer rows, work;
    uint64_t held() const { return rows.size() + work.size(); }
    uint64_t allocations() const { return rows.allocations() + work.allocations(); }
    void release() {
        rows.release();
        work.release();
    }
};

}  // namespace gs::kern
