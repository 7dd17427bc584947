#include "gradsweep/cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "gradsweep/backend.hpp"
#include "cli/child_process.hpp"
#include "gradsweep/checkpoint.hpp"
#include "gradsweep/device_scheduler.hpp"
#include "gradsweep/merge.hpp"
#include "gradsweep/progress.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stop_signals.hpp"
#include "gradsweep/summary_table.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/version.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: gradsweep run SPEC -o DIR [--threads N] [--backend auto|cpu|cuda] [--device N | --devices all|0,1,...]\n"
    "                     [--shard K/N|auto] [--resume | --force] [--max-memory SIZE] [--seed-block N]\n"
    "                     [--per-seed] [--quiet] [--plot]\n"
    "       gradsweep merge SHARD_DIR... -o DIR [--per-seed] [--force] [--quiet] [--plot] [--max-memory SIZE]\n"
    "       gradsweep validate SPEC\n"
    "       gradsweep plan SPEC [--threads N] [--backend auto|cpu|cuda] [--devices ...] [--shard K/N]\n"
    "                      [--max-memory SIZE] [--seed-block N] [--per-seed]\n"
    "       gradsweep --version\n";

// Text from the command line or the file system (a file name may hold a newline)
// made safe for the one-line error: control characters are written as escapes.
std::string one_line_text(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += static_cast<char>(c);
    }
    return out;
}

// An option's integer value in [lo, hi]: a non-number, a number out of range and
// one too large for any integer type each get their own message with the bound.
int64_t int_option(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
    const bool digits = !v.empty() && std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; }) && v != "-";
    if (!digits) throw UsageError(flag + " expects an integer, got \"" + one_line_text(v) + "\"");
    int64_t x = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    const bool overflow = r.ec == std::errc::result_out_of_range;
    if ((overflow && v[0] != '-') || (!overflow && x > hi))
        throw UsageError(flag + " is too large: " + v + " (at most " + std::to_string(hi) + ")");
    if (overflow || x < lo) throw UsageError(flag + " must be at least " + std::to_string(lo) + ", got " + v);
    return x;
}

int to_int(const std::string& flag, const std::string& v) {
    return static_cast<int>(int_option(flag, v, 0, std::numeric_limits<int>::max()));
}

// The workers one process runs: one per device, or one or more CPU backend
// instances. Factories run on the worker's own thread (device_scheduler.hpp).
struct Workers {
    std::vector<BackendFactory> factories;
    std::vector<std::string> labels;  // "cuda:0", "cpu#1"
    bool cuda = false;
    int cpu_threads = 1;              // all CPU workers together
    uint64_t units_per_call = 1;
    std::string announcement;         // the backend choice, printed once checks have passed
};

std::vector<int> parse_device_list(const std::string& text) {
    std::vector<int> ids;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const int d = to_int("--devices", item);
        if (d < 0) throw UsageError("--devices: device numbers are >= 0, got " + item);
        if (std::find(ids.begin(), ids.end(), d) != ids.end()) throw UsageError("--devices: device " + item + " given twice");
        ids.push_back(d);
    }
    if (ids.empty() || text.back() == ',') throw UsageError("--devices expects all or a list such as 0,1, got \"" + text + "\"");
    return ids;
}

std::vector<int> all_cuda_devices() {
    std::vector<int> ids;
    for (int d = 0; d < 64; ++d)
        if (cuda_available(nullptr, d)) ids.push_back(d);
    return ids;
}

Workers choose_workers(const CliOptions& o) {
    Workers w;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::string device;
    bool use_cuda = o.backend == "cuda";
    // --device names a CUDA device: a run without it on the CPU would look like a
    // run on that device, so its absence is an error, not a fallback.
    if (o.device_given && o.backend == "cpu")
        throw UsageError("--device " + std::to_string(o.device) + " selects a CUDA device; it does not go with --backend cpu");
    if (o.device_given && !cuda_available(&device, o.device))
        throw UsageError("--device " + std::to_string(o.device) + ": " + device +
                         " (without --device, --backend auto runs on the CPU)");
    if (o.backend == "auto") {
        if (!o.devices.empty()) {
            const int probe = o.devices == "all" ? 0 : parse_device_list(o.devices).front();
            if (!cuda_available(&device, probe)) throw UsageError("--devices needs CUDA devices: " + device + " (use --backend cpu)");
            use_cuda = true;
        } else {
            use_cuda = cuda_available(&device, o.device);
        }
    }
    if (use_cuda) {
        std::vector<int> ids = o.devices.empty() ? std::vector<int>{o.device}
                               : o.devices == "all" ? all_cuda_devices()
                                                    : parse_device_list(o.devices);
        if (ids.empty()) throw UsageError("--devices all: no usable CUDA device");
        std::string names;
        for (int d : ids) {
            if (!cuda_available(&device, d)) throw UsageError("--backend cuda: no usable CUDA device " + std::to_string(d) + " (" + device + ")");
            names += (names.empty() ? "" : ", ") + std::to_string(d) + " (" + device + ")";
            w.factories.push_back([d] { return make_cuda_backend(d); });
            w.labels.push_back("cuda:" + std::to_string(d));
        }
        w.cuda = true;
        w.units_per_call = 64;  // ~260k networks per launch with 4096-seed units
        if (ids.size() == 1 && o.backend == "auto") w.announcement = "backend auto -> cuda (" + device + ")";
        else w.announcement = "backend cuda on " + std::to_string(ids.size()) + " device" + (ids.size() > 1 ? "s: " : ": ") + names;
        return w;
    }
    // CPU: one instance, or (--devices 0,1,..) one per entry, sharing the cores.
    const size_t n = (o.devices.empty() || o.devices == "all") ? 1 : parse_device_list(o.devices).size();
    const int per = o.threads > 0 ? o.threads : static_cast<int>(std::max<unsigned>(1, cores / n));
    for (size_t i = 0; i < n; ++i) {
        w.factories.push_back([t = n == 1 ? o.threads : per] { return make_cpu_backend(t); });
        w.labels.push_back("cpu#" + std::to_string(i));
    }
    w.cpu_threads = n == 1 ? (o.threads > 0 ? o.threads : static_cast<int>(cores)) : per * static_cast<int>(n);
    if (o.backend == "auto") w.announcement = "backend auto -> cpu, " + std::to_string(w.cpu_threads) + " threads (no CUDA device)";
    else if (n > 1) w.announcement = "backend cpu, " + std::to_string(n) + " workers x " + std::to_string(per) + " threads";
    return w;
}

