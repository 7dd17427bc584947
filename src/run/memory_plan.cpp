#include "gradsweep/resources.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

#include "gradsweep/results_io.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

namespace {

using u128 = unsigned __int128;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
uint64_t sat(u128 x) { return x > kMax ? kMax : static_cast<uint64_t>(x); }

// Elements of per-network scratch: activations and pre-activations of every
// layer for the whole batch, plus three gradient vectors of the widest layer.
// The same terms the CUDA layout (kernels/net_layout.cuh) and the CPU lane
// scratch (src/cpu/network.hpp) allocate.
u128 network_scratch_elements(const Spec& spec, const Cell& c, bool include_weights_cpu) {
    const u128 B = static_cast<u128>(spec.input.batch);
    u128 acts = 0, weights = 0;
    int max_n = 0;
    for (int l = 0; l <= c.depth(); ++l) {
        acts += B * static_cast<u128>(c.layer_sizes[l]);
        max_n = std::max(max_n, c.layer_sizes[l]);
    }
    for (int l = 0; l < c.depth(); ++l) weights += static_cast<u128>(c.layer_sizes[l]) * c.layer_sizes[l + 1];
    u128 e = 2 * acts + 3 * B * static_cast<u128>(max_n);
    if (include_weights_cpu) e += weights;  // the CPU keeps a layer's weights (or all of them) between passes
    return e;
}

u128 torch_param_elements(const Spec& spec, const Cell& c) {
    if (spec.rng != RngKind::torch) return 0;
    u128 p = 0;
    for (int l = 0; l < c.depth(); ++l) p += static_cast<u128>(c.layer_sizes[l]) * c.layer_sizes[l + 1] + c.layer_sizes[l + 1];
    return p + static_cast<u128>(spec.input.batch) * c.input_dim();
}

}  // namespace

MemoryPlan estimate_memory(const Spec& spec, const MemoryInputs& in) {
    MemoryPlan m;
    const u128 T = spec.precision == Precision::float64 ? 8 : 4;
    const uint64_t block = std::min<uint64_t>(in.block_seeds, spec.seed_count);
    u128 unit_rows = 0, cell_rows = 0, scratch = 0, cuda_dev = 0, per_seed_values = 0;
    u128 results = 0, csv_bytes = 0, json_bytes = 0;
    int max_depth = 0;
    size_t spec_part = 0;  // results.csv's spec-wide columns, the same on every row
    {
        const ojson cols = spec_columns(spec);
        for (auto it = cols.begin(); it != cols.end(); ++it) spec_part += it.value().dump().size() + 1;
    }
    for (const Cell& c : spec.cells) {
        const u128 stride = static_cast<u128>(row_stride(c.depth()));
        unit_rows = std::max(unit_rows, static_cast<u128>(block) * stride * 8);
        // Aggregating a cell (CellColumns): its columns, filled from one unit's rows
        // at a time (per core for cells of 65536 seeds and more, as summarise_cell
        // and aggregate_units split them); with --per-seed from all its rows, which
        // are kept for the text.
        const u128 loaders = spec.seed_count >= 65536 ? std::max(1u, std::thread::hardware_concurrency()) : 1;
        const u128 cr = static_cast<u128>(spec.seed_count) * stride * 8 +
                        (in.per_seed ? static_cast<u128>(spec.seed_count) : loaders * block) * stride * 8;
        if (cr > cell_rows) {
            cell_rows = cr;
            m.largest_cell = c.index;
        }
        const int max_n = *std::max_element(c.layer_sizes.begin() + 1, c.layer_sizes.end());
        const u128 lanes = max_n <= 64 ? (T == 4 ? 16 : 8) : 1;  // the CPU backend's SIMD lanes per thread
        scratch = std::max(scratch, lanes * T * (network_scratch_elements(spec, c, true) + torch_param_elements(spec, c)));
        // GPU: networks in flight per launch, capped as the CUDA backend caps them.
        const u128 cap = max_n <= 32 ? (u128{1} << 20) : (u128{1} << 16);
        const u128 in_flight = std::min<u128>(cap, std::min<u128>(static_cast<u128>(block) * in.units_per_call, spec.seed_count));
        cuda_dev = std::max(cuda_dev, in_flight * (T * (network_scratch_elements(spec, c, false) + torch_param_elements(spec, c)) + stride * 8));
        per_seed_values += static_cast<u128>(spec.seed_count) * (static_cast<u128>(c.depth()) * (c.bias ? 5 : 4) + 1);
        // Summaries: a CellResult per cell (kNumQuantities per layer, and the loss).
        results += sizeof(CellResult) + (static_cast<u128>(c.depth()) * kNumQuantities + 1) * sizeof(Summary);
        max_depth = std::max(max_depth, c.depth());
        // results.csv: a row per layer and quantity, and the loss row, each the cell's
        // columns (measured here) plus at most ~230 bytes of numbers; results.json:
        // at most ~1.9 kB per layer (pretty-printed summaries), ~2 kB per cell.
        const u128 rows = static_cast<u128>(c.depth()) * (c.bias ? 5 : 4) + 1;
        std::string prefix;
        const ojson params = cell_params(c);
        for (auto it = params.begin(); it != params.end(); ++it) prefix += it.value().dump() + ",";
        csv_bytes += rows * (prefix.size() + spec_part + 230);
        json_bytes += static_cast<u128>(c.depth()) * 1900 + 2000 + prefix.size();
    }
    m.results = sat(results);
    // A TextOut chunk and the file's pieces around it, plus the largest cell's
    // per-layer theory (values, JSON and text) while its entry is written.
    m.writing = sat(4 * static_cast<u128>(TextOut::kChunk) + static_cast<u128>(max_depth) * 96);
    m.results_csv_bytes = sat(static_cast<u128>(results_csv_header().size()) + csv_bytes);
    m.results_json_bytes = sat(json_bytes + 4096);
    m.unit_rows = sat(unit_rows);
    m.cell_rows = sat(cell_rows);
    m.cpu_scratch_per_thread = sat(scratch);
    // x 2: each worker computes one call's rows while the previous call's go to the checkpoint.
    const u128 in_flight_rows = 2 * unit_rows * static_cast<u128>(std::max(1, in.workers)) * std::max<uint64_t>(1, in.units_per_call);
    // (Unit files are written from the rows in place, without a copy.)
    m.cpu_compute = sat(scratch * static_cast<u128>(std::max(1, in.cpu_threads)) + in_flight_rows);
    m.cuda_per_device = sat(cuda_dev);
    m.cuda_host_compute = sat(in_flight_rows);
    // ~56 bytes of text per value: "cell,seed,layer,quantity,value\n".
    m.per_seed_text = in.per_seed ? sat(per_seed_values * 56) : 0;
    m.bookkeeping = sat(static_cast<u128>(in.units) * 64);
    const u128 compute = in.cuda ? m.cuda_host_compute : m.cpu_compute;
    // Cells are summarised while the workers go on computing: both at once; the
    // summaries stay until the result files are written.
    m.host_peak = sat(compute + cell_rows + m.per_seed_text + m.bookkeeping + results + m.writing);
    return m;
}

