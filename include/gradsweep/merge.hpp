// Shards and merging. A finished shard directory holds units/*.bin (its raw rows,
// see checkpoint.hpp), checkpoint.json and a results.json of format
// "gradsweep-shard/1" naming the spec (and its hash), the block size, the shard
// K/N and its units. merge checks that a set of such directories is exactly one
// sweep's shards 0..N-1 and aggregates their rows into the same results an
// unsharded run writes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

inline constexpr const char* kShardFormat = "gradsweep-shard/1";

// results.json of a finished shard.
std::string shard_results_json_text(const Spec& spec, uint64_t block_seeds, const ShardId& shard,
                                    const std::vector<WorkUnit>& units, const RunInfo& info, const ojson& extra_provenance);

struct ShardSet {
    Spec spec;
    uint64_t block_seeds = 0, count = 0;
    std::vector<std::string> dirs;     // by shard index
    std::vector<ojson> provenance;     // by shard index
    std::vector<uint64_t> owner;       // shard of each unit, all_work_units order
};

// Reads and cross-checks the shard directories. Throws InputError naming the
// problem: not a finished shard, shards of different sweeps (spec_hash), block
// sizes or shard counts, a shard given twice, shards missing, or a unit list that
// is not this spec's split. Unit files themselves are checked while loading.
ShardSet open_shards(const std::vector<std::string>& dirs);

// Loads a unit's rows from the shard that owns it; InputError when the file is
// missing or invalid.
void load_shard_unit(const ShardSet& set, const WorkUnit& u, double* dst);

// Provenance of the merged result: backends/devices of all shards, earliest
// start, latest end, summed compute time.
RunInfo merged_run_info(const ShardSet& set);

}  // namespace gs
