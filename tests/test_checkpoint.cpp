// The checkpoint: unit files (exact round trip, damage detected), resume of a
// partly done directory (bit-identical results), refusals, the memory check and
// progress text.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "gradsweep/backend.hpp"
#include "gradsweep/checkpoint.hpp"
#include "gradsweep/progress.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/work_units.hpp"
#include "scale_out_util.hpp"
#include "run_sweep.hpp"

using namespace gs;
using namespace gs::test;

namespace {

const char* kSpec = R"({"name": "ckpt", "seeds": {"count": 200, "first": 11},
 "grid": {"depth": [2, 4], "shortcut": [false, true]},
 "network": {"width": 5}, "input": {"distribution": "normal", "batch": 3}})";

std::vector<double> unit_rows(const Spec& spec, const WorkUnit& u) {
    std::vector<double> rows(u.count * row_stride(spec.cells[u.cell].depth()));
    make_cpu_backend(1)->run(spec, spec.cells[u.cell], u.seed_offset, u.count, rows.data());
    return rows;
}

}  // namespace

TEST_CASE("unit files round-trip exactly and reject damage", "[scaleout]") {
    const std::string d = scratch_dir("unitfile");
    const Spec spec = parse_spec_text(kSpec);
    const auto units = all_work_units(spec, 64);
    const WorkUnit u = units[3];  // cell 0, last (short) block
    REQUIRE(u.count == 8);
    std::vector<double> rows(u.count * row_stride(spec.cells[u.cell].depth()));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = std::ldexp(static_cast<double>(i) + 0.1, static_cast<int>(i % 7) - 3);
    rows[0] = -0.0;
    rows[1] = std::numeric_limits<double>::quiet_NaN();
    rows[2] = -std::numeric_limits<double>::infinity();
    const std::string path = d + "/u.bin";
    write_unit_file(path, spec, 64, u, rows.data());
    std::vector<double> back(rows.size(), 1.0);
    std::string why;
    REQUIRE(read_unit_file(path, spec, 64, u, back.data(), &why));
    REQUIRE(std::memcmp(back.data(), rows.data(), rows.size() * sizeof(double)) == 0);  // bits, NaN and -0 included
    CHECK(fs::directory_iterator(d)->path().filename() == "u.bin");                      // no temporary left

    const std::string good = slurp(path);
    auto expect_bad = [&](const std::string& content, const char* reason) {
        spit(path, content);
        std::string w;
        CHECK_FALSE(read_unit_file(path, spec, 64, u, back.data(), &w));
        CHECK_THAT(w, Catch::Contains(reason));
    };
    expect_bad(good.substr(0, good.size() - 1), "truncated");
    expect_bad(good.substr(0, 40), "truncated");
    std::string flipped = good;
    flipped[100] ^= 1;
    expect_bad(flipped, "checksum");
    expect_bad(good + "x", "padded");
    expect_bad(std::string(good.size(), 'x'), "not a gradsweep unit file");
    std::string old_version = good;  // what a build before the last change of the per-network values wrote
    old_version[6] = '2';
    expect_bad(old_version, "made by another gradsweep version, whose per-network values differ from this build's (unit format GSUNIT2, this build GSUNIT6)");
    CHECK_FALSE(read_unit_file(d + "/absent.bin", spec, 64, u, back.data(), &why));
    CHECK(why == "missing");
    spit(path, good);
    CHECK_FALSE(verify_unit_file(path, spec, 64, units[2], &why));  // another unit's name
    CHECK_THAT(why, Catch::Contains("another unit"));
    CHECK_FALSE(verify_unit_file(path, spec, 32, u, &why));  // another block size
    const Spec other = parse_spec_text(R"({"seeds": {"count": 200, "first": 12}, "grid": {"depth": [2, 4], "shortcut": [false, true]},
        "network": {"width": 5}, "input": {"distribution": "normal", "batch": 3}})");
    CHECK_FALSE(verify_unit_file(path, other, 64, u, &why));
    CHECK_THAT(why, Catch::Contains("another sweep"));
}

