#include "gradsweep/cli.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "gradsweep/backend.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: gradsweep run SPEC -o DIR [--threads N] [--backend auto|cpu|cuda] [--device N]\n"
    "                     [--per-seed] [--force] [--quiet] [--plot]\n"
    "       gradsweep validate SPEC\n"
    "       gradsweep plan SPEC [--threads N] [--backend auto|cpu|cuda]\n"
    "       gradsweep --version\n";

int to_int(const std::string& flag, const std::string& v) {
    try {
        size_t pos = 0;
        const int x = std::stoi(v, &pos);
        if (pos != v.size()) throw std::invalid_argument(v);
        return x;
    } catch (const std::exception&) {
        throw UsageError(flag + " expects an integer, got \"" + v + "\"");
    }
}

std::unique_ptr<Backend> choose_backend(const CliOptions& o, bool announce) {
    std::string device;
    if (o.backend == "cpu") return make_cpu_backend(o.threads);
    if (o.backend == "cuda") {
        if (!cuda_available(&device, o.device)) throw UsageError("--backend cuda: no usable CUDA device " + std::to_string(o.device));
        return make_cuda_backend(o.device);
    }
    if (cuda_available(&device, o.device)) {
        if (announce) std::fprintf(stderr, "gradsweep: backend auto -> cuda (%s)\n", device.c_str());
        return make_cuda_backend(o.device);
    }
    auto b = make_cpu_backend(o.threads);
    if (announce) std::fprintf(stderr, "gradsweep: backend auto -> cpu, %d threads (no CUDA device)\n", b->threads());
    return b;
}

std::string short_number(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
}

void print_summary(const Spec& spec, const SweepResult& r) {
    std::printf("%-5s %-42s %12s %12s %10s %9s\n", "cell", "network", "first layer", "last layer", "first/last", "nonfinite");
    for (const CellResult& c : r.cells) {
        const Cell& cell = spec.cells[c.cell];
        std::string label = cell.layer_sizes_label() + " " + kActivationNames[static_cast<int>(cell.activation)] +
                            (cell.shortcut ? " shortcut" : " plain");
        if (label.size() > 42) label = label.substr(0, 39) + "...";
        const double first = c.layers.front()[weight_grad_mean_abs].median;
        const double last = c.layers.back()[weight_grad_mean_abs].median;
        std::printf("%-5d %-42s %12s %12s %10s %9llu\n", c.cell, label.c_str(), short_number(first).c_str(),
                    short_number(last).c_str(), short_number(first / last).c_str(),
                    static_cast<unsigned long long>(c.nonfinite_networks));
    }
    std::printf("(median over %llu seeds of each layer's mean |dLoss/dW|)\n", static_cast<unsigned long long>(spec.seed_count));
}

int cmd_validate(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);
    std::printf("ok: %s: %zu cells x %llu seeds = %llu networks\n", spec.name.c_str(), spec.cells.size(),
                static_cast<unsigned long long>(spec.seed_count), static_cast<unsigned long long>(spec.networks()));
    return 0;
}

int cmd_plan(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);
    auto backend = choose_backend(o, false);
    std::printf("spec %s (%s)\ncells %zu, seeds %llu, networks %llu, backend %s (%s)\n", spec.name.c_str(), spec.hash.c_str(),
                spec.cells.size(), static_cast<unsigned long long>(spec.seed_count),
                static_cast<unsigned long long>(spec.networks()), backend->name().c_str(), backend->device_name().c_str());
    // Calibrate: time a few networks of each cell, extrapolate linearly in seeds.
    double est = 0, peak_rows = 0;
    const uint64_t sample = std::min<uint64_t>(spec.seed_count, 32);
    std::printf("%-5s %-30s %12s %14s\n", "cell", "layer_sizes", "rows (MB)", "est. seconds");
    for (const Cell& c : spec.cells) {
        std::vector<double> rows(sample * row_stride(c.depth()));
        const auto t0 = std::chrono::steady_clock::now();
        backend->run(spec, c, 0, sample, rows.data());
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cell_s = dt / static_cast<double>(sample) * static_cast<double>(spec.seed_count);
        const double mb = static_cast<double>(spec.seed_count) * row_stride(c.depth()) * 8 / 1e6;
        peak_rows = std::max(peak_rows, mb);
        est += cell_s;
        std::string ls = c.layer_sizes_label();
        if (ls.size() > 30) ls = ls.substr(0, 27) + "...";
        std::printf("%-5d %-30s %12.1f %14.3g\n", c.index, ls.c_str(), mb, cell_s);
    }
    std::printf("estimated time %.3g s; peak memory for one cell's rows %.1f MB\n", est, peak_rows);
    return 0;
}