// The table after a run or merge (summary_table.hpp): per cell, first- and
// last-layer median gradient, their ratio, non-finite networks, mean-field ratio.
void print_summary(const Spec& spec, const SweepResult& r) {
    std::fputs(summary_table(spec, r.cells).c_str(), stdout);
}

int cmd_validate(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);
    std::printf("ok: %s: %zu cells x %llu seeds = %llu networks\n", spec.name.c_str(), spec.cells.size(),
                static_cast<unsigned long long>(spec.seed_count), static_cast<unsigned long long>(spec.networks()));
    return 0;
}

ShardId shard_of(const CliOptions& o) { return o.shard.empty() ? ShardId{} : parse_shard(o.shard); }

MemoryPlan memory_plan(const Spec& spec, const CliOptions& o, const Workers& w, uint64_t units) {
    MemoryInputs in;
    in.block_seeds = o.seed_block;
    in.units = units;
    in.cpu_threads = w.cpu_threads;
    in.workers = static_cast<int>(w.factories.size());
    in.units_per_call = w.units_per_call;
    in.cuda = w.cuda;
    in.per_seed = o.per_seed;
    in.aggregates = in.outputs = o.shard.empty();  // a shard keeps its rows for the merge
    return estimate_memory(spec, in);
}

uint64_t max_memory_of(const CliOptions& o) { return o.max_memory.empty() ? 0 : parse_bytes(o.max_memory); }

