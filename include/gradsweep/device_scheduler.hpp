// Hands work units to per-device workers: one thread per device (or per CPU
// backend instance), each owning its own Backend, pulling the next units from a
// shared queue. Which worker runs a unit never changes its rows (a row depends
// only on its seed), so results are identical for any number of devices.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"  // CellResult
#include "gradsweep/work_units.hpp"

namespace gs {

// Makes a worker's backend. Called on the worker's own thread, so a CUDA
// backend's context belongs to the thread that uses it.
using BackendFactory = std::function<std::unique_ptr<Backend>()>;

// Receives a finished unit: its index into `units` and its rows (u.count *
// row_stride(depth) doubles). Called from worker threads, possibly at once.
using UnitSink = std::function<void(size_t unit_index, const double* rows)>;

// Receives a cell computed and summarised whole by a backend
// (Backend::summarize_cell). Called from worker threads, possibly at once.
using CellSink = std::function<void(int cell, const CellResult& result)>;

struct SchedulerOptions {
    // Up to this many consecutive units of one cell go to a backend as one call
    // (a GPU wants hundreds of thousands of networks per launch); the rows are
    // still handed to the sink unit by unit.
    uint64_t max_units_per_call = 1;
    double tick_seconds = 0.2;
    // Cells offered whole (indexed by cell; empty: none): the worker that takes
    // such a cell's first unit takes all of them and asks its backend to summarise
    // the cell where its rows are; the result goes to cell_sink, no row to the
    // sink. Where the backend declines, the units run as every other unit does.
    // Every unit of an offered cell must be in todo, consecutively.
    std::vector<char> whole_cells;
    CellSink cell_sink;
};

struct WorkerInfo {
    std::string backend, device;
    int threads = 1;
    uint64_t units = 0, networks = 0;  // done by this worker
};

// Runs units[todo[k]] for every k, blocking until all are done. tick() runs on
// the calling thread about every tick_seconds and after each finished call. The
// first error (from a factory, a backend or the sink) stops every worker from
// taking more units and is rethrown once all have stopped.
std::vector<WorkerInfo> run_on_devices(const Spec& spec, const std::vector<WorkUnit>& units, const std::vector<size_t>& todo,
                                       const std::vector<BackendFactory>& workers, const UnitSink& sink,
                                       const std::function<void()>& tick = {}, const SchedulerOptions& options = {});

}  // namespace gs
