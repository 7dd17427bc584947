// SIGINT/SIGTERM during a run: the handler only records the signal; the run's
// main thread notices it, keeps finished units, removes temporary files and exits
// 128 + signal (130, 143). A second signal while stopping takes the default
// action at once.
#pragma once

namespace gs {

class StopSignals {
public:
    StopSignals();   // installs the handlers
    ~StopSignals();  // restores the previous ones
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    // The first signal caught since construction, or 0.
    static int caught();
};

const char* signal_name(int sig);  // "SIGINT"

}  // namespace gs
