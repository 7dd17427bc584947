// Spec parsing, validation and grid expansion. Every problem is reported as a
// SpecError naming the JSON path, before any work starts.
#include "gradsweep/spec.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "spec_keys.hpp"

namespace gs {

namespace {

std::string type_name(const ojson& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
    if (v.is_number_float()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_array()) return "an array";
    return "an object";
}

std::string show(const ojson& v) {
    std::string s = v.dump();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
}

[[noreturn]] void fail(const std::string& path, const std::string& problem) { throw SpecError(path, problem); }

int get_positive_int(const ojson& v, const std::string& path, const char* what = "an integer >= 1") {
    if (!(v.is_number_integer() || v.is_number_unsigned())) fail(path, std::string("expected ") + what + ", got " + type_name(v) + " " + show(v));
    if (v.is_number_unsigned() ? v.get<uint64_t>() > 1u << 20 : v.get<int64_t>() > (1 << 20))
        fail(path, std::string("expected ") + what + " (at most 1048576), got " + show(v));
    const int64_t x = v.get<int64_t>();
    if (x < 1) fail(path, std::string("expected ") + what + ", got " + show(v));
    return static_cast<int>(x);
}

bool get_bool(const ojson& v, const std::string& path) {
    if (!v.is_boolean()) fail(path, "expected true or false, got " + type_name(v) + " " + show(v));
    return v.get<bool>();
}

double get_finite(const ojson& v, const std::string& path) {
    if (!v.is_number()) fail(path, "expected a number, got " + type_name(v) + " " + show(v));
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(path, "expected a finite number, got " + show(v));
    return x;
}

std::string get_string(const ojson& v, const std::string& path) {
    if (!v.is_string()) fail(path, "expected a string, got " + type_name(v) + " " + show(v));
    return v.get<std::string>();
}

template <size_t N>
int get_name(const ojson& v, const std::string& path, const char* const (&names)[N], const char* what) {
    const std::string s = get_string(v, path);
    for (size_t i = 0; i < N; ++i)
        if (s == names[i]) return static_cast<int>(i);
    std::vector<std::string> all(std::begin(names), std::end(names));
    fail(path, std::string("unknown ") + what + " \"" + s + "\"" + suggestion(s, all) + " (one of: " + join(all) + ")");
}

void check_keys(const ojson& obj, const std::string& path, const std::vector<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
            fail(join_path(path, it.key()), "unknown key" + suggestion(it.key(), allowed));
    }
}

const ojson& require_object(const ojson& v, const std::string& path) {
    if (!v.is_object()) fail(path, "expected an object, got " + type_name(v) + " " + show(v));
    return v;
}

std::vector<int> get_layer_sizes(const ojson& v, const std::string& path) {
    if (!v.is_array()) fail(path, "expected a list of layer sizes like [3, 3, 1], got " + type_name(v));
    if (v.size() < 2) fail(path, "needs at least 2 sizes (input and output), got " + std::to_string(v.size()));
    std::vector<int> sizes;
    for (size_t i = 0; i < v.size(); ++i) sizes.push_back(get_positive_int(v[i], path + "[" + std::to_string(i) + "]"));
    return sizes;
}

Init get_init(const ojson& v, const std::string& path) {
    Init init;
    if (v.is_string()) {
        init.kind = static_cast<InitKind>(get_name(v, path, kInitNames, "init"));
        if (init.kind == InitKind::normal) fail(path, "init \"normal\" needs parameters: {\"kind\": \"normal\", \"sigma_w\": 1.0, \"sigma_b\": 0.0}");
        return init;
    }
    if (!v.is_object()) fail(path, "expected an init name or {\"kind\": \"normal\", \"sigma_w\": ..., \"sigma_b\": ...}, got " + type_name(v));
    check_keys(v, path, {"kind", "sigma_w", "sigma_b"});
    if (!v.contains("kind")) fail(path, "missing \"kind\"");
    init.kind = static_cast<InitKind>(get_name(v["kind"], path + ".kind", kInitNames, "init"));
    if (init.kind != InitKind::normal) {
        if (v.size() > 1) fail(path, "only init \"normal\" takes sigma_w/sigma_b");
        return init;
    }
    if (v.contains("sigma_w")) init.sigma_w = get_finite(v["sigma_w"], path + ".sigma_w");
    if (v.contains("sigma_b")) init.sigma_b = get_finite(v["sigma_b"], path + ".sigma_b");
    if (init.sigma_w < 0) fail(path + ".sigma_w", "must be >= 0");
    if (init.sigma_b < 0) fail(path + ".sigma_b", "must be >= 0");
    return init;
}

// Checks one value of a network key (from "network" or one element of a grid axis).
void validate_network_value(const std::string& key, const ojson& v, const std::string& path) {
    if (key == "depth" || key == "width" || key == "output_dim") get_positive_int(v, path);
    else if (key == "input_dim") { if (!v.is_null()) get_positive_int(v, path, "null or an integer >= 1"); }
    else if (key == "layer_sizes") get_layer_sizes(v, path);
    else if (key == "bias" || key == "last_activation" || key == "shortcut") get_bool(v, path);
    else if (key == "residual_scale" || key == "leaky_slope") get_finite(v, path);
    else if (key == "init") get_init(v, path);
    else if (key == "activation") get_name(v, path, kActivationNames, "activation");
}

uint64_t fnv1a64(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

struct Located {
    const ojson* value;
    std::string path;
};

Cell resolve_cell(const std::map<std::string, Located>& v, const Spec& spec) {
    Cell c;
    auto has = [&](const char* k) { return v.count(k) > 0; };
    auto at = [&](const char* k) -> const Located& { return v.at(k); };
    if (has("layer_sizes")) {
        for (const char* k : {"depth", "width", "input_dim", "output_dim"})
            if (has(k)) fail(at(k).path, std::string("cannot be combined with layer_sizes (") + at("layer_sizes").path + ")");
        c.layer_sizes = get_layer_sizes(*at("layer_sizes").value, at("layer_sizes").path);
    } else {
        if (!has("depth") || !has("width"))
            fail(has("depth") ? "network.width" : "network.depth", "missing: give depth and width (in network or grid), or layer_sizes");
        const int depth = get_positive_int(*at("depth").value, at("depth").path);
        const int width = get_positive_int(*at("width").value, at("width").path);
        int in = width;
        if (has("input_dim") && !at("input_dim").value->is_null()) in = get_positive_int(*at("input_dim").value, at("input_dim").path);
        const int out = has("output_dim") ? get_positive_int(*at("output_dim").value, at("output_dim").path) : 1;
        c.layer_sizes.push_back(in);
        for (int l = 1; l < depth; ++l) c.layer_sizes.push_back(width);
        c.layer_sizes.push_back(out);
    }
    if (has("activation")) c.activation = static_cast<Activation>(get_name(*at("activation").value, at("activation").path, kActivationNames, "activation"));
    if (has("leaky_slope")) c.leaky_slope = get_finite(*at("leaky_slope").value, at("leaky_slope").path);
    if (has("shortcut")) c.shortcut = get_bool(*at("shortcut").value, at("shortcut").path);
    if (has("bias")) c.bias = get_bool(*at("bias").value, at("bias").path);
    if (has("last_activation")) c.last_activation = get_bool(*at("last_activation").value, at("last_activation").path);
    if (has("residual_scale")) c.residual_scale = get_finite(*at("residual_scale").value, at("residual_scale").path);
    if (has("init")) c.init = get_init(*at("init").value, at("init").path);
    if (spec.rng == RngKind::torch && c.init.kind != InitKind::torch_default)
        fail(has("init") ? at("init").path : "rng", "rng \"torch\" reproduces nn.Linear's default init only; use init \"torch_default\"");
    if (!spec.input.random) {
        const auto& rows = spec.input.values;
        for (size_t r = 0; r < rows.size(); ++r)
            if (static_cast<int>(rows[r].size()) != c.input_dim())
                fail("input.values[" + std::to_string(r) + "]", "has " + std::to_string(rows[r].size()) +
                     " values but the first layer takes " + std::to_string(c.input_dim()) + " inputs (layer_sizes " + c.layer_sizes_label() + ")");
    }
    return c;
}

}  // namespace

int Cell::width() const {
    if (layer_sizes.size() < 3) return 0;
    for (size_t i = 2; i + 1 < layer_sizes.size(); ++i)
        if (layer_sizes[i] != layer_sizes[1]) return 0;
    return layer_sizes[1];
}

std::string Cell::layer_sizes_label() const {
    std::string s;
    for (size_t i = 0; i < layer_sizes.size(); ++i) s += (i ? "-" : "") + std::to_string(layer_sizes[i]);
    return s;
}

std::string init_label(const Init& init) {
    if (init.kind != InitKind::normal) return kInitNames[static_cast<int>(init.kind)];
    std::ostringstream o;
    o << "normal(sigma_w=" << init.sigma_w << ",sigma_b=" << init.sigma_b << ")";
    return o.str();
}

const char* rng_name(RngKind r) { return r == RngKind::torch ? "torch" : "philox"; }
const char* precision_name(Precision p) { return p == Precision::float64 ? "float64" : "float32"; }

Spec parse_spec_text(const std::string& text) {
    ojson root;
    try {
        root = ojson::parse(text);
    } catch (const ojson::parse_error& e) {
        // nlohmann reports a byte offset; users want line and column.
        size_t line = 1, col = 1;
        for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
            if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
        }
        std::string what = e.what();
        const auto p = what.find("syntax error");
        fail("", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                     (p == std::string::npos ? what : what.substr(p)));
    }
    require_object(root, "(top level)");
    check_keys(root, "", kTopKeys);

