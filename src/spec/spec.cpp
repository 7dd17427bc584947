// Spec parsing, validation and grid expansion. Every problem is reported as a
// SpecError naming the JSON path, before any work starts.
#include "gradsweep/spec.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec_keys.hpp"
#include "spec/spec_reader.hpp"

namespace gs {

namespace {

std::string type_name(const ojson& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number_integer()) return "an integer";
    if (v.is_number_float()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    return "an object";
}

// A value as it appears in a message: JSON, ASCII only, short.
std::string show(const ojson& v) {
    if (v.is_string()) return quote(v.get<std::string>());
    std::string s = v.dump(-1, ' ', true, ojson::error_handler_t::replace);
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
}

std::string got(const ojson& v) { return ", got " + type_name(v) + (v.is_null() ? "" : " " + show(v)); }

[[noreturn]] void fail(const std::string& path, const std::string& problem) { throw SpecError(path, problem); }

bool is_int(const ojson& v) { return v.is_number_integer(); }  // signed or unsigned
bool is_negative(const ojson& v) { return v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0; }

// An integer in [lo, hi]; `what` describes the accepted values for the type error.
uint64_t get_uint(const ojson& v, const std::string& path, uint64_t lo, uint64_t hi, const std::string& what) {
    if (!is_int(v)) fail(path, "expected " + what + got(v));
    if (is_negative(v) || v.get<uint64_t>() < lo) fail(path, "expected " + what + ", got " + show(v));
    if (v.get<uint64_t>() > hi) fail(path, "too large: " + show(v) + " (at most " + std::to_string(hi) + ")");
    return v.get<uint64_t>();
}

int get_positive_int(const ojson& v, const std::string& path, const std::string& what = "an integer >= 1") {
    return static_cast<int>(get_uint(v, path, 1, kMaxLayerSize, what));
}

bool get_bool(const ojson& v, const std::string& path) {
    if (!v.is_boolean()) fail(path, "expected true or false" + got(v));
    return v.get<bool>();
}

double get_finite(const ojson& v, const std::string& path) {
    if (!v.is_number()) fail(path, "expected a number" + got(v));
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(path, "expected a finite number, got " + show(v));
    return x;
}

// A float32 run computes with every number of the spec as a float: one beyond
// float's range would be inf before the first layer, and every network
// non-finite. Values that merely round (or underflow to 0) are what PyTorch's
// float32 tensors hold too.
bool beyond_precision(const Spec& spec, double x) {
    return spec.precision == Precision::float32 && std::isinf(static_cast<float>(x));
}
[[noreturn]] void fail_beyond_precision(const std::string& path, const std::string& what) {
    fail(path, what + " is beyond float32's range (magnitude at most 3.4028235e+38); use \"precision\": \"float64\"");
}

// A finite number that the run's precision can hold.
double get_value(const ojson& v, const std::string& path, const Spec& spec) {
    const double x = get_finite(v, path);
    if (beyond_precision(spec, x)) fail_beyond_precision(path, show(v));
    return x;
}

std::string get_string(const ojson& v, const std::string& path) {
    if (!v.is_string()) fail(path, "expected a string" + got(v));
    return v.get<std::string>();
}

template <size_t N>
int get_name(const ojson& v, const std::string& path, const char* const (&names)[N], const char* what) {
    const std::string s = get_string(v, path);
    for (size_t i = 0; i < N; ++i)
        if (s == names[i]) return static_cast<int>(i);
    std::vector<std::string> all(std::begin(names), std::end(names));
    fail(path, std::string("unknown ") + what + " " + quote(s) + suggestion(s, all) + " (one of: " + join(all) + ")");
}

const ojson& require_object(const ojson& v, const std::string& path) {
    if (!v.is_object()) fail(path, "expected an object" + got(v));
    return v;
}

void check_keys(const ojson& obj, const std::string& path, const std::vector<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
        const std::string hint = suggestion(it.key(), allowed);
        fail(join_path(path, it.key()), "unknown key" + (hint.empty() ? " (valid keys: " + join(allowed) + ")" : hint));
    }
}

std::vector<int> get_layer_sizes(const ojson& v, const std::string& path) {
    if (!v.is_array()) fail(path, "expected a list of layer sizes like [3, 3, 1]" + got(v));
    if (v.size() < 2) fail(path, "needs at least 2 sizes (input and output), got " + std::to_string(v.size()));
    if (v.size() > static_cast<size_t>(kMaxLayerSize) + 1)
        fail(path, "too many layers: " + std::to_string(v.size() - 1) + " (at most " + std::to_string(kMaxLayerSize) + ")");
    std::vector<int> sizes;
    sizes.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) sizes.push_back(get_positive_int(v[i], index_path(path, i)));
    return sizes;
}

