#include "gradsweep/results_io.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "gradsweep/growth_rate.hpp"
#include "gradsweep/theory.hpp"
#include "gradsweep/version.hpp"

namespace gs {

ojson provenance_json(const Spec& spec, const RunInfo& info) {
    return ojson{{"version", gs::version_string()},
                 {"git_commit", gs::git_commit()},
                 {"backend", info.backend},
                 {"device", info.device},
                 {"threads", info.threads},
                 {"precision", precision_name(spec.precision)},
                 {"rng", rng_name(spec.rng)},
                 {"start_time", info.start_time},
                 {"end_time", info.end_time},
                 {"elapsed_seconds", info.elapsed_seconds},
                 {"networks", info.networks},
                 {"networks_per_second", info.networks_per_second}};
}

namespace {

ojson number_or_null(double x) { return std::isfinite(x) ? ojson(x) : ojson(nullptr); }

// A cell's two growth rates (growth_rate.hpp), each with the prediction's:
// "weight_grad_rms" of E[weight_grad_rms^2], "delta_rms" of the backpropagated
// gradient's E[mean(dLoss/dz^2)] (weight_grad_rms / the layer input's activation_rms).
struct CellGrowth {
    const char* quantity;
    const GrowthRate& measured;
    double theory;
};
std::vector<CellGrowth> cell_growth(const CellResult& r, const Cell& c, const CellTheory& th) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {{"weight_grad_rms", r.growth, th.applies ? theory_growth_rate(c.depth(), th.weight_grad_rms) : nan},
            {"delta_rms", r.delta_growth, th.applies ? theory_growth_rate(c.depth(), th.weight_grad_rms, &th.activation_rms) : nan}};
}

ojson growth_json(const GrowthRate& g, double theory_rate) {
    ojson j{{"fitted_layers", ojson::array({g.first_layer, g.last_layer})},
            {"seeds", g.seeds},
            {"rate", number_or_null(g.rate)},
            {"stderr", number_or_null(g.stderr_)},
            {"depth_scale", number_or_null(g.depth_scale)},
            {"theory_rate", number_or_null(theory_rate)}};
    if (!g.defined()) j["reason"] = g.reason();
    return j;
}

ojson summary_json(const Summary& s) {
    return ojson{{"n", s.n},
                 {"mean", number_or_null(s.mean)},
                 {"std", number_or_null(s.std)},
                 {"min", number_or_null(s.min)},
                 {"q05", number_or_null(s.q05)},
                 {"median", number_or_null(s.median)},
                 {"q95", number_or_null(s.q95)},
                 {"max", number_or_null(s.max)},
                 {"geomean", number_or_null(s.geomean)},
                 {"n_nonfinite", s.n_nonfinite},
                 {"n_zero", s.n_zero}};
}

}  // namespace

namespace {

// v as dump(1) writes it when nested `level` levels deep: the same text with
// every line after the first indented by level more spaces (JSON strings hold
// no raw newline, so every '\n' is a line break of the layout).
std::string dump_at(const ojson& v, int level) {
    const std::string text = v.dump(1);
    std::string out;
    out.reserve(text.size());
    const std::string indent = "\n" + std::string(static_cast<size_t>(level), ' ');
    for (char c : text) {
        if (c == '\n') out += indent;
        else out += c;
    }
    return out;
}

// Streams doc, as dump_at(doc, level) would write it, with the empty array that
// doc holds under `key` (a direct member) replaced by `elements` elements, each
// written by put(i, out) as dump_at would write it one level deeper. So a
// document with millions of elements is written without ever being built.
void stream_with_array(TextOut& out, const ojson& doc, int level, const std::string& key, size_t elements,
                       const std::function<void(size_t, TextOut&)>& put) {
    const std::string text = dump_at(doc, level);
    const std::string inner(static_cast<size_t>(level) + 1, ' ');
    const std::string mark = "\n" + inner + ojson(key).dump() + ": []";
    const size_t at = text.find(mark);
    if (at == std::string::npos) throw std::logic_error("results.json: no \"" + key + "\" placeholder");
    const size_t open = at + mark.size() - 1;  // the ']' of "[]"
    out << std::string_view(text).substr(0, open);
    if (elements > 0) {
        const std::string element_indent(static_cast<size_t>(level) + 2, ' ');
        for (size_t i = 0; i < elements; ++i) {
            out << (i ? ",\n" : "\n") << element_indent;
            put(i, out);
        }
        out << "\n" << inner;
    }
    out << std::string_view(text).substr(open);
}

}  // namespace

