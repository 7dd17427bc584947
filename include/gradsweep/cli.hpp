// The command line: options parsed and checked once, then one command run
// (src/cli/cli.cpp dispatches; `run` is the orchestrator, orchestrator.hpp).
// Callable in-process by tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "gradsweep/errors.hpp"
#include "gradsweep/work_units.hpp"  // kSeedBlock, ShardId

namespace gs {

// Exit codes: 0 success, 1 failure while running or writing, 2 bad input,
// 128 + signal when stopped by SIGINT (130) or SIGTERM (143).
int cli_main(int argc, char** argv);

struct CliOptions {
    std::string command, spec_path, out_dir;
    std::string backend = "auto";
    int device = 0;
    bool device_given = false;         // --device N was given: that CUDA device or an error, never the CPU
    int threads = 0;
    bool per_seed = false, quiet = false, force = false, plot = false;
    // Scale-out (docs/scale_out.md).
    std::string shard;                 // "K/N" or "auto"; empty: not sharded
    bool all_devices = false;          // --devices all
    std::vector<int> devices;          // --devices 0,1,...; empty (and not all_devices): one device (--device)
    bool resume = false;
    bool checkpoint_units = false;     // --checkpoint-units: every unit's rows to a unit file (finest resume)
    uint64_t max_memory = 0;           // --max-memory in bytes; 0: only MemAvailable limits
    uint64_t seed_block = kSeedBlock;  // seeds per work unit
    std::vector<std::string> inputs;   // merge: the shard directories

    bool devices_given() const { return all_devices || !devices.empty(); }
};

// Throws UsageError on bad arguments.
CliOptions parse_cli(const std::vector<std::string>& args);

// The shard --shard names; unsharded, 0/1. Not parsed with the other options:
// "auto" reads the Slurm array variables, and their errors come after the spec's.
ShardId shard_of(const CliOptions& o);

// Text from the command line or the file system (a file name may hold a newline)
// made safe for a one-line message: control characters are written as escapes.
std::string one_line_text(const std::string& s);

}  // namespace gs