int cmd_plan(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);
    const ShardId shard = shard_of(o);
    const Workers w = choose_workers(o);
    auto backend = w.factories.front()();
    std::printf("spec %s (%s)\ncells %zu, seeds %llu, networks %llu, backend %s (%s)\n", spec.name.c_str(), spec.hash.c_str(),
                spec.cells.size(), static_cast<unsigned long long>(spec.seed_count),
                static_cast<unsigned long long>(spec.networks()), backend->name().c_str(), backend->device_name().c_str());
    if (w.factories.size() > 1) std::printf("workers %zu (%s ...)\n", w.factories.size(), w.labels.front().c_str());
    const uint64_t total_units = total_work_units(spec, o.seed_block);
    std::printf("work units %llu (seed block %llu, %llu per cell)", static_cast<unsigned long long>(total_units),
                static_cast<unsigned long long>(o.seed_block),
                static_cast<unsigned long long>(blocks_per_cell(spec, o.seed_block)));
    const MemoryPlan m = memory_plan(spec, o, w, total_units);
    const uint64_t avail = mem_available_bytes(), cap = max_memory_of(o);
    bool fits = true;
    try {
        check_memory(spec, m, cap, avail);
    } catch (const InputError&) {
        fits = false;  // reported below, after the estimates
    }
    std::vector<WorkUnit> units;
    if (fits) units = o.shard.empty() ? all_work_units(spec, o.seed_block) : shard_work_units(spec, o.seed_block, shard);
    if (fits && !o.shard.empty()) std::printf("; shard %s: %zu units", shard.label().c_str(), units.size());
    std::printf("\n");
    const Cell& big = spec.cells[m.largest_cell];
    std::printf("memory (estimates):\n");
    std::printf("  rows of one work unit       %s\n", human_bytes(m.unit_rows).c_str());
    std::printf("  rows to aggregate one cell  %s (cell %d: %llu seeds x %d values, all at once)\n", human_bytes(m.cell_rows).c_str(),
                big.index, static_cast<unsigned long long>(spec.seed_count), row_stride(big.depth()));
    std::printf("  cpu backend                 %s while computing (%d threads x %s scratch + rows in flight)\n",
                human_bytes(m.cpu_compute).c_str(), w.cpu_threads, human_bytes(m.cpu_scratch_per_thread).c_str());
    std::printf("  cuda backend                %s of device memory per GPU, %s of host memory while computing\n",
                human_bytes(m.cuda_per_device).c_str(), human_bytes(m.cuda_host_compute).c_str());
    if (o.per_seed) std::printf("  per_seed.csv text           %s\n", human_bytes(m.per_seed_text).c_str());
    std::printf("  summarising                 %s (histograms and gathered keys)\n", human_bytes(m.summarising).c_str());
    std::printf("  results (summaries)         %s (every cell's, kept until the files are written)\n", human_bytes(m.results).c_str());
    std::printf("  writing the result files    %s (written as produced)\n", human_bytes(m.writing).c_str());
    std::printf("  result files on disk        results.csv ~%s, results.json ~%s\n", human_bytes(m.results_csv_bytes).c_str(),
                human_bytes(m.results_json_bytes).c_str());
    std::printf("  %-27s %s (%llu bytes, an upper bound on the peak RSS); available %s (MemAvailable)%s\n",
                w.cuda ? "peak (cuda run, host)" : "peak (cpu run)", human_bytes(m.host_peak).c_str(),
                static_cast<unsigned long long>(m.host_peak), avail ? human_bytes(avail).c_str() : "unknown",
                cap ? ("; --max-memory " + human_bytes(cap)).c_str() : "");
    std::fflush(stdout);
    check_memory(spec, m, cap, avail);  // throws: exit 2 with the reason

    // Time, the sum of three parts, each timed here and extrapolated:
    // - the backend: per cell, a sample of seeds (growing until it takes 20 ms, at
    //   most one work unit, after a warm-up call), times the seeds in the run; past
    //   a time budget the remaining cells are priced by their cost per network at
    //   the rate measured so far;
    // - aggregation: every value through summarize (timed on one stand-in column)
    //   and through a unit file, written and read back;
    // - the result files: the writers timed on stand-in results of a sample of
    //   cells, scaled by the size of all cells' text, plus writing it to disk.
    std::vector<uint64_t> seeds_in_run(spec.cells.size(), 0);
    for (const WorkUnit& u : units) seeds_in_run[u.cell] += u.count;
    const double budget = 3.0;
    double spent = 0, cost_measured = 0, time_measured = 0, backend_s = 0;
    size_t calibrated = 0;
    const size_t max_table = 100;
    std::printf("%-5s %-30s %12s %14s\n", "cell", "layer_sizes", "rows (MB)", "est. seconds");
    std::vector<double> rows;
    // CPU work is timed in CPU seconds (per backend thread): what the run takes
    // with its cores to itself, whatever else the machine is doing now. A GPU's
    // work is not CPU time: wall time there.
    const double threads = w.cuda ? 1.0 : static_cast<double>(std::max(1, backend->threads()));
    auto timed_run = [&](const Cell& c, uint64_t n) {
        rows.assign(n * row_stride(c.depth()), 0.0);
        const double c0 = process_cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        backend->run(spec, c, 0, n, rows.data());
        if (!w.cuda) return (process_cpu_seconds() - c0) / threads;
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    (void)timed_run(spec.cells.front(), 1);  // warm-up: threads started, pages touched
    uint64_t values_in_run = 0;
    for (const Cell& c : spec.cells) {
        values_in_run += seeds_in_run[c.index] * static_cast<uint64_t>(row_stride(c.depth()));
        const double per_net_cost = static_cast<double>(unit_cost(spec, WorkUnit{c.index, 0, 0, 1}));
        double per_net = 0;
        if (seeds_in_run[c.index] > 0 && (spent < budget || calibrated == 0)) {
            // At least 4 lane groups of 16 networks per thread, so the sample keeps
            // every lane and thread busy as the run does; at most one work unit.
            const uint64_t limit = std::min<uint64_t>(spec.seed_count, o.seed_block);
            const uint64_t least = std::min<uint64_t>(limit, 64 * static_cast<uint64_t>(threads));
            uint64_t sample = std::clamp<uint64_t>(static_cast<uint64_t>(2e6 / std::max(per_net_cost, 1.0)), least, limit);
            double dt = timed_run(c, sample);
            spent += dt;
            while (dt < 0.02 && sample < limit && spent + 8 * dt < budget) {
                sample = std::min(limit, sample * 8);
                dt = timed_run(c, sample);
                spent += dt;
            }
            per_net = dt / static_cast<double>(sample);
            cost_measured += per_net_cost * static_cast<double>(sample);
            time_measured += dt;
            ++calibrated;
        } else {
            per_net = cost_measured > 0 ? time_measured / cost_measured * per_net_cost : 0;
        }
        const double cell_s = per_net * static_cast<double>(seeds_in_run[c.index]);
        backend_s += cell_s;
        if (static_cast<size_t>(c.index) < max_table) {
            std::string ls = c.layer_sizes_label();
            if (ls.size() > 30) ls = ls.substr(0, 27) + "...";
            const double mb = static_cast<double>(seeds_in_run[c.index]) * row_stride(c.depth()) * 8 / 1e6;
            std::printf("%-5d %-30s %12.1f %14.3g\n", c.index, ls.c_str(), mb, cell_s);
        }
    }
    if (spec.cells.size() > max_table) std::printf("... (%zu more cells)\n", spec.cells.size() - max_table);
    // A value goes into a unit file and out of it through the page cache, and into
    // its cell's column: ~60 ns each (measured: bench/plan_vs_measured.py). Memory
    // fresh from the kernel costs its page faults (timed here), result files the
    // writing and fsync.
    constexpr double kUnitFileSecondsPerValue = 60e-9;
    constexpr double kDiskSecondsPerByte = 2e-9;
    const double fresh = fresh_memory_seconds_per_byte();
    double aggregate_s = 0, output_s = 0;
    if (!o.shard.empty()) {
        aggregate_s = static_cast<double>(values_in_run) * kUnitFileSecondsPerValue / 3;  // written only
    } else {
        aggregate_s = static_cast<double>(values_in_run) * (kUnitFileSecondsPerValue + summarise_seconds_per_value(spec.seed_count)) +
                      static_cast<double>(m.cell_rows) * fresh;
        std::vector<int> all(spec.cells.size()), sample;
        uint64_t sample_layers = 0;
        for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
        const size_t step = std::max<size_t>(1, all.size() / 64);
        for (size_t i = 0; i < all.size() && sample_layers < 4000; i += step) {
            sample.push_back(all[i]);
            sample_layers += static_cast<uint64_t>(spec.cells[all[i]].depth());
        }
        const OutputTiming ot = time_output(spec, sample, o.per_seed);
        const double total_bytes = output_bound_bytes(spec, all);
        output_s = (ot.bound_bytes > 0 ? ot.seconds * total_bytes / ot.bound_bytes : 0) + total_bytes * kDiskSecondsPerByte +
                   static_cast<double>(m.writing) * fresh;
        if (o.per_seed) output_s += static_cast<double>(values_in_run) * (ot.per_seed_seconds_per_value + 56 * kDiskSecondsPerByte);
    }
    const double workers = static_cast<double>(w.factories.size());
    std::printf("estimated time %.3g s%s, with its cores to itself (backend %.3g s, aggregation %.3g s, result files %.3g s; "
                "calibrated on %zu of %zu cells); peak memory for one cell's rows %.1f MB\n",
                backend_s / workers + aggregate_s + output_s, o.shard.empty() ? "" : (" for shard " + shard.label()).c_str(),
                backend_s / workers, aggregate_s, output_s, calibrated, spec.cells.size(), static_cast<double>(m.cell_rows) / 1e6);
    return 0;
}

