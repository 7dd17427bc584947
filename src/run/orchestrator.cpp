#include "gradsweep/orchestrator.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "gradsweep/checkpoint.hpp"
#include "gradsweep/device_scheduler.hpp"
#include "gradsweep/file_io.hpp"
#include "gradsweep/merge.hpp"
#include "gradsweep/plot_launcher.hpp"
#include "gradsweep/progress.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/result_files.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stop_signals.hpp"
#include "gradsweep/summary_table.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"
#include "gradsweep/workers.hpp"
#include "run/test_gate.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

// Taken first: results.json's start_time and the rate both count from here.
struct RunClock {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    std::string start_time = utc_now_iso8601();
};

// per_seed.csv and plots are of the whole sweep: a shard leaves them to the merge.
void refuse_whole_sweep_options(const CliOptions& o) {
    if (o.shard.empty()) return;
    if (o.per_seed) throw UsageError("--per-seed with --shard: per_seed.csv comes from merge (gradsweep merge ... --per-seed)");
    if (o.plot) throw UsageError("--plot with --shard: plot the merged results (gradsweep merge ... --plot)");
}

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
    // Finished results, or something else: what is not a JSON object is never finished results.
    const JsonFile f = read_json_file(dir + "/results.json");
    const ojson r = f.valid && f.json.is_object() ? f.json : ojson::object();
    const std::string want = sharded ? kShardFormat : "gradsweep-results/1";
    if (r.value("format", std::string()) == want && r.value("spec_hash", std::string()) == spec.hash) {
        if (sharded) throw InputError(dir + ": shard results without their checkpoint.json; use --force to run the shard again");
        return Start::already_done;
    }
    throw InputError(dir + ": nothing to resume there (no checkpoint.json" +
                     std::string(r.empty() ? "" : "; its results.json is of another spec or kind") + "); use --force to start over");
}

// A checkpoint that summarised cells has dropped their rows, which per_seed.csv needs.
void refuse_per_seed_after_summaries(const CliOptions& o, const Checkpoint& cp) {
    if (o.per_seed && cp.any_cell_summarised())
        throw InputError(o.out_dir + ": the checkpoint there has summarised cells (it was started without --per-seed) and per_seed.csv "
                         "needs all rows; resume without --per-seed, or use --force to start over");
}

// The memory plan left room for the rows of cells cheap to redo (unsharded,
// without --per-seed or --checkpoint-units): such cells skip unit files, and a
// kill loses those in flight (docs/scale_out.md, "What a killed run keeps").
void keep_cheap_cells_in_memory(const Spec& spec, const MemoryPlan& memory, Checkpoint& cp) {
    if (memory.cells_in_memory == 0) return;
    std::vector<char> cheap(spec.cells.size());
    for (const Cell& c : spec.cells) cheap[c.index] = cell_cheap_to_redo(spec, c.index);
    cp.keep_cells_in_memory(std::move(cheap), memory.cells_in_memory);
}

// Cells cheap to redo, whole and untouched in this run, go to a CUDA device in
// one piece and come back as their summaries (cells_summarised_on_device): their
// rows never cross PCIe. Indexed by cell; empty when the run offers none.
std::vector<char> cells_offered_whole(const CliOptions& o, const Spec& spec, const Workers& w, const Checkpoint& cp) {
    if (!cells_summarised_on_device(o, w)) return {};
    std::vector<char> whole(spec.cells.size(), 0);
    for (const Cell& c : spec.cells) whole[c.index] = cell_cheap_to_redo(spec, c.index) && cp.cell_untouched(c.index);
    return whole;
}

// Announced once every check has passed, so that a refusal stays one line.
void announce(const CliOptions& o, const Workers& w, Start start, const Checkpoint& cp, size_t units) {
    if (o.quiet) return;
    if (!w.announcement.empty()) std::fprintf(stderr, "gradsweep: %s\n", w.announcement.c_str());
    if (start == Start::resume)
        std::fprintf(stderr, "gradsweep: resuming: %zu of %zu work units already done%s\n", cp.done_count(), units,
                     cp.discarded() ? (", " + std::to_string(cp.discarded()) + " checkpoint files removed: damaged, or from another gradsweep version").c_str() : "");
}

// What the progress line counts, and which cells are whole. A cell is done when
// all its units in this run are; with summarise_early it then waits in
// complete_ for the main thread to summarise it (its rows can go). unit_done
// runs on worker threads, everything else on the main thread.
class RunTally {
public:
    struct Counts {
        uint64_t cells = 0, units = 0, networks = 0;
    };
    Counts total, before;  // in this run; already done when it started (resumed)

