#include "gradsweep/cli.hpp"

#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "gradsweep/orchestrator.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/version.hpp"

namespace gs {

namespace {

const char* kUsage =
    "usage: gradsweep run SPEC -o DIR [--threads N] [--backend auto|cpu|cuda] [--device N | --devices all|0,1,...]\n"
    "                     [--shard K/N|auto] [--resume | --force] [--max-memory SIZE] [--seed-block N]\n"
    "                     [--per-seed] [--quiet] [--plot] [--checkpoint-units]\n"
    "       gradsweep merge SHARD_DIR... -o DIR [--per-seed] [--force] [--quiet] [--plot] [--max-memory SIZE]\n"
    "       gradsweep validate SPEC\n"
    "       gradsweep plan SPEC [--threads N] [--backend auto|cpu|cuda] [--devices ...] [--shard K/N]\n"
    "                      [--max-memory SIZE] [--seed-block N] [--per-seed] [--checkpoint-units]\n"
    "       gradsweep --version\n";

// `gradsweep validate`: the spec read and checked, as a run would, and nothing else.
int validate_command(const CliOptions& o) {
    const Spec spec = load_spec_file(o.spec_path);
    std::printf("ok: %s: %zu cells x %llu seeds = %llu networks\n", spec.name.c_str(), spec.cells.size(),
                static_cast<unsigned long long>(spec.seed_count), static_cast<unsigned long long>(spec.networks()));
    return 0;
}

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
        if (o.command == "validate") return validate_command(o);
        if (o.command == "plan") return plan_command(o);
        if (o.command == "merge") return merge_command(o);
        return orchestrate_run(o);
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
