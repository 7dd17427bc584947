#include "gradsweep/work_units.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <queue>

namespace gs {

uint64_t blocks_per_cell(const Spec& spec, uint64_t block_seeds) {
    return (spec.seed_count + block_seeds - 1) / block_seeds;
}

uint64_t total_work_units(const Spec& spec, uint64_t block_seeds) {
    return blocks_per_cell(spec, block_seeds) * spec.cells.size();
}

std::vector<WorkUnit> all_work_units(const Spec& spec, uint64_t block_seeds) {
    const uint64_t nb = blocks_per_cell(spec, block_seeds);
    std::vector<WorkUnit> units;
    units.reserve(nb * spec.cells.size());
    for (const Cell& c : spec.cells)
        for (uint64_t b = 0; b < nb; ++b) {
            const uint64_t off = b * block_seeds;
            units.push_back({c.index, b, off, std::min(block_seeds, spec.seed_count - off)});
        }
    return units;
}

unsigned __int128 unit_cost(const Spec& spec, const WorkUnit& u) {
    const Cell& c = spec.cells[u.cell];
    unsigned __int128 per_sample = 0;
    for (int l = 0; l < c.depth(); ++l)
        per_sample += static_cast<unsigned __int128>(c.layer_sizes[l]) * c.layer_sizes[l + 1] + c.layer_sizes[l + 1];
    // Weights are drawn once per network whatever the batch; the products scale with it.
    unsigned __int128 weights = 0;
    for (int l = 0; l < c.depth(); ++l) weights += static_cast<unsigned __int128>(c.layer_sizes[l]) * c.layer_sizes[l + 1];
    return static_cast<unsigned __int128>(u.count) * (weights + per_sample * static_cast<unsigned>(spec.input.batch));
}

bool cell_cheap_to_redo(const Spec& spec, int cell) {
    return unit_cost(spec, WorkUnit{cell, 0, 0, spec.seed_count}) <= kInMemoryCellWork;
}

std::vector<uint64_t> assign_shards(const Spec& spec, uint64_t block_seeds, uint64_t shards) {
    const std::vector<WorkUnit> all = all_work_units(spec, block_seeds);
    std::vector<uint64_t> owner(all.size(), 0);
    if (shards <= 1) return owner;
    std::vector<unsigned __int128> cost(all.size());
    for (size_t i = 0; i < all.size(); ++i) cost[i] = unit_cost(spec, all[i]);
    std::vector<size_t> order(all.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
    // Min-heap of (load, shard): ties go to the lowest shard index.
    using Slot = std::pair<unsigned __int128, uint64_t>;
    std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> heap;
    const uint64_t n = std::min<uint64_t>(shards, std::max<size_t>(all.size(), 1));
    for (uint64_t s = 0; s < n; ++s) heap.push({0, s});
    for (size_t i : order) {
        Slot s = heap.top();
        heap.pop();
        owner[i] = s.second;
        s.first += std::max<unsigned __int128>(cost[i], 1);
        heap.push(s);
    }
    return owner;
}

std::vector<WorkUnit> shard_work_units(const Spec& spec, uint64_t block_seeds, const ShardId& shard) {
    std::vector<WorkUnit> all = all_work_units(spec, block_seeds);
    if (shard.count <= 1) return all;
    const std::vector<uint64_t> owner = assign_shards(spec, block_seeds, shard.count);
    std::vector<WorkUnit> out;
    for (size_t i = 0; i < all.size(); ++i)
        if (owner[i] == shard.index) out.push_back(all[i]);
    return out;
}

std::string unit_file_name(const WorkUnit& u) {
    return "cell-" + std::to_string(u.cell) + "-block-" + std::to_string(u.block) + ".bin";
}

namespace {

bool parse_u64(const std::string& s, uint64_t& out) {
    if (s.empty() || s.size() > 18) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    out = std::stoull(s);
    return true;
}

uint64_t env_u64(const char* name, bool required, uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        if (required) throw InputError(std::string("--shard auto: ") + name + " is not set (not inside a Slurm array job?)");
        return fallback;
    }
    uint64_t x = 0;
    if (!parse_u64(v, x)) throw InputError(std::string("--shard auto: ") + name + "=\"" + v + "\" is not a non-negative integer");
    return x;
}

}  // namespace

ShardId parse_shard(const std::string& text) {
    ShardId s;
    if (text == "auto") {
        const uint64_t id = env_u64("SLURM_ARRAY_TASK_ID", true, 0);
        const uint64_t count = env_u64("SLURM_ARRAY_TASK_COUNT", true, 0);
        const uint64_t min = env_u64("SLURM_ARRAY_TASK_MIN", false, 0);
        if (count == 0) throw InputError("--shard auto: SLURM_ARRAY_TASK_COUNT is 0");
        if (id < min || id - min >= count)
            throw InputError("--shard auto: task id " + std::to_string(id) + " is not in [" + std::to_string(min) + ", " +
                             std::to_string(min + count) + "): submit a contiguous array (--array=0-" +
                             std::to_string(count - 1) + ", no step)");
        s.index = id - min;
        s.count = count;
        return s;
    }
    const size_t slash = text.find('/');
    uint64_t k = 0, n = 0;
    if (slash == std::string::npos || !parse_u64(text.substr(0, slash), k) || !parse_u64(text.substr(slash + 1), n))
        throw InputError("--shard expects K/N (shard K of N, 0 <= K < N) or auto, got \"" + text + "\"");
    if (n == 0 || k >= n) throw InputError("--shard " + text + ": need 0 <= K < N");
    s.index = k;
    s.count = n;
    return s;
}

}  // namespace gs
