// --plot: scripts/plot.py run on a finished run's or merge's result files.
#pragma once
#include <string>

namespace gs {

// Runs scripts/plot.py on the results in `dir`, without a shell (the directory
// is one argument, whatever it contains); quiet keeps its list of PNGs off
// stdout (errors still show). The caller holds a StopSignals: SIGINT/SIGTERM
// (also one caught before the plotting started) stop the plotting and give
// 130/143; the results are complete by then. Returns the exit code: 0, 1 when
// the plotting failed (the results stay), or 128 + signal.
// GRADSWEEP_PYTHON names another interpreter (e.g. a cluster module's python3).
int run_plot(const std::string& dir, bool quiet);

}  // namespace gs