bool dir_nonempty(const std::string& dir) {
    std::error_code ec;
    return fs::exists(dir, ec) && !fs::is_empty(dir, ec);
}

void check_out_dir_type(const std::string& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw UsageError("-o " + dir + ": exists and is not a directory");
}

void create_out_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw OutputError("cannot create " + dir + ": " + ec.message());
}

ojson read_results_json(const std::string& dir) {
    std::ifstream f(dir + "/results.json", std::ios::binary);
    if (!f) return ojson::object();
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        ojson j = ojson::parse(ss.str());
        return j.is_object() ? j : ojson::object();
    } catch (const nlohmann::json::exception&) {
        return ojson::object();
    }
}

// --per-seed: per_seed gets the header, then each cell's rows as aggregation
// meets them. Without it no hook at all, so a cell's rows never need to be in
// memory whole. poll runs every few thousand seeds (signals).
std::function<void(const Cell&, const std::vector<double>&)> per_seed_hook(bool on, const Spec& spec, std::string& per_seed,
                                                                           std::function<void()> poll) {
    if (!on) return nullptr;
    per_seed = per_seed_csv_header();
    return [&spec, &per_seed, poll = std::move(poll)](const Cell& c, const std::vector<double>& rows) {
        append_per_seed_csv(per_seed, spec, c, rows, 0, poll);
    };
}

// Thrown by write_poll when a signal arrives while results are written: the
// writer then removes its temporary files before the stop is reported.
struct StopRequested {
    int sig;
};

// GRADSWEEP_TEST_WRITE_DELAY_MS (tests only: tests/cli/deep_output.sh): a pause
// after each chunk of result text, so that a test can signal a run while it is
// certainly writing. The pause ends early when a signal arrives.
int test_write_delay_ms() {
    static const int ms = [] {
        const char* v = std::getenv("GRADSWEEP_TEST_WRITE_DELAY_MS");
        return v ? std::clamp(std::atoi(v), 0, 60000) : 0;
    }();
    return ms;
}