    Spec spec;
    spec.raw = root;
    spec.name = root.contains("name") ? get_string(root["name"], "name") : "sweep";
    if (root.contains("description")) spec.description = get_string(root["description"], "description");
    if (root.contains("seeds")) {
        const auto& s = require_object(root["seeds"], "seeds");
        check_keys(s, "seeds", {"count", "first"});
        if (s.contains("count")) {
            const auto& c = s["count"];
            if (!(c.is_number_integer() || c.is_number_unsigned()) || (c.is_number_integer() && c.get<int64_t>() < 1))
                fail("seeds.count", "expected an integer >= 1, got " + show(c));
            spec.seed_count = c.get<uint64_t>();
        }
        if (s.contains("first")) {
            const auto& f = s["first"];
            if (!(f.is_number_integer() || f.is_number_unsigned()) || (f.is_number_integer() && f.get<int64_t>() < 0))
                fail("seeds.first", "expected an integer >= 0, got " + show(f));
            spec.seed_first = f.get<uint64_t>();
        }
        if (spec.seed_first > std::numeric_limits<uint64_t>::max() - spec.seed_count)
            fail("seeds", "first + count overflows 64 bits");
    }
    if (root.contains("rng")) spec.rng = static_cast<RngKind>(get_name(root["rng"], "rng", kRngNames, "rng"));
    if (root.contains("rng_key")) {
        const auto& k = root["rng_key"];
        if (!(k.is_number_unsigned() || (k.is_number_integer() && k.get<int64_t>() >= 0)) || k.get<uint64_t>() > 0xffffffffull)
            fail("rng_key", "expected an integer in [0, 4294967295], got " + show(k));
        spec.rng_key = static_cast<uint32_t>(k.get<uint64_t>());
    }
    if (root.contains("precision")) spec.precision = static_cast<Precision>(get_name(root["precision"], "precision", kPrecisionNames, "precision"));

