// The output directory of a run or merge and the result files put into it:
// results.csv, theory.csv, per_seed.csv (--per-seed) and results.json, all or
// nothing, stopped cleanly by SIGINT/SIGTERM.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

bool dir_nonempty(const std::string& dir);
// UsageError when -o names something other than a directory.
void check_out_dir_type(const std::string& dir);
// OutputError when it cannot be created.
void create_out_dir(const std::string& dir);

// --per-seed: per_seed gets the header, then each cell's rows as aggregation
// meets them. Without it no hook at all, so a cell's rows never need to be in
// memory whole. poll runs every few thousand seeds (signals).
std::function<void(const Cell&, const std::vector<double>&)> per_seed_hook(bool on, const Spec& spec, std::string& per_seed,
                                                                           std::function<void()> poll);

// Thrown by write_result_files when a signal arrives while results are written:
// the temporary files are removed by then, so the caller only reports the stop.
struct StopRequested {
    int sig;
};

// The result files of a run or merge, all or nothing: a failed write (disk full)
// or a signal leaves earlier results untouched and no temporary file behind.
// Each file is written as it is produced (results.csv of a deep network need not
// fit in memory). per_seed.csv only with --per-seed. `extra` goes into
// results.json's provenance (how the results were made: devices, shards).
void write_result_files(const std::string& dir, const Spec& spec, const SweepResult& result, bool with_per_seed,
                        const std::string& per_seed, const ojson& extra);

}  // namespace gs
