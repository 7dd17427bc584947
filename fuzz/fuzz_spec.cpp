// libFuzzer target for the spec parser: any byte string must either parse into a
// sane Spec or fail with one short, printable SpecError line. Anything else
// (another exception, a crash, a sanitizer report, a hang, a memory blow-up) is
// a bug. A spec that parses then goes through what `gradsweep plan` does before
// running anything (work-unit counts, the memory estimate and its check), and
// the bytes also go to the other parsers of user text (--max-memory, --shard),
// which may only throw InputError. Build and run with scripts/ci_fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gradsweep/resources.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/work_units.hpp"

namespace {

void require(bool ok, const char* what, const std::string& detail = "") {
    if (ok) return;
    std::fprintf(stderr, "fuzz_spec: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

void check_spec(const gs::Spec& spec) {
    require(!spec.cells.empty(), "a valid spec has at least one cell");
    require(spec.cells.size() <= gs::kMaxCells, "cell limit");
    require(spec.seed_count >= 1 && spec.seed_count <= gs::kMaxSeedCount, "seed count range");
    // Seeds first .. first + count - 1: the last one may be 2^64 - 1 (first + count == 2^64).
    require(spec.seed_count - 1 <= UINT64_MAX - spec.seed_first, "seed range overflow");
    require(spec.input.batch >= 1, "batch >= 1");
    require(spec.hash.size() == 16 && spec.hash.find_first_not_of("0123456789abcdef") == std::string::npos, "hash format", spec.hash);
    uint64_t layers = 0;
    for (size_t i = 0; i < spec.cells.size(); ++i) {
        const gs::Cell& c = spec.cells[i];
        require(c.index == static_cast<int>(i), "cell index");
        require(c.depth() >= 1, "depth >= 1");
        for (int n : c.layer_sizes) require(n >= 1 && n <= gs::kMaxLayerSize, "layer size range");
        for (int l = 0; l < c.depth(); ++l)
            require(static_cast<uint64_t>(c.layer_sizes[l]) * c.layer_sizes[l + 1] <= gs::kMaxTensorElements, "weights per layer");
        require(c.axes.size() == spec.axes.size(), "every axis labels every cell");
        if (!spec.input.random)
            for (const auto& row : spec.input.values) require(static_cast<int>(row.size()) == c.input_dim(), "input rows match");
        layers += static_cast<uint64_t>(c.depth());
    }
    require(layers <= gs::kMaxTotalLayers, "total layers");
}

// What plan/run compute from a valid spec before any work: no overflow, no
// exception but InputError (with a printable reason), consistent estimates.
// Six settings (3 blocks x CPU/CUDA) for sweeps of up to 2,000 cells and
// 200,000 layers in all; one of them, picked by the spec's hash, for larger
// ones. The work is linear in the cells and layers and per cell the same
// whatever their number, so a 100,000-cell or 10^7-layer input (a grid's
// product fits in 4 kB) would spend a minute under ASan repeating what smaller
// ones check, past libFuzzer's -timeout.
void check_plan(const gs::Spec& spec) {
    constexpr size_t kAllSettingsCells = 2000;
    constexpr uint64_t kAllSettingsLayers = 200000;
    uint64_t layers = 0;
    for (const gs::Cell& c : spec.cells) layers += static_cast<uint64_t>(c.depth());
    const bool one_setting = spec.cells.size() > kAllSettingsCells || layers > kAllSettingsLayers;
    const int pick = static_cast<int>(std::strtoul(spec.hash.substr(0, 2).c_str(), nullptr, 16) % 6);
    int setting = -1;
    for (uint64_t block : {uint64_t{1}, uint64_t{4096}, uint64_t{1} << 24}) {
        const uint64_t nb = gs::blocks_per_cell(spec, block);
        require(nb >= 1 && (nb - 1) * block < spec.seed_count && nb * block >= spec.seed_count, "blocks per cell");
        require(gs::total_work_units(spec, block) == nb * spec.cells.size(), "total work units");
        const gs::WorkUnit last{static_cast<int>(spec.cells.size() - 1), nb - 1, (nb - 1) * block,
                                spec.seed_count - (nb - 1) * block};
        require(gs::unit_cost(spec, last) > 0, "a unit costs something");
        for (bool cuda : {false, true}) {
            if (++setting != pick && one_setting) continue;
            gs::MemoryInputs in;
            in.block_seeds = block;
            in.units = gs::total_work_units(spec, block);
            in.cpu_threads = 64;
            in.workers = cuda ? 8 : 1;
            in.units_per_call = cuda ? 16 : 1;
            in.cuda = cuda;
            in.per_seed = block == 1;
            in.cells_in_memory = !in.per_seed && block != 4096;  // both kinds of plan, with CPU and CUDA
            const gs::MemoryPlan m = gs::estimate_memory(spec, in);
            require(m.largest_cell >= 0 && static_cast<size_t>(m.largest_cell) < spec.cells.size(), "largest cell");
            require(m.unit_rows >= 8 && m.cell_rows >= m.unit_rows, "rows estimates");
            require(m.host_peak >= m.cell_rows || m.cells_in_memory > 0, "peak covers one cell's rows");
            require(in.cells_in_memory || m.cells_in_memory == 0, "cells in memory only when asked for");
            for (uint64_t cap : {uint64_t{0}, uint64_t{1} << 30, UINT64_MAX})
                for (uint64_t avail : {uint64_t{0}, uint64_t{24} << 30}) {
                    try {
                        gs::check_memory(spec, m, cap, avail);
                    } catch (const gs::InputError& e) {
                        require(std::string(e.what()).rfind("will not fit: ", 0) == 0, "check_memory reason", e.what());
                    }
                }
        }
    }
}

// --max-memory and --shard values: a number, or InputError.
void check_option_parsers(const std::string& text) {
    if (text.size() > 64) return;
    try {
        const uint64_t b = gs::parse_bytes(text);
        require(b >= 1, "parse_bytes gives >= 1 byte", text);
        require(!gs::human_bytes(b).empty(), "human_bytes");
    } catch (const gs::InputError&) {
    }
    if (text.find("auto") != std::string::npos) return;  // reads the environment
    try {
        const gs::ShardId s = gs::parse_shard(text);
        require(s.count >= 1 && s.index < s.count, "parse_shard gives 0 <= K < N", text);
    } catch (const gs::InputError&) {
    }
}

void check_message(const std::string& m) {
    require(!m.empty(), "empty error message");
    require(m.size() < 4000, "error message too long", m.substr(0, 200));
    for (unsigned char c : m) require(c >= 0x20 && c < 0x7f, "error message is not one printable ASCII line", m.substr(0, 200));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const gs::Spec spec = gs::parse_spec_text(text);
        check_spec(spec);
        // results.json stores spec.raw; reading it back must give the same sweep.
        const gs::Spec again = gs::parse_spec_text(spec.raw.dump());
        require(again.hash == spec.hash, "round trip changes the hash");
        require(again.cells.size() == spec.cells.size(), "round trip changes the cells");
        for (size_t i = 0; i < spec.cells.size(); ++i)
            require(again.cells[i].layer_sizes == spec.cells[i].layer_sizes, "round trip changes layer sizes");
        check_plan(spec);
    } catch (const gs::SpecError& e) {
        check_message(e.what());
    }
    check_option_parsers(text);
    // Any other exception escapes and libFuzzer reports it as a crash.
    return 0;
}
