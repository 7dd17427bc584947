// The time side of `gradsweep plan` (resources.hpp): the writers, summarize and
// fresh memory timed on stand-ins, in CPU seconds. Apart from memory_plan.cpp,
// which the spec fuzzer compiles alone (scripts/ci_fuzz.sh).
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>
#include <vector>

#include "gradsweep/resources.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

double fresh_memory_seconds_per_byte() {
    // 16 MiB from the kernel, every page touched once: the page faults a run pays
    // for each byte of its buffers, result text and JSON tree.
    const size_t bytes = size_t{16} << 20;
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 0;
        const double t0 = process_cpu_seconds();
        for (size_t i = 0; i < bytes; i += 4096) static_cast<volatile char*>(p)[i] = 1;
        best = std::min(best, process_cpu_seconds() - t0);
        ::munmap(p, bytes);
    }
    return best / static_cast<double>(bytes);
}

double process_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

namespace {

// A stand-in summary with numbers of typical length, so the text written is as long
// as real results' text.
Summary stand_in_summary(uint64_t n, uint64_t k) {
    Summary s;
    s.n = n;
    const double x = 0.0123456789012345 * static_cast<double>(k % 7 + 1);
    s.mean = x, s.std = x / 3, s.min = x / 97, s.q05 = x / 11, s.median = x * 0.93, s.q95 = x * 3.1, s.max = x * 17;
    s.geomean = x * 0.71;
    return s;
}

}  // namespace

OutputTiming time_output(const Spec& spec, const std::vector<int>& cells, bool per_seed) {
    OutputTiming t;
    if (cells.empty()) return t;
    SweepResult r;
    for (int c : cells) {
        CellResult cr;
        cr.cell = c;
        cr.networks = spec.seed_count;
        cr.layers.resize(static_cast<size_t>(spec.cells[c].depth()));
        uint64_t k = 0;
        for (auto& layer : cr.layers)
            for (Summary& s : layer) s = stand_in_summary(spec.seed_count, k++);
        cr.loss = stand_in_summary(spec.seed_count, k);
        r.cells.push_back(std::move(cr));
    }
    const double t0 = process_cpu_seconds();
    (void)results_csv_text(spec, r);
    (void)theory_csv_text(spec, r);
    (void)results_json_text(spec, r);
    t.seconds = process_cpu_seconds() - t0;
    t.bound_bytes = output_bound_bytes(spec, cells);
    if (per_seed) {
        // per_seed.csv: one cell's rows for up to 1024 seeds, per value written.
        const Cell& c = spec.cells[cells.front()];
        const uint64_t n = std::min<uint64_t>(spec.seed_count, 1024);
        std::vector<double> rows(n * static_cast<uint64_t>(row_stride(c.depth())));
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = 0.0123456789012345 * static_cast<double>(i % 13 + 1);
        std::string text;
        const double t1 = process_cpu_seconds();
        append_per_seed_csv(text, spec, c, rows);
        t.per_seed_seconds_per_value = (process_cpu_seconds() - t1) / static_cast<double>(rows.size());
    }
    return t;
}

double summarise_seconds_per_value(uint64_t seeds) {
    // One column of a cell's size (up to 2^16 values) through summarize, as
    // aggregation does for each: values spread over decades, a few zeros.
    const uint64_t n = std::max<uint64_t>(1, std::min<uint64_t>(seeds, uint64_t{1} << 16));
    std::vector<double> v(n);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
        for (auto& e : v) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            e = (x % 64 == 0) ? 0.0 : std::ldexp(static_cast<double>(x >> 11) * 0x1p-53, -static_cast<int>(x % 40));
        }
        const double t0 = process_cpu_seconds();
        summarize(v.data(), v.size());
        best = std::min(best, process_cpu_seconds() - t0);
    }
    return best / static_cast<double>(n);
}

}  // namespace gs