void write_results_json(const Spec& spec, const SweepResult& result, const ojson& extra, TextOut& out) {
    ojson j;
    j["format"] = "gradsweep-results/1";
    j["spec"] = resolved_spec_json(spec);
    j["spec_as_written"] = spec.raw;
    j["spec_hash"] = spec.hash;
    const RunInfo& info = result.info;
    ojson p = provenance_json(spec, info);
    for (auto it = extra.begin(); it != extra.end(); ++it) p[it.key()] = it.value();
    j["provenance"] = std::move(p);
    j["seeds"] = ojson{{"first", spec.seed_first}, {"count", spec.seed_count}};
    j["cells"] = ojson::array();
    stream_with_array(out, j, 0, "cells", result.cells.size(), [&](size_t i, TextOut& o) {
        const CellResult& r = result.cells[i];
        const Cell& c = spec.cells[r.cell];
        ojson cj;
        cj["cell"] = r.cell;
        cj["params"] = cell_params(c);
        cj["axes"] = c.axes;
        cj["networks"] = r.networks;
        cj["nonfinite_networks"] = r.nonfinite_networks;
        cj["loss"] = summary_json(r.loss);
        cj["layers"] = ojson::array();
        // The infinite-width prediction beside the data (docs/theory.md), or why there is none.
        const CellTheory th = cell_theory(spec, c);
        if (th.applies) {
            ojson per_layer = ojson::array();
            for (double x : th.weight_grad_rms) per_layer.push_back(number_or_null(x));
            cj["theory"] = ojson{{"model", "mean-field (infinite width), docs/theory.md"},
                                 {"weight_grad_rms", std::move(per_layer)}};
        } else {
            cj["theory"] = nullptr;
            cj["theory_reason"] = th.reason;
        }
        cj["growth"] = ojson::object();
        for (const CellGrowth& g : cell_growth(r, c, th)) cj["growth"][g.quantity] = growth_json(g.measured, g.theory);
        stream_with_array(o, cj, 2, "layers", static_cast<size_t>(c.depth()), [&](size_t l, TextOut& lo) {
            ojson lj{{"layer", l}, {"fan_in", c.layer_sizes[l]}, {"fan_out", c.layer_sizes[l + 1]},
                     {"residual", c.residual_at(static_cast<int>(l))}, {"activation", c.activation_at(static_cast<int>(l))}};
            for (int q = 0; q < kNumQuantities; ++q) {
                if (q == bias_grad_mean_abs && !c.bias) continue;
                lj[kQuantityNames[q]] = summary_json(r.layers[l][q]);
            }
            lo << dump_at(lj, 4);
        });
    });
    out << "\n";
}

namespace {

// The columns that identify a cell in results.csv and growth.csv: cell, its
// parameters, the spec's columns.
class CellPrefix {
public:
    explicit CellPrefix(const Spec& spec) : spec_(spec), spec_part_(spec_columns_csv(spec)) {}
    std::string operator()(int cell) const { return std::to_string(cell) + cell_params_csv(spec_.cells[cell]) + spec_part_; }

private:
    const Spec& spec_;
    std::string spec_part_;
};

}  // namespace

void write_results_csv(const Spec& spec, const SweepResult& result, TextOut& out) {
    out << results_csv_header();
    const CellPrefix cell_prefix(spec);
    std::string row;
    auto put_row = [&](const std::string& prefix, const std::string& layer, const char* quantity, const Summary& s) {
        row = prefix;
        row += "," + layer + "," + quantity + "," + std::to_string(s.n);
        for (double x : {s.mean, s.std, s.min, s.q05, s.median, s.q95, s.max, s.geomean}) row += "," + format_double(x);
        row += "," + std::to_string(s.n_nonfinite) + "," + std::to_string(s.n_zero) + "\n";
        out << row;
    };
    for (const CellResult& r : result.cells) {
        const Cell& c = spec.cells[r.cell];
        const std::string prefix = cell_prefix(r.cell);
        for (int l = 0; l < c.depth(); ++l)
            for (int q = 0; q < kNumQuantities; ++q) {
                if (q == bias_grad_mean_abs && !c.bias) continue;
                put_row(prefix, std::to_string(l), kQuantityNames[q], r.layers[l][q]);
            }
        put_row(prefix, "", "loss", r.loss);  // the network's loss: not a layer's
    }
}