    RunTally(const Spec& spec, const std::vector<WorkUnit>& units, const Checkpoint& cp, bool summarise_early)
        : summarise_early_(summarise_early), cell_left_(spec.cells.size(), 0) {
        total.units = units.size();
        before.units = cp.done_count();
        for (size_t i = 0; i < units.size(); ++i) {
            total.networks += units[i].count;
            if (cp.done(i)) before.networks += units[i].count;
            else {
                todo_.push_back(i);
                ++cell_left_[units[i].cell];
            }
        }
        std::vector<char> cell_in_run(spec.cells.size(), 0);
        for (const WorkUnit& u : units) cell_in_run[u.cell] = 1;
        for (size_t c = 0; c < spec.cells.size(); ++c) {
            total.cells += cell_in_run[c];
            before.cells += cell_in_run[c] && cell_left_[c] == 0;
        }
        if (summarise_early)
            for (const Cell& c : spec.cells)
                if (cell_in_run[c.index] && cell_left_[c.index] == 0 && !cp.cell_summarised(c.index)) complete_.push_back(c.index);
        done_ = before;
    }

    const std::vector<size_t>& todo() const { return todo_; }  // units still to compute, by index

    Progress progress(bool enabled) const {
        return Progress(stderr, enabled, ::isatty(2) != 0, Progress::default_interval(), total.cells, total.units, total.networks,
                        before.cells, before.units, before.networks);
    }

    void unit_done(const WorkUnit& u) {
        std::lock_guard<std::mutex> lock(mu_);
        ++done_.units;
        done_.networks += u.count;
        if (--cell_left_[u.cell] == 0) {
            ++done_.cells;
            if (summarise_early_) complete_.push_back(u.cell);
        }
    }

    // A cell summarised whole where it was computed (Backend::summarize_cell):
    // all its units are done, and it is not waiting to be summarised.
    void cell_done(int cell, uint64_t networks) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.units += cell_left_[cell];
        done_.networks += networks;
        cell_left_[cell] = 0;
        ++done_.cells;
    }

    // A complete cell not yet summarised, or -1.
    int take_complete_cell() {
        std::lock_guard<std::mutex> lock(mu_);
        if (complete_.empty()) return -1;
        const int c = complete_.back();
        complete_.pop_back();
        return c;
    }

    void show(Progress& progress) {
        std::lock_guard<std::mutex> lock(mu_);
        progress.update(done_.cells, done_.units, done_.networks);
    }

private:
    const bool summarise_early_;
    std::vector<uint64_t> cell_left_;
    std::vector<size_t> todo_;
    std::vector<int> complete_;
    Counts done_;
    std::mutex mu_;
};

// How a run that does not finish ends. A signal: the process exits 128 + signal
// at once (workers may be mid-unit), with no temporary file left and every
// finished unit kept for --resume. A failure: a fresh run that finished nothing
// leaves the directory as it found it; once units are done they are kept.
class RunStop {
public:
    RunStop(Progress& progress, Checkpoint& cp, size_t units, const CliOptions& o, bool fresh)
        : progress_(progress), cp_(cp), units_(units), o_(o), fresh_(fresh) {}

    [[noreturn]] void now(int sig) {
        progress_.clear();
        cp_.freeze();  // waits out a unit being written; no temporary file remains
        std::fprintf(stderr, "gradsweep: stopped by %s; %zu of %zu work units are kept in %s; continue with --resume\n",
                     signal_name(sig), cp_.done_count(), units_, o_.out_dir.c_str());
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(128 + sig);
    }

    // Where the run looks for a signal: between units, cells and chunks of rows.
    void poll() {
        if (int sig = StopSignals::caught()) now(sig);
    }

    void on_failure() {
        if (fresh_ && cp_.done_count() == 0) cp_.remove_files();
        else if (!o_.quiet)
            std::fprintf(stderr, "gradsweep: %zu finished work units are kept in %s; continue with --resume\n", cp_.done_count(),
                         o_.out_dir.c_str());
    }

private:
    Progress& progress_;
    Checkpoint& cp_;
    const size_t units_;
    const CliOptions& o_;
    const bool fresh_;
};

