#include "gradsweep/resources.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "gradsweep/cuda_sizing.hpp"  // the CUDA backend's launch cap and per-network sizes
#include "gradsweep/results_io.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"

#include "cpu/network.hpp"  // with_lane_layout, threads_for_call, Scratch::bytes_for: header only

namespace gs {

namespace {

using u128 = unsigned __int128;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
uint64_t sat(u128 x) { return x > kMax ? kMax : static_cast<uint64_t>(x); }

// Constants of the memory model, measured with /usr/bin/time -v
// (bench/plan_vs_measured.py, README "Planning a sweep"): the process with its
// libraries before any sweep data (5.1-5.7 MiB measured; a margin for other
// builds), and per thread its touched stack and malloc arena.
constexpr u128 kBaseBytes = u128{8} << 20;
constexpr u128 kPerThreadBytes = u128{256} << 10;
constexpr u128 kHistogramBytes = u128{512} << 10;
// per_seed.csv: a double in shortest round-trip form is at most 24 characters
// ("-2.2250738585072014e-308"); a quantity name at most 20.
constexpr u128 kNumberChars = 24;
constexpr u128 kQuantityChars = 20;

// Bytes of scratch the CPU backend's threads (`threads` at most) allocate for one
// call of `networks` networks of this cell: the lane layout and thread count
// CpuBackend::run picks (cpu::with_lane_layout, cpu::threads_for_call), times
// what a Scratch allocates.
double cpu_scratch_bytes(const Spec& spec, const Cell& cell, int threads, uint64_t networks) {
    const int max_width = *std::max_element(cell.layer_sizes.begin(), cell.layer_sizes.end());
    double bytes = 0;
    cpu::with_lane_layout(spec.precision, max_width, [&]<class T, int L>() {
        bytes = static_cast<double>(cpu::threads_for_call(threads, networks, L)) *
                cpu::Scratch<T, L>::bytes_for(cell.layer_sizes, spec.input.batch, spec.rng == RngKind::torch);
    });
    return bytes;
}

u128 digits(uint64_t x) {
    u128 d = 1;
    while (x >= 10) x /= 10, ++d;
    return d;
}

// results.csv's spec-wide columns, the same on every row.
size_t spec_part_bytes(const Spec& spec) { return spec_columns_csv(spec).size(); }

// results.csv: a row per layer and quantity, and the loss row, each the cell's
// columns (measured here) plus at most ~230 bytes of numbers; results.json: at
// most ~1.9 kB per layer (pretty-printed summaries), ~2 kB per cell.
void add_cell_text(const Cell& c, size_t spec_part, u128& csv, u128& json) {
    const u128 rows = static_cast<u128>(c.depth()) * (c.bias ? 5 : 4) + 1;
    const size_t prefix = cell_params_csv(c).size();
    csv += rows * (prefix + spec_part + 230);
    json += static_cast<u128>(c.depth()) * 1900 + 2000 + prefix;
}

}  // namespace

MemoryPlan estimate_memory(const Spec& spec, const MemoryInputs& in) {
    MemoryPlan m;
    const u128 T = spec.precision == Precision::float64 ? 8 : 4;
    const uint64_t block = std::min<uint64_t>(in.block_seeds, spec.seed_count);
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    u128 unit_rows = 0, cell_rows = 0, cuda_chunks = 0, cuda_cell = 0, cuda_staging = 0, per_seed_chars = 0, spec_bytes = 0,
         max_stride = 0;
    u128 results = 0, csv_bytes = 0, json_bytes = 0;
    double scratch = 0, scratch_one = 0;
    int max_depth = 0;
    // Cells cheap to redo, with in.cells_in_memory: the largest one's columns and
    // how many there are; the others' aggregation buffer (cell_rows) apart.
    u128 in_memory_columns = 0, in_memory_cells = 0, files_cell_rows = 0;
    const int threads = std::max(1, in.cpu_threads), workers = std::max(1, in.workers);  // threads: all workers together
    const size_t spec_part = spec_part_bytes(spec);
    for (const Cell& c : spec.cells) {
        const u128 stride = static_cast<u128>(row_stride(c.depth()));
        max_stride = std::max(max_stride, stride);
        unit_rows = std::max(unit_rows, static_cast<u128>(block) * stride * 8);
        // Aggregating a cell (CellColumns): its columns, filled from one unit's rows
        // at a time (per core for cells of 65536 seeds and more, as summarise_cell
        // and aggregate_units split them); with --per-seed from all its rows, which
        // are kept for the text.
        const u128 loaders = spec.seed_count >= 65536 ? cores : 1;
        const u128 cr = static_cast<u128>(spec.seed_count) * stride * 8 +
                        (in.per_seed ? static_cast<u128>(spec.seed_count) : loaders * block) * stride * 8;
        if (cr > cell_rows) {
            cell_rows = cr;
            m.largest_cell = c.index;
        }
        if (in.cells_in_memory && cell_cheap_to_redo(spec, c.index)) {
            in_memory_columns = std::max(in_memory_columns, static_cast<u128>(spec.seed_count) * stride * 8);
            ++in_memory_cells;
        } else {
            files_cell_rows = std::max(files_cell_rows, cr);
        }
        // CPU: what the backend's threads allocate for this cell (src/cpu/backend.cpp),
        // a call being one work unit (or units_per_call of them).
        scratch = std::max(scratch, workers * cpu_scratch_bytes(spec, c, (threads + workers - 1) / workers,
                                                                block * std::max<uint64_t>(1, in.units_per_call)));
        scratch_one = std::max(scratch_one, cpu_scratch_bytes(spec, c, 1, 1));
        // GPU: networks in flight per launch, capped as the CUDA backend caps them
        // (its widest layer counts the input too), each with its scratch, its
        // torch-mode parameters and its row in each of the row buffers
        // (kernels/net_layout.cuh, bytes_per_network); the pinned host staging
        // holds as many rows.
        const int max_width = *std::max_element(c.layer_sizes.begin(), c.layer_sizes.end());
        const u128 cap = kern::launch_cap(kern::threads_per_network(max_width));
        const u128 in_flight = std::min<u128>(cap, std::min<u128>(static_cast<u128>(block) * in.units_per_call, spec.seed_count));
        const u128 params = spec.rng == RngKind::torch
                                ? kern::torch_param_elements<u128>(c.layer_sizes, c.bias, spec.input.random, spec.input.batch)
                                : 0;
        const u128 net_bytes = T * (kern::network_scratch_elements<u128>(c.layer_sizes, spec.input.batch) + params);
        const u128 chunk_rows = in_flight * kern::kRowBuffers * stride * 8;
        cuda_chunks = std::max(cuda_chunks, in_flight * net_bytes + chunk_rows);
        cuda_staging = std::max(cuda_staging, chunk_rows);
        // A cell summarised on the device (Backend::summarize_cell): all its rows,
        // and first the chunk loop's scratch (its rows go straight into those),
        // then the summary's and the growth fits' workspace: device_cell_bytes,
        // the figure the backend's fit rule checks (include/gradsweep/cuda_sizing.hpp).
        // The backend gives the chunk loop's buffers back when the workspace needs
        // their room, so the larger of the two counts, not both.
        if (in.cells_on_device && cell_cheap_to_redo(spec, c.index)) {
            const u128 seeds = spec.seed_count;
            const kern::DeviceCellBytes<u128> need = kern::device_cell_bytes<u128>(seeds, c.depth());
            const u128 cell_bytes = need.rows + std::max<u128>(std::min<u128>(cap, seeds) * net_bytes, need.workspace);
            if (cell_bytes > cuda_cell) {
                cuda_cell = cell_bytes;
                m.largest_device_cell = c.index;
            }
        }
        // per_seed.csv: "cell,seed,layer,quantity,value" per value.
        const u128 values = static_cast<u128>(c.depth()) * (c.bias ? kNumQuantities : kNumQuantities - 1) + 1;
        per_seed_chars += static_cast<u128>(spec.seed_count) * values *
                          (digits(static_cast<uint64_t>(c.index)) + digits(spec.seed_first + (spec.seed_count - 1)) +
                           digits(static_cast<uint64_t>(c.depth())) + kQuantityChars + kNumberChars + 5);
        // Summaries: a CellResult per cell (kNumQuantities per layer, and the loss).
        results += sizeof(CellResult) + (static_cast<u128>(c.depth()) * kNumQuantities + 1) * sizeof(Summary);
        max_depth = std::max(max_depth, c.depth());
        add_cell_text(c, spec_part, csv_bytes, json_bytes);
        // The expanded grid itself: the cell, its layer sizes and axis labels.
        spec_bytes += sizeof(Cell) + 4 * static_cast<u128>(c.layer_sizes.capacity()) + 1024 + 64 * c.axes.size();
    }
    m.results = sat(results);
    // A TextOut chunk (its string may have twice the room) and the file's pieces
    // around it, never more than the file itself, plus the largest cell's per-layer
    // theory (values, JSON and text) while its entry is written.
    const u128 largest_file = std::max(csv_bytes, json_bytes);
    m.writing = in.outputs ? sat(2 * std::min<u128>(TextOut::kChunk, largest_file) + 64 * 1024 + static_cast<u128>(max_depth) * 96) : 0;
    m.results_csv_bytes = sat(static_cast<u128>(results_csv_header().size()) + csv_bytes);
    m.results_json_bytes = sat(json_bytes + 4096);
    m.unit_rows = sat(unit_rows);
    m.cell_rows = sat(cell_rows);
    // Cells keeping their rows in memory: one per worker being computed and one
    // being summarised, at most (Checkpoint::store sends a cell that would pass
    // this to unit files instead).
    m.cells_in_memory = sat(in_memory_columns * std::min<u128>(in_memory_cells, static_cast<u128>(std::max(1, in.workers)) + 1));
    auto bytes = [](double b) { return b >= 1.8e19 ? kMax : static_cast<uint64_t>(b); };
    m.cpu_scratch_per_thread = bytes(scratch_one);
    // x 2: each worker computes one call's rows while the previous call's go to the checkpoint.
    const u128 in_flight_rows = 2 * unit_rows * static_cast<u128>(std::max(1, in.workers)) * std::max<uint64_t>(1, in.units_per_call);
    // (Unit files are written from the rows in place, without a copy.) Each thread
    // also has a stack and a malloc arena of its own.
    m.cpu_compute = sat(static_cast<u128>(bytes(scratch)) + static_cast<u128>(threads) * kPerThreadBytes + in_flight_rows);
    m.cuda_chunks = sat(cuda_chunks);
    m.cuda_device_cell = sat(cuda_cell);
    m.cuda_per_device = std::max(m.cuda_chunks, m.cuda_device_cell);
    m.cuda_staging = sat(cuda_staging);
    m.cuda_host_compute = sat(in_flight_rows + cuda_staging * static_cast<u128>(std::max(1, in.workers)));
    // The text is one string built by appending: at the moment it grows it holds
    // its old and its new buffer.
    m.per_seed_text = in.per_seed ? sat(2 * per_seed_chars) : 0;
    m.bookkeeping = sat(static_cast<u128>(in.units) * 64 + spec_bytes + static_cast<u128>(spec.raw.dump().size()) * 8);
    // Summarising a column (stats.cpp), on every core for cells of 65536 seeds and
    // more: per thread a 512 KiB histogram per radix stage and the keys gathered
    // from the buckets that hold the quantiles, all of them when the values crowd
    // into one bucket (a column of zeros), in each of two stages.
    // Below 8192 values a column is summarised in place (nth_element).
    const u128 per_column = spec.seed_count < 8192 ? 0 : 2 * kHistogramBytes + 2 * 8 * static_cast<u128>(spec.seed_count);
    m.summarising = in.aggregates ? sat((spec.seed_count >= 65536 ? std::min<u128>(cores, max_stride) : 1) * per_column) : 0;
    const u128 compute = in.cuda ? m.cuda_host_compute : m.cpu_compute;
    // Cells are summarised while the workers go on computing, the summaries stay
    // until the result files are written, and memory the workers freed is not
    // reliably returned before (malloc keeps it in their arenas): all at once.
    // A cell kept in memory is summarised from those columns: the aggregation
    // buffer is then only for the cells in files. When the budget has room for
    // every cell cheap to redo at once, none of them ever goes to files;
    // otherwise one may (Checkpoint::store, budget full) and be summarised from
    // its unit files while the others still hold the budget.
    const bool all_fit = in_memory_cells <= static_cast<u128>(std::max(1, in.workers)) + 1;
    const u128 aggregation = !in.aggregates ? 0 : in.cells_in_memory && all_fit ? files_cell_rows : cell_rows;
    m.host_peak = sat(kBaseBytes + compute + aggregation + m.cells_in_memory + m.summarising + m.per_seed_text + m.bookkeeping +
                      results + m.writing);
    return m;
}

double output_bound_bytes(const Spec& spec, const std::vector<int>& cells) {
    u128 csv = 0, json = 0;
    const size_t spec_part = spec_part_bytes(spec);
    for (int c : cells) add_cell_text(spec.cells[c], spec_part, csv, json);
    return static_cast<double>(csv + json);
}

uint64_t mem_available_bytes() {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long v = 0;
        if (std::sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    std::fclose(f);
    return kb > kMax / 1024 ? kMax : kb * 1024;
}

void check_memory(const Spec& spec, const MemoryPlan& m, uint64_t max_memory, uint64_t available) {
    const Cell& big = spec.cells[m.largest_cell];
    const std::string cell_what = "cell " + std::to_string(big.index) + " (" + big.layer_sizes_compact() + ") needs " +
                                  human_bytes(m.cell_rows) + " to aggregate its rows (" + std::to_string(spec.seed_count) +
                                  " seeds x " + std::to_string(row_stride(big.depth())) + " values x 8 bytes, all at once)";
    if (available && m.cell_rows > available)
        throw InputError("will not fit: " + cell_what + ", more than the " + human_bytes(available) +
                         " available (MemAvailable); split the seeds over several specs");
    if (max_memory && m.cell_rows > max_memory)
        throw InputError("will not fit: " + cell_what + ", more than --max-memory " + human_bytes(max_memory));
    if (max_memory && m.host_peak > max_memory)
        throw InputError("will not fit: estimated peak memory " + human_bytes(m.host_peak) + " exceeds --max-memory " +
                         human_bytes(max_memory) + " (see gradsweep plan)");
    if (available && m.host_peak > available)
        throw InputError("will not fit: estimated peak memory " + human_bytes(m.host_peak) + " exceeds the " +
                         human_bytes(available) + " available (MemAvailable; see gradsweep plan)");
}

uint64_t parse_bytes(const std::string& text) {
    auto bad = [&]() { return InputError("--max-memory expects a size such as 8G, 512M or 1000000, got \"" + text + "\""); };
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0 || i > 30) throw bad();
    double x = 0;
    try {
        size_t pos = 0;
        x = std::stod(text.substr(0, i), &pos);
        if (pos != i) throw bad();
    } catch (const std::logic_error&) {
        throw bad();
    }
    std::string unit = text.substr(i);
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit.size() > 1 && (unit.substr(1) == "IB" || unit.substr(1) == "B")) unit = unit.substr(0, 1);
    double mult = 1;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "K") mult = 1024.0;
    else if (unit == "M") mult = 1024.0 * 1024;
    else if (unit == "G") mult = 1024.0 * 1024 * 1024;
    else if (unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
    else throw bad();
    const double bytes = x * mult;
    if (!(bytes >= 1) || bytes >= 1.8e19) throw bad();
    return static_cast<uint64_t>(bytes);
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = static_cast<double>(b);
    int u = 0;
    while (x >= 1024 && u < 6) {
        x /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    else std::snprintf(buf, sizeof buf, "%.3g %s", x, units[u]);
    return buf;
}

}  // namespace gs
