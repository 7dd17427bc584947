// Work units, the shard split, merge (bit-identical to an unsharded run, and its
// refusals), and the device scheduler over several CPU backend instances.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <set>
#include <thread>

#include "gradsweep/backend.hpp"
#include "gradsweep/checkpoint.hpp"
#include "gradsweep/device_scheduler.hpp"
#include "gradsweep/merge.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"
#include "scale_out_util.hpp"
#include "run_sweep.hpp"

using namespace gs;
using namespace gs::test;

namespace {

const char* kSpec = R"({"name": "shards", "seeds": {"count": 300, "first": 5},
 "grid": {"depth": [2, 3], "activation": ["relu", "tanh"]},
 "network": {"width": 4}, "input": {"distribution": "normal", "batch": 2}, "loss": {"kind": "mse", "target": 0.5}})";

// Cells of very different cost, so the split has something to balance.
const char* kUneven = R"({"name": "uneven", "seeds": {"count": 1000},
 "grid": {"depth": [1, 12], "width": [2, 40]}, "network": {"input_dim": 3}})";

std::string write_spec(const std::string& dir, const char* text) {
    const std::string p = dir + "/spec.json";
    spit(p, text);
    return p;
}

}  // namespace

TEST_CASE("work units cover every seed of every cell exactly once, in seed order", "[scaleout]") {
    const Spec spec = parse_spec_text(kSpec);
    for (uint64_t block : {1ull, 7ull, 64ull, 299ull, 300ull, 4096ull}) {
        const auto units = all_work_units(spec, block);
        REQUIRE(units.size() == total_work_units(spec, block));
        std::vector<uint64_t> covered(spec.cells.size(), 0);
        for (const WorkUnit& u : units) {
            REQUIRE(u.seed_offset == covered[u.cell]);  // contiguous, in order
            REQUIRE(u.count >= 1);
            REQUIRE(u.count <= block);
            REQUIRE(u.seed_offset == u.block * block);
            covered[u.cell] += u.count;
        }
        for (uint64_t c : covered) REQUIRE(c == spec.seed_count);
    }
}

TEST_CASE("the shard split is a partition, fixed by spec and block size, and balanced", "[scaleout]") {
    const Spec spec = parse_spec_text(kUneven);
    const uint64_t block = 100;  // 10 units per cell, 8 cells
    const auto all = all_work_units(spec, block);
    for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 80ull, 200ull}) {
        std::vector<int> seen(all.size(), 0);
        std::vector<unsigned __int128> load(n, 0);
        for (uint64_t k = 0; k < n; ++k) {
            const auto mine = shard_work_units(spec, block, ShardId{k, n});
            REQUIRE(mine == shard_work_units(spec, block, ShardId{k, n}));  // deterministic
            for (const WorkUnit& u : mine) {
                const size_t i = static_cast<size_t>(u.cell) * 10 + u.block;
                REQUIRE(all[i] == u);
                ++seen[i];
                load[k] += unit_cost(spec, u);
            }
        }
        for (int s : seen) REQUIRE(s == 1);
        // Largest-first greedy: no shard exceeds another by more than the costliest unit.
        unsigned __int128 biggest = 0;
        for (const auto& u : all) biggest = std::max(biggest, unit_cost(spec, u));
        if (n <= all.size()) {
            const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
            REQUIRE(*hi - *lo <= biggest);
        }
    }
    // One huge cell still spreads over every shard.
    const Spec one = parse_spec_text(R"({"seeds": {"count": 50000}, "network": {"depth": 2, "width": 3}})");
    for (uint64_t k = 0; k < 8; ++k) REQUIRE(shard_work_units(one, 4096, ShardId{k, 8}).size() >= 1);
}

TEST_CASE("shard option: K/N, and auto from the Slurm array variables", "[scaleout]") {
    CHECK(parse_shard("2/5").index == 2);
    CHECK(parse_shard("2/5").count == 5);
    CHECK(parse_shard("0/1").count == 1);
    for (const char* bad : {"5/5", "1/0", "a/b", "3", "-1/4", "1/4/2", "", "/"}) CHECK_THROWS_AS(parse_shard(bad), InputError);
    ::unsetenv("SLURM_ARRAY_TASK_ID");
    ::unsetenv("SLURM_ARRAY_TASK_COUNT");
    ::unsetenv("SLURM_ARRAY_TASK_MIN");
    CHECK_THROWS_WITH(parse_shard("auto"), Catch::Contains("SLURM_ARRAY_TASK_ID is not set"));
    ::setenv("SLURM_ARRAY_TASK_ID", "7", 1);
    ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    ::setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
    CHECK(parse_shard("auto").index == 2);
    CHECK(parse_shard("auto").count == 4);
    ::setenv("SLURM_ARRAY_TASK_ID", "9", 1);  // --array=5-11:2 is not contiguous
    CHECK_THROWS_WITH(parse_shard("auto"), Catch::Contains("contiguous"));
    ::unsetenv("SLURM_ARRAY_TASK_MIN");
    ::setenv("SLURM_ARRAY_TASK_ID", "3", 1);
    CHECK(parse_shard("auto").index == 3);
    ::unsetenv("SLURM_ARRAY_TASK_ID");
    ::unsetenv("SLURM_ARRAY_TASK_COUNT");
}

