// Writers for results.json, results.csv and per_seed.csv. Every file is written
// to a temporary name in the same directory and renamed into place, so a reader
// never sees half a file.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include "gradsweep/errors.hpp"

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

// Text made piece by piece and handed to a sink in chunks of about kChunk
// bytes, so a results file of any size needs only one chunk in memory, and
// whoever writes the chunks gets a chance between them (to notice a signal).
class TextOut {
public:
    static constexpr size_t kChunk = size_t{1} << 20;
    using Sink = std::function<void(std::string_view)>;
    explicit TextOut(Sink sink) : sink_(std::move(sink)) {}
    TextOut& operator<<(std::string_view s) {
        if (s.size() >= kChunk) {  // large pieces go straight through, without a copy
            flush();
            for (size_t i = 0; i < s.size(); i += kChunk) sink_(s.substr(i, kChunk));
            return *this;
        }
        buf_.append(s);
        if (buf_.size() >= kChunk) flush();
        return *this;
    }
    void flush() {
        if (buf_.empty()) return;
        sink_(buf_);
        buf_.clear();
    }

private:
    Sink sink_;
    std::string buf_;
};

// One output file: its path and what writes its text.
struct OutputFile {
    std::string path;
    std::function<void(TextOut&)> produce;
};

// sync = false skips fsync: the file still appears only whole (rename), but a
// power cut may lose it (checkpoint units, which are recomputed if lost).
void write_file_atomic(const std::string& path, const std::string& content, bool sync = true);
// The same for content given in pieces, written one after another (no copy).
void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, bool sync = true);
// All or nothing: writes every (path, content) to a temporary file first and
// renames them into place only when all are safely written.
void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files, bool sync = true);
// The same with each file's text produced while it is written, one chunk in
// memory at a time. poll runs after every chunk written; whatever it throws (a
// stop on SIGINT/SIGTERM) removes every temporary file, renames nothing, and
// propagates, as a write error does.
void write_files_atomic(const std::vector<OutputFile>& files, const std::function<void()>& poll, bool sync = true);

// results.json: format, the spec as resolved (resolved_spec_json) and as
// written, spec_hash, provenance (extra's keys appended to it), seeds, cells.
void write_results_json(const Spec& spec, const SweepResult& result, const ojson& extra, TextOut& out);
// results.csv, one row per (cell, layer, quantity) and one loss row per cell
// (layer empty, quantity "loss"); columns: results_csv_header().
void write_results_csv(const Spec& spec, const SweepResult& result, TextOut& out);
// The infinite-width prediction per (cell, layer): cell,layer,quantity,value, where
// value is sqrt(E[quantity^2]) over seeds (theory.hpp); cells without one have no rows.
void write_theory_csv(const Spec& spec, const SweepResult& result, TextOut& out);
// growth.csv: one row per cell, its identifying columns (results.csv's) then the
// growth rate's (growth_rate.hpp) and the prediction's rate.
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

// results.json's "provenance": version, commit, backend, device, threads, precision,
// rng, times and rate (shard results and merges record the same fields).
ojson provenance_json(const Spec& spec, const RunInfo& info);
std::string format_double(double x);  // shortest round-trip text; NaN as "NaN"

}  // namespace gs
