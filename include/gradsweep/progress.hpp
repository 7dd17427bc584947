// Progress on stderr. On a terminal: one bar redrawn in place (cells done,
// networks/s, ETA). Otherwise (a log file, a Slurm job): one plain line every
// few seconds, so logs stay readable. Disabled entirely by --quiet.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gs {

class Progress {
public:
    // Totals for this run; *_before: already done when it started (resumed units).
    // interval_seconds: between plain lines (the bar redraws at most 5 times a second).
    Progress(std::FILE* out, bool enabled, bool terminal, double interval_seconds, uint64_t total_cells, uint64_t total_units,
             uint64_t total_networks, uint64_t cells_before, uint64_t units_before, uint64_t networks_before);

    // Totals done so far (including those done before). Prints if it is time to.
    void update(uint64_t cells_done, uint64_t units_done, uint64_t networks_done);
    // Ends the bar's line (or prints a last plain line).
    void finish();
    // Erases the bar so another message can be printed on a clean line.
    void clear();

    // The default plain-line interval: 5 s, or GRADSWEEP_PROGRESS_SECONDS.
    static double default_interval();

    // Text of one update, without line control (exposed for tests).
    std::string line(uint64_t cells_done, uint64_t units_done, uint64_t networks_done, double elapsed) const;

private:
    void print(bool force);

    std::FILE* out_;
    bool enabled_, terminal_;
    double interval_;
    uint64_t total_cells_, total_units_, total_networks_, networks_before_;
    uint64_t cells_ = 0, units_ = 0, networks_ = 0;
    std::chrono::steady_clock::time_point start_, last_print_;
    bool printed_ = false, bar_open_ = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0);
std::string format_duration(double seconds);  // "42 s", "3:07", "1:02:03", "2 d 3 h"
std::string format_rate(double per_second);   // "950", "45.3k", "1.2M"

}  // namespace gs
