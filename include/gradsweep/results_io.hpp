// Writers for results.json, results.csv, theory.csv and per_seed.csv: the text
// of each, handed to a TextOut (file_io.hpp writes it whole or not at all).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "gradsweep/file_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

// results.json: format, the spec as resolved (resolved_spec_json) and as
// written, spec_hash, provenance (extra's keys appended to it), seeds, cells.
void write_results_json(const Spec& spec, const SweepResult& result, const ojson& extra, TextOut& out);
// results.csv, one row per (cell, layer, quantity) and one loss row per cell
// (layer empty, quantity "loss"); columns: results_csv_header().
void write_results_csv(const Spec& spec, const SweepResult& result, TextOut& out);
// The infinite-width prediction per (cell, layer): cell,layer,quantity,value, where
// value is sqrt(E[quantity^2]) over seeds (theory.hpp); cells without one have no rows.
void write_theory_csv(const Spec& spec, const SweepResult& result, TextOut& out);
// growth.csv: per cell a row for each growth rate (growth_rate.hpp; quantity
// weight_grad_rms and delta_rms), the cell's identifying columns (results.csv's)
// first, the prediction's rate beside the measured one.
void write_growth_csv(const Spec& spec, const SweepResult& result, TextOut& out);
// The same texts whole (for tests and small outputs).
std::string results_json_text(const Spec& spec, const SweepResult& result, const ojson& extra = ojson::object());
std::string results_csv_text(const Spec& spec, const SweepResult& result);
std::string theory_csv_text(const Spec& spec, const SweepResult& result);
std::string growth_csv_text(const Spec& spec, const SweepResult& result);
std::string results_csv_header();
// Long-format raw rows: cell, seed, layer, quantity, value (layer -1 = loss).
// poll, when given, runs every few thousand seeds (a place to notice signals).
void append_per_seed_csv(std::string& out, const Spec& spec, const Cell& cell, const std::vector<double>& rows,
                         uint64_t seed_offset = 0, const std::function<void()>& poll = {});
std::string per_seed_csv_header();

// The cell's parameters, as columns in results.csv and "params" in results.json:
// every network key that can be a grid axis, init as its kind with sigma_w and
// sigma_b (null unless the init is normal), layer_sizes in runs
// (Cell::layer_sizes_compact).
ojson cell_params(const Cell& cell);
// The spec-wide settings that change numbers, as results.csv columns: name,
// spec_hash, precision, rng, rng_key, seeds_first, seeds_count, input ("values"
// or "normal"), input_batch, loss_target.
ojson spec_columns(const Spec& spec);
// The same columns as results.csv writes them: each preceded by a comma.
std::string cell_params_csv(const Cell& cell);
std::string spec_columns_csv(const Spec& spec);
// One JSON value as a CSV field: null empty, strings quoted as RFC 4180 needs,
// doubles as format_double.
std::string csv_value(const ojson& v);

// results.json's "provenance": version, commit, backend, device, threads, precision,
// rng, times and rate (shard results and merges record the same fields).
ojson provenance_json(const Spec& spec, const RunInfo& info);
std::string format_double(double x);  // shortest round-trip text; NaN as "NaN"

}  // namespace gs
