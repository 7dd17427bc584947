// `gradsweep run` end to end on the CUDA backend's host emulation: the
// orchestrator (orchestrate_run_on) with emulated CUDA workers. Cells cheap to
// redo go to the "device" whole and come back as summaries (no row reaches the
// host); the result files must be byte for byte those of the same run whose rows
// do go through the host: with --checkpoint-units, when the device declines (too
// little memory), when a resumed cell has units on disk, on two devices. A device
// keeps a cell's rows and workspace across cells: the run allocates them a few
// times, not per cell (CudaTestHooks::cell_buffer_allocations).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpu_under_test.hpp"
#include "gradsweep/checkpoint.hpp"
#include "gradsweep/orchestrator.hpp"
#include "gradsweep/workers.hpp"
#include "gradsweep/work_units.hpp"

using namespace gs;
using namespace gs::gputest;

namespace fs = std::filesystem;

namespace {

// 32 cells: the small-width kernel's shapes (width 3, fixed input) and the
// general kernel's (width 8); σ_w = 1e6 at depth 8 overflows float32, so there
// non-finite values are part of what must agree.
std::string spec_text(const char* precision) {
    return std::string(R"({
  "name": "emulated-run",
  "seeds": {"count": 150, "first": 11},
  "rng": "philox",
  "precision": ")") +
           precision + R"(",
  "grid": {"depth": [3, 8], "width": [3, 8], "activation": ["relu", "tanh"], "shortcut": [false, true],
           "init": [{"kind": "normal", "sigma_w": 1.5}, {"kind": "normal", "sigma_w": 1e6}]},
  "network": {"input_dim": 3, "output_dim": 1, "bias": true},
  "input": {"values": [[1.0, 0.5, -1.0]]},
  "loss": {"kind": "mse", "target": 0.25}
})";
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// What a run leaves: every result file, results.json without its provenance (times, workers).
std::vector<std::string> results_of(const fs::path& dir) {
    std::vector<std::string> out;
    for (const char* name : {"results.csv", "theory.csv", "growth.csv"}) out.push_back(read_text(dir / name));
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_text(dir / "results.json"));
    j.erase("provenance");
    out.push_back(j.dump());
    return out;
}

struct Scratch {
    fs::path root = fs::temp_directory_path() / ("gs_emu_run_" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(root); }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
};

// `gradsweep run` on `devices` emulated CUDA devices with these hooks; returns how
// many cells were summarised on the device.
uint64_t run_emulated(const fs::path& spec, const fs::path& out, std::vector<std::string> extra, CudaTestHooks hooks = {},
                      int devices = 1) {
    std::atomic<uint64_t> cells{0};
    hooks.cells_summarised = &cells;
    std::vector<std::string> args{"run", spec.string(), "-o", out.string(), "--quiet", "--seed-block", "32"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliOptions o = parse_cli(args);
    const int rc = orchestrate_run_on(o, [&] {
        Workers w;
        w.cuda = true;
        w.units_per_call = 2;
        for (int d = 0; d < devices; ++d) {
            w.factories.push_back([hooks] { return gpu_backend_with(hooks); });
            w.labels.push_back("cuda:" + std::to_string(d));
        }
        return w;
    });
    REQUIRE(rc == 0);
    return cells.load();
}

}  // namespace

TEST_CASE("emulated gradsweep run: cells summarised on the device give the host path's result files byte for byte",
          "[emu][run]") {
    for (const char* precision : {"float32", "float64"}) {
        INFO(precision);
        Scratch tmp;
        const fs::path spec = tmp.root / "spec.json";
        std::ofstream(spec) << spec_text(precision);
        const Spec s = load_spec_file(spec.string());
        const uint64_t cells = s.cells.size();
        for (const Cell& c : s.cells) REQUIRE(cell_cheap_to_redo(s, c.index));

        // The host path: every row to a unit file, summarised on the host.
        CHECK(run_emulated(spec, tmp.root / "host", {"--checkpoint-units"}) == 0);
        const std::vector<std::string> want = results_of(tmp.root / "host");
        uint64_t nonfinite = 0;
        const nlohmann::json host = nlohmann::json::parse(read_text(tmp.root / "host" / "results.json"));
        for (const auto& c : host["cells"]) nonfinite += c["nonfinite_networks"].get<uint64_t>();
        if (std::string(precision) == "float32") CHECK(nonfinite > 0);

        // The cells come in two sizes (depth 3 and 8, 150 seeds each): a device
        // keeps a cell's rows and workspace, so it allocates them once per size it
        // grows to, two buffers each, not once per cell (kept_memory.hpp).
        SECTION("one device") {
            std::atomic<uint64_t> allocations{0};
            CudaTestHooks counted;
            counted.cell_buffer_allocations = &allocations;
            CHECK(run_emulated(spec, tmp.root / "device", {}, counted) == cells);
            CHECK(results_of(tmp.root / "device") == want);
            CHECK(!fs::exists(tmp.root / "device" / kUnitsDir));  // the checkpoint is gone, and no row was ever written
            CHECK(allocations >= 2);
            CHECK(allocations <= 2 * 2);
        }
        SECTION("two devices") {
            std::atomic<uint64_t> allocations{0};
            CudaTestHooks counted;
            counted.cell_buffer_allocations = &allocations;
            CHECK(run_emulated(spec, tmp.root / "two", {}, counted, 2) == cells);
            CHECK(results_of(tmp.root / "two") == want);
            CHECK(allocations <= 2 * 2 * 2);
        }
        SECTION("the device declines (rows and workspace do not fit): the units run and are summarised on the host") {
            CudaTestHooks small;
            small.memory_budget_bytes = 16 << 10;  // room for chunks of rows, not for a cell's rows and its sort
            std::atomic<uint64_t> allocations{0};
            small.cell_buffer_allocations = &allocations;
            CHECK(run_emulated(spec, tmp.root / "declined", {}, small) == 0);
            CHECK(allocations == 0);  // declined before anything is allocated
            CHECK(results_of(tmp.root / "declined") == want);
        }
        SECTION("resumed: a cell with a unit on disk goes on in unit files, the others go whole") {
            const fs::path dir = tmp.root / "resumed";
            fs::create_directories(dir);
            const std::vector<WorkUnit> units = all_work_units(s, 32);
            {
                Checkpoint cp(dir.string(), s, 32, ShardId{}, units, Checkpoint::Mode::fresh);
                const WorkUnit& u = units[1];  // cell 0's second block of seeds
                REQUIRE(u.cell == 0);
                std::vector<double> rows(u.count * row_stride(s.cells[0].depth()));
                gpu_backend()->run(s, s.cells[0], u.seed_offset, u.count, rows.data());
                cp.store(1, rows.data());
                REQUIRE(cp.done(1));
                CHECK(!cp.cell_untouched(0));
                CHECK(cp.cell_untouched(1));
            }
            CHECK(run_emulated(spec, dir, {"--resume"}) == cells - 1);
            CHECK(results_of(dir) == want);
        }
    }
}
