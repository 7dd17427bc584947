// The columns that identify a row of results.csv (and a cell's "params" in
// results.json). Kept apart from the writers so that the memory plan (and the
// spec fuzzer, which links only the spec side) can size the output.
#include "gradsweep/results_io.hpp"

#include <charconv>
#include <cmath>

namespace gs {

std::string format_double(double x) {
    if (std::isnan(x)) return "NaN";
    if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, r.ptr);
}

std::string csv_value(const ojson& v) {
    if (v.is_null()) return "";
    if (v.is_string()) {
        // RFC 4180: a label such as "normal(sigma_w=2,sigma_b=0)" holds a comma.
        const std::string& t = v.get_ref<const std::string&>();
        if (t.find_first_of(",\"\r\n") == std::string::npos) return t;
        std::string q = "\"";
        for (char c : t) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    }
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_float()) return format_double(v.get<double>());
    return v.dump();
}

namespace {

// The one list of a cell's identifying columns, in their order. A visitor rather
// than an object so that the memory plan and the CSV writer, which need every
// cell's columns as text, do not build a JSON object per cell (the plan of a
// 100,000-cell sweep did, six times in the fuzzer: a 10 s timeout).
template <class Visit>
void visit_cell_params(const Cell& c, Visit&& visit) {
    visit("depth", ojson(c.depth()));
    // The spec's width (also at depth 1, which has no hidden layer), or with
    // layer_sizes the hidden layers' common size; null when they differ.
    const int width = c.given_width ? c.given_width : c.width();
    visit("width", width ? ojson(width) : ojson(nullptr));
    visit("layer_sizes", ojson(c.layer_sizes_compact()));
    visit("activation", ojson(kActivationNames[static_cast<int>(c.activation)]));
    // Always written, also for activations that ignore it: a grid over
    // leaky_slope makes cells that differ in nothing else.
    visit("leaky_slope", ojson(c.leaky_slope));
    visit("shortcut", ojson(c.shortcut));
    visit("bias", ojson(c.bias));
    visit("last_activation", ojson(c.last_activation));
    visit("residual_scale", ojson(c.residual_scale));
    visit("init", ojson(kInitNames[static_cast<int>(c.init.kind)]));
    const bool normal = c.init.kind == InitKind::normal;
    visit("sigma_w", normal ? ojson(c.init.sigma_w) : ojson(nullptr));
    visit("sigma_b", normal ? ojson(c.init.sigma_b) : ojson(nullptr));
}

}  // namespace

ojson cell_params(const Cell& c) {
    ojson p = ojson::object();
    visit_cell_params(c, [&](const char* key, ojson v) { p[key] = std::move(v); });
    return p;
}

std::string cell_params_csv(const Cell& c) {
    std::string out;
    visit_cell_params(c, [&](const char*, const ojson& v) { out += "," + csv_value(v); });
    return out;
}

ojson spec_columns(const Spec& spec) {
    ojson p = ojson::object();
    p["name"] = spec.name;
    p["spec_hash"] = spec.hash;
    p["precision"] = precision_name(spec.precision);
    p["rng"] = rng_name(spec.rng);
    p["rng_key"] = spec.rng_key;
    p["seeds_first"] = spec.seed_first;
    p["seeds_count"] = spec.seed_count;
    p["input"] = spec.input.random ? "normal" : "values";
    p["input_batch"] = spec.input.batch;
    p["loss_target"] = spec.target;
    return p;
}

std::string spec_columns_csv(const Spec& spec) {
    std::string out;
    const ojson cols = spec_columns(spec);
    for (auto it = cols.begin(); it != cols.end(); ++it) out += "," + csv_value(it.value());
    return out;
}

std::string results_csv_header() {
    std::string out = "cell";
    visit_cell_params(Cell{}, [&](const char* key, const ojson&) { out += std::string(",") + key; });
    const ojson spec_cols = spec_columns(Spec{});
    for (auto it = spec_cols.begin(); it != spec_cols.end(); ++it) out += "," + it.key();
    return out + ",layer,quantity,n,mean,std,min,q05,median,q95,max,geomean,n_nonfinite,n_zero\n";
}

}  // namespace gs