// Refuses to touch a directory that already holds results unless asked to.
void prepare_out_dir(const CliOptions& o) {
    std::error_code ec;
    if (fs::exists(o.out_dir, ec)) {
        if (!fs::is_directory(o.out_dir, ec)) throw UsageError("-o " + o.out_dir + ": exists and is not a directory");
        if (!fs::is_empty(o.out_dir, ec) && !o.force)
            throw UsageError("-o " + o.out_dir + ": directory exists and is not empty (use --force to overwrite)");
    }
    fs::create_directories(o.out_dir, ec);
    if (ec) throw OutputError("cannot create " + o.out_dir + ": " + ec.message());
}

int cmd_run(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);  // all validation before any output exists
    auto backend = choose_backend(o, !o.quiet);
    prepare_out_dir(o);
    const std::string dir = o.out_dir;
    std::string per_seed;
    if (o.per_seed) per_seed = per_seed_csv_header();
    RunHooks hooks;
    if (o.per_seed) hooks.on_rows = [&](const Cell& c, const std::vector<double>& rows) { append_per_seed_csv(per_seed, spec, c, rows); };
    if (!o.quiet)
        hooks.on_progress = [&](size_t cells, uint64_t nets) {
            std::fprintf(stderr, "gradsweep: %zu/%zu cells, %llu networks\n", cells, spec.cells.size(),
                         static_cast<unsigned long long>(nets));
        };
    const SweepResult result = run_sweep(spec, *backend, hooks);
    // All or nothing: a failed write (disk full) leaves earlier results untouched.
    std::vector<std::pair<std::string, std::string>> files{{dir + "/results.csv", results_csv_text(spec, result)}};
    if (o.per_seed) files.emplace_back(dir + "/per_seed.csv", std::move(per_seed));
    files.emplace_back(dir + "/results.json", results_json_text(spec, result));
    write_files_atomic(files);
    if (!o.quiet) {
        print_summary(spec, result);
        std::printf("%llu networks in %.3g s (%.3g networks/s) on %s; results in %s/\n",
                    static_cast<unsigned long long>(result.info.networks), result.info.elapsed_seconds,
                    result.info.networks_per_second, result.info.backend.c_str(), dir.c_str());
    }
    if (o.plot) {
        const std::string cmd = "/usr/bin/python3 \"" + std::string(GS_SOURCE_DIR_FOR_SCRIPTS) + "/scripts/plot.py\" \"" + dir + "\"";
        if (std::system(cmd.c_str()) != 0) {
            std::fprintf(stderr, "gradsweep: plotting failed (%s)\n", cmd.c_str());
            return 1;
        }
    }
    return 0;
}

}  // namespace

CliOptions parse_cli(const std::vector<std::string>& args) {
    CliOptions o;
    if (args.empty()) throw UsageError("missing command");
    o.command = args[0];
    if (o.command != "run" && o.command != "validate" && o.command != "plan")
        throw UsageError("unknown command \"" + o.command + "\"");
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
            return args[++i];
        };
        if (a == "-o" || a == "--out") o.out_dir = value();
        else if (a == "--threads") o.threads = to_int(a, value());
        else if (a == "--device") o.device = to_int(a, value());
        else if (a == "--backend") {
            o.backend = value();
            if (o.backend != "auto" && o.backend != "cpu" && o.backend != "cuda")
                throw UsageError("--backend must be auto, cpu or cuda, got \"" + o.backend + "\"");
        } else if (a == "--per-seed") o.per_seed = true;
        else if (a == "--quiet" || a == "-q") o.quiet = true;
        else if (a == "--force") o.force = true;
        else if (a == "--plot") o.plot = true;
        else if (!a.empty() && a[0] == '-') throw UsageError("unknown option " + a);
        else if (o.spec_path.empty()) o.spec_path = a;
        else throw UsageError("unexpected argument \"" + a + "\"");
    }
    if (o.spec_path.empty()) throw UsageError("missing SPEC file");
    if (o.command == "run" && o.out_dir.empty()) throw UsageError("run needs -o DIR");
    if (o.threads < 0) throw UsageError("--threads must be >= 0");
    return o;
}

int cli_main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
        std::printf("gradsweep %s (%s)\n", GS_VERSION, GS_GIT_COMMIT);
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
        return cmd_run(o);
    } catch (const SpecError& e) {
        std::fprintf(stderr, "gradsweep: error: %s: %s\n", o.spec_path.c_str(), e.what());
        return 2;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "gradsweep: error: %s\n%s", e.what(), kUsage);
        return 2;
    } catch (const OutputError& e) {
        std::fprintf(stderr, "gradsweep: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gradsweep: error: %s\n", e.what());
        return 1;
    }
}

}  // namespace gs
