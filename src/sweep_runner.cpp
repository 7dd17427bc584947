#include "gradsweep/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
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

CellResult summarize_cell(const Cell& cell, const double* rows, uint64_t count) {
    const int D = cell.depth(), stride = row_stride(D);  // columns: layer-major quantities, then the loss
    CellResult r;
    r.cell = cell.index;
    r.networks = count;
    r.layers.resize(D);
    // Rows -> columns in one pass, a block of rows at a time (gathering each column
    // from the rows separately would read every row's cache lines once per column).
    std::vector<double> cols(static_cast<size_t>(count) * stride);
    constexpr uint64_t kBlock = 256;
    for (uint64_t s0 = 0; s0 < count; s0 += kBlock) {
        const uint64_t s1 = std::min(count, s0 + kBlock);
        for (int c = 0; c < stride; ++c) {
            double* dst = cols.data() + static_cast<size_t>(c) * count;
            for (uint64_t s = s0; s < s1; ++s) dst[s] = rows[s * stride + c];
        }
        for (uint64_t s = s0; s < s1; ++s) {
            bool bad = false;
            for (int k = 0; k < stride; ++k) bad |= !std::isfinite(rows[s * stride + k]);
            r.nonfinite_networks += bad;
        }
    }
    // Each column is an independent summary: large cells spread them over the cores
    // (a column's result is the same whichever thread computes it).
    auto column = [&](int c) {
        const Summary sm = summarize(cols.data() + static_cast<size_t>(c) * count, count);
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

SweepResult run_sweep(const Spec& spec, Backend& backend, const RunHooks& hooks) {
    SweepResult result;
    result.info.backend = backend.name();
    result.info.device = backend.device_name();
    result.info.threads = backend.threads();
    result.info.start_time = utc_now_iso8601();
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t done = 0;
    std::vector<double> rows;
    for (const Cell& cell : spec.cells) {
        const int stride = row_stride(cell.depth());
        rows.assign(spec.seed_count * stride, std::nan(""));  // poisoned: an unwritten value shows
        backend.run(spec, cell, 0, spec.seed_count, rows.data());
        if (hooks.on_rows) hooks.on_rows(cell, rows);
        result.cells.push_back(summarize_cell(cell, rows.data(), spec.seed_count));
        done += spec.seed_count;
        if (hooks.on_progress) hooks.on_progress(result.cells.size(), done);
    }
    result.info.end_time = utc_now_iso8601();
    result.info.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.info.networks = done;
    result.info.networks_per_second = result.info.elapsed_seconds > 0 ? done / result.info.elapsed_seconds : 0;
    return result;
}

std::vector<CellResult> aggregate_units(const Spec& spec, uint64_t block_seeds, const UnitLoader& load,
                                        const std::function<void(const Cell&, const std::vector<double>&)>& on_rows,
                                        const std::function<void()>& between_cells) {
    std::vector<CellResult> out;
    out.reserve(spec.cells.size());
    const uint64_t nb = blocks_per_cell(spec, block_seeds);
    std::vector<double> rows;
    for (const Cell& cell : spec.cells) {
        const int stride = row_stride(cell.depth());
        rows.assign(spec.seed_count * stride, std::nan(""));
        for (uint64_t b = 0; b < nb; ++b) {
            const uint64_t off = b * block_seeds;
            const WorkUnit u{cell.index, b, off, std::min(block_seeds, spec.seed_count - off)};
            load(u, rows.data() + off * stride);
        }
        if (on_rows) on_rows(cell, rows);
        out.push_back(summarize_cell(cell, rows.data(), spec.seed_count));
        if (between_cells) between_cells();
    }
    return out;
}

}  // namespace gs
