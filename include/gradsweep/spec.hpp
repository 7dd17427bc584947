// The sweep spec: parsed, validated and expanded into cells before any work starts.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include "gradsweep/errors.hpp"
#include "gradsweep/activation.hpp"
#include "gradsweep/init.hpp"

namespace gs {

using ojson = nlohmann::ordered_json;

// What a spec may ask for. These keep parsing cheap (the grid is expanded in
// memory) and keep the engine's index types exact (Philox numbers a tensor's
// elements with 32 bits). Beyond them a spec is rejected, not truncated.
inline constexpr int kMaxLayerSize = 1 << 20;                 // any layer size, depth, batch
inline constexpr uint64_t kMaxCells = 100000;                 // grid combinations
inline constexpr uint64_t kMaxTotalLayers = 10000000;         // sum of depth over all cells
inline constexpr uint64_t kMaxSeedCount = 1000000000000ull;   // seeds.count
inline constexpr uint64_t kMaxTensorElements = 0xffffffffull; // one layer's weights; batch x input_dim
inline constexpr size_t kMaxNameBytes = 256;                  // name: repeated on every row of results.csv
inline constexpr size_t kMaxLayerSizesText = 200;             // Cell::layer_sizes_compact() before it is cut

enum class RngKind : int { philox, torch };
enum class Precision : int { float32, float64 };

struct InputSpec {
    bool random = true;                       // per-seed N(0,1) draws
    int batch = 1;
    std::vector<std::vector<double>> values;  // fixed rows when !random
};

// One point of the grid: a fully resolved network.
struct Cell {
    int index = 0;
    std::vector<int> layer_sizes;  // [input_dim, hidden..., output_dim]; depth = size()-1
    int given_width = 0;           // the spec's width (depth/width form; also when depth 1 leaves it unused), else 0
    Activation activation = Activation::relu;
    double leaky_slope = 0.01;
    bool shortcut = false;
    bool bias = true;
    bool last_activation = true;
    double residual_scale = 1.0;
    Init init;
    ojson axes;  // the grid-axis values that made this cell, for labels

    int depth() const { return static_cast<int>(layer_sizes.size()) - 1; }
    int input_dim() const { return layer_sizes.front(); }
    int output_dim() const { return layer_sizes.back(); }
    // Uniform hidden width, or 0 when the hidden sizes differ (or there are none).
    int width() const;
    // Layer l (0-based) adds its input back when shortcut is on and shapes match.
    bool residual_at(int l) const { return shortcut && layer_sizes[l] == layer_sizes[l + 1]; }
    bool activation_at(int l) const { return l + 1 < depth() || last_activation; }
    std::string layer_sizes_label() const;  // "3-3-3-1"
    // The sizes in runs, "3x3-1" for 3-3-3-1 (results.csv, results.json's params):
    // at most about kMaxLayerSizesText characters, so output stays linear in depth.
    // A list longer than that in this form is cut: its first runs, "-...-", the
    // last size, then "(N sizes, fnv HEX)" with a 64-bit FNV-1a of the whole list.
    std::string layer_sizes_compact() const;
};

struct Spec {
    std::string name;
    std::string description;
    uint64_t seed_first = 0;
    uint64_t seed_count = 1;
    RngKind rng = RngKind::philox;
    uint32_t rng_key = 0;
    Precision precision = Precision::float32;
    InputSpec input;
    double target = 0.0;
    ojson raw;                       // the spec as written
    std::vector<std::string> axes;   // grid axis names in written order
    std::vector<Cell> cells;         // every combination, last axis fastest
    std::string hash;                // of the canonical spec text: identifies a sweep across shards

    uint64_t networks() const { return seed_count * cells.size(); }
};

// The spec as it runs: every default filled in (seeds, rng, rng_key, precision,
// every network key that is not a grid axis, init parameters, input, loss), grid
// axes as written except init values, which get their parameters too. It is
// itself a valid spec with the same cells (its spec_hash differs: that is of the
// text as written). results.json records it as "spec".
ojson resolved_spec_json(const Spec& spec);

// Parse + validate + expand. Throws SpecError on any problem.
Spec parse_spec_text(const std::string& text);
Spec load_spec_file(const std::string& path);

const char* rng_name(RngKind r);
const char* precision_name(Precision p);

}  // namespace gs
