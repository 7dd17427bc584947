// The orchestrator: plan -> backend -> aggregate. Knows nothing of files.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

namespace gs {

struct CellResult {
    int cell = 0;
    uint64_t networks = 0;
    uint64_t nonfinite_networks = 0;  // networks with any non-finite statistic
    std::vector<std::array<Summary, kNumQuantities>> layers;
    Summary loss;
};

struct RunInfo {
    std::string backend, device;
    int threads = 1;
    std::string start_time, end_time;  // ISO 8601 UTC
    double elapsed_seconds = 0;
    uint64_t networks = 0;
    double networks_per_second = 0;
};

struct SweepResult {
    std::vector<CellResult> cells;
    RunInfo info;
};

// Aggregates one cell's rows (count rows of row_stride(depth) doubles) over seeds.
CellResult summarize_cell(const Cell& cell, const double* rows, uint64_t count);

// Called once per cell with that cell's raw rows (for --per-seed output), and
// after each cell for progress.
struct RunHooks {
    std::function<void(const Cell&, const std::vector<double>& rows)> on_rows;
    std::function<void(size_t cells_done, uint64_t networks_done)> on_progress;
};

SweepResult run_sweep(const Spec& spec, Backend& backend, const RunHooks& hooks = {});

std::string utc_now_iso8601();

}  // namespace gs
