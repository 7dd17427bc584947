// Writers for results.json, results.csv and per_seed.csv. Every file is written
// to a temporary name in the same directory and renamed into place, so a reader
// never sees half a file.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include "gradsweep/errors.hpp"

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

// sync = false skips fsync: the file still appears only whole (rename), but a
// power cut may lose it (checkpoint units, which are recomputed if lost).
void write_file_atomic(const std::string& path, const std::string& content, bool sync = true);
// The same for content given in pieces, written one after another (no copy).
void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, bool sync = true);
// All or nothing: writes every (path, content) to a temporary file first and
// renames them into place only when all are safely written.
void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files, bool sync = true);

std::string results_json_text(const Spec& spec, const SweepResult& result);
std::string results_csv_text(const Spec& spec, const SweepResult& result);
// The infinite-width prediction per (cell, layer): cell,layer,quantity,value, where
// value is sqrt(E[quantity^2]) over seeds (theory.hpp); cells without one have no rows.
std::string theory_csv_text(const Spec& spec, const SweepResult& result);
// Long-format raw rows: cell, seed, layer, quantity, value (layer -1 = loss).
void append_per_seed_csv(std::string& out, const Spec& spec, const Cell& cell, const std::vector<double>& rows,
                         uint64_t seed_offset = 0);
std::string per_seed_csv_header();

// The cell's parameters, as columns in results.csv and "params" in results.json.
ojson cell_params(const Cell& cell);

// results.json's "provenance": version, commit, backend, device, threads, precision,
// rng, times and rate (shard results and merges record the same fields).
ojson provenance_json(const Spec& spec, const RunInfo& info);
std::string format_double(double x);  // shortest round-trip text; NaN as "NaN"

}  // namespace gs
