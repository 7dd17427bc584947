// For tests only (tests/cli/resume_kill.sh, signals.sh, progress.sh): with
// GRADSWEEP_TEST_GATE=FILE a run writes a work unit only while fewer units are
// done (resumed ones included) than the number in FILE, and puts its results
// together only once that number exceeds its units; until then it waits,
// reading FILE every 10 ms (missing or unreadable: 0). So a test can hold a run
// at a known point of its progress and signal or kill it there, however fast or
// slow the machine is. A unit waits before its file is written, on the thread
// that writes it, so progress and signals are handled meanwhile; a signal that
// comes while the results wait is noticed where the run next looks (with
// --per-seed: while the rows are read back, as tests/cli/signals.sh wants).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace gs {

class TestGate {
public:
    TestGate(uint64_t done_before, uint64_t units) : units_(units), next_(done_before) {
        if (const char* v = std::getenv("GRADSWEEP_TEST_GATE")) path_ = v;
    }
    void before_unit() { wait_past(next_.fetch_add(1)); }
    void before_results() { wait_past(units_); }

private:
    void wait_past(uint64_t k) const {
        if (path_.empty()) return;
        for (;;) {
            std::ifstream f(path_);
            uint64_t limit = 0;
            if (f >> limit && limit > k) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    std::string path_;
    const uint64_t units_;
    std::atomic<uint64_t> next_;
};

}  // namespace gs
