// Helpers for the scale-out tests: run the CLI in-process with stderr captured,
// read files, compare results.json files up to the fields allowed to differ.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gradsweep/cli.hpp"

namespace gs::test {

namespace fs = std::filesystem;

struct CliRun {
    int rc = 0;
    std::string err;  // what it printed on stderr
};

// Runs gradsweep's cli_main in this process; stdout is discarded, stderr captured.
inline CliRun run_cli(std::vector<std::string> args) {
    args.insert(args.begin(), "gradsweep");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    char tmpl[] = "/tmp/gs_test_stderr_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    const int saved_err = ::dup(2), saved_out = ::dup(1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(fd, 2);
    ::dup2(devnull, 1);
    CliRun r;
    r.rc = cli_main(static_cast<int>(args.size()), argv.data());
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_err, 2);
    ::dup2(saved_out, 1);
    ::close(saved_err);
    ::close(saved_out);
    ::close(devnull);
    ::close(fd);
    std::ifstream f(tmpl);
    std::stringstream ss;
    ss << f.rdbuf();
    r.err = ss.str();
    ::unlink(tmpl);
    return r;
}

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline void spit(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

// A fresh scratch directory under the build tree's temp area.
inline std::string scratch_dir(const std::string& name) {
    const std::string d = (fs::temp_directory_path() / ("gs_scaleout_" + std::to_string(::getpid()) + "_" + name)).string();
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// The provenance fields that describe how and when a run executed; everything
// else in results.json must be identical between an unsharded run, a merge of
// any number of shards, a resumed run and a multi-device run (docs/scale_out.md).
inline const std::vector<std::string>& execution_fields() {
    static const std::vector<std::string> f{"backend",     "device",     "threads",       "start_time",  "end_time",
                                            "elapsed_seconds", "networks_per_second", "resumed_units", "devices",
                                            "shards",      "merge_seconds"};
    return f;
}

inline nlohmann::ordered_json comparable_results(const std::string& path) {
    auto j = nlohmann::ordered_json::parse(slurp(path));
    for (const auto& k : execution_fields()) j["provenance"].erase(k);
    return j;
}

}  // namespace gs::test
