// The command-line front end, callable in-process by tests.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace gs {

// Exit codes: 0 success, 1 failure while running or writing, 2 bad input.
int cli_main(int argc, char** argv);

struct CliOptions {
    std::string command, spec_path, out_dir;
    std::string backend = "auto";
    int device = 0;
    int threads = 0;
    bool per_seed = false, quiet = false, force = false, plot = false;
};

// Throws UsageError on bad arguments.
CliOptions parse_cli(const std::vector<std::string>& args);

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace gs
