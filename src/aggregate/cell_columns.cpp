#include "gradsweep/sweep.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <exception>
#include <new>
#include <thread>

namespace gs {

std::string utc_now_iso8601() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void CellColumns::release() {
    if (buf_) ::munmap(buf_, cap_bytes_);
    buf_ = nullptr;
    cap_bytes_ = 0;
}

void CellColumns::start(const Cell& cell, uint64_t count) {
    cell_ = cell.index;
    depth_ = cell.depth();
    stride_ = row_stride(depth_);
    count_ = count;
    nonfinite_networks_ = 0;
    const size_t bytes = static_cast<size_t>(count) * stride_ * sizeof(double);
    if (bytes <= cap_bytes_) return;
    release();
    // Straight from the kernel: no zeroing pass of our own (its fresh pages are
    // zero). No MADV_HUGEPAGE: fresh huge pages cost more to fault in than the same
    // memory in 4 KiB pages (docs/cpu_backend.md).
    const size_t want = std::max<size_t>(bytes, 1);
    void* p = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    buf_ = static_cast<double*>(p);
    cap_bytes_ = want;
}

void CellColumns::add_rows(uint64_t seed_offset, const double* rows, uint64_t n) {
    const int stride = stride_;
    const uint64_t count = count_;
    // Rows -> columns a block of rows at a time (gathering each column from the
    // rows separately would read every row's cache lines once per column).
    constexpr uint64_t kBlock = 256;
    uint64_t bad_networks = 0;
    for (uint64_t s0 = 0; s0 < n; s0 += kBlock) {
        const uint64_t s1 = std::min(n, s0 + kBlock);
        for (int c = 0; c < stride; ++c) {
            double* dst = buf_ + static_cast<size_t>(c) * count + seed_offset;
            for (uint64_t s = s0; s < s1; ++s) dst[s] = rows[s * stride + c];
        }
        for (uint64_t s = s0; s < s1; ++s) {
            bool bad = false;
            for (int k = 0; k < stride; ++k) bad |= !std::isfinite(rows[s * stride + k]);
            bad_networks += bad;
        }
    }
    nonfinite_networks_.fetch_add(bad_networks, std::memory_order_relaxed);
}

void CellColumns::add_units(size_t n_units, const std::function<WorkUnit(size_t)>& unit_at,
                            const std::function<void(const WorkUnit&, double*)>& load,
                            std::vector<std::vector<double>>& buffers) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const size_t parts = count_ >= 65536 ? std::max<size_t>(1, std::min<size_t>(cores, n_units)) : 1;
    if (buffers.size() < parts) buffers.resize(parts);
    std::vector<std::exception_ptr> failed(parts);
    auto load_part = [&](size_t t) {
        try {
            std::vector<double>& buf = buffers[t];
            for (size_t i = n_units * t / parts, end = n_units * (t + 1) / parts; i < end; ++i) {
                const WorkUnit u = unit_at(i);
                buf.resize(static_cast<size_t>(u.count) * stride_);  // load fills it or throws
                load(u, buf.data());
                add_rows(u.seed_offset, buf.data(), u.count);
            }
        } catch (...) {
            failed[t] = std::current_exception();
        }
    };
    if (parts == 1) {
        load_part(0);
    } else {
        std::vector<std::thread> pool;
        for (size_t t = 1; t < parts; ++t) pool.emplace_back(load_part, t);
        load_part(0);
        for (auto& t : pool) t.join();
    }
    for (const auto& e : failed)
        if (e) std::rethrow_exception(e);
}

CellResult CellColumns::finish() {
    const int D = depth_, stride = stride_;  // columns: layer-major quantities, then the loss
    const uint64_t count = count_;
    CellResult r;
    r.cell = cell_;
    r.networks = count;
    r.nonfinite_networks = nonfinite_networks_.load();
    r.layers.resize(D);
    // Before the summaries: they reorder the columns, the fit reads them in seed order.
    auto values_of = [&](int l, Quantity q) { return buf_ + static_cast<size_t>(l * kNumQuantities + q) * count; };
    std::vector<const double*> rms(static_cast<size_t>(D)), input_rms(static_cast<size_t>(D), nullptr);
    for (int l = 0; l < D; ++l) {
        rms[l] = values_of(l, weight_grad_rms);
        if (l > 0) input_rms[l] = values_of(l - 1, activation_rms);  // layer l's input is layer l-1's output
    }
    // The two fits only read the columns: large cells run them side by side.
    if (count >= 65536) {
        std::thread delta([&] { r.delta_growth = fit_growth_rate(D, rms.data(), input_rms.data(), count); });
        r.growth = fit_growth_rate(D, rms.data(), nullptr, count);
        delta.join();
    } else {
        r.growth = fit_growth_rate(D, rms.data(), nullptr, count);
        r.delta_growth = fit_growth_rate(D, rms.data(), input_rms.data(), count);
    }
    // Each column is an independent summary: large cells spread them over the cores
    // (a column's result is the same whichever thread computes it).
    auto column = [&](int c) {
        const Summary sm = summarize(buf_ + static_cast<size_t>(c) * count, count);
        if (c < D * kNumQuantities) r.layers[c / kNumQuantities][c % kNumQuantities] = sm;
        else r.loss = sm;
    };
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const int nthreads = count >= 65536 ? static_cast<int>(std::min<unsigned>(cores, static_cast<unsigned>(stride))) : 1;
    std::atomic<int> next{0};
    auto worker = [&] {
        for (int c; (c = next.fetch_add(1)) < stride;) column(c);
    };
    if (nthreads <= 1) {
        worker();
    } else {
        std::vector<std::thread> pool;
        for (int t = 0; t < nthreads; ++t) pool.emplace_back(worker);
        for (auto& t : pool) t.join();
    }
    return r;
}

CellResult summarize_cell(const Cell& cell, const double* rows, uint64_t count) {
    CellColumns cols;
    cols.start(cell, count);
    cols.add_rows(0, rows, count);
    return cols.finish();
}

std::vector<CellResult> aggregate_units(const Spec& spec, uint64_t block_seeds, const UnitLoader& load,
                                        const std::function<void(const Cell&, const std::vector<double>&)>& on_rows,
                                        const std::function<void()>& between_cells) {
    std::vector<CellResult> out;
    out.reserve(spec.cells.size());
    const uint64_t nb = blocks_per_cell(spec, block_seeds);
    CellColumns cols;
    // With on_rows, a cell's rows are put together whole (for the callback);
    // otherwise each unit goes through a one-unit buffer straight into the columns.
    std::vector<double> rows;
    std::vector<std::vector<double>> unit_rows;
    for (const Cell& cell : spec.cells) {
        const int stride = row_stride(cell.depth());
        cols.start(cell, spec.seed_count);
        auto unit = [&](uint64_t b) {
            const uint64_t off = b * block_seeds;
            return WorkUnit{cell.index, b, off, std::min(block_seeds, spec.seed_count - off)};
        };
        if (on_rows) {
            rows.assign(spec.seed_count * stride, std::nan(""));
            for (uint64_t b = 0; b < nb; ++b) load(unit(b), rows.data() + b * block_seeds * stride);
            on_rows(cell, rows);
            cols.add_rows(0, rows.data(), spec.seed_count);
        } else {
            cols.add_units(nb, unit, load, unit_rows);
        }
        out.push_back(cols.finish());
        if (between_cells) between_cells();
    }
    return out;
}

}  // namespace gs