Init get_init(const ojson& v, const std::string& path) {
    Init init;
    if (v.is_string()) {
        init.kind = static_cast<InitKind>(get_name(v, path, kInitNames, "init"));
        if (init.kind == InitKind::normal)
            fail(path, "init \"normal\" needs parameters: {\"kind\": \"normal\", \"sigma_w\": 1.0, \"sigma_b\": 0.0}");
        return init;
    }
    if (!v.is_object()) fail(path, "expected an init name or {\"kind\": \"normal\", \"sigma_w\": ..., \"sigma_b\": ...}" + got(v));
    check_keys(v, path, kInitKeys);
    if (!v.contains("kind")) fail(path, "missing \"kind\"");
    init.kind = static_cast<InitKind>(get_name(v["kind"], path + ".kind", kInitNames, "init"));
    if (init.kind != InitKind::normal) {
        if (v.size() > 1) fail(path, "only init \"normal\" takes sigma_w and sigma_b");
        return init;
    }
    if (v.contains("sigma_w")) init.sigma_w = get_finite(v["sigma_w"], path + ".sigma_w");
    if (v.contains("sigma_b")) init.sigma_b = get_finite(v["sigma_b"], path + ".sigma_b");
    if (init.sigma_w < 0) fail(path + ".sigma_w", "expected a number >= 0, got " + show(v["sigma_w"]));
    if (init.sigma_b < 0) fail(path + ".sigma_b", "expected a number >= 0, got " + show(v["sigma_b"]));
    return init;
}

constexpr int kDefaultOutputDim = 1;

// Network keys, in kNetworkKeys order: a cell's values are looked up by index.
enum Key : int { k_depth, k_width, k_layer_sizes, k_input_dim, k_output_dim, k_activation, k_leaky_slope, k_shortcut,
                 k_bias, k_last_activation, k_residual_scale, k_init, k_sigma_w, k_sigma_b, k_sigma_w2, k_sigma_b2,
                 kNumKeys };

// The normal init's parameters as network keys (so that they can be grid axes
// of their own): sigma_w / sigma_b as the init object writes them, or their
// squares sigma_w2 / sigma_b2 as the signal-propagation literature states them.
// Index 0 is the weight's, 1 the bias's.
constexpr int kSigmaStd[2] = {k_sigma_w, k_sigma_b};
constexpr int kSigmaVar[2] = {k_sigma_w2, k_sigma_b2};
constexpr const char* kSigmaInitKey[2] = {"sigma_w", "sigma_b"};

int key_index(const std::string& k) {
    return static_cast<int>(std::find(kNetworkKeys.begin(), kNetworkKeys.end(), k) - kNetworkKeys.begin());
}

// Checks one value of a network key (from "network" or one element of a grid axis).
void validate_network_value(int key, const ojson& v, const std::string& path) {
    switch (key) {
        case k_depth: case k_width: case k_output_dim: get_positive_int(v, path); break;
        case k_input_dim: if (!v.is_null()) get_positive_int(v, path, "null or an integer >= 1"); break;
        case k_layer_sizes: get_layer_sizes(v, path); break;
        case k_bias: case k_last_activation: case k_shortcut: get_bool(v, path); break;
        case k_leaky_slope: get_finite(v, path); break;
        case k_residual_scale:
            // A string names a scale that depends on the cell (only 1/sqrt(depth)
            // so far); anything else keeps the plain number's messages.
            if (v.is_string()) {
                if (v.get<std::string>() != kResidualScaleInvSqrtDepth)
                    fail(path, "unknown residual_scale " + quote(v.get<std::string>()) + " (a number, or \"" +
                                   kResidualScaleInvSqrtDepth + "\")");
            } else {
                get_finite(v, path);
            }
            break;
        case k_sigma_w: case k_sigma_b: case k_sigma_w2: case k_sigma_b2:
            if (get_finite(v, path) < 0) fail(path, "expected a number >= 0, got " + show(v));
            break;
        case k_init: get_init(v, path); break;
        case k_activation: get_name(v, path, kActivationNames, "activation"); break;
    }
}

// A value's identity for spotting repeats in a grid axis: numbers compare by
// value (2 and 2.0 are the same cell), objects regardless of key order.
std::string canonical(const ojson& v) {
    if (v.is_number()) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v.get<double>());
        return std::string(buf, r.ptr);
    }
    if (v.is_array()) {
        std::string s = "[";
        for (const auto& x : v) s += canonical(x) + ",";
        return s + "]";
    }
    if (v.is_object()) {
        std::map<std::string, std::string> sorted;
        for (auto it = v.begin(); it != v.end(); ++it) sorted[it.key()] = canonical(it.value());
        std::string s = "{";
        for (const auto& [k, x] : sorted) s += quote(k, 1000) + ":" + x + ",";
        return s + "}";
    }
    return v.dump(-1, ' ', true, ojson::error_handler_t::replace);
}