TEST_CASE("merging shards gives an unsharded run's results to the last bit", "[scaleout]") {
    const std::string d = scratch_dir("merge");
    const std::string spec = write_spec(d, kSpec);
    REQUIRE(run_cli({"run", spec, "-o", d + "/full", "--seed-block", "64", "--per-seed", "-q", "--threads", "2"}).rc == 0);
    const std::string csv = slurp(d + "/full/results.csv");
    const std::string per_seed = slurp(d + "/full/per_seed.csv");
    REQUIRE(!csv.empty());
    // The unit-based run equals the plain in-memory sweep: the same rows, summarised in the same order.
    {
        const Spec s = load_spec_file(spec);
        auto backend = make_cpu_backend(1);
        const SweepResult direct = run_sweep(s, *backend);
        REQUIRE(results_csv_text(s, direct) == csv);
    }
    // A different block size changes the checkpoint layout, never the results.
    REQUIRE(run_cli({"run", spec, "-o", d + "/block7", "--seed-block", "7", "-q"}).rc == 0);
    REQUIRE(slurp(d + "/block7/results.csv") == csv);

    for (int n : {1, 3, 7, 25}) {  // 25 > 20 units: some shards are empty
        std::vector<std::string> args{"merge"};
        for (int k = 0; k < n; ++k) {
            const std::string sd = d + "/n" + std::to_string(n) + "_s" + std::to_string(k);
            const auto r = run_cli({"run", spec, "-o", sd, "--shard", std::to_string(k) + "/" + std::to_string(n), "--seed-block", "64",
                                    "-q", "--threads", std::to_string(1 + k % 2)});
            REQUIRE(r.rc == 0);
            REQUIRE(fs::exists(sd + "/results.json"));
            REQUIRE(!fs::exists(sd + "/results.csv"));  // a shard has no aggregates of its own
            args.push_back(sd);
        }
        std::reverse(args.begin() + 1, args.end());  // order of the directories does not matter
        const std::string out = d + "/merged" + std::to_string(n);
        args.insert(args.end(), {"-o", out, "--per-seed", "-q"});
        const auto r = run_cli(args);
        INFO(r.err);
        REQUIRE(r.rc == 0);
        CHECK(slurp(out + "/results.csv") == csv);
        CHECK(slurp(out + "/per_seed.csv") == per_seed);
        CHECK(slurp(out + "/theory.csv") == slurp(d + "/full/theory.csv"));
        CHECK(slurp(out + "/growth.csv") == slurp(d + "/full/growth.csv"));
        CHECK(comparable_results(out + "/results.json") == comparable_results(d + "/full/results.json"));
        const auto pj = nlohmann::ordered_json::parse(slurp(out + "/results.json"));
        CHECK(pj["provenance"]["shards"] == n);
        CHECK(pj["provenance"]["networks"] == 1200);
    }
}