    if (root.contains("input")) {
        const auto& in = require_object(root["input"], "input");
        check_keys(in, "input", {"values", "distribution", "batch"});
        if (in.contains("values")) {
            if (in.contains("distribution") || in.contains("batch"))
                fail("input", "give either \"values\" or \"distribution\" (+ \"batch\"), not both");
            const auto& rows = in["values"];
            if (!rows.is_array() || rows.empty()) fail("input.values", "expected a non-empty list of rows, e.g. [[1.0, 0.0, -1.0]]");
            spec.input.random = false;
            for (size_t r = 0; r < rows.size(); ++r) {
                const std::string rp = "input.values[" + std::to_string(r) + "]";
                if (!rows[r].is_array() || rows[r].empty()) fail(rp, "expected a non-empty list of numbers");
                std::vector<double> row;
                for (size_t j = 0; j < rows[r].size(); ++j) row.push_back(get_finite(rows[r][j], rp + "[" + std::to_string(j) + "]"));
                spec.input.values.push_back(std::move(row));
            }
            spec.input.batch = static_cast<int>(rows.size());
        } else {
            if (!in.contains("distribution")) fail("input", "give \"values\" or \"distribution\": \"normal\"");
            if (get_string(in["distribution"], "input.distribution") != "normal")
                fail("input.distribution", "unknown distribution \"" + in["distribution"].get<std::string>() + "\" (only \"normal\")");
            if (in.contains("batch")) spec.input.batch = get_positive_int(in["batch"], "input.batch");
        }
    }
    if (root.contains("loss")) {
        const auto& l = require_object(root["loss"], "loss");
        check_keys(l, "loss", {"kind", "target"});
        if (l.contains("kind") && get_string(l["kind"], "loss.kind") != "mse")
            fail("loss.kind", "unknown loss \"" + l["kind"].get<std::string>() + "\" (only \"mse\")");
        if (l.contains("target")) spec.target = get_finite(l["target"], "loss.target");
    }

