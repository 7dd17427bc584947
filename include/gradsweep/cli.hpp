// The command-line front end, callable in-process by tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "gradsweep/errors.hpp"
#include "gradsweep/work_units.hpp"  // kSeedBlock

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
    std::string devices;               // "all" or "0,1,..."; empty: one device (--device)
    bool resume = false;
    std::string max_memory;            // e.g. "8G"; empty: only MemAvailable limits
    uint64_t seed_block = kSeedBlock;  // seeds per work unit
    std::vector<std::string> inputs;   // merge: the shard directories
};

// Throws UsageError on bad arguments.
CliOptions parse_cli(const std::vector<std::string>& args);

}  // namespace gs