uint64_t mem_available_bytes() {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long v = 0;
        if (std::sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    std::fclose(f);
    return kb > kMax / 1024 ? kMax : kb * 1024;
}

void check_memory(const Spec& spec, const MemoryPlan& m, uint64_t max_memory, uint64_t available) {
    const Cell& big = spec.cells[m.largest_cell];
    const std::string cell_what = "cell " + std::to_string(big.index) + " (" + big.layer_sizes_compact() + ") needs " +
                                  human_bytes(m.cell_rows) + " to aggregate its rows (" + std::to_string(spec.seed_count) +
                                  " seeds x " + std::to_string(row_stride(big.depth())) + " values x 8 bytes, all at once)";
    if (available && m.cell_rows > available)
        throw InputError("will not fit: " + cell_what + ", more than the " + human_bytes(available) +
                         " available (MemAvailable); split the seeds over several specs");
    if (max_memory && m.cell_rows > max_memory)
        throw InputError("will not fit: " + cell_what + ", more than --max-memory " + human_bytes(max_memory));
    if (max_memory && m.host_peak > max_memory)
        throw InputError("will not fit: estimated peak memory " + human_bytes(m.host_peak) + " exceeds --max-memory " +
                         human_bytes(max_memory) + " (see gradsweep plan)");
    if (available && m.host_peak > available)
        throw InputError("will not fit: estimated peak memory " + human_bytes(m.host_peak) + " exceeds the " +
                         human_bytes(available) + " available (MemAvailable; see gradsweep plan)");
}

uint64_t parse_bytes(const std::string& text) {
    auto bad = [&]() { return InputError("--max-memory expects a size such as 8G, 512M or 1000000, got \"" + text + "\""); };
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0 || i > 30) throw bad();
    double x = 0;
    try {
        size_t pos = 0;
        x = std::stod(text.substr(0, i), &pos);
        if (pos != i) throw bad();
    } catch (const std::logic_error&) {
        throw bad();
    }
    std::string unit = text.substr(i);
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (unit.size() > 1 && (unit.substr(1) == "IB" || unit.substr(1) == "B")) unit = unit.substr(0, 1);
    double mult = 1;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "K") mult = 1024.0;
    else if (unit == "M") mult = 1024.0 * 1024;
    else if (unit == "G") mult = 1024.0 * 1024 * 1024;
    else if (unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
    else throw bad();
    const double bytes = x * mult;
    if (!(bytes >= 1) || bytes >= 1.8e19) throw bad();
    return static_cast<uint64_t>(bytes);
}

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = static_cast<double>(b);
    int u = 0;
    while (x >= 1024 && u < 6) {
        x /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    else std::snprintf(buf, sizeof buf, "%.3g %s", x, units[u]);
    return buf;
}

}  // namespace gs