// Runs after each chunk of a result file is written: a signal stops the writing.
void write_poll() {
    for (int waited = 0; waited < test_write_delay_ms() && !StopSignals::caught(); waited += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (int sig = StopSignals::caught()) throw StopRequested{sig};
}

// The result files of a run or merge, all or nothing: a failed write (disk full)
// or a signal leaves earlier results untouched and no temporary file behind.
// Each file is written as it is produced (results.csv of a deep network need not
// fit in memory). per_seed.csv only with --per-seed.
void write_result_files(const std::string& dir, const Spec& spec, const SweepResult& result, bool with_per_seed,
                        const std::string& per_seed, const ojson& extra) {
    std::vector<OutputFile> files{
        {dir + "/results.csv", [&](TextOut& o) { write_results_csv(spec, result, o); }},
        {dir + "/theory.csv", [&](TextOut& o) { write_theory_csv(spec, result, o); }},
        {dir + "/growth.csv", [&](TextOut& o) { write_growth_csv(spec, result, o); }}};
    if (with_per_seed) files.push_back({dir + "/per_seed.csv", [&](TextOut& o) { o << per_seed; }});
    files.push_back({dir + "/results.json", [&](TextOut& o) { write_results_json(spec, result, extra, o); }});
    write_files_atomic(files, write_poll);
}

// gradsweep's own files (scripts/plot.py): the installed copies beside the
// binary (bin/../share/gradsweep, from GNUInstallDirs), else, for the binary
// where the build put it, the source tree it was built from. A binary copied
// anywhere else finds neither and says so, rather than running a script of
// unknown origin.
std::string find_data_file(const std::string& rel, std::string* looked_in) {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    std::vector<fs::path> candidates;
    if (!ec) candidates.push_back((exe.parent_path() / GS_DATA_DIR_FROM_BINDIR / rel).lexically_normal());
    if (exe.empty() || fs::equivalent(exe.parent_path(), GS_BUILD_BINARY_DIR, ec))
        candidates.push_back(fs::path(GS_SOURCE_DIR_FOR_SCRIPTS) / rel);
    for (const fs::path& c : candidates) {
        if (fs::is_regular_file(c, ec)) return c.string();
        if (looked_in) *looked_in += (looked_in->empty() ? "" : ", ") + c.string();
    }
    return "";
}

// scripts/plot.py on the results, run without a shell (the directory is one
// argument, whatever it contains); --quiet keeps its list of PNGs off stdout
// (errors still show). The caller holds a StopSignals: SIGINT/SIGTERM (also one
// caught before the plotting started) stop the plotting and exit 130/143; the
// results are complete by then.
// GRADSWEEP_PYTHON names another interpreter (e.g. a cluster module's python3).
int run_plot(const std::string& dir, bool quiet) {
    std::string looked_in;
    const std::string script = find_data_file("scripts/plot.py", &looked_in);
    if (script.empty()) {
        std::fprintf(stderr, "gradsweep: plotting failed: scripts/plot.py not found (looked in %s)\n", looked_in.c_str());
        return 1;
    }
    const char* env_python = std::getenv("GRADSWEEP_PYTHON");
    const std::string python = env_python && *env_python ? env_python : "/usr/bin/python3";
    // "--": a directory named like an option ("-h") is still the directory.
    const ChildOutcome r = run_child({python, script, "--", dir}, quiet);
    if (r.stop_signal) {
        std::fprintf(stderr, "gradsweep: %s: plotting stopped; the results in %s are complete\n", signal_name(r.stop_signal),
                     dir.c_str());
        return 128 + r.stop_signal;
    }
    if (!r.started || !r.error.empty() || r.killed_by || r.exit_code != 0) {
        std::fprintf(stderr, "gradsweep: plotting failed: %s %s %s\n", python.c_str(), script.c_str(), describe(r).c_str());
        return 1;
    }
    return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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

// What the directory holds decides how a run starts.
enum class Start { fresh, resume, already_done };

Start decide_start(const CliOptions& o, const Spec& spec, bool sharded) {
    const std::string& dir = o.out_dir;
    check_out_dir_type(dir);
    if (!dir_nonempty(dir)) return Start::fresh;
    if (o.force) return Start::fresh;
    if (!o.resume)
        throw UsageError("-o " + dir + ": directory exists and is not empty (use --resume to continue an interrupted run, --force to overwrite)");
    if (fs::exists(dir + "/" + kCheckpointFile)) return Start::resume;
    const ojson r = read_results_json(dir);
    const std::string want = sharded ? kShardFormat : "gradsweep-results/1";
    if (r.value("format", std::string()) == want && r.value("spec_hash", std::string()) == spec.hash) {
        if (sharded) throw InputError(dir + ": shard results without their checkpoint.json; use --force to run the shard again");
        return Start::already_done;
    }
    throw InputError(dir + ": nothing to resume there (no checkpoint.json" +
                     std::string(r.empty() ? "" : "; its results.json is of another spec or kind") + "); use --force to start over");
}

int cmd_run(const CliOptions& o) {
    StopSignals signals;  // first: a signal at any point from here exits 130/143 cleanly
    const auto t0 = std::chrono::steady_clock::now();
    const std::string start_time = utc_now_iso8601();
    const Spec spec = load_spec_file(o.spec_path);  // all validation before any output exists
    const bool sharded = !o.shard.empty();
    const ShardId shard = shard_of(o);
    if (sharded && o.per_seed) throw UsageError("--per-seed with --shard: per_seed.csv comes from merge (gradsweep merge ... --per-seed)");
    if (sharded && o.plot) throw UsageError("--plot with --shard: plot the merged results (gradsweep merge ... --plot)");
    const Workers w = choose_workers(o);
    // Checked before the unit list is even built: a sweep too big for memory
    // may also have too many units to list.
    check_memory(spec, memory_plan(spec, o, w, total_work_units(spec, o.seed_block)), max_memory_of(o), mem_available_bytes());
    const std::vector<WorkUnit> units = sharded ? shard_work_units(spec, o.seed_block, shard) : all_work_units(spec, o.seed_block);

    const std::string dir = o.out_dir;
    const Start start = decide_start(o, spec, sharded);
    if (start == Start::already_done) {
        if (!o.quiet) std::fprintf(stderr, "gradsweep: %s already holds the finished results of this spec; nothing to do\n", dir.c_str());
        return 0;
    }
    create_out_dir(dir);
    Checkpoint cp(dir, spec, o.seed_block, shard, units, start == Start::resume ? Checkpoint::Mode::resume : Checkpoint::Mode::fresh);
    const size_t resumed = cp.done_count();
    // Unsharded runs without --per-seed summarise each cell as soon as it is
    // complete and drop its rows; shards keep rows for the merge, and per_seed.csv
    // needs every row at the end.
    const bool summarise_early = !sharded && !o.per_seed;
    if (o.per_seed && cp.any_cell_summarised())
        throw InputError(dir + ": the checkpoint there has summarised cells (it was started without --per-seed) and per_seed.csv "
                         "needs all rows; resume without --per-seed, or use --force to start over");
    // Announced once every check has passed, so that a refusal stays one line.
    if (!o.quiet && !w.announcement.empty()) std::fprintf(stderr, "gradsweep: %s\n", w.announcement.c_str());
    if (!o.quiet && start == Start::resume)
        std::fprintf(stderr, "gradsweep: resuming: %zu of %zu work units already done%s\n", resumed, units.size(),
                     cp.discarded() ? (", " + std::to_string(cp.discarded()) + " checkpoint files removed: damaged, or from another gradsweep version").c_str() : "");

    // Bookkeeping for progress: a cell is done when all its units (in this run) are.
    std::vector<uint64_t> cell_left(spec.cells.size(), 0);
    std::vector<size_t> todo;
    uint64_t networks_total = 0, networks_before = 0;
    for (size_t i = 0; i < units.size(); ++i) {
        networks_total += units[i].count;
        if (cp.done(i)) networks_before += units[i].count;
        else {
            todo.push_back(i);
            ++cell_left[units[i].cell];
        }
    }
    std::vector<char> cell_in_run(spec.cells.size(), 0);
    for (const WorkUnit& u : units) cell_in_run[u.cell] = 1;
    uint64_t cells_total = 0, cells_before = 0;
    for (size_t c = 0; c < spec.cells.size(); ++c) {
        cells_total += cell_in_run[c];
        cells_before += cell_in_run[c] && cell_left[c] == 0;
    }
    std::mutex count_mu;
    std::vector<int> complete_cells;  // complete, not yet summarised (summarise_early)
    if (summarise_early)
        for (const Cell& c : spec.cells)
            if (cell_in_run[c.index] && cell_left[c.index] == 0 && !cp.cell_summarised(c.index)) complete_cells.push_back(c.index);
    uint64_t cells_done = cells_before, units_done = resumed, networks_done = networks_before;
    Progress progress(stderr, !o.quiet, ::isatty(2) != 0, Progress::default_interval(), cells_total, units.size(), networks_total,
                      cells_before, resumed, networks_before);

    auto stop_now = [&](int sig) {
        progress.clear();
        cp.freeze();  // waits out a unit being written; no temporary file remains
        std::fprintf(stderr, "gradsweep: stopped by %s; %zu of %zu work units are kept in %s; continue with --resume\n",
                     signal_name(sig), cp.done_count(), units.size(), dir.c_str());
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(128 + sig);
    };
    const bool fresh = start == Start::fresh;
    auto on_failure = [&]() {
        // A fresh run that finished nothing leaves the directory as it found it;
        // once units are done they are kept for --resume.
        if (fresh && cp.done_count() == 0) cp.remove_files();
        else if (!o.quiet)
            std::fprintf(stderr, "gradsweep: %zu finished work units are kept in %s; continue with --resume\n", cp.done_count(), dir.c_str());
    };

    TestGate gate(resumed, units.size());
    std::vector<WorkerInfo> winfo;
    try {
        if (int sig = StopSignals::caught()) stop_now(sig);
        auto sink = [&](size_t i, const double* rows) {
            gate.before_unit();
            cp.store(i, rows);
            std::lock_guard<std::mutex> lock(count_mu);
            ++units_done;
            networks_done += units[i].count;
            if (--cell_left[units[i].cell] == 0) {
                ++cells_done;
                if (summarise_early) complete_cells.push_back(units[i].cell);
            }
        };
        // Summarising happens here, on the main thread, while the workers go on.
        auto summarise_complete = [&]() {
            for (;;) {
                int c = -1;
                {
                    std::lock_guard<std::mutex> lock(count_mu);
                    if (complete_cells.empty()) return;
                    c = complete_cells.back();
                    complete_cells.pop_back();
                }
                cp.summarise_cell(c);
                if (int sig = StopSignals::caught()) stop_now(sig);
            }
        };
        auto tick = [&]() {
            if (int sig = StopSignals::caught()) stop_now(sig);
            summarise_complete();
            std::lock_guard<std::mutex> lock(count_mu);
            progress.update(cells_done, units_done, networks_done);
        };
        SchedulerOptions so;
        so.max_units_per_call = w.units_per_call;
        winfo = run_on_devices(spec, units, todo, w.factories, sink, tick, so);
        if (int sig = StopSignals::caught()) stop_now(sig);
        summarise_complete();
        progress.finish();
    } catch (...) {
        progress.clear();
        on_failure();
        throw;
    }

    RunInfo info;
    info.backend = winfo.front().backend;
    std::vector<std::string> names;
    for (const WorkerInfo& x : winfo)
        if (std::find(names.begin(), names.end(), x.device) == names.end()) names.push_back(x.device);
    for (size_t i = 0; i < names.size(); ++i) info.device += (i ? "; " : "") + names[i];
    info.threads = 0;
    for (const WorkerInfo& x : winfo) info.threads += x.threads;
    info.start_time = start_time;
    const uint64_t fresh_networks = networks_total - networks_before;
    ojson extra{{"seed_block", o.seed_block}, {"work_units", units.size()}};
    if (resumed) extra["resumed_units"] = resumed;
    if (winfo.size() > 1) {
        ojson devs = ojson::array();
        for (size_t i = 0; i < winfo.size(); ++i)
            devs.push_back(ojson{{"worker", w.labels[i]}, {"device", winfo[i].device}, {"units", winfo[i].units}});
        extra["devices"] = std::move(devs);
    }

    try {
        gate.before_results();
        if (sharded) {
            info.end_time = utc_now_iso8601();
            info.elapsed_seconds = seconds_since(t0);
            info.networks = networks_total;
            info.networks_per_second = info.elapsed_seconds > 0 ? fresh_networks / info.elapsed_seconds : 0;
            write_file_atomic(dir + "/results.json", shard_results_json_text(spec, o.seed_block, shard, units, info, extra));
            if (!o.quiet)
                std::printf("shard %s: %zu work units, %llu networks in %.3g s; rows in %s/units (merge with: gradsweep merge)\n",
                            shard.label().c_str(), units.size(), static_cast<unsigned long long>(networks_total), info.elapsed_seconds,
                            dir.c_str());
            return 0;
        }
        // Every cell is summarised by summarize_cell over its rows in seed order,
        // early (cell files) or now (from unit files): the same bits either way,
        // and the same as a merge of shards.
        std::string per_seed;
        SweepResult result;
        auto poll = [&]() {
            if (int sig = StopSignals::caught()) stop_now(sig);
        };
        if (summarise_early) {
            for (const Cell& c : spec.cells) {
                result.cells.push_back(cp.load_cell(c.index));
                poll();
            }
        } else result.cells = aggregate_units(
            spec, o.seed_block,
            [&](const WorkUnit& u, double* dst) {
                std::string why;
                const std::string path = dir + "/" + kUnitsDir + "/" + unit_file_name(u);
                if (!read_unit_file(path, spec, o.seed_block, u, dst, &why)) throw std::runtime_error(path + ": " + why);
            },
            per_seed_hook(o.per_seed, spec, per_seed, poll), poll);
        info.end_time = utc_now_iso8601();
        info.elapsed_seconds = seconds_since(t0);
        info.networks = spec.networks();
        info.networks_per_second = info.elapsed_seconds > 0 ? fresh_networks / info.elapsed_seconds : 0;
        result.info = info;
        try {
            write_result_files(dir, spec, result, o.per_seed, per_seed, extra);
        } catch (const StopRequested& stop) {
            stop_now(stop.sig);  // the temporary files are gone; every unit stays for --resume
        }
        cp.remove_files();  // the results are in place; the rows are no longer needed
        if (!o.quiet) {
            print_summary(spec, result);
            std::printf("%llu networks in %.3g s (%.3g networks/s) on %s; results in %s/\n",
                        static_cast<unsigned long long>(fresh_networks), info.elapsed_seconds, info.networks_per_second,
                        info.backend.c_str(), dir.c_str());
        }
    } catch (...) {
        on_failure();
        throw;
    }
    if (o.plot) return run_plot(dir, o.quiet);
    return 0;
}

int cmd_merge(const CliOptions& o) {
    StopSignals signals;  // a signal stops the merge cleanly: nothing written, no temporary file (exit 130/143)
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::string& d : o.inputs) {
        std::error_code ec;
        if (fs::equivalent(d, o.out_dir, ec)) throw UsageError("merge -o " + o.out_dir + ": must not be one of the shard directories");
    }
    const ShardSet set = open_shards(o.inputs);
    const Spec& spec = set.spec;
    {
        MemoryInputs in;
        in.block_seeds = set.block_seeds;
        in.units = set.owner.size();
        in.per_seed = o.per_seed;
        check_memory(spec, estimate_memory(spec, in), max_memory_of(o), mem_available_bytes());
    }
    check_out_dir_type(o.out_dir);
    if (dir_nonempty(o.out_dir) && !o.force)
        throw UsageError("-o " + o.out_dir + ": directory exists and is not empty (use --force to overwrite)");
    auto stop_now = [&](int sig) {
        std::fprintf(stderr, "gradsweep: stopped by %s; merge not written\n", signal_name(sig));
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(128 + sig);
    };
    auto poll = [&]() {
        if (int sig = StopSignals::caught()) stop_now(sig);
    };
    std::string per_seed;
    SweepResult result;
    // Unit files are checked (identity, size, checksum) as they are loaded; any
    // problem is bad input and stops the merge before anything is written.
    result.cells = aggregate_units(
        spec, set.block_seeds, [&](const WorkUnit& u, double* dst) { load_shard_unit(set, u, dst); },
        per_seed_hook(o.per_seed, spec, per_seed, poll), poll);
    result.info = merged_run_info(set);
    const ojson extra{{"seed_block", set.block_seeds}, {"work_units", set.owner.size()}, {"shards", set.count},
                      {"merge_seconds", seconds_since(t0)}};
    create_out_dir(o.out_dir);
    const std::string& dir = o.out_dir;
    try {
        write_result_files(dir, spec, result, o.per_seed, per_seed, extra);
    } catch (const StopRequested& stop) {
        stop_now(stop.sig);
    }
    if (!o.quiet) {
        print_summary(spec, result);
        std::printf("merged %llu shards (%llu networks) into %s/\n", static_cast<unsigned long long>(set.count),
                    static_cast<unsigned long long>(spec.networks()), dir.c_str());
    }
    if (o.plot) return run_plot(dir, o.quiet);
    return 0;
}

}  // namespace