TEST_CASE("merge refuses shard sets that are not exactly one sweep's shards", "[scaleout]") {
    const std::string d = scratch_dir("merge_bad");
    const std::string spec = write_spec(d, kSpec);
    for (int k = 0; k < 3; ++k)
        REQUIRE(run_cli({"run", spec, "-o", d + "/s" + std::to_string(k), "--shard", std::to_string(k) + "/3", "--seed-block", "64", "-q"}).rc == 0);
    const std::string s0 = d + "/s0", s1 = d + "/s1", s2 = d + "/s2", out = d + "/out";
    auto merge = [&](std::vector<std::string> dirs) {
        dirs.insert(dirs.begin(), "merge");
        dirs.insert(dirs.end(), {"-o", out});
        return run_cli(dirs);
    };
    auto one_line = [](const std::string& e) { return std::count(e.begin(), e.end(), '\n') == 1; };

    auto r = merge({s0, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("missing shard 1/3"));
    CHECK(one_line(r.err));
    r = merge({s0, s1, s1, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("duplicate shard 1/3"));
    fs::copy(s2, d + "/s2copy", fs::copy_options::recursive);
    r = merge({s0, s1, s2, d + "/s2copy"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("duplicate shard 2/3"));

    // A shard of another spec (one seed more).
    std::string other = kSpec;
    other.replace(other.find("300"), 3, "301");
    spit(d + "/other.json", other);
    REQUIRE(run_cli({"run", d + "/other.json", "-o", d + "/o1", "--shard", "1/3", "--seed-block", "64", "-q"}).rc == 0);
    r = merge({s0, d + "/o1", s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("another sweep"));
    // Another block size or another split.
    REQUIRE(run_cli({"run", spec, "-o", d + "/b32", "--shard", "1/3", "--seed-block", "32", "-q"}).rc == 0);
    CHECK(merge({s0, d + "/b32", s2}).rc == 2);
    REQUIRE(run_cli({"run", spec, "-o", d + "/n4", "--shard", "1/4", "--seed-block", "64", "-q"}).rc == 0);
    r = merge({s0, d + "/n4", s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("split into 4"));
    // An unfinished shard: no results.json yet.
    fs::create_directories(d + "/unfinished");
    r = merge({s0, s1, d + "/unfinished"});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("not a finished shard"));
    // A whole run's directory is not a shard.
    REQUIRE(run_cli({"run", spec, "-o", d + "/whole", "-q"}).rc == 0);
    CHECK(merge({d + "/whole"}).rc == 2);

    // Unit files: missing, damaged, or another unit's file under this name.
    const auto units = shard_work_units(parse_spec_text(kSpec), 64, ShardId{1, 3});
    const std::string u0 = s1 + "/units/" + unit_file_name(units[0]);
    const std::string u1 = s1 + "/units/" + unit_file_name(units[1]);
    const std::string saved = slurp(u0);
    fs::remove(u0);
    r = merge({s0, s1, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("unit cell " + std::to_string(units[0].cell) + " block " + std::to_string(units[0].block)));
    CHECK_THAT(r.err, Catch::Contains("missing"));
    std::string damaged = saved;
    damaged[damaged.size() / 2] ^= 0x10;
    spit(u0, damaged);
    r = merge({s0, s1, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("checksum"));
    spit(u0, saved.substr(0, saved.size() - 9));
    CHECK(merge({s0, s1, s2}).rc == 2);
    spit(u0, slurp(u1));
    r = merge({s0, s1, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("another unit"));
    // A shard made by a gradsweep whose per-network values differ (older unit format).
    std::string old_version = saved;
    old_version[6] = '1';
    spit(u0, old_version);
    r = merge({s0, s1, s2});
    CHECK(r.rc == 2);
    CHECK_THAT(r.err, Catch::Contains("made by another gradsweep version"));
    CHECK(!fs::exists(out));  // nothing was written by any refused merge

    spit(u0, saved);
    r = merge({s0, s1, s2});
    CHECK(r.rc == 0);
    // An existing output directory needs --force.
    CHECK(merge({s0, s1, s2}).rc == 2);
}

namespace {

// A CPU backend that fails on its n-th call: errors must surface, not hang.
class FailingBackend final : public Backend {
public:
    FailingBackend(int fail_at, std::atomic<bool>* failed = nullptr)
        : inner_(make_cpu_backend(1)), fail_at_(fail_at), failed_(failed) {}
    std::string name() const override { return "failing"; }
    std::string device_name() const override { return "test"; }
    void run(const Spec& s, const Cell& c, uint64_t off, uint64_t n, double* out) override {
        if (++calls_ == fail_at_) {
            if (failed_) failed_->store(true);
            throw std::runtime_error("injected failure");
        }
        inner_->run(s, c, off, n, out);
    }

private:
    std::unique_ptr<Backend> inner_;
    int fail_at_, calls_ = 0;
    std::atomic<bool>* failed_;
};

// A CPU backend whose calls wait until `open` is set, so that a test does not
// depend on which worker the OS happens to run first. No deadline: however
// loaded the machine, the other worker gets there; a hang is ctest's timeout.
class GatedBackend final : public Backend {
public:
    explicit GatedBackend(const std::atomic<bool>& open) : inner_(make_cpu_backend(1)), open_(open) {}
    std::string name() const override { return "gated"; }
    std::string device_name() const override { return "test"; }
    void run(const Spec& s, const Cell& c, uint64_t off, uint64_t n, double* out) override {
        while (!open_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        inner_->run(s, c, off, n, out);
    }

private:
    std::unique_ptr<Backend> inner_;
    const std::atomic<bool>& open_;
};

}  // namespace

namespace {

// A CPU backend that summarises whole cells itself (as the CUDA backend does on
// the device) for odd cells, and declines even ones: the scheduler must send each
// offered cell whole, fall back to units where declined, and never both.
// The scheduler's todo list when no unit is done yet: every unit, in order.
std::vector<size_t> every_unit(const std::vector<WorkUnit>& units) {
    std::vector<size_t> todo(units.size());
    std::iota(todo.begin(), todo.end(), size_t{0});
    return todo;
}

// A cell result as its checkpoint file's bytes: equal bytes, equal bits.
std::string cell_file_bytes(const Spec& spec, const CellResult& r) {
    const std::string path = scratch_dir("cell_bytes") + "/cell.bin";
    write_cell_file(path, spec, r);
    return slurp(path);
}

class SummarisingBackend final : public Backend {
public:
    explicit SummarisingBackend(std::atomic<int>& calls) : inner_(make_cpu_backend(1)), calls_(calls) {}
    std::string name() const override { return "summarising"; }
    std::string device_name() const override { return "test"; }
    void run(const Spec& s, const Cell& c, uint64_t off, uint64_t n, double* out) override { inner_->run(s, c, off, n, out); }
    bool summarize_cell(const Spec& s, const Cell& c, uint64_t count, CellResult& out) override {
        ++calls_;
        if (c.index % 2 == 0) return false;
        std::vector<double> rows(count * row_stride(c.depth()));
        inner_->run(s, c, 0, count, rows.data());
        CellColumns cols;
        cols.start(c, count);
        cols.add_rows(0, rows.data(), count);
        out = cols.finish();
        return true;
    }

private:
    std::unique_ptr<Backend> inner_;
    std::atomic<int>& calls_;
};

}  // namespace

TEST_CASE("the device scheduler: cells offered whole are summarised by the backend or, declined, run as units", "[scaleout]") {
    const Spec spec = parse_spec_text(kUneven);
    const uint64_t block = 64;
    const auto units = all_work_units(spec, block);
    const std::vector<size_t> todo = every_unit(units);
    auto backend = make_cpu_backend(1);
    const SweepResult direct = run_sweep(spec, *backend);
    REQUIRE(spec.cells.size() >= 3);
    for (size_t workers : {1, 3}) {
        INFO(workers << " workers");
        std::atomic<int> offers{0};
        std::mutex mu;
        std::vector<int> unit_seen(units.size(), 0);
        std::vector<CellResult> whole(spec.cells.size());
        std::vector<int> whole_seen(spec.cells.size(), 0);
        SchedulerOptions so;
        so.max_units_per_call = 2;
        so.whole_cells.assign(spec.cells.size(), 1);
        so.whole_cells[1] = 0;  // not offered: its units run as usual even though the backend would summarise it
        so.cell_sink = [&](int cell, const CellResult& r) {
            std::lock_guard<std::mutex> lock(mu);
            ++whole_seen[cell];
            whole[cell] = r;
        };
        std::vector<BackendFactory> f(workers, [&offers] { return std::make_unique<SummarisingBackend>(offers); });
        const auto info = run_on_devices(
            spec, units, todo, f,
            [&](size_t i, const double*) {
                std::lock_guard<std::mutex> lock(mu);
                ++unit_seen[i];
            },
            {}, so);
        uint64_t done_units = 0;
        for (const auto& w : info) done_units += w.units;
        CHECK(done_units == units.size());
        CHECK(offers.load() == static_cast<int>(spec.cells.size()) - 1);  // every offered cell asked once
        for (size_t i = 0; i < units.size(); ++i) {
            const int c = units[i].cell;
            const bool summarised = so.whole_cells[c] && c % 2 == 1;
            CHECK(unit_seen[i] == (summarised ? 0 : 1));
        }
        for (const Cell& c : spec.cells) {
            const bool summarised = so.whole_cells[c.index] && c.index % 2 == 1;
            CHECK(whole_seen[c.index] == (summarised ? 1 : 0));
            if (summarised) CHECK(cell_file_bytes(spec, whole[c.index]) == cell_file_bytes(spec, direct.cells[c.index]));
        }
    }
}

TEST_CASE("the device scheduler over several CPU workers gives one worker's rows", "[scaleout]") {
    const Spec spec = parse_spec_text(kUneven);
    const uint64_t block = 64;
    const auto units = all_work_units(spec, block);
    const std::vector<size_t> todo = every_unit(units);
    auto collect = [&](size_t workers, uint64_t per_call, int threads) {
        std::vector<std::vector<double>> rows(units.size());
        std::mutex mu;
        std::vector<BackendFactory> f(workers, [threads] { return make_cpu_backend(threads); });
        SchedulerOptions so;
        so.max_units_per_call = per_call;
        const auto info = run_on_devices(
            spec, units, todo, f,
            [&](size_t i, const double* r) {
                const size_t n = units[i].count * row_stride(spec.cells[units[i].cell].depth());
                std::lock_guard<std::mutex> lock(mu);
                REQUIRE(rows[i].empty());  // each unit exactly once
                rows[i].assign(r, r + n);
            },
            {}, so);
        uint64_t total = 0;
        for (const auto& w : info) total += w.units;
        REQUIRE(total == units.size());
        return rows;
    };
    const auto one = collect(1, 1, 1);
    for (const auto& r : one) REQUIRE(!r.empty());
    for (auto [workers, per_call, threads] : {std::tuple<size_t, uint64_t, int>{3, 1, 1}, {4, 3, 1}, {2, 8, 2}, {5, 64, 1}}) {
        const auto many = collect(workers, per_call, threads);
        for (size_t i = 0; i < units.size(); ++i)
            REQUIRE(std::memcmp(many[i].data(), one[i].data(), one[i].size() * sizeof(double)) == 0);
    }
    // And summarised per cell, they equal run_sweep's result on one backend.
    auto backend = make_cpu_backend(2);
    const SweepResult direct = run_sweep(spec, *backend);
    const auto merged = aggregate_units(spec, block, [&](const WorkUnit& u, double* dst) {
        const size_t i = static_cast<size_t>(u.cell) * blocks_per_cell(spec, block) + u.block;
        std::memcpy(dst, one[i].data(), one[i].size() * sizeof(double));
    });
    SweepResult r;
    r.cells = merged;
    REQUIRE(results_csv_text(spec, r) == results_csv_text(spec, direct));

    // A failing worker stops the run with its error; the other workers are joined.
    // The healthy worker holds its first unit until the failure, so it cannot finish
    // every unit before the failing worker has had its three calls.
    std::atomic<bool> failed{false};
    std::vector<BackendFactory> f{[&] { return std::make_unique<GatedBackend>(failed); },
                                  [&] { return std::make_unique<FailingBackend>(3, &failed); }};
    std::atomic<size_t> sunk{0};
    CHECK_THROWS_WITH(run_on_devices(spec, units, todo, f, [&](size_t, const double*) { ++sunk; }), "injected failure");
    CHECK(sunk < units.size());
    std::vector<BackendFactory> bad{[]() -> std::unique_ptr<Backend> { throw std::runtime_error("no device"); }};
    CHECK_THROWS_WITH(run_on_devices(spec, units, todo, bad, [](size_t, const double*) {}), "no device");
}

TEST_CASE("run --devices over CPU workers writes the single-device results", "[scaleout]") {
    const std::string d = scratch_dir("devices");
    const std::string spec = write_spec(d, kUneven);
    REQUIRE(run_cli({"run", spec, "-o", d + "/one", "--backend", "cpu", "--seed-block", "128", "-q"}).rc == 0);
    const auto r = run_cli({"run", spec, "-o", d + "/three", "--backend", "cpu", "--devices", "0,1,2", "--seed-block", "128", "-q"});
    INFO(r.err);
    REQUIRE(r.rc == 0);
    CHECK(slurp(d + "/three/results.csv") == slurp(d + "/one/results.csv"));
    CHECK(comparable_results(d + "/three/results.json") == comparable_results(d + "/one/results.json"));
    const auto j = nlohmann::ordered_json::parse(slurp(d + "/three/results.json"));
    CHECK(j["provenance"]["devices"].size() == 3);
    // Without CUDA, asking for GPUs is bad input.
    if (!cuda_available()) {
        CHECK(run_cli({"run", spec, "-o", d + "/gpu", "--devices", "all"}).rc == 2);
        CHECK(run_cli({"run", spec, "-o", d + "/gpu", "--backend", "cuda", "--devices", "0,1"}).rc == 2);
        CHECK(!fs::exists(d + "/gpu"));
    }
    CHECK(run_cli({"run", spec, "-o", d + "/x", "--devices", "0,0", "--backend", "cpu"}).rc == 2);
    CHECK(run_cli({"run", spec, "-o", d + "/x", "--devices", "0,", "--backend", "cpu"}).rc == 2);
    CHECK(run_cli({"run", spec, "-o", d + "/x", "--device", "0", "--devices", "0"}).rc == 2);
}
