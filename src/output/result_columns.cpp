// The columns that identify a row of results.csv (and a cell's "params" in
// results.json). Kept apart from the writers so that the memory plan (and the
// spec fuzzer, which links only the spec side) can size the output.
#include "gradsweep/results_io.hpp"

namespace gs {

ojson cell_params(const Cell& c) {
    ojson p = ojson::object();
    p["depth"] = c.depth();
    // The spec's width (also at depth 1, which has no hidden layer), or with
    // layer_sizes the hidden layers' common size; null when they differ.
    const int width = c.given_width ? c.given_width : c.width();
    p["width"] = width ? ojson(width) : ojson(nullptr);
    p["layer_sizes"] = c.layer_sizes_compact();
    p["activation"] = kActivationNames[static_cast<int>(c.activation)];
    // Always written, also for activations that ignore it: a grid over
    // leaky_slope makes cells that differ in nothing else.
    p["leaky_slope"] = c.leaky_slope;
    p["shortcut"] = c.shortcut;
    p["bias"] = c.bias;
    p["last_activation"] = c.last_activation;
    p["residual_scale"] = c.residual_scale;
    p["init"] = kInitNames[static_cast<int>(c.init.kind)];
    const bool normal = c.init.kind == InitKind::normal;
    p["sigma_w"] = normal ? ojson(c.init.sigma_w) : ojson(nullptr);
    p["sigma_b"] = normal ? ojson(c.init.sigma_b) : ojson(nullptr);
    return p;
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

std::string results_csv_header() {
    std::string out = "cell";
    const ojson params = cell_params(Cell{});
    for (auto it = params.begin(); it != params.end(); ++it) out += "," + it.key();
    const ojson spec_cols = spec_columns(Spec{});
    for (auto it = spec_cols.begin(); it != spec_cols.end(); ++it) out += "," + it.key();
    return out + ",layer,quantity,n,mean,std,min,q05,median,q95,max,geomean,n_nonfinite,n_zero\n";
}

}  // namespace gs
