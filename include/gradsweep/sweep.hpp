// Summaries over seeds: a cell's rows -> one Summary per (layer, quantity). Knows
// nothing of files.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/growth_rate.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

struct CellResult {
    int cell = 0;
    uint64_t networks = 0;
    uint64_t nonfinite_networks = 0;  // networks with any non-finite statistic
    std::vector<std::array<Summary, kNumQuantities>> layers;
    Summary loss;
    GrowthRate growth;        // of E[weight_grad_rms^2], fitted from the columns in seed order
    GrowthRate delta_growth;  // of E[(weight_grad_rms_l / activation_rms_{l-1})^2]: backpropagated gradients
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

// One cell's values column by column (seed order within each column), put
// together from blocks of rows given in any order, then summarised: the result
// equals summarize_cell over all the cell's rows in seed order, bit for bit. Its
// buffer (count * row_stride(depth) doubles) is kept for the next cell; the rows
// themselves never need to be in memory all at once.
class CellColumns {
public:
    CellColumns() = default;
    CellColumns(const CellColumns&) = delete;
    CellColumns& operator=(const CellColumns&) = delete;
    ~CellColumns() { release(); }
    void start(const Cell& cell, uint64_t count);
    // The rows of seeds [seed_offset, seed_offset + n) of the cell started; every
    // seed of the cell must be given exactly once before finish(). Calls for
    // disjoint seed ranges may run concurrently.
    void add_rows(uint64_t seed_offset, const double* rows, uint64_t n);
    // add_rows for each of a cell's n_units work units, unit_at(i) being the i-th
    // and load(u, dst) putting its rows in dst. Cells of 65536 seeds or more
    // split their units over the cores, each part through its own buffer (kept
    // in buffers for the next cell) into its own seed range. Once every part has
    // stopped, the first failure in unit order is rethrown.
    void add_units(size_t n_units, const std::function<WorkUnit(size_t)>& unit_at,
                   const std::function<void(const WorkUnit&, double*)>& load, std::vector<std::vector<double>>& buffers);
    CellResult finish();  // reorders the columns
    void release();       // frees the buffer

private:
    double* buf_ = nullptr;
    size_t cap_bytes_ = 0;
    int cell_ = 0, depth_ = 0, stride_ = 0;
    uint64_t count_ = 0;
    std::atomic<uint64_t> nonfinite_networks_{0};
};


std::string utc_now_iso8601();

// Loads one unit's rows into dst (u.count * row_stride(depth) doubles); throws
// when it cannot. aggregate_units without on_rows may call it from several
// threads at once, for different units.
using UnitLoader = std::function<void(const WorkUnit& u, double* dst)>;

// Aggregates every cell from its work units. A cell's rows are put together in
// seed order before summarize_cell sees them, so the result equals
// summarize_cell over the cell's rows computed whole (tests/run_sweep.hpp), bit
// for bit however the units were computed (shards, devices, resumed runs).
// on_rows gets each cell's rows (for per_seed.csv); between_cells runs after
// each cell (a place to notice signals).
std::vector<CellResult> aggregate_units(const Spec& spec, uint64_t block_seeds, const UnitLoader& load,
                                        const std::function<void(const Cell&, const std::vector<double>&)>& on_rows = {},
                                        const std::function<void()>& between_cells = {});

}  // namespace gs
