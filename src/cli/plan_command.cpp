#include "cli/commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/work_units.hpp"
#include "gradsweep/workers.hpp"

namespace gs {

// `gradsweep plan`: what a run with these options would need, memory and time,
// measured on this machine, without running it. It chooses workers as `run` does.
int plan_command(const CliOptions& o) {
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
    const MemoryPlan m = memory_plan_for(spec, o, w, total_units);
    const uint64_t avail = mem_available_bytes(), cap = o.max_memory;
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
    if (m.cells_in_memory)
        std::printf("  cells kept in memory        %s (the rows of cells cheap to redo while they are computed; no unit files)\n",
                    human_bytes(m.cells_in_memory).c_str());
    std::printf("  cpu backend                 %s while computing (%d threads x %s scratch + rows in flight)\n",
                human_bytes(m.cpu_compute).c_str(), w.cpu_threads, human_bytes(m.cpu_scratch_per_thread).c_str());
    std::printf("  cuda backend                %s of device memory per GPU (%s), %s of host memory while computing (%s of it "
                "pinned per GPU)\n",
                human_bytes(m.cuda_per_device).c_str(),
                m.cuda_device_cell ? "the larger of the two below" : "networks in flight, two chunks' rows",
                human_bytes(m.cuda_host_compute).c_str(), human_bytes(m.cuda_staging).c_str());
    if (m.cuda_device_cell) {
        std::printf("    chunk loop                %s (networks in flight, two chunks' rows)\n", human_bytes(m.cuda_chunks).c_str());
        std::printf("    a cell summarised there   %s (cell %d: its %llu rows and the summary's workspace at once; not checked: a "
                    "cell that does not fit a device's free memory runs in work units instead)\n",
                    human_bytes(m.cuda_device_cell).c_str(), m.largest_device_cell, static_cast<unsigned long long>(spec.seed_count));
    }
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
    uint64_t values_in_run = 0, values_in_files = 0;
    for (const Cell& c : spec.cells) {
        const uint64_t values = seeds_in_run[c.index] * static_cast<uint64_t>(row_stride(c.depth()));
        values_in_run += values;
        if (m.cells_in_memory == 0 || !cell_cheap_to_redo(spec, c.index)) values_in_files += values;
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
    // its cell's column: ~60 ns each (measured: bench/plan_vs_measured.py); a value
    // of a cell kept in memory only into its column (counted with summarize's
    // time, which reads it next). Memory fresh from the kernel costs its page
    // faults (timed here), result files the writing and fsync.
    constexpr double kUnitFileSecondsPerValue = 60e-9;
    constexpr double kDiskSecondsPerByte = 2e-9;
    const double fresh = fresh_memory_seconds_per_byte();
    double aggregate_s = 0, output_s = 0;
    if (!o.shard.empty()) {
        aggregate_s = static_cast<double>(values_in_run) * kUnitFileSecondsPerValue / 3;  // written only
    } else {
        aggregate_s = static_cast<double>(values_in_files) * kUnitFileSecondsPerValue +
                      static_cast<double>(values_in_run) * summarise_seconds_per_value(spec.seed_count) +
                      static_cast<double>(m.cell_rows + m.cells_in_memory) * fresh;
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

}  // namespace gs