CliOptions parse_cli(const std::vector<std::string>& args) {
    CliOptions o;
    if (args.empty()) throw UsageError("missing command");
    o.command = args[0];
    if (o.command != "run" && o.command != "validate" && o.command != "plan" && o.command != "merge")
        throw UsageError("unknown command \"" + o.command + "\"");
    // Each option at most once (a second -o would silently win otherwise), as
    // "--opt value" or "--opt=value"; -o and --out, -q and --quiet are one option.
    std::vector<std::string> seen;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 2 || arg[0] != '-') {
            if (o.command == "merge") o.inputs.push_back(arg);
            else if (o.spec_path.empty()) o.spec_path = arg;
            else throw UsageError("unexpected argument \"" + one_line_text(arg) + "\"");
            continue;
        }
        const size_t eq = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string::npos;
        const std::string a = arg.substr(0, eq);
        const std::string name = a == "-o" ? "--out" : a == "-q" ? "--quiet" : a;
        static const char* const kValued[] = {"--out", "--threads", "--device", "--devices", "--backend", "--shard",
                                              "--max-memory", "--seed-block"};
        static const char* const kFlags[] = {"--per-seed", "--quiet", "--force", "--resume", "--plot"};
        const bool valued = std::find(std::begin(kValued), std::end(kValued), name) != std::end(kValued);
        if (!valued && std::find(std::begin(kFlags), std::end(kFlags), name) == std::end(kFlags))
            throw UsageError("unknown option " + one_line_text(a));
        if (std::find(seen.begin(), seen.end(), name) != seen.end())
            throw UsageError(a + " given twice; give each option once");
        seen.push_back(name);
        if (!valued && eq != std::string::npos) throw UsageError(a + " takes no value, got \"" + one_line_text(arg) + "\"");
        std::string v;
        if (valued) {
            if (eq != std::string::npos) v = arg.substr(eq + 1);
            else if (i + 1 < args.size()) v = args[++i];
            else throw UsageError(a + " needs a value");
        }
        if (name == "--out") {
            if (v.empty()) throw UsageError(a + " needs a directory, got \"\"");
            o.out_dir = v;
        } else if (name == "--threads") {
            // A thread per core is the useful maximum; far beyond it is a typo, not a plan.
            o.threads = static_cast<int>(int_option(a, v, 0, 4096));
        } else if (name == "--device") {
            o.device = to_int(a, v);
            o.device_given = true;
        } else if (name == "--devices") o.devices = v;
        else if (name == "--backend") {
            o.backend = v;
            if (o.backend != "auto" && o.backend != "cpu" && o.backend != "cuda")
                throw UsageError("--backend must be auto, cpu or cuda, got \"" + one_line_text(o.backend) + "\"");
        } else if (name == "--shard") o.shard = v;
        else if (name == "--max-memory") {
            o.max_memory = v;
            if (o.max_memory.empty()) throw UsageError("--max-memory expects a size such as 8G, 512M or 1000000, got \"\"");
        } else if (name == "--seed-block") {
            o.seed_block = static_cast<uint64_t>(int_option(a, v, 1, 1 << 24));
        } else if (name == "--per-seed") o.per_seed = true;
        else if (name == "--quiet") o.quiet = true;
        else if (name == "--force") o.force = true;
        else if (name == "--resume") o.resume = true;
        else if (name == "--plot") o.plot = true;
    }
    if (o.command == "merge") {
        if (o.inputs.empty()) throw UsageError("merge needs the shard directories");
        if (o.out_dir.empty()) throw UsageError("merge needs -o DIR");
    } else if (o.spec_path.empty()) {
        throw UsageError("missing SPEC file");
    }
    if (o.command == "run" && o.out_dir.empty()) throw UsageError("run needs -o DIR");
    if (o.resume && o.force) throw UsageError("--resume and --force contradict each other");
    if (o.device_given && !o.devices.empty()) throw UsageError("give --device or --devices, not both");
    if (!o.devices.empty() && o.devices != "all") parse_device_list(o.devices);
    if (!o.max_memory.empty()) {
        try {
            parse_bytes(o.max_memory);
        } catch (const InputError& e) {
            throw UsageError(e.what());
        }
    }
    if (!o.shard.empty() && o.shard != "auto") {
        try {
            parse_shard(o.shard);
        } catch (const InputError& e) {
            throw UsageError(e.what());
        }
    }
    return o;
}

