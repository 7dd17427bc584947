// The checkpoint in an output directory:
//   checkpoint.json            what is being run (spec, hash, block size, shard)
//   units/cell-C-block-B.bin   one finished work unit's raw rows each
//   cells/cell-C.bin           a finished cell's aggregates (unsharded runs without
//                              --per-seed: once a cell is complete its rows are
//                              summarised into this and its unit files deleted, so
//                              the rows of a long sweep never pile up on disk)
// In such runs a cell cheap to redo (cell_cheap_to_redo) keeps its rows in memory
// while it is computed, or on a CUDA device that summarises it (store_cell), and
// writes no unit file at all: only its cell file. A kill loses such cells in
// flight; they are computed again on --resume.
// Every file is written to a temporary name and renamed into place, and carries
// its identity and a checksum, so whatever moment a run is killed at, a file
// present is complete (or, after an OS crash, detectably damaged and redone):
// a resumed run redoes only what is missing.
//
// Unit file layout (host byte order, i.e. little-endian on x86-64 and arm64):
//   "GSUNIT5\n" | spec hash (16 ASCII hex) | cell | block | seed_offset | count |
//   stride | block size (six uint64) | count*stride doubles (row-major, as
//   Backend::run writes them) | uint64 checksum (FNV-1a over all preceding
//   8-byte words).
// Cell file layout: "GSCELL5\n" | spec hash | cell | depth | networks |
//   nonfinite_networks (four uint64) | depth*5 + 1 gs::Summary (88 bytes each:
//   [layer][quantity], then the loss) | uint64 checksum as above.
// The digit in both magics is the version of the per-network values
// (checkpoint.cpp, kValuesVersion): files of another version are refused.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/work_units.hpp"

namespace gs {

inline constexpr const char* kCheckpointFile = "checkpoint.json";
inline constexpr const char* kUnitsDir = "units";
inline constexpr const char* kCellsDir = "cells";

// Writes one unit's rows (u.count * row_stride(depth) doubles): temporary file,
// then rename. Not fsync'ed: the rename is atomic for a killed process, and the
// checksum catches what an OS crash could leave. Throws OutputError
// ("cannot write PATH: reason").
void write_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, const double* rows);

// Reads a unit file into `rows` (u.count * stride doubles). Returns false with a
// reason in *why when the file is missing, short, of another unit or sweep, or
// fails its checksum.
bool read_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, double* rows,
                    std::string* why);
// The same checks without keeping the rows.
bool verify_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, std::string* why);

// A finished cell's aggregates, exactly (every double's bits).
void write_cell_file(const std::string& path, const Spec& spec, const CellResult& r);
bool read_cell_file(const std::string& path, const Spec& spec, int cell, CellResult& out, std::string* why);

// Removes files named "*.tmp.*" (left by a killed writer) directly in `dir`.
// Returns how many were removed.
size_t remove_temporaries(const std::string& dir);

class Checkpoint {
public:
    enum class Mode { fresh, resume };

    // fresh: removes any old checkpoint in `dir` and writes a new checkpoint.json.
    // resume: requires checkpoint.json to describe the same spec, block size and
    // shard (InputError otherwise), removes temporaries, keeps valid cell and unit
    // files and deletes damaged ones. `units` are the units this run is
    // responsible for, cell by cell (as all_work_units / shard_work_units give them).
    Checkpoint(std::string dir, const Spec& spec, uint64_t block_seeds, const ShardId& shard, const std::vector<WorkUnit>& units,
               Mode mode);

    std::string unit_path(const WorkUnit& u) const;
    std::string cell_path(int cell) const;
    bool done(size_t i) const { return done_[i]; }
    size_t done_count() const { return done_count_; }
    size_t discarded() const { return discarded_; }  // damaged files found (and removed) on resume
    bool any_cell_summarised() const;

    // Cells that may keep their rows in memory rather than in unit files (the
    // orchestrator's choice: unsharded runs without --per-seed, cells cheap to
    // redo): a cell with eligible[c] does when its columns fit in what is left of
    // budget_bytes as its first unit arrives, and no unit of it was on disk when
    // the run started. Call before the first store().
    void keep_cells_in_memory(std::vector<char> eligible, uint64_t budget_bytes);
    bool cell_in_memory(int cell) const { return rows_at_[cell] == in_memory; }

    // Thread-safe. The unit's rows go into its cell's columns in memory, or to its
    // unit file (then the unit is done: kept for --resume).
    void store(size_t i, const double* rows);

    // Aggregates a cell whose units are all stored, from its columns in memory or
    // its unit files, stores the result as the cell file and deletes the unit
    // files. Not thread-safe with itself; safe alongside store() of other cells.
    void summarise_cell(int cell);
    bool cell_summarised(int cell) const { return cell_done_[cell]; }
    // Whether the cell is whole in this run with none of its units done: it may be
    // computed and summarised in one piece (store_cell).
    bool cell_untouched(int cell) const;
    // A cell computed and summarised whole where its rows were made
    // (Backend::summarize_cell): its cell file is written and all its units are
    // done; no row reaches the checkpoint. Thread-safe.
    void store_cell(const CellResult& r);
    // A done unit's rows, read back into dst (u.count * row_stride(depth) doubles);
    // throws naming the file and what is wrong with it.
    void load_unit(const WorkUnit& u, double* dst) const;
    // The stored aggregates of a summarised cell (throws when the file is bad).
    CellResult load_cell(int cell) const;

    // Called on SIGINT/SIGTERM: waits for a write in progress to finish and blocks
    // every later one, so no temporary file is left behind when the process exits.
    void freeze();
    // Removes checkpoint.json, units/ and cells/ (after the final results are in
    // place, or to undo a fresh run that failed before finishing any unit).
    void remove_files();

private:
    std::string dir_;
    const Spec& spec_;
    uint64_t block_;
    const std::vector<WorkUnit>& units_;
    std::vector<char> done_, cell_done_;
    std::vector<std::pair<size_t, size_t>> cell_units_;  // per cell: [first, last) into units_
    std::atomic<size_t> done_count_{0};  // units kept on disk (unit files, summarised cells)
    // Where each cell's rows go (keep_cells_in_memory); the columns of the cells in
    // memory and the bytes they hold, at most memory_budget_.
    enum CellRows : char { undecided, in_files, in_memory };
    std::vector<CellRows> rows_at_;
    std::vector<std::unique_ptr<CellColumns>> memory_;
    uint64_t memory_budget_ = 0, memory_used_ = 0;
    size_t discarded_ = 0;
    std::mutex mu_;
    CellColumns columns_;                         // summarise_cell's buffers, kept between cells
    std::vector<std::vector<double>> unit_rows_;  // one unit's rows, per thread
};

// Reads DIR/checkpoint.json; empty object when there is none.
nlohmann::ordered_json read_checkpoint_json(const std::string& dir);

}  // namespace gs
