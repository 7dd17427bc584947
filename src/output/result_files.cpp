#include "gradsweep/result_files.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "gradsweep/errors.hpp"
#include "gradsweep/file_io.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/stop_signals.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

// GRADSWEEP_TEST_WRITE_DELAY_MS (tests only: tests/cli/deep_output.sh): a pause
// after each chunk of result text, so that a test can signal a run while it is
// certainly writing. The pause ends early when a signal arrives.
int test_write_delay_ms() {
    static const int ms = [] {
        const char* v = std::getenv("GRADSWEEP_TEST_WRITE_DELAY_MS");
        return v ? std::clamp(std::atoi(v), 0, 60000) : 0;
    }();
    return ms;
}

// Runs after each chunk of a result file is written: a signal stops the writing.
void write_poll() {
    for (int waited = 0; waited < test_write_delay_ms() && !StopSignals::caught(); waited += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (int sig = StopSignals::caught()) throw StopRequested{sig};
}

}  // namespace

bool dir_nonempty(const std::string& dir) {
    std::error_code ec;
    return fs::exists(dir, ec) && !fs::is_empty(dir, ec);
}

void check_out_dir_type(const std::string& dir) {
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw UsageError("-o " + dir + ": exists and is not a directory");
}

void create_out_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw OutputError("cannot create " + dir + ": " + ec.message());
}

std::function<void(const Cell&, const std::vector<double>&)> per_seed_hook(bool on, const Spec& spec, std::string& per_seed,
                                                                           std::function<void()> poll) {
    if (!on) return nullptr;
    per_seed = per_seed_csv_header();
    return [&spec, &per_seed, poll = std::move(poll)](const Cell& c, const std::vector<double>& rows) {
        append_per_seed_csv(per_seed, spec, c, rows, 0, poll);
    };
}

void write_result_files(const std::string& dir, const Spec& spec, const SweepResult& result, bool with_per_seed,
                        const std::string& per_seed, const ojson& extra) {
    std::vector<OutputFile> files{
        {dir + "/results.csv", [&](TextOut& o) { write_results_csv(spec, result, o); }},
        {dir + "/theory.csv", [&](TextOut& o) { write_theory_csv(spec, result, o); }},
        {dir + "/growth.csv", [&](TextOut& o) { write_growth_csv(spec, result, o); }}};
    if (with_per_seed) files.push_back({dir + "/per_seed.csv", [&](TextOut& o) { o << per_seed; }});
    files.push_back({dir + "/results.json", [&](TextOut& o) { write_results_json(spec, result, extra, o); }});
    write_files_atomic(files, write_poll);
}

}  // namespace gs