uint64_t fnv1a64(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

// One network key's value for a cell, and where it was written.
struct Located {
    const ojson* value = nullptr;
    const std::string* path = nullptr;
};
using CellValues = std::array<Located, kNumKeys>;

// Resolves one grid point into a network. Key-level conflicts (layer_sizes with
// depth, missing depth) were ruled out before; values were type-checked.
Cell resolve_cell(const CellValues& v, const Spec& spec) {
    Cell c;
    auto has = [&](int k) { return v[k].value != nullptr; };
    auto val = [&](int k) -> const ojson& { return *v[k].value; };
    auto path = [&](int k) -> const std::string& { return *v[k].path; };
    // Where layer size i came from, for messages.
    auto size_source = [&](size_t i) -> std::string {
        if (has(k_layer_sizes)) return index_path(path(k_layer_sizes), i);
        if (i == 0 && has(k_input_dim) && !val(k_input_dim).is_null()) return path(k_input_dim);
        if (i + 1 == c.layer_sizes.size())
            return has(k_output_dim) ? path(k_output_dim) : "network.output_dim (default " + std::to_string(kDefaultOutputDim) + ")";
        return path(k_width);
    };
    if (has(k_layer_sizes)) {
        c.layer_sizes = get_layer_sizes(val(k_layer_sizes), path(k_layer_sizes));
    } else {
        const int depth = get_positive_int(val(k_depth), path(k_depth));
        const int width = get_positive_int(val(k_width), path(k_width));
        c.given_width = width;
        int in = width;
        if (has(k_input_dim) && !val(k_input_dim).is_null()) in = get_positive_int(val(k_input_dim), path(k_input_dim));
        const int out = has(k_output_dim) ? get_positive_int(val(k_output_dim), path(k_output_dim)) : kDefaultOutputDim;
        c.layer_sizes.reserve(static_cast<size_t>(depth) + 1);
        c.layer_sizes.push_back(in);
        for (int l = 1; l < depth; ++l) c.layer_sizes.push_back(width);
        c.layer_sizes.push_back(out);
    }
    for (size_t l = 0; l + 1 < c.layer_sizes.size(); ++l) {
        const uint64_t weights = static_cast<uint64_t>(c.layer_sizes[l]) * static_cast<uint64_t>(c.layer_sizes[l + 1]);
        if (weights > kMaxTensorElements)
            fail(size_source(c.layer_sizes[l] >= c.layer_sizes[l + 1] ? l : l + 1),
                 "layer " + std::to_string(l) + " would have " + std::to_string(c.layer_sizes[l]) + " x " +
                     std::to_string(c.layer_sizes[l + 1]) + " = " + std::to_string(weights) + " weights (at most " +
                     std::to_string(kMaxTensorElements) + " per layer)");
    }
    if (has(k_activation)) c.activation = static_cast<Activation>(get_name(val(k_activation), path(k_activation), kActivationNames, "activation"));
    if (has(k_leaky_slope)) c.leaky_slope = get_value(val(k_leaky_slope), path(k_leaky_slope), spec);
    if (has(k_shortcut)) c.shortcut = get_bool(val(k_shortcut), path(k_shortcut));
    if (has(k_bias)) c.bias = get_bool(val(k_bias), path(k_bias));
    if (has(k_last_activation)) c.last_activation = get_bool(val(k_last_activation), path(k_last_activation));
    if (has(k_residual_scale)) {
        if (val(k_residual_scale).is_string())  // "1/sqrt(depth)", the only string validate_network_value lets through
            c.residual_scale = 1.0 / std::sqrt(static_cast<double>(c.depth()));
        else
            c.residual_scale = get_value(val(k_residual_scale), path(k_residual_scale), spec);
    }
    if (has(k_init)) c.init = get_init(val(k_init), path(k_init));
    // Where each of the normal init's parameters was written, for messages.
    std::string sigma_path[2], sigma_shown[2];
    if (has(k_init) && c.init.kind == InitKind::normal)
        for (int i = 0; i < 2; ++i)
            if (val(k_init).is_object() && val(k_init).contains(kSigmaInitKey[i])) {
                sigma_path[i] = path(k_init) + "." + kSigmaInitKey[i];
                sigma_shown[i] = show(val(k_init).at(kSigmaInitKey[i]));
            }
    for (int i = 0; i < 2; ++i) {
        const int k = has(kSigmaStd[i]) ? kSigmaStd[i] : has(kSigmaVar[i]) ? kSigmaVar[i] : -1;
        if (k < 0) continue;
        // Without an init the sigma keys choose the normal one (the only init
        // with parameters); any other init has nothing for them to set.
        if (!has(k_init)) c.init.kind = InitKind::normal;
        if (c.init.kind != InitKind::normal)
            fail(path(k_init), "init \"" + std::string(kInitNames[static_cast<int>(c.init.kind)]) + "\" takes no " +
                                   kSigmaInitKey[i] + ", but " + path(k) + " sets one (" + kNetworkKeys[k] +
                                   " goes with init {\"kind\": \"normal\"}, or with no init)");
        if (!sigma_path[i].empty())
            fail(path(k), "sets " + std::string(kSigmaInitKey[i]) + ", which " + sigma_path[i] + " sets too; give it in one place");
        const double x = val(k).get<double>();
        (i == 0 ? c.init.sigma_w : c.init.sigma_b) = k == kSigmaVar[i] ? std::sqrt(x) : x;
        sigma_path[i] = path(k);
        sigma_shown[i] = k == kSigmaVar[i] ? "sqrt(" + show(val(k)) + ")" : show(val(k));
    }
    if (c.init.kind == InitKind::normal) {  // the other inits' scales are at most sqrt(6)
        if (beyond_precision(spec, c.init.sigma_b)) fail_beyond_precision(sigma_path[1], sigma_shown[1]);
        for (size_t l = 0; l + 1 < c.layer_sizes.size(); ++l)
            if (beyond_precision(spec, weight_dist(c.init, c.layer_sizes[l], c.layer_sizes[l + 1]).scale))
                fail_beyond_precision(sigma_path[0], sigma_shown[0] + " / sqrt(fan_in " + std::to_string(c.layer_sizes[l]) + ")");
    }
    if (spec.rng == RngKind::torch && c.init.kind != InitKind::torch_default)
        fail(has(k_init) ? path(k_init) : "rng", "rng \"torch\" reproduces nn.Linear's default init only; use init \"torch_default\"");
    if (spec.input.random) {
        const uint64_t n = static_cast<uint64_t>(spec.input.batch) * static_cast<uint64_t>(c.input_dim());
        if (n > kMaxTensorElements)
            fail("input.batch", "batch " + std::to_string(spec.input.batch) + " x input size " + std::to_string(c.input_dim()) +
                                    " = " + std::to_string(n) + " input values (at most " + std::to_string(kMaxTensorElements) + ")");
    } else {
        const auto& rows = spec.input.values;
        for (size_t r = 0; r < rows.size(); ++r)
            if (static_cast<int>(rows[r].size()) != c.input_dim())
                fail(index_path("input.values", r), "has " + std::to_string(rows[r].size()) + " values, but " + size_source(0) +
                                                         " makes the first layer take " + std::to_string(c.input_dim()));
    }
    return c;
}

void parse_seeds(const ojson& root, Spec& spec) {
    if (!root.contains("seeds")) return;
    const auto& s = require_object(root["seeds"], "seeds");
    check_keys(s, "seeds", kSeedsKeys);
    if (s.contains("count")) spec.seed_count = get_uint(s["count"], "seeds.count", 1, kMaxSeedCount, "an integer >= 1");
    if (s.contains("first"))
        spec.seed_first = get_uint(s["first"], "seeds.first", 0, std::numeric_limits<uint64_t>::max(), "an integer >= 0");
    // Seeds are first, ..., first + count - 1, all 64-bit: first + count may reach 2^64 (seed 2^64 - 1 is usable).
    if (spec.seed_count - 1 > std::numeric_limits<uint64_t>::max() - spec.seed_first)
        fail("seeds.first", "first + count must be at most 2^64 (the last seed, first + count - 1, at most 18446744073709551615)");
}

void parse_input(const ojson& root, Spec& spec) {
    if (!root.contains("input")) return;
    const auto& in = require_object(root["input"], "input");
    check_keys(in, "input", kInputKeys);
    if (in.contains("values")) {
        if (in.contains("distribution") || in.contains("batch"))
            fail("input", "give either \"values\" or \"distribution\" (+ \"batch\"), not both");
        const auto& rows = in["values"];
        if (!rows.is_array()) fail("input.values", "expected a list of rows like [[1.0, 0.0, -1.0]]" + got(rows));
        if (rows.empty()) fail("input.values", "expected a non-empty list of rows like [[1.0, 0.0, -1.0]]");
        if (rows.size() > static_cast<size_t>(kMaxLayerSize))
            fail("input.values", "too many rows: " + std::to_string(rows.size()) + " (at most " + std::to_string(kMaxLayerSize) + ")");
        spec.input.random = false;
        for (size_t r = 0; r < rows.size(); ++r) {
            const std::string rp = index_path("input.values", r);
            if (!rows[r].is_array()) fail(rp, "expected a row (a list of numbers)" + got(rows[r]));
            if (rows[r].empty()) fail(rp, "expected a non-empty list of numbers");
            std::vector<double> row;
            row.reserve(rows[r].size());
            for (size_t j = 0; j < rows[r].size(); ++j) row.push_back(get_value(rows[r][j], index_path(rp, j), spec));
            spec.input.values.push_back(std::move(row));
        }
        spec.input.batch = static_cast<int>(rows.size());
    } else {
        if (!in.contains("distribution")) fail("input", "give \"values\" or \"distribution\": \"normal\"");
        const std::string d = get_string(in["distribution"], "input.distribution");
        if (d != "normal") fail("input.distribution", "unknown distribution " + quote(d) + " (only \"normal\")");
        if (in.contains("batch")) spec.input.batch = get_positive_int(in["batch"], "input.batch");
    }
}

void parse_loss(const ojson& root, Spec& spec) {
    if (!root.contains("loss")) return;
    const auto& l = require_object(root["loss"], "loss");
    check_keys(l, "loss", kLossKeys);
    if (l.contains("kind")) {
        const std::string k = get_string(l["kind"], "loss.kind");
        if (k != "mse") fail("loss.kind", "unknown loss " + quote(k) + " (only \"mse\")");
    }
    if (l.contains("target")) spec.target = get_value(l["target"], "loss.target", spec);
}

struct Axis {
    int key;
    const ojson* values;
    std::vector<std::string> paths;  // "grid.width[0]", ...
};

// The network and grid sections: every value type-checked, the axes in written
// order, and key-level conflicts ruled out, before anything is expanded.
void parse_network_and_grid(const ojson& root, Spec& spec, CellValues& base, std::vector<std::string>& base_paths,
                            std::vector<Axis>& axes) {
    static const ojson empty = ojson::object();
    const ojson& network = root.contains("network") ? require_object(root["network"], "network") : empty;
    check_keys(network, "network", kNetworkKeys);
    base_paths.resize(kNumKeys);
    for (auto it = network.begin(); it != network.end(); ++it) {
        const int k = key_index(it.key());
        base_paths[k] = "network." + it.key();
        validate_network_value(k, it.value(), base_paths[k]);
        base[k] = Located{&it.value(), &base_paths[k]};
    }
    const ojson& grid = root.contains("grid") ? require_object(root["grid"], "grid") : empty;
    check_keys(grid, "grid", kNetworkKeys);
    uint64_t cells = 1;
    for (auto it = grid.begin(); it != grid.end(); ++it) {
        const std::string path = "grid." + it.key();
        if (network.contains(it.key())) fail(path, "is also set in network." + it.key() + "; give it in one place");
        if (!it.value().is_array()) fail(path, "expected a list of values (a grid axis)" + got(it.value()));
        if (it.value().empty()) fail(path, "empty axis: give at least one value");
        cells = it.value().size() > kMaxCells ? kMaxCells + 1 : cells * it.value().size();
        if (cells > kMaxCells) fail("grid", "more than " + std::to_string(kMaxCells) + " cells; split the sweep into several specs");
        Axis a{key_index(it.key()), &it.value(), {}};
        std::map<std::string, size_t> seen;
        for (size_t i = 0; i < it.value().size(); ++i) {
            a.paths.push_back(index_path(path, i));
            validate_network_value(a.key, it.value()[i], a.paths.back());
            const auto [where, fresh] = seen.emplace(canonical(it.value()[i]), i);
            if (!fresh) fail(a.paths.back(), "repeats " + a.paths[where->second] + "; each axis value must differ");
        }
        axes.push_back(std::move(a));
        spec.axes.push_back(it.key());
    }
    // Key-level rules, checked once rather than per cell.
    auto where = [&](int k) -> std::string {
        return base[k].value ? *base[k].path : "grid." + kNetworkKeys[k];
    };
    auto given = [&](int k) {
        return base[k].value != nullptr ||
               std::any_of(axes.begin(), axes.end(), [&](const Axis& a) { return a.key == k; });
    };
    for (int i = 0; i < 2; ++i)
        if (given(kSigmaStd[i]) && given(kSigmaVar[i]))
            fail(where(kSigmaVar[i]), "cannot be combined with " + kNetworkKeys[kSigmaStd[i]] + " (" + where(kSigmaStd[i]) +
                                          "): give the scale or its square, not both");
    if (given(k_layer_sizes)) {
        for (int k : {k_depth, k_width, k_input_dim, k_output_dim})
            if (given(k)) fail(where(k), "cannot be combined with layer_sizes (" + where(k_layer_sizes) + ")");
    } else if (!given(k_depth) || !given(k_width)) {
        fail(given(k_depth) ? "network.width" : "network.depth", "missing: give depth and width (in network or grid), or layer_sizes");
    }
}

uint64_t bits_of(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

// Everything that identifies a cell in the results (cell_params): doubles by
// their bits, as they are written ("-0" is not "0"). Cells that differ only in
// how a value is written (input_dim null or the width itself; "kaiming_normal"
// or {"kind": "kaiming_normal"}) have the same settings; cells whose settings
// differ in a value the network ignores (the width of depth 1, leaky_slope of
// relu) do not.
bool same_settings(const Cell& a, const Cell& b) {
    return a.layer_sizes == b.layer_sizes && a.given_width == b.given_width && a.activation == b.activation &&
           bits_of(a.leaky_slope) == bits_of(b.leaky_slope) &&
           a.shortcut == b.shortcut && a.bias == b.bias && a.last_activation == b.last_activation &&
           bits_of(a.residual_scale) == bits_of(b.residual_scale) && a.init.kind == b.init.kind &&
           bits_of(a.init.sigma_w) == bits_of(b.init.sigma_w) && bits_of(a.init.sigma_b) == bits_of(b.init.sigma_b);
}

uint64_t settings_hash(const Cell& c) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t x) {
        for (int i = 0; i < 8; ++i, x >>= 8) {
            h ^= x & 0xff;
            h *= 1099511628211ull;
        }
    };
    for (int x : c.layer_sizes) mix(static_cast<uint64_t>(x));
    mix(static_cast<uint64_t>(c.given_width));
    mix(static_cast<uint64_t>(c.activation));
    mix(bits_of(c.leaky_slope));
    mix(static_cast<uint64_t>(c.shortcut) | static_cast<uint64_t>(c.bias) << 1 | static_cast<uint64_t>(c.last_activation) << 2);
    mix(bits_of(c.residual_scale));
    mix(static_cast<uint64_t>(c.init.kind));
    mix(bits_of(c.init.sigma_w));
    mix(bits_of(c.init.sigma_b));
    return h;
}

