#include "gradsweep/plot_launcher.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "gradsweep/stop_signals.hpp"
#include "output/child_process.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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

}  // namespace gs
