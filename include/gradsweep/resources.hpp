// Memory planning: how much a sweep needs, per backend, before anything starts.
// host_peak is meant as an upper bound on the process's peak RSS within 2x of it
// (README, "Planning a sweep"; tests/cli/plan_memory.sh): the process itself, the
// backend's per-thread scratch and rows in flight, aggregation, every cell's
// summaries and the buffers the result files are written through, all at once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/work_units.hpp"  // kSeedBlock

namespace gs {

struct MemoryInputs {
    uint64_t block_seeds = kSeedBlock;
    uint64_t units = 0;           // work units this process handles
    int cpu_threads = 1;          // all CPU workers together
    int workers = 1;              // devices or CPU backend instances
    uint64_t units_per_call = 1;  // units a worker runs in one backend call
    bool cuda = false;            // which backend the peak is for
    bool per_seed = false;        // per_seed.csv is built in memory
    bool aggregates = true;       // cells are summarised here (not in a shard run)
    bool outputs = true;          // results.csv/json are built here (not in a shard run)
    bool cells_in_memory = false; // cells cheap to redo keep their rows in memory (Checkpoint::keep_cells_in_memory)
    bool cells_on_device = false; // cells cheap to redo run whole on a CUDA device and are summarised there (cells_summarised_on_device)
};

struct MemoryPlan {
    uint64_t unit_rows = 0;               // rows of one work unit, largest cell
    uint64_t cell_rows = 0;               // to aggregate the largest cell: its columns + one unit's rows (+ all its rows with per_seed)
    uint64_t cells_in_memory = 0;         // columns of the cells in flight that keep their rows in memory: the budget for them
    int largest_cell = 0;                 // the cell behind cell_rows
    uint64_t cpu_scratch_per_thread = 0;  // largest cell
    uint64_t cpu_compute = 0;             // CPU backend: scratch of all threads + rows in flight
    uint64_t cuda_per_device = 0;         // device memory per GPU: the larger of the two below
    uint64_t cuda_chunks = 0;             // chunk loop: networks in flight x (scratch + torch parameters + two row buffers' rows)
    uint64_t cuda_device_cell = 0;        // largest cell summarised on the device: its rows + the larger of its chunk scratch and the summary's and growth fits' workspace (0 unless cells_on_device)
    int largest_device_cell = 0;          // the cell behind cuda_device_cell
    uint64_t cuda_staging = 0;            // pinned host memory per GPU: the rows of two chunks in flight
    uint64_t cuda_host_compute = 0;       // host side with CUDA: rows in flight and every GPU's pinned staging
    uint64_t per_seed_text = 0;           // per_seed.csv text, when asked for
    uint64_t bookkeeping = 0;             // unit list and flags, the expanded grid
    uint64_t summarising = 0;             // summarize's scratch (histograms, gathered keys)
    uint64_t results = 0;                 // every cell's summaries, held until the result files are written
    uint64_t writing = 0;                 // writing the result files: text buffers and one cell's layer-sized pieces
    uint64_t results_csv_bytes = 0;       // on disk: results.csv (estimate)
    uint64_t results_json_bytes = 0;      // on disk: results.json (estimate)
    uint64_t host_peak = 0;               // for the chosen backend: the process, compute, aggregation, results, writing, the rest
};

MemoryPlan estimate_memory(const Spec& spec, const MemoryInputs& in);

// For `gradsweep plan`'s time estimate: the writers timed (CPU time) on stand-in results of
// `cells` (their text as long as real results'), with output_bound_bytes of the
// same cells to scale by; and per_seed.csv's time per value when asked for.
struct OutputTiming {
    double seconds = 0, bound_bytes = 0, per_seed_seconds_per_value = 0;
};
OutputTiming time_output(const Spec& spec, const std::vector<int>& cells, bool per_seed);
// The upper bound on results.csv + theory.csv + results.json text for these cells.
double output_bound_bytes(const Spec& spec, const std::vector<int>& cells);
// summarize()'s time per value on one column of a cell of `seeds` seeds.
double summarise_seconds_per_value(uint64_t seeds);
// CPU seconds per byte of fresh memory touched (its page faults).
double fresh_memory_seconds_per_byte();
// CPU seconds this process has used, all threads together: timings that do not
// depend on what else the machine runs.
double process_cpu_seconds();

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
uint64_t mem_available_bytes();

// Throws InputError with the reason when the sweep cannot fit: the largest cell's
// rows (needed at once to aggregate it) exceed the available memory, or the
// estimated peak exceeds `max_memory` (0: no limit) or the available memory
// (0: unknown, not checked).
void check_memory(const Spec& spec, const MemoryPlan& plan, uint64_t max_memory, uint64_t available);

// "123", "512K", "64M", "8G", "1.5G", "2T" (powers of 1024; an optional "iB" or
// "B" suffix is accepted). Throws InputError.
uint64_t parse_bytes(const std::string& text);
std::string human_bytes(uint64_t bytes);  // "3.3 MiB"

}  // namespace gs
