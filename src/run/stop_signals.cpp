#include "gradsweep/stop_signals.hpp"

#include <signal.h>

#include <csignal>

namespace gs {

namespace {

volatile std::sig_atomic_t g_caught = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int sig) {
    if (g_caught) {
        // Asked twice: stop waiting for a clean exit.
        ::signal(sig, SIG_DFL);
        ::raise(sig);
        return;
    }
    g_caught = sig;
}

}  // namespace

StopSignals::StopSignals() {
    g_caught = 0;
    struct sigaction sa{};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // file writes in progress carry on; the main loop polls
    ::sigaction(SIGINT, &sa, &g_old_int);
    ::sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int StopSignals::caught() { return g_caught; }

const char* signal_name(int sig) {
    switch (sig) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        default: return "signal";
    }
}

}  // namespace gs
