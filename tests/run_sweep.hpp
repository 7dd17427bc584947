// The whole sweep in memory on one backend, cell by cell, every seed in one call:
// the plain reference the tests hold the real path (units, threads, shards,
// checkpoint, the orchestrator) against. Lives with the tests: nothing in the
// engine runs a sweep this way.
#pragma once
#include <chrono>
#include <cmath>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

inline SweepResult run_sweep(const Spec& spec, Backend& backend) {
    SweepResult result;
    result.info.backend = backend.name();
    result.info.device = backend.device_name();
    result.info.threads = backend.threads();
    result.info.start_time = utc_now_iso8601();
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t done = 0;
    std::vector<double> rows;
    CellColumns cols;
    for (const Cell& cell : spec.cells) {
        const int stride = row_stride(cell.depth());
        rows.assign(spec.seed_count * stride, std::nan(""));  // poisoned: an unwritten value shows
        backend.run(spec, cell, 0, spec.seed_count, rows.data());
        cols.start(cell, spec.seed_count);
        cols.add_rows(0, rows.data(), spec.seed_count);
        result.cells.push_back(cols.finish());
        done += spec.seed_count;
    }
    result.info.end_time = utc_now_iso8601();
    result.info.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.info.networks = done;
    result.info.networks_per_second = result.info.elapsed_seconds > 0 ? done / result.info.elapsed_seconds : 0;
    return result;
}

}  // namespace gs