TEST_CASE("cell files keep a cell's aggregates exactly", "[scaleout]") {
    const std::string d = scratch_dir("cellfile");
    const Spec spec = parse_spec_text(kSpec);
    auto backend = make_cpu_backend(1);
    const SweepResult direct = run_sweep(spec, *backend);
    for (const CellResult& c : direct.cells) {
        const std::string path = d + "/cell.bin";
        write_cell_file(path, spec, c);
        CellResult back;
        std::string why;
        REQUIRE(read_cell_file(path, spec, c.cell, back, &why));
        SweepResult one, two;
        one.cells = {c};
        two.cells = {back};
        CHECK(results_csv_text(spec, one) == results_csv_text(spec, two));
        CHECK(back.nonfinite_networks == c.nonfinite_networks);
        CHECK(std::memcmp(&back.loss, &c.loss, sizeof(Summary)) == 0);
        CHECK(std::memcmp(&back.growth, &c.growth, sizeof(GrowthRate)) == 0);
        CHECK(std::memcmp(&back.delta_growth, &c.delta_growth, sizeof(GrowthRate)) == 0);
        CHECK_FALSE(read_cell_file(path, spec, (c.cell + 1) % 4, back, &why));
        std::string bytes = slurp(path);
        bytes[70] ^= 4;
        spit(path, bytes);
        CHECK_FALSE(read_cell_file(path, spec, c.cell, back, &why));
        CHECK_THAT(why, Catch::Contains("checksum"));
        bytes[70] ^= 4;
        bytes[6] = '1';
        spit(path, bytes);
        CHECK_FALSE(read_cell_file(path, spec, c.cell, back, &why));
        CHECK_THAT(why, Catch::Contains("another gradsweep version") && Catch::Contains("cell format GSCELL1"));
    }
}

