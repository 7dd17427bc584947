#include "cli/commands.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gradsweep/merge.hpp"
#include "gradsweep/plot_launcher.hpp"
#include "gradsweep/progress.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/result_files.hpp"
#include "gradsweep/stop_signals.hpp"
#include "gradsweep/summary_table.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

namespace fs = std::filesystem;

// `gradsweep merge`: shard directories checked to be one sweep's shards, their
// rows aggregated into the results an unsharded run writes (merge.hpp).
int merge_command(const CliOptions& o) {
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
        check_memory(spec, estimate_memory(spec, in), o.max_memory, mem_available_bytes());
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
        std::fputs(summary_table(spec, result.cells).c_str(), stdout);
        std::printf("merged %llu shards (%llu networks) into %s/\n", static_cast<unsigned long long>(set.count),
                    static_cast<unsigned long long>(spec.networks()), dir.c_str());
    }
    if (o.plot) return run_plot(dir, o.quiet);
    return 0;
}

}  // namespace gs
