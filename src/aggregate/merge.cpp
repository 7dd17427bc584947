#include "gradsweep/merge.hpp"

#include <algorithm>
#include <set>

#include "gradsweep/checkpoint.hpp"
#include "gradsweep/file_io.hpp"
#include "gradsweep/results_io.hpp"

namespace gs {

namespace {

template <class T>
T field(const ojson& j, const char* key, const std::string& where) {
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
        throw InputError(where + ": results.json lacks a valid \"" + key + "\"");
    }
}

}  // namespace

std::string shard_results_json_text(const Spec& spec, uint64_t block_seeds, const ShardId& shard,
                                    const std::vector<WorkUnit>& units, const RunInfo& info, const ojson& extra) {
    ojson j;
    j["format"] = kShardFormat;
    j["spec"] = spec.raw;
    j["spec_hash"] = spec.hash;
    j["seed_block"] = block_seeds;
    j["shard"] = ojson{{"index", shard.index}, {"count", shard.count}};
    ojson p = provenance_json(spec, info);
    for (auto it = extra.begin(); it != extra.end(); ++it) p[it.key()] = it.value();
    j["provenance"] = std::move(p);
    ojson list = ojson::array();
    for (const WorkUnit& u : units) list.push_back(ojson::array({u.cell, u.block}));
    j["units"] = std::move(list);
    return j.dump(1) + "\n";
}

ShardSet open_shards(const std::vector<std::string>& dirs) {
    if (dirs.empty()) throw InputError("merge needs the shard directories to merge");
    ShardSet set;
    std::vector<ojson> docs;
    for (const std::string& d : dirs) {
        const std::string path = d + "/results.json";
        JsonFile f = read_json_file(path);
        if (!f.found)
            throw InputError(d + ": no results.json: not a finished shard (still running, failed, or not a shard directory)");
        if (!f.valid) throw InputError(path + ": not valid JSON (damaged?)");
        ojson& j = f.json;
        const std::string format = j.is_object() ? j.value("format", std::string()) : std::string();
        if (format == "gradsweep-results/1") throw InputError(d + ": holds the results of a whole run, not a shard");
        if (format != kShardFormat) throw InputError(d + ": results.json is not a gradsweep shard (format \"" + format + "\")");
        docs.push_back(std::move(j));
    }
    const std::string hash0 = field<std::string>(docs[0], "spec_hash", dirs[0]);
    try {
        set.spec = parse_spec_text(docs[0].at("spec").dump());
    } catch (const std::exception& e) {
        throw InputError(dirs[0] + ": the spec in results.json does not parse: " + e.what());
    }
    if (set.spec.hash != hash0) throw InputError(dirs[0] + ": results.json is damaged (its spec does not match spec_hash)");
    set.block_seeds = field<uint64_t>(docs[0], "seed_block", dirs[0]);
    const ojson& s0 = docs[0].contains("shard") ? docs[0]["shard"] : ojson();
    set.count = s0.is_object() ? s0.value("count", uint64_t{0}) : 0;
    if (set.block_seeds == 0 || set.count == 0) throw InputError(dirs[0] + ": results.json has no valid seed_block or shard count");
    set.dirs.assign(set.count, std::string());
    set.provenance.assign(set.count, ojson::object());
    for (size_t i = 0; i < dirs.size(); ++i) {
        const ojson& j = docs[i];
        const std::string h = field<std::string>(j, "spec_hash", dirs[i]);
        if (h != hash0)
            throw InputError(dirs[i] + ": a shard of another sweep (spec_hash " + h + "; " + dirs[0] + " has " + hash0 + ")");
        const uint64_t b = field<uint64_t>(j, "seed_block", dirs[i]);
        if (b != set.block_seeds)
            throw InputError(dirs[i] + ": seed block " + std::to_string(b) + " differs from " + std::to_string(set.block_seeds) + " in " + dirs[0]);
        const ojson& sj = j.contains("shard") ? j["shard"] : ojson();
        const uint64_t k = sj.is_object() ? sj.value("index", uint64_t{0}) : 0;
        const uint64_t n = sj.is_object() ? sj.value("count", uint64_t{0}) : 0;
        if (n != set.count)
            throw InputError(dirs[i] + ": shard " + std::to_string(k) + "/" + std::to_string(n) + " is of a split into " +
                             std::to_string(n) + ", " + dirs[0] + " of a split into " + std::to_string(set.count));
        if (k >= n) throw InputError(dirs[i] + ": shard index " + std::to_string(k) + " out of range");
        if (!set.dirs[k].empty())
            throw InputError("duplicate shard " + std::to_string(k) + "/" + std::to_string(n) + ": given twice, as " + set.dirs[k] +
                             " and " + dirs[i]);
        set.dirs[k] = dirs[i];
        set.provenance[k] = j.value("provenance", ojson::object());
    }
    std::string missing;
    uint64_t n_missing = 0;
    for (uint64_t k = 0; k < set.count; ++k)
        if (set.dirs[k].empty()) {
            if (n_missing < 20) missing += (n_missing ? ", " : "") + std::to_string(k) + "/" + std::to_string(set.count);
            ++n_missing;
        }
    if (n_missing)
        throw InputError("missing shard" + std::string(n_missing > 1 ? "s " : " ") + missing + (n_missing > 20 ? ", ..." : "") + " (" +
                         std::to_string(n_missing) + " of " + std::to_string(set.count) + " not given)");
    // Every shard must list exactly the units this spec's split gives it.
    const std::vector<WorkUnit> all = all_work_units(set.spec, set.block_seeds);
    set.owner = assign_shards(set.spec, set.block_seeds, set.count);
    std::vector<std::vector<size_t>> expected(set.count);
    for (size_t i = 0; i < all.size(); ++i) expected[set.owner[i]].push_back(i);
    for (size_t i = 0; i < dirs.size(); ++i) {
        const uint64_t k = docs[i]["shard"].value("index", uint64_t{0});
        const ojson& list = docs[i].contains("units") ? docs[i]["units"] : ojson();
        bool ok = list.is_array() && list.size() == expected[k].size();
        for (size_t e = 0; ok && e < list.size(); ++e) {
            const WorkUnit& u = all[expected[k][e]];
            ok = list[e].is_array() && list[e].size() == 2 && list[e][0] == u.cell && list[e][1] == u.block;
        }
        if (!ok)
            throw InputError(dirs[i] + ": shard " + std::to_string(k) + "/" + std::to_string(set.count) +
                             " lists other units than this spec's split gives it (made by another gradsweep version?)");
    }
    return set;
}