// The units still to do, on every worker at once. Each finished unit goes to
// the checkpoint as it comes; complete cells are summarised here, on the main
// thread, while the workers go on.
std::vector<WorkerInfo> compute_units(const Spec& spec, const std::vector<WorkUnit>& units, const Workers& w, Checkpoint& cp,
                                      std::vector<char> whole_cells, RunTally& tally, Progress& progress, RunStop& stop,
                                      TestGate& gate) {
    auto sink = [&](size_t i, const double* rows) {
        gate.before_unit();
        cp.store(i, rows);
        tally.unit_done(units[i]);
    };
    std::vector<uint64_t> units_of_cell(spec.cells.size(), 0);
    for (const WorkUnit& u : units) ++units_of_cell[u.cell];
    auto cell_sink = [&](int cell, const CellResult& r) {
        for (uint64_t k = 0; k < units_of_cell[cell]; ++k) gate.before_unit();  // as if its units were written one by one
        cp.store_cell(r);
        tally.cell_done(cell, spec.seed_count);
    };
    auto summarise_complete = [&]() {
        for (int c = tally.take_complete_cell(); c >= 0; c = tally.take_complete_cell()) {
            cp.summarise_cell(c);
            stop.poll();
        }
    };
    auto tick = [&]() {
        stop.poll();
        summarise_complete();
        tally.show(progress);
    };
    SchedulerOptions so;
    so.max_units_per_call = w.units_per_call;
    so.whole_cells = std::move(whole_cells);
    so.cell_sink = cell_sink;
    try {
        stop.poll();
        std::vector<WorkerInfo> winfo = run_on_devices(spec, units, tally.todo(), w.factories, sink, tick, so);
        stop.poll();
        summarise_complete();
        progress.finish();
        return winfo;
    } catch (...) {
        progress.clear();
        stop.on_failure();
        throw;
    }
}

// Provenance of the computing: the backend, each distinct device once, all threads.
RunInfo workers_run_info(const std::vector<WorkerInfo>& winfo, const RunClock& clock) {
    RunInfo info;
    info.backend = winfo.front().backend;
    std::vector<std::string> names;
    for (const WorkerInfo& x : winfo)
        if (std::find(names.begin(), names.end(), x.device) == names.end()) names.push_back(x.device);
    for (size_t i = 0; i < names.size(); ++i) info.device += (i ? "; " : "") + names[i];
    info.threads = 0;
    for (const WorkerInfo& x : winfo) info.threads += x.threads;
    info.start_time = clock.start_time;
    return info;
}

// The end of the run. The rate counts only the networks computed in this
// process (not resumed ones): it is this machine's speed.
void stamp_end(RunInfo& info, const RunClock& clock, uint64_t networks, uint64_t fresh_networks) {
    info.end_time = utc_now_iso8601();
    info.elapsed_seconds = seconds_since(clock.t0);
    info.networks = networks;
    info.networks_per_second = info.elapsed_seconds > 0 ? fresh_networks / info.elapsed_seconds : 0;
}

// How the run was executed, appended to results.json's provenance: its units,
// those resumed, and with several workers which did what.
ojson execution_provenance(const CliOptions& o, size_t units, size_t resumed, const Workers& w,
                           const std::vector<WorkerInfo>& winfo) {
    ojson extra{{"seed_block", o.seed_block}, {"work_units", units}};
    if (resumed) extra["resumed_units"] = resumed;
    if (winfo.size() > 1) {
        ojson devs = ojson::array();
        for (size_t i = 0; i < winfo.size(); ++i)
            devs.push_back(ojson{{"worker", w.labels[i]}, {"device", winfo[i].device}, {"units", winfo[i].units}});
        extra["devices"] = std::move(devs);
    }
    return extra;
}

// A shard's result is its results.json: the rows stay in units/ for the merge.
void write_shard_results(const CliOptions& o, const Spec& spec, const ShardId& shard, const std::vector<WorkUnit>& units,
                         RunInfo info, const RunClock& clock, const RunTally& tally, const ojson& extra) {
    stamp_end(info, clock, tally.total.networks, tally.total.networks - tally.before.networks);
    write_file_atomic(o.out_dir + "/results.json", shard_results_json_text(spec, o.seed_block, shard, units, info, extra));
    if (!o.quiet)
        std::printf("shard %s: %zu work units, %llu networks in %.3g s; rows in %s/units (merge with: gradsweep merge)\n",
                    shard.label().c_str(), units.size(), static_cast<unsigned long long>(tally.total.networks), info.elapsed_seconds,
                    o.out_dir.c_str());
}

// Every cell is summarised by summarize_cell over its rows in seed order,
// early (cell files) or now (from unit files): the same bits either way, and
// the same as a merge of shards.
std::vector<CellResult> cell_summaries(const CliOptions& o, const Spec& spec, const Checkpoint& cp, bool summarised_early,
                                       std::string& per_seed, RunStop& stop) {
    auto poll = [&stop]() { stop.poll(); };
    if (!summarised_early)
        return aggregate_units(
            spec, o.seed_block, [&](const WorkUnit& u, double* dst) { cp.load_unit(u, dst); },
            per_seed_hook(o.per_seed, spec, per_seed, poll), poll);
    std::vector<CellResult> cells;
    for (const Cell& c : spec.cells) {
        cells.push_back(cp.load_cell(c.index));
        poll();
    }
    return cells;
}

