// The workers one process runs: one per CUDA device, or one or more CPU backend
// instances, chosen from --backend, --device, --devices and --threads; and the
// memory the sweep needs on them. `run` and `plan` choose alike, so a plan
// describes the run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gradsweep/cli.hpp"
#include "gradsweep/device_scheduler.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/spec.hpp"

namespace gs {

struct Workers {
    std::vector<BackendFactory> factories;  // run on the worker's own thread (device_scheduler.hpp)
    std::vector<std::string> labels;        // "cuda:0", "cpu#1"
    bool cuda = false;
    int cpu_threads = 1;                    // all CPU workers together
    uint64_t units_per_call = 1;
    std::string announcement;               // the backend choice, printed once checks have passed
};

// Throws UsageError when the options ask for devices that are not there.
Workers choose_workers(const CliOptions& o);

// The memory plan (resources.hpp) of `units` work units on these workers. An
// unsharded run without --per-seed or --checkpoint-units keeps the rows of cells
// cheap to redo in memory (plan.cells_in_memory > 0: their budget) when that
// fits in --max-memory and MemAvailable; otherwise every cell's rows go to unit
// files, as they always do in shards and with --per-seed.
MemoryPlan memory_plan_for(const Spec& spec, const CliOptions& o, const Workers& w, uint64_t units);

// Whether cells cheap to redo (cell_cheap_to_redo) are run whole on a CUDA
// device and summarised there, so that only their summaries cross PCIe: CUDA
// workers, an unsharded run, without --per-seed or --checkpoint-units (each of
// which needs the rows on the host). A cell also needs none of its units on disk
// (a resumed cell is finished from its rows) and must fit the device with the
// summary's workspace; otherwise its units run as everywhere else.
bool cells_summarised_on_device(const CliOptions& o, const Workers& w);

}  // namespace gs