TEST_CASE("resume finishes a partly done checkpoint with bit-identical results", "[scaleout]") {
    const std::string d = scratch_dir("resume");
    const std::string spec_path = d + "/spec.json";
    spit(spec_path, kSpec);
    REQUIRE(run_cli({"run", spec_path, "-o", d + "/ref", "--seed-block", "64", "-q", "--per-seed"}).rc == 0);
    CHECK(!fs::exists(d + "/ref/units"));  // a finished run keeps only its results
    CHECK(!fs::exists(d + "/ref/checkpoint.json"));

    // What a killed run leaves: some units, a damaged one, a stray temporary file.
    const Spec spec = load_spec_file(spec_path);
    const auto units = all_work_units(spec, 64);
    const std::string out = d + "/out";
    fs::create_directories(out);
    {
        Checkpoint cp(out, spec, 64, ShardId{}, units, Checkpoint::Mode::fresh);
        for (size_t i : {0u, 2u, 5u, 9u, 12u, 13u, 14u, 15u}) cp.store(i, unit_rows(spec, units[i]).data());
        CHECK(cp.done_count() == 8);
        cp.summarise_cell(3);  // cell 3 (units 12..15) is complete: aggregates kept, rows dropped
        CHECK(cp.cell_summarised(3));
        CHECK(fs::exists(out + "/cells/cell-3.bin"));
        CHECK(!fs::exists(out + "/units/" + unit_file_name(units[13])));
    }
    // A kill between writing the cell file and deleting its units leaves both.
    spit(out + "/units/" + unit_file_name(units[14]), "leftover");
    spit(out + "/units/" + unit_file_name(units[9]), "half a file");
    spit(out + "/units/" + unit_file_name(units[4]) + ".tmp.12345", "partial");
    spit(out + "/results.csv.tmp.999", "partial");
    {
        // A unit left by a gradsweep whose per-network values differ: redone, not mixed in.
        const std::string u5 = out + "/units/" + unit_file_name(units[5]);
        std::string bytes = slurp(u5);
        bytes[6] = '1';
        spit(u5, bytes);
    }
    {
        Checkpoint cp(out, spec, 64, ShardId{}, units, Checkpoint::Mode::resume);
        CHECK(cp.done_count() == 6);
        CHECK(cp.discarded() == 2);
        CHECK(cp.cell_summarised(3));
        CHECK(!fs::exists(out + "/units/" + unit_file_name(units[14])));
        CHECK(cp.done(0));
        CHECK_FALSE(cp.done(5));
        CHECK_FALSE(cp.done(9));
        CHECK(!fs::exists(out + "/units/" + unit_file_name(units[4]) + ".tmp.12345"));
        CHECK(!fs::exists(out + "/results.csv.tmp.999"));
    }
    // Without --resume or --force the directory is refused.
    auto r = run_cli({"run", spec_path, "-o", out, "--seed-block", "64", "-q"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("--resume"));
    // With another block size, or as a shard, it does not match the checkpoint.
    CHECK(run_cli({"run", spec_path, "-o", out, "--seed-block", "32", "-q", "--resume"}).rc == 2);
    CHECK(run_cli({"run", spec_path, "-o", out, "--seed-block", "64", "--shard", "0/2", "-q", "--resume"}).rc == 2);
    // Another spec's checkpoint.
    spit(d + "/other.json", R"({"seeds": {"count": 200}, "network": {"depth": 2, "width": 5}})");
    r = run_cli({"run", d + "/other.json", "-o", out, "--seed-block", "64", "-q", "--resume"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("another spec"));

    // per_seed.csv needs rows the checkpoint no longer has.
    r = run_cli({"run", spec_path, "-o", out, "--seed-block", "64", "--resume", "--per-seed"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("summarised cells"));

    r = run_cli({"run", spec_path, "-o", out, "--seed-block", "64", "--resume"});
    INFO(r.err);
    REQUIRE(r.rc == 0);
    CHECK_THAT(r.err, Catch::Contains("resuming: 6 of 16 work units already done"));
    CHECK(slurp(out + "/results.csv") == slurp(d + "/ref/results.csv"));
    auto a = comparable_results(out + "/results.json"), b = comparable_results(d + "/ref/results.json");
    CHECK(a == b);
    CHECK(!fs::exists(out + "/units"));
    CHECK(!fs::exists(out + "/cells"));
    CHECK(!fs::exists(out + "/checkpoint.json"));
    // Resuming a finished directory does nothing and succeeds.
    r = run_cli({"run", spec_path, "-o", out, "--seed-block", "64", "--resume"});
    CHECK(r.rc == 0);
    CHECK_THAT(r.err, Catch::Contains("nothing to do"));
    // --resume on a directory that does not exist yet just runs.
    CHECK(run_cli({"run", spec_path, "-o", d + "/new", "--resume", "-q"}).rc == 0);
    CHECK(slurp(d + "/new/results.csv") == slurp(d + "/ref/results.csv"));
    // --resume where there is neither checkpoint nor results: refused.
    fs::create_directories(d + "/junk");
    spit(d + "/junk/notes.txt", "x");
    CHECK(run_cli({"run", spec_path, "-o", d + "/junk", "--resume", "-q"}).rc == 2);
    CHECK(run_cli({"run", spec_path, "-o", d + "/junk", "--resume", "--force", "-q"}).rc == 2);
    // --force starts over, dropping an old checkpoint.
    {
        Checkpoint cp(d + "/junk", spec, 64, ShardId{}, units, Checkpoint::Mode::fresh);
        cp.store(1, unit_rows(spec, units[1]).data());
    }
    CHECK(run_cli({"run", spec_path, "-o", d + "/junk", "--force", "-q"}).rc == 0);
    CHECK(slurp(d + "/junk/results.csv") == slurp(d + "/ref/results.csv"));
    CHECK(!fs::exists(d + "/junk/units"));
}

TEST_CASE("a shard resumes too, and a finished shard resumes to the same results", "[scaleout]") {
    const std::string d = scratch_dir("resume_shard");
    const std::string spec_path = d + "/spec.json";
    spit(spec_path, kSpec);
    REQUIRE(run_cli({"run", spec_path, "-o", d + "/s", "--shard", "1/2", "--seed-block", "16", "-q"}).rc == 0);
    const std::string first = slurp(d + "/s/results.json");
    const Spec spec = load_spec_file(spec_path);
    const auto mine = shard_work_units(spec, 16, ShardId{1, 2});
    fs::remove(d + "/s/units/" + unit_file_name(mine[2]));
    fs::remove(d + "/s/results.json");
    REQUIRE(run_cli({"run", spec_path, "-o", d + "/s", "--shard", "1/2", "--seed-block", "16", "-q", "--resume"}).rc == 0);
    CHECK(fs::exists(d + "/s/units/" + unit_file_name(mine[2])));
    auto a = nlohmann::ordered_json::parse(first), b = nlohmann::ordered_json::parse(slurp(d + "/s/results.json"));
    a.erase("provenance");
    b.erase("provenance");
    CHECK(a == b);
    REQUIRE(run_cli({"run", spec_path, "-o", d + "/s0", "--shard", "0/2", "--seed-block", "16", "-q"}).rc == 0);
    REQUIRE(run_cli({"run", spec_path, "-o", d + "/full", "-q"}).rc == 0);
    REQUIRE(run_cli({"merge", d + "/s0", d + "/s", "-o", d + "/m", "-q"}).rc == 0);
    CHECK(slurp(d + "/m/results.csv") == slurp(d + "/full/results.csv"));
}

TEST_CASE("a sweep that cannot fit is refused before anything starts", "[scaleout]") {
    const std::string d = scratch_dir("memory");
    spit(d + "/huge.json", R"({"name": "huge", "seeds": {"count": 100000000000}, "network": {"depth": 10, "width": 3}})");
    auto r = run_cli({"run", d + "/huge.json", "-o", d + "/out"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("will not fit: cell 0 (3x10-1) needs"));
    CHECK_THAT(r.err, Catch::Contains("MemAvailable"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!fs::exists(d + "/out"));
    r = run_cli({"plan", d + "/huge.json"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("will not fit"));

    spit(d + "/small.json", kSpec);
    r = run_cli({"run", d + "/small.json", "-o", d + "/out", "--max-memory", "4K"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("--max-memory 4 KiB"));
    CHECK(!fs::exists(d + "/out"));
    CHECK(run_cli({"plan", d + "/small.json", "--max-memory", "4K"}).rc == 2);
    CHECK(run_cli({"plan", d + "/small.json", "--max-memory", "1G"}).rc == 0);
    CHECK(run_cli({"run", d + "/small.json", "-o", d + "/out", "--max-memory", "lots"}).rc == 2);
    CHECK(run_cli({"run", d + "/small.json", "-o", d + "/out", "--max-memory", "64M", "-q"}).rc == 0);

    const Spec spec = parse_spec_text(kSpec);
    MemoryInputs in;
    in.block_seeds = 64;
    in.cpu_threads = 2;
    const MemoryPlan m = estimate_memory(spec, in);
    CHECK(m.unit_rows == 64 * row_stride(4) * 8);
    CHECK(m.cell_rows == (200 + 64) * row_stride(4) * 8);  // the columns, filled from one unit's rows at a time
    CHECK(m.host_peak >= m.cell_rows);
    in.per_seed = true;
    CHECK(estimate_memory(spec, in).cell_rows == 200 * (2 * row_stride(4)) * 8);  // all the rows and their columns
    CHECK(estimate_memory(spec, in).host_peak > m.host_peak);
    CHECK(parse_bytes("1.5G") == 1610612736ull);
    CHECK(parse_bytes("512MiB") == 536870912ull);
    CHECK(parse_bytes("1000") == 1000);
    CHECK_THROWS_AS(parse_bytes("5X"), InputError);
    CHECK_THROWS_AS(parse_bytes("0"), InputError);
}

TEST_CASE("progress lines: plain for logs, a bar for terminals", "[scaleout]") {
    Progress plain(stderr, true, false, 5, 24, 96, 98304, 0, 0, 0);
    CHECK(plain.line(12, 48, 49152, 2.0) ==
          "gradsweep: 12/24 cells, 48/96 units, 49152/98304 networks, 24.6k networks/s, ETA 2 s");
    Progress bar(stderr, true, true, 5, 24, 96, 98304, 0, 0, 0);
    CHECK(bar.line(6, 24, 24576, 1.0) == "[######------------------] 6/24 cells  24.6k networks/s  ETA 3 s");
    // Resumed work does not count towards the rate.
    Progress resumed(stderr, true, false, 5, 2, 4, 4000, 1, 2, 2000);
    CHECK_THAT(resumed.line(1, 3, 3000, 1.0), Catch::EndsWith("1k networks/s, ETA 1 s"));
    CHECK(format_duration(42) == "42 s");
    CHECK(format_duration(187) == "3:07");
    CHECK(format_duration(3723) == "1:02:03");
    CHECK(format_duration(3 * 86400 + 7200) == "3 d 2 h");
    CHECK(format_rate(950) == "950");
    CHECK(format_rate(1.25e6) == "1.25M");
}

TEST_CASE("cells kept in memory: no unit file, the same cell file bits as from unit files, and cells sent to files by the budget or by units on disk", "[scaleout]") {
    const std::string d = scratch_dir("inmemory");
    const Spec spec = parse_spec_text(kSpec);
    const auto units = all_work_units(spec, 64);  // 4 cells x 4 units (64, 64, 64, 8 seeds)
    const uint64_t cell_bytes = [&](int c) { return spec.seed_count * row_stride(spec.cells[c].depth()) * sizeof(double); }(3);
    // Unit files, cell by cell: the reference cell files.
    const std::string files = d + "/files";
    fs::create_directories(files);
    {
        Checkpoint cp(files, spec, 64, ShardId{}, units, Checkpoint::Mode::fresh);
        for (size_t i = 0; i < units.size(); ++i) cp.store(i, unit_rows(spec, units[i]).data());
        for (int c = 0; c < 4; ++c) cp.summarise_cell(c);
    }
    // In memory, units stored out of order (as several workers deliver them):
    // cell 3 (the deepest, largest) alone fits the budget at first; cell 1 arrives
    // while cell 3 holds it and goes to files; once 3 is summarised, 2 fits.
    const std::string mem = d + "/mem";
    fs::create_directories(mem);
    {
        Checkpoint cp(mem, spec, 64, ShardId{}, units, Checkpoint::Mode::fresh);
        cp.keep_cells_in_memory(std::vector<char>{1, 1, 1, 1}, cell_bytes);
        for (size_t i : {15u, 13u, 5u, 12u, 14u}) cp.store(i, unit_rows(spec, units[i]).data());
        CHECK(cp.cell_in_memory(3));
        CHECK_FALSE(cp.cell_in_memory(1));                                 // no room left: unit files
        CHECK(fs::exists(mem + "/units/" + unit_file_name(units[5])));
        CHECK_FALSE(fs::exists(mem + "/units/" + unit_file_name(units[15])));
        CHECK(cp.done_count() == 1);                                       // only what is on disk is kept
        cp.summarise_cell(3);
        CHECK(cp.done_count() == 5);
        for (size_t i : {8u, 9u, 10u, 11u, 4u, 6u, 7u, 0u, 1u, 2u, 3u}) cp.store(i, unit_rows(spec, units[i]).data());
        CHECK(cp.cell_in_memory(2));
        CHECK_FALSE(cp.cell_in_memory(0));  // cell 2 holds the budget now
        for (int c : {2, 1, 0}) cp.summarise_cell(c);
        CHECK(cp.done_count() == 16);
        CHECK(fs::is_empty(mem + "/units"));  // cell 1's unit files went when it was summarised
    }
    for (int c = 0; c < 4; ++c) CHECK(slurp(mem + "/cells/cell-" + std::to_string(c) + ".bin") == slurp(files + "/cells/cell-" + std::to_string(c) + ".bin"));

    // A resumed cell with units on disk goes on in files, even when eligible.
    const std::string part = d + "/part";
    fs::create_directories(part);
    { Checkpoint(part, spec, 64, ShardId{}, units, Checkpoint::Mode::fresh).store(1, unit_rows(spec, units[1]).data()); }
    Checkpoint cp(part, spec, 64, ShardId{}, units, Checkpoint::Mode::resume);
    cp.keep_cells_in_memory(std::vector<char>{1, 1, 0, 1}, uint64_t{1} << 30);
    for (size_t i : {0u, 2u, 3u, 8u, 4u}) cp.store(i, unit_rows(spec, units[i]).data());
    CHECK_FALSE(cp.cell_in_memory(0));  // unit 1 was on disk
    CHECK_FALSE(cp.cell_in_memory(2));  // not eligible
    CHECK(cp.cell_in_memory(1));
    CHECK(fs::exists(part + "/units/" + unit_file_name(units[0])));
    CHECK_FALSE(fs::exists(part + "/units/" + unit_file_name(units[4])));
}
