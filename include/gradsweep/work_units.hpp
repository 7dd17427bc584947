// Work units: the grain of scheduling, sharding and checkpointing. A unit is one
// cell and one block of consecutive seeds. The block size is fixed for a sweep
// (never derived from the number of shards or devices), and every network's row
// depends only on its seed, so however units are spread the rows are the same.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "gradsweep/errors.hpp"

#include "gradsweep/spec.hpp"

namespace gs {

// Seeds per work unit unless --seed-block says otherwise.
inline constexpr uint64_t kSeedBlock = 4096;

// A cell whose forward and backward pass cost at most this many multiply-adds
// over all its seeds (unit_cost summed: ~2 s of a 2-core CPU at 20 x 64, far
// less on a GPU) keeps its rows in memory while it is computed and writes only
// its summary to the checkpoint: a killed run loses at most the cells in
// flight, each this cheap to redo. Costlier cells write every unit's rows
// (docs/scale_out.md, "What a killed run keeps").
inline constexpr unsigned __int128 kInMemoryCellWork = static_cast<unsigned __int128>(1) << 34;

struct WorkUnit {
    int cell = 0;
    uint64_t block = 0;        // index of the seed block within the cell
    uint64_t seed_offset = 0;  // first seed is spec.seed_first + seed_offset
    uint64_t count = 0;        // seeds in this unit (the last block of a cell may be short)

    bool operator==(const WorkUnit& o) const { return cell == o.cell && block == o.block; }
};

// Whether a cell is cheap enough to keep its rows in memory (kInMemoryCellWork).
bool cell_cheap_to_redo(const Spec& spec, int cell);

struct ShardId {
    uint64_t index = 0, count = 1;  // shard `index` of `count`, 0-based
    std::string label() const { return std::to_string(index) + "/" + std::to_string(count); }
};

uint64_t blocks_per_cell(const Spec& spec, uint64_t block_seeds);
uint64_t total_work_units(const Spec& spec, uint64_t block_seeds);

// Every unit of the sweep, cell by cell, blocks in seed order.
std::vector<WorkUnit> all_work_units(const Spec& spec, uint64_t block_seeds);

// The units of one shard, in the same order as all_work_units. A pure function of
// (spec, block size, shard): merge recomputes it to check a shard's unit list.
// Units are dealt out largest first to the least-loaded shard (integer costs, so
// every machine computes the same split), which balances cells of unequal size.
std::vector<WorkUnit> shard_work_units(const Spec& spec, uint64_t block_seeds, const ShardId& shard);
// The same split for all shards at once: the shard of each unit of all_work_units.
std::vector<uint64_t> assign_shards(const Spec& spec, uint64_t block_seeds, uint64_t shards);

// Relative cost of a unit: multiply-adds of its forward and backward passes.
unsigned __int128 unit_cost(const Spec& spec, const WorkUnit& u);

// "cell-C-block-B.bin"
std::string unit_file_name(const WorkUnit& u);

// "K/N" (0 <= K < N) or "auto" (from SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN
// and SLURM_ARRAY_TASK_COUNT). Throws InputError naming the problem.
ShardId parse_shard(const std::string& text);

}  // namespace gs
