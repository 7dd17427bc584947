// `gradsweep run`: one sweep from its spec to its result files. The steps, in
// order (src/run/orchestrator.cpp, orchestrate_run):
//   spec -> workers and memory -> work units -> fresh start or resume ->
//   units computed on every worker (progress; whole cells summarised at once) ->
//   summaries -> result files (a shard: its results.json) -> plots (--plot)
#pragma once
#include <functional>

#include "gradsweep/cli.hpp"

namespace gs {

// Returns the exit code: 0, or the plotting's. Throws the errors of errors.hpp.
// A SIGINT/SIGTERM exits the process 128 + signal, keeping finished work units
// for --resume.
int orchestrate_run(const CliOptions& o);

struct Workers;  // workers.hpp
// The same run on workers the caller makes (after the spec and the options are
// checked, as orchestrate_run makes them with choose_workers): the tests run the
// whole path on the CUDA backend's host emulation this way.
int orchestrate_run_on(const CliOptions& o, const std::function<Workers()>& make_workers);

}  // namespace gs