void load_shard_unit(const ShardSet& set, const WorkUnit& u, double* dst) {
    const uint64_t index = static_cast<uint64_t>(u.cell) * blocks_per_cell(set.spec, set.block_seeds) + u.block;
    const uint64_t k = set.owner[index];
    const std::string rel = std::string(kUnitsDir) + "/" + unit_file_name(u);
    std::string why;
    if (!read_unit_file(set.dirs[k] + "/" + rel, set.spec, set.block_seeds, u, dst, &why))
        throw InputError(set.dirs[k] + ": shard " + std::to_string(k) + "/" + std::to_string(set.count) + ": unit cell " +
                         std::to_string(u.cell) + " block " + std::to_string(u.block) + " (" + rel + "): " + why);
}

RunInfo merged_run_info(const ShardSet& set) {
    RunInfo info;
    std::vector<std::string> backends, devices;
    auto add = [](std::vector<std::string>& v, const std::string& s) {
        if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
    };
    double elapsed = 0;
    for (const ojson& p : set.provenance) {
        add(backends, p.value("backend", std::string()));
        add(devices, p.value("device", std::string()));
        info.threads = std::max(info.threads, p.value("threads", 1));
        const std::string st = p.value("start_time", std::string()), et = p.value("end_time", std::string());
        // ISO 8601 UTC strings order like the times they name.
        if (!st.empty() && (info.start_time.empty() || st < info.start_time)) info.start_time = st;
        if (et > info.end_time) info.end_time = et;
        elapsed += p.value("elapsed_seconds", 0.0);
    }
    auto join = [](const std::vector<std::string>& v, const char* sep) {
        std::string s;
        for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
        return s;
    };
    info.backend = join(backends, "+");
    info.device = join(devices, "; ");
    info.elapsed_seconds = elapsed;
    info.networks = set.spec.networks();
    info.networks_per_second = elapsed > 0 ? static_cast<double>(info.networks) / elapsed : 0;
    return info;
}

}  // namespace gs