// -0.0 is the number 0 wherever a spec holds a number: as an axis value it
// repeats 0 (like 2 and 2.0), and no output (params, CSV, hash) ever shows "-0".
// It changes no statistic: only the sign of some zero results could differ.
void zero_negative_zeros(ojson& v) {
    if (v.is_number_float()) {
        if (v.get<double>() == 0.0) v = 0.0;
    } else if (v.is_structured()) {
        for (auto& x : v) zero_negative_zeros(x);
    }
}

}  // namespace

int Cell::width() const {
    if (layer_sizes.size() < 3) return 0;
    for (size_t i = 2; i + 1 < layer_sizes.size(); ++i)
        if (layer_sizes[i] != layer_sizes[1]) return 0;
    return layer_sizes[1];
}

namespace {

// Sizes in runs: "3x5-1" is 3, 3, 3, 3, 3, 1 (a size repeated n >= 2 times is
// written SIZExn; sizes are separated by '-').
void append_runs(std::string& s, std::vector<int>::const_iterator begin, std::vector<int>::const_iterator end,
                 size_t stop_at) {
    for (auto it = begin; it != end && s.size() < stop_at;) {
        auto run_end = it;
        while (run_end != end && *run_end == *it) ++run_end;
        if (!s.empty() && s.back() != '-') s += '-';
        s += std::to_string(*it);
        if (run_end - it > 1) {
            s += 'x';
            s += std::to_string(run_end - it);
        }
        it = run_end;
    }
}

}  // namespace