    // Network values and grid axes: any network key may be an axis, never both.
    std::map<std::string, Located> base;
    ojson empty = ojson::object();
    const ojson& network = root.contains("network") ? require_object(root["network"], "network") : empty;
    check_keys(network, "network", kNetworkKeys);
    for (auto it = network.begin(); it != network.end(); ++it) {
        const std::string path = "network." + it.key();
        validate_network_value(it.key(), it.value(), path);
        base[it.key()] = Located{&it.value(), path};
    }
    const ojson& grid = root.contains("grid") ? require_object(root["grid"], "grid") : empty;
    check_keys(grid, "grid", kNetworkKeys);
    std::vector<std::pair<std::string, const ojson*>> axes;
    for (auto it = grid.begin(); it != grid.end(); ++it) {
        const std::string path = "grid." + it.key();
        if (network.contains(it.key())) fail(path, "is also set in network." + it.key() + "; give it in one place");
        if (!it.value().is_array()) fail(path, "expected a list of values (a grid axis), got " + type_name(it.value()));
        if (it.value().empty()) fail(path, "empty axis: give at least one value");
        for (size_t i = 0; i < it.value().size(); ++i)
            validate_network_value(it.key(), it.value()[i], path + "[" + std::to_string(i) + "]");
        axes.emplace_back(it.key(), &it.value());
        spec.axes.push_back(it.key());
    }
    uint64_t total = 1;
    for (const auto& a : axes) {
        total *= a.second->size();
        if (total > 1000000) fail("grid", "more than 1000000 cells");
    }
    // Expand: last axis varies fastest.
    std::vector<size_t> idx(axes.size(), 0);
    for (uint64_t n = 0; n < total; ++n) {
        auto values = base;
        ojson labels = ojson::object();
        for (size_t a = 0; a < axes.size(); ++a) {
            const ojson& v = (*axes[a].second)[idx[a]];
            values[axes[a].first] = Located{&v, "grid." + axes[a].first + "[" + std::to_string(idx[a]) + "]"};
            labels[axes[a].first] = v;
        }
        Cell c = resolve_cell(values, spec);
        c.index = static_cast<int>(n);
        c.axes = std::move(labels);
        spec.cells.push_back(std::move(c));
        for (size_t a = axes.size(); a-- > 0;) {
            if (++idx[a] < axes[a].second->size()) break;
            idx[a] = 0;
        }
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(root.dump())));
    spec.hash = buf;
    return spec;
}

Spec load_spec_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("", "cannot read spec file " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return parse_spec_text(ss.str());
}

}  // namespace gs