// The sweep's result files, then the checkpoint goes: the rows are no longer needed.
void write_sweep_results(const CliOptions& o, const Spec& spec, Checkpoint& cp, bool summarised_early, RunInfo info,
                         const RunClock& clock, const RunTally& tally, const ojson& extra, RunStop& stop) {
    std::string per_seed;
    SweepResult result;
    result.cells = cell_summaries(o, spec, cp, summarised_early, per_seed, stop);
    stamp_end(info, clock, spec.networks(), tally.total.networks - tally.before.networks);
    result.info = info;
    try {
        write_result_files(o.out_dir, spec, result, o.per_seed, per_seed, extra);
    } catch (const StopRequested& s) {
        stop.now(s.sig);  // the temporary files are gone; every unit stays for --resume
    }
    cp.remove_files();
    if (!o.quiet) {
        std::fputs(summary_table(spec, result.cells).c_str(), stdout);
        std::printf("%llu networks in %.3g s (%.3g networks/s) on %s; results in %s/\n",
                    static_cast<unsigned long long>(tally.total.networks - tally.before.networks), info.elapsed_seconds,
                    info.networks_per_second, info.backend.c_str(), o.out_dir.c_str());
    }
}

}  // namespace

int orchestrate_run(const CliOptions& o) {
    return orchestrate_run_on(o, [&o] { return choose_workers(o); });
}

int orchestrate_run_on(const CliOptions& o, const std::function<Workers()>& make_workers) {
    StopSignals signals;  // first: a signal at any point from here exits 130/143 cleanly
    const RunClock clock;

    // 1. The spec, and every check of the options, before any output exists.
    const Spec spec = load_spec_file(o.spec_path);
    const bool sharded = !o.shard.empty();
    const ShardId shard = shard_of(o);
    refuse_whole_sweep_options(o);

    // 2. Workers, and whether the sweep fits in memory on them: checked before
    //    the unit list is even built (a sweep too big for memory may also have
    //    too many units to list).
    const Workers w = make_workers();
    const MemoryPlan memory = memory_plan_for(spec, o, w, total_work_units(spec, o.seed_block));
    check_memory(spec, memory, o.max_memory, mem_available_bytes());

    // 3. Work units: the sweep's, or this shard's.
    const std::vector<WorkUnit> units = sharded ? shard_work_units(spec, o.seed_block, shard) : all_work_units(spec, o.seed_block);

    // 4. A fresh start, a resume, or nothing left to do.
    const Start start = decide_start(o, spec, sharded);
    if (start == Start::already_done) {
        if (!o.quiet) std::fprintf(stderr, "gradsweep: %s already holds the finished results of this spec; nothing to do\n", o.out_dir.c_str());
        return 0;
    }
    create_out_dir(o.out_dir);
    Checkpoint cp(o.out_dir, spec, o.seed_block, shard, units, start == Start::resume ? Checkpoint::Mode::resume : Checkpoint::Mode::fresh);
    refuse_per_seed_after_summaries(o, cp);
    keep_cheap_cells_in_memory(spec, memory, cp);
    announce(o, w, start, cp, units.size());

    // 5. The units on the workers, with progress. Unsharded runs without
    //    --per-seed summarise each cell as soon as it is complete and drop its
    //    rows (cells cheap to redo never write them; on a CUDA device they are
    //    summarised there and their rows never reach the host); shards keep rows
    //    for the merge, and per_seed.csv needs every row at the end.
    const bool summarise_early = !sharded && !o.per_seed;
    RunTally tally(spec, units, cp, summarise_early);
    Progress progress = tally.progress(!o.quiet);
    RunStop stop(progress, cp, units.size(), o, start == Start::fresh);
    TestGate gate(tally.before.units, units.size());
    const std::vector<WorkerInfo> winfo =
        compute_units(spec, units, w, cp, cells_offered_whole(o, spec, w, cp), tally, progress, stop, gate);

    // 6. Summaries and result files (a shard's result is its results.json).
    const RunInfo info = workers_run_info(winfo, clock);
    const ojson extra = execution_provenance(o, units.size(), tally.before.units, w, winfo);
    try {
        gate.before_results();
        if (sharded) write_shard_results(o, spec, shard, units, info, clock, tally, extra);
        else write_sweep_results(o, spec, cp, summarise_early, info, clock, tally, extra, stop);
    } catch (...) {
        stop.on_failure();
        throw;
    }

    // 7. Plots, of the files just written.
    if (o.plot) return run_plot(o.out_dir, o.quiet);
    return 0;
}

}  // namespace gs