std::string Cell::layer_sizes_compact() const {
    std::string s;
    append_runs(s, layer_sizes.begin(), layer_sizes.end(), std::string::npos);
    if (s.size() <= kMaxLayerSizesText) return s;
    // A long list without long runs: its start, its last size and a fingerprint
    // of the whole list, so that each row of results.csv stays short while two
    // different lists still read differently (results.json has every layer).
    std::string head;
    append_runs(head, layer_sizes.begin(), layer_sizes.end(), kMaxLayerSizesText / 2);
    uint64_t h = 1469598103934665603ull;
    for (int x : layer_sizes)
        for (int b = 0; b < 4; ++b) {
            h ^= static_cast<uint32_t>(x) >> (8 * b) & 0xffu;
            h *= 1099511628211ull;
        }
    char fp[17];
    std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(h));
    return head + "-...-" + std::to_string(layer_sizes.back()) + "(" + std::to_string(layer_sizes.size()) + " sizes, fnv " +
           fp + ")";
}

std::string Cell::layer_sizes_label() const {
    std::string s;
    for (size_t i = 0; i < layer_sizes.size(); ++i) {
        if (i) s += '-';
        s += std::to_string(layer_sizes[i]);
    }
    return s;
}

std::string init_label(const Init& init) {
    if (init.kind != InitKind::normal) return kInitNames[static_cast<int>(init.kind)];
    // Shortest round-trip text, so two different sigmas never share a label.
    auto num = [](double x) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, x);
        return std::string(buf, r.ptr);
    };
    return "normal(sigma_w=" + num(init.sigma_w) + ",sigma_b=" + num(init.sigma_b) + ")";
}