void write_theory_csv(const Spec& spec, const SweepResult& result, TextOut& out) {
    out << "cell,layer,quantity,value\n";
    for (const CellResult& r : result.cells) {
        const CellTheory th = cell_theory(spec, spec.cells[r.cell]);
        if (!th.applies) continue;
        const std::string cs = std::to_string(r.cell) + ",";
        for (size_t l = 0; l < th.weight_grad_rms.size(); ++l)
            out << cs + std::to_string(l) + ",weight_grad_rms," + format_double(th.weight_grad_rms[l]) + "\n";
    }
}

namespace {

template <class F>
std::string whole_text(F&& produce) {
    std::string s;
    TextOut out([&s](std::string_view chunk) { s.append(chunk); });
    produce(out);
    out.flush();
    return s;
}

}  // namespace

std::string results_json_text(const Spec& spec, const SweepResult& result, const ojson& extra) {
    return whole_text([&](TextOut& o) { write_results_json(spec, result, extra, o); });
}

std::string results_csv_text(const Spec& spec, const SweepResult& result) {
    return whole_text([&](TextOut& o) { write_results_csv(spec, result, o); });
}

void write_growth_csv(const Spec& spec, const SweepResult& result, TextOut& out) {
    std::string header = results_csv_header();
    header.resize(header.find(",layer,quantity,"));
    out << header + ",quantity,first_layer,last_layer,seeds,rate,rate_stderr,depth_scale,theory_rate,reason\n";
    const CellPrefix cell_prefix(spec);
    for (const CellResult& r : result.cells) {
        const Cell& c = spec.cells[r.cell];
        const std::string prefix = cell_prefix(r.cell);
        for (const CellGrowth& cg : cell_growth(r, c, cell_theory(spec, c))) {
            const GrowthRate& g = cg.measured;
            std::string row = prefix + "," + cg.quantity;
            row += "," + std::to_string(g.first_layer) + "," + std::to_string(g.last_layer) + "," + std::to_string(g.seeds);
            for (double x : {g.rate, g.stderr_, g.depth_scale, cg.theory}) row += "," + format_double(x);
            out << row + "," + csv_value(ojson(g.reason())) + "\n";
        }
    }
}

std::string growth_csv_text(const Spec& spec, const SweepResult& result) {
    return whole_text([&](TextOut& o) { write_growth_csv(spec, result, o); });
}

std::string theory_csv_text(const Spec& spec, const SweepResult& result) {
    return whole_text([&](TextOut& o) { write_theory_csv(spec, result, o); });
}

std::string per_seed_csv_header() { return "cell,seed,layer,quantity,value\n"; }

void append_per_seed_csv(std::string& out, const Spec& spec, const Cell& cell, const std::vector<double>& rows,
                         uint64_t seed_offset, const std::function<void()>& poll) {
    const int D = cell.depth(), stride = row_stride(D);
    const uint64_t count = rows.size() / stride;
    const std::string cs = std::to_string(cell.index) + ",";
    for (uint64_t s = 0; s < count; ++s) {
        if (poll && s % 4096 == 4095) poll();
        const std::string prefix = cs + std::to_string(spec.seed_first + seed_offset + s) + ",";
        for (int l = 0; l < D; ++l)
            for (int q = 0; q < kNumQuantities; ++q) {
                if (q == bias_grad_mean_abs && !cell.bias) continue;
                out += prefix + std::to_string(l) + "," + kQuantityNames[q] + "," + format_double(rows[s * stride + l * kNumQuantities + q]) + "\n";
            }
        out += prefix + "-1,loss," + format_double(rows[s * stride + loss_index(D)]) + "\n";
    }
}

}  // namespace gs