namespace {
// Every error is one line (README, docs/errors.md), whatever the file names in it
// hold; the usage text is for --help, not for each mistake.
int error_line(const std::string& what, int code) {
    std::fprintf(stderr, "gradsweep: error: %s\n", one_line_text(what).c_str());
    return code;
}
}  // namespace

int cli_main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
        std::printf("gradsweep %s (%s)\n", version_string(), git_commit());
        if (cuda_compiled_in())
            std::printf("CUDA backend: compiled in (nvcc %s; architectures %s)\n", cuda_compiler_version(),
                        cuda_architectures());
        else
            std::printf("CUDA backend: not compiled in (CPU backend only)\n");
        return 0;
    }
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    CliOptions o;
    try {
        o = parse_cli(args);
        if (o.command == "validate") return cmd_validate(o);
        if (o.command == "plan") return cmd_plan(o);
        if (o.command == "merge") return cmd_merge(o);
        return cmd_run(o);
    } catch (const SpecError& e) {
        return error_line(o.spec_path + ": " + e.what(), 2);
    } catch (const UsageError& e) {
        return error_line(e.what(), 2);
    } catch (const InputError& e) {
        return error_line(e.what(), 2);
    } catch (const OutputError& e) {
        return error_line(e.what(), 1);
    } catch (const std::exception& e) {
        return error_line(e.what(), 1);
    }
}

}  // namespace gs