const char* rng_name(RngKind r) { return r == RngKind::torch ? "torch" : "philox"; }
const char* precision_name(Precision p) { return p == Precision::float64 ? "float64" : "float32"; }

Spec parse_spec_text(const std::string& text) {
    ojson root = read_spec_json(text);
    zero_negative_zeros(root);
    if (!root.is_object()) fail("(top level)", "expected an object like {\"grid\": ..., \"network\": ...}" + got(root));
    check_keys(root, "", kTopKeys);

    Spec spec;
    spec.raw = root;
    spec.name = root.contains("name") ? get_string(root["name"], "name") : "sweep";
    if (spec.name.size() > kMaxNameBytes)
        fail("name", "too long: " + std::to_string(spec.name.size()) + " bytes (at most " + std::to_string(kMaxNameBytes) +
                         "; it is repeated on every row of results.csv)");
    if (root.contains("description")) spec.description = get_string(root["description"], "description");
    parse_seeds(root, spec);
    if (root.contains("rng")) spec.rng = static_cast<RngKind>(get_name(root["rng"], "rng", kRngNames, "rng"));
    if (root.contains("rng_key"))
        spec.rng_key = static_cast<uint32_t>(get_uint(root["rng_key"], "rng_key", 0, 0xffffffffull, "an integer in [0, 4294967295]"));
    if (root.contains("precision"))
        spec.precision = static_cast<Precision>(get_name(root["precision"], "precision", kPrecisionNames, "precision"));
    parse_input(root, spec);
    parse_loss(root, spec);

    // Network values and grid axes: any network key may be an axis, never both.
    CellValues base{};
    std::vector<std::string> base_paths;
    std::vector<Axis> axes;
    parse_network_and_grid(root, spec, base, base_paths, axes);

    // Expand: last axis varies fastest.
    uint64_t total = 1, layers = 0;
    for (const Axis& a : axes) total *= a.values->size();
    spec.cells.reserve(total);
    std::vector<size_t> idx(axes.size(), 0);
    std::unordered_multimap<uint64_t, int> seen;  // settings_hash -> cell
    for (uint64_t n = 0; n < total; ++n) {
        CellValues values = base;
        ojson labels = ojson::object();
        for (size_t a = 0; a < axes.size(); ++a) {
            const ojson& v = (*axes[a].values)[idx[a]];
            values[axes[a].key] = Located{&v, &axes[a].paths[idx[a]]};
            labels[kNetworkKeys[axes[a].key]] = v;
        }
        Cell c = resolve_cell(values, spec);
        layers += static_cast<uint64_t>(c.depth());
        if (layers > kMaxTotalLayers)
            fail("grid", "the cells have more than " + std::to_string(kMaxTotalLayers) + " layers in total; split the sweep into several specs");
        c.index = static_cast<int>(n);
        c.axes = std::move(labels);
        // Two cells with the same settings would be indistinguishable in the results.
        const uint64_t h = settings_hash(c);
        const auto [first, last] = seen.equal_range(h);
        for (auto it = first; it != last; ++it) {
            const Cell& other = spec.cells[static_cast<size_t>(it->second)];
            if (!same_settings(other, c)) continue;
            auto shown = [](const ojson& v) {
                std::string t = v.dump(-1, ' ', true, ojson::error_handler_t::replace);
                return t.size() > 80 ? t.substr(0, 77) + "..." : t;
            };
            fail("grid", "cells " + std::to_string(other.index) + " " + shown(other.axes) + " and " + std::to_string(c.index) + " " +
                             shown(c.axes) + " are the same network; keep one of the values");
        }
        seen.emplace(h, c.index);
        spec.cells.push_back(std::move(c));
        for (size_t a = axes.size(); a-- > 0;) {
            if (++idx[a] < axes[a].values->size()) break;
            idx[a] = 0;
        }
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(root.dump())));
    spec.hash = buf;
    return spec;
}

