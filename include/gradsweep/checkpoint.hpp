// The checkpoint in an output directory: checkpoint.json (what is being run) and
// units/cell-C-block-B.bin (one finished work unit's raw rows each). A unit file
// is written to a temporary name and renamed into place, and carries its own
// identity and checksum, so whatever moment a run is killed at, every unit file
// present is complete and a resumed run redoes only the rest.
//
// Unit file layout (host byte order, i.e. little-endian on x86-64 and arm64):
//   "GSUNIT1\n" | spec hash (16 ASCII hex) | cell | block | seed_offset | count |
//   stride | block size (six uint64) | count*stride doubles (row-major, as
//   Backend::run writes them) | uint64 checksum (FNV-1a over all preceding
//   8-byte words).
#pragma once
#include <cstdint>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

inline constexpr const char* kCheckpointFile = "checkpoint.json";
inline constexpr const char* kUnitsDir = "units";

// Writes one unit's rows (u.count * row_stride(depth) doubles) atomically.
// Throws OutputError ("cannot write PATH: reason").
void write_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, const double* rows);

// Reads a unit file into `rows` (u.count * stride doubles). Returns false with a
// reason in *why when the file is missing, short, of another unit or sweep, or
// fails its checksum.
bool read_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, double* rows,
                    std::string* why);
// The same checks without keeping the rows.
bool verify_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, std::string* why);

// Removes files named "*.tmp.*" (left by a killed writer) directly in `dir`.
// Returns how many were removed.
size_t remove_temporaries(const std::string& dir);

class Checkpoint {
public:
    enum class Mode { fresh, resume };

    // fresh: removes any old checkpoint in `dir` and writes a new checkpoint.json.
    // resume: requires checkpoint.json to describe the same spec, block size and
    // shard (InputError otherwise), removes temporaries and keeps valid unit files.
    // `units` are the units this run is responsible for.
    Checkpoint(std::string dir, const Spec& spec, uint64_t block_seeds, const ShardId& shard, const std::vector<WorkUnit>& units,
               Mode mode);

    const std::string& dir() const { return dir_; }
    std::string unit_path(const WorkUnit& u) const;
    bool done(size_t i) const { return done_[i]; }
    size_t done_count() const { return done_count_; }
    size_t discarded() const { return discarded_; }  // invalid unit files found (and removed) on resume

    // Thread-safe. Writes the unit file and marks the unit done.
    void store(size_t i, const double* rows);
    // Called on SIGINT/SIGTERM: waits for a store in progress to finish and blocks
    // every later one, so no temporary file is left behind when the process exits.
    void freeze();
    // Removes checkpoint.json and units/ (after the final results are in place, or
    // to undo a fresh run that failed before finishing any unit).
    void remove_files();

private:
    std::string dir_;
    const Spec& spec_;
    uint64_t block_;
    const std::vector<WorkUnit>& units_;
    std::vector<char> done_;
    std::atomic<size_t> done_count_{0};
    size_t discarded_ = 0;
    std::mutex mu_;
};

// Reads DIR/checkpoint.json; empty object when there is none.
nlohmann::ordered_json read_checkpoint_json(const std::string& dir);

}  // namespace gs
