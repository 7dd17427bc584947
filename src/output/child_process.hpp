// Running another program (scripts/plot.py) from gradsweep: always with an
// argument vector, never through a shell, so no path or option the user gave
// can be read as shell syntax.
#pragma once
#include <string>
#include <vector>

namespace gs {

struct ChildOutcome {
    bool started = false;  // false: it could not be started; `error` says why
    std::string error;
    int exit_code = -1;    // its exit status, when it exited
    int killed_by = 0;     // the signal that ended it, when one did
    int stop_signal = 0;   // SIGINT/SIGTERM this process caught while it ran (passed on to it)
};

// Runs argv[0] (a path; without a '/', looked up in PATH) with the arguments
// argv[1..] exactly as given, and waits for it. stdout_to_null sends its
// standard output to /dev/null; stderr stays ours. The caller holds a
// StopSignals (stop_signals.hpp): a SIGINT or SIGTERM caught meanwhile is sent
// on to the child, which is still waited for, so none is left running.
ChildOutcome run_child(const std::vector<std::string>& argv, bool stdout_to_null);

// "exited with status 3", "was killed by SIGSEGV", "could not be started: ...".
std::string describe(const ChildOutcome& r);

}  // namespace gs