namespace {

// An init value with every parameter it takes: a name, or the normal init's
// object with sigma_w and sigma_b, less those that network keys (sigma_w,
// sigma_w2, ...) set instead (set twice, they would be refused).
ojson resolved_init(const Init& init, const bool keyed[2] = nullptr) {
    if (init.kind != InitKind::normal) return kInitNames[static_cast<int>(init.kind)];
    ojson j{{"kind", "normal"}};
    if (!keyed || !keyed[0]) j["sigma_w"] = init.sigma_w;
    if (!keyed || !keyed[1]) j["sigma_b"] = init.sigma_b;
    return j;
}

}  // namespace

ojson resolved_spec_json(const Spec& spec) {
    static const ojson empty = ojson::object();
    const ojson& raw = spec.raw;
    const ojson& grid = raw.contains("grid") ? raw["grid"] : empty;
    const ojson& network = raw.contains("network") ? raw["network"] : empty;
    ojson r = ojson::object();
    r["name"] = spec.name;
    if (raw.contains("description")) r["description"] = spec.description;
    r["seeds"] = ojson{{"count", spec.seed_count}, {"first", spec.seed_first}};
    r["rng"] = rng_name(spec.rng);
    r["rng_key"] = spec.rng_key;
    r["precision"] = precision_name(spec.precision);
    auto given = [&](int k) { return grid.contains(kNetworkKeys[k]) || network.contains(kNetworkKeys[k]); };
    const bool keyed[2] = {given(k_sigma_w) || given(k_sigma_w2), given(k_sigma_b) || given(k_sigma_b2)};
    ojson g = ojson::object();
    for (auto it = grid.begin(); it != grid.end(); ++it) {
        if (it.key() != "init") {
            g[it.key()] = it.value();
            continue;
        }
        ojson inits = ojson::array();
        for (const ojson& v : it.value()) inits.push_back(resolved_init(get_init(v, "grid.init"), keyed));
        g["init"] = std::move(inits);
    }
    r["grid"] = std::move(g);
    // Every network key that is not an axis: as written, or its default (a
    // default-constructed Cell holds them). depth/width/input_dim/output_dim and
    // layer_sizes exclude each other; the form given decides which appear.
    const Cell d;
    const bool by_sizes = network.contains("layer_sizes") || grid.contains("layer_sizes");
    ojson n = ojson::object();
    for (int k = 0; k < kNumKeys; ++k) {
        const std::string& key = kNetworkKeys[k];
        if (grid.contains(key)) continue;
        if (k == k_init) {
            Init init = network.contains(key) ? get_init(network[key], "network.init") : d.init;
            if (!network.contains(key) && (keyed[0] || keyed[1])) init = Init{InitKind::normal};  // the sigma keys' choice
            n[key] = resolved_init(init, keyed);
            continue;
        }
        if (network.contains(key)) {
            n[key] = network[key];
            continue;
        }
        switch (k) {
            case k_input_dim: if (!by_sizes) n[key] = nullptr; break;  // null: the width
            case k_output_dim: if (!by_sizes) n[key] = kDefaultOutputDim; break;
            case k_activation: n[key] = kActivationNames[static_cast<int>(d.activation)]; break;
            case k_leaky_slope: n[key] = d.leaky_slope; break;
            case k_shortcut: n[key] = d.shortcut; break;
            case k_bias: n[key] = d.bias; break;
            case k_last_activation: n[key] = d.last_activation; break;
            case k_residual_scale: n[key] = d.residual_scale; break;
            default: break;  // depth, width, layer_sizes: required, never defaulted; the sigma keys: optional, the init holds their defaults
        }
    }
    r["network"] = std::move(n);
    if (spec.input.random) r["input"] = ojson{{"distribution", "normal"}, {"batch", spec.input.batch}};
    else r["input"] = ojson{{"values", raw["input"]["values"]}};
    r["loss"] = ojson{{"kind", "mse"}, {"target", spec.target}};
    return r;
}

Spec load_spec_file(const std::string& path) {
    // Opened without blocking and checked on the descriptor: a FIFO with no writer
    // would block open() and read() forever, and a device (/dev/zero) is endless.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        struct stat st{};
        if (errno == EISDIR || (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
            fail("", "cannot read spec file: it is a directory");
        fail("", "cannot read spec file: " + std::string(std::strerror(errno)));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0) fail("", "cannot read spec file: " + std::string(std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) fail("", "cannot read spec file: it is a directory");
    if (!S_ISREG(st.st_mode)) {
        const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)" : S_ISCHR(st.st_mode) ? "a character device"
                           : S_ISBLK(st.st_mode) ? "a block device" : S_ISSOCK(st.st_mode) ? "a socket" : "not a file";
        fail("", std::string("cannot read spec file: it is ") + kind + ", not a regular file");
    }
    // Read at most one byte past the limit: a huge file is refused, not slurped.
    std::string text;
    char chunk[65536];
    while (text.size() <= kMaxSpecBytes) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("", "cannot read spec file: " + std::string(std::strerror(errno)));
        if (n == 0) break;
        text.append(chunk, static_cast<size_t>(n));
    }
    return parse_spec_text(text);
}

}  // namespace gs
