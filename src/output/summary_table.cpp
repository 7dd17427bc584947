#include "gradsweep/summary_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradsweep/theory.hpp"

namespace gs {

namespace {

// "—": no finite data at all (every network of the cell gave inf/NaN there).
const char* const kNoData = "\u2014";

// Display width of UTF-8 text: code points, not bytes (for the dash).
size_t display_width(const std::string& s) {
    size_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
}

std::string short_number(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
}

std::string axis_value(const std::string& key, const ojson& v) {
    if (v.is_boolean()) {
        if (key == "shortcut") return v.get<bool>() ? "shortcut" : "plain";
        return v.get<bool>() ? key : "no-" + key;
    }
    if (key == "activation" && v.is_string()) return v.get<std::string>();
    if (key == "layer_sizes" && v.is_array()) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : "-") + x.dump();
        return s;
    }
    if (key == "init") {
        if (v.is_string()) return v.get<std::string>();
        std::string s = v.value("kind", std::string("init"));
        if (v.contains("sigma_w")) s += " sw=" + short_number(v["sigma_w"].get<double>());
        if (v.contains("sigma_b")) s += " sb=" + short_number(v["sigma_b"].get<double>());
        return s;
    }
    if (v.is_number_float()) return key + "=" + short_number(v.get<double>());
    if (v.is_string()) return key + "=" + v.get<std::string>();
    return key + "=" + v.dump();
}

}  // namespace

std::string cell_label(const Cell& cell) {
    std::string s;
    if (cell.axes.is_object())
        for (auto it = cell.axes.begin(); it != cell.axes.end(); ++it) s += (s.empty() ? "" : " ") + axis_value(it.key(), it.value());
    if (s.empty())  // a single-cell spec: say what the network is
        s = cell.layer_sizes_label() + " " + kActivationNames[static_cast<int>(cell.activation)] + (cell.shortcut ? " shortcut" : " plain");
    return s;
}

std::string summary_table(const std::vector<SummaryRow>& rows, uint64_t seeds) {
    const bool theory = std::any_of(rows.begin(), rows.end(), [](const SummaryRow& r) { return !std::isnan(r.theory_ratio); });
    std::vector<std::string> head = {"cell", "network", "first layer", "last layer", "first/last", "nonfinite"};
    if (theory) head.push_back("mean-field f/l");
    const bool growth = std::any_of(rows.begin(), rows.end(), [](const SummaryRow& r) { return !std::isnan(r.growth_rate); });
    const bool growth_theory =
        growth && std::any_of(rows.begin(), rows.end(), [](const SummaryRow& r) { return !std::isnan(r.theory_growth_rate); });
    if (growth) head.push_back("rate/layer");
    if (growth_theory) head.push_back("mean-field rate");
    std::vector<std::vector<std::string>> table;
    for (const SummaryRow& r : rows) {
        // A median over seeds is NaN only when no network gave a finite value there.
        const double nan = std::nan("");
        const double first = r.layer_medians.empty() ? nan : r.layer_medians.front();
        const double last = r.layer_medians.empty() ? nan : r.layer_medians.back();
        auto cell_text = [](double x) { return std::isnan(x) ? std::string(kNoData) : short_number(x); };
        // Both finite: the ratio prints as a number, inf (last is 0) or nan (0/0).
        const std::string ratio = std::isnan(first) || std::isnan(last) ? std::string(kNoData) : short_number(first / last);
        std::vector<std::string> line = {std::to_string(r.cell), r.label, cell_text(first), cell_text(last), ratio,
                                         std::to_string(r.nonfinite)};
        if (theory) line.push_back(std::isnan(r.theory_ratio) ? std::string(kNoData) : short_number(r.theory_ratio));
        if (growth)
            line.push_back(std::isnan(r.growth_rate) ? std::string(kNoData)
                                                     : short_number(r.growth_rate) + " \u00b1 " + short_number(r.growth_stderr));
        if (growth_theory) line.push_back(std::isnan(r.theory_growth_rate) ? std::string(kNoData) : short_number(r.theory_growth_rate));
        table.push_back(std::move(line));
    }
    std::vector<size_t> width(head.size());
    for (size_t c = 0; c < head.size(); ++c) {
        width[c] = display_width(head[c]);
        for (const auto& line : table) width[c] = std::max(width[c], display_width(line[c]));
    }
    // The label column is left-aligned, numbers right-aligned, two spaces between.
    auto format_line = [&](const std::vector<std::string>& line) {
        std::string out;
        for (size_t c = 0; c < line.size(); ++c) {
            const std::string pad(width[c] - display_width(line[c]), ' ');
            if (c) out += "  ";
            out += c == 1 ? line[c] + pad : pad + line[c];
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        return out + "\n";
    };
    std::string out = format_line(head);
    for (const auto& line : table) out += format_line(line);
    out += "(median over " + std::to_string(seeds) + " seeds of each layer's mean |dLoss/dW|; first/last < 1: the first layer learns slower";
    bool dash = false;
    for (const auto& line : table)
        for (const auto& x : line) dash = dash || x == kNoData;
    if (dash) out += ";\n " + std::string(kNoData) + ": no network of the cell gave a finite value there";
    if (theory) out += ";\n mean-field f/l: infinite-width sqrt(E[rms^2]) ratio, docs/theory.md";
    if (growth)
        out += ";\n rate/layer: growth of ln E[rms^2] per layer towards the input over the hidden layers, \u00b1 its standard error"
               " (growth.csv; mean-field: ln chi_1 at the fixed point)";
    out += ")\n";
    return out;
}

std::vector<SummaryRow> summary_rows(const Spec& spec, const std::vector<CellResult>& cells, bool with_theory) {
    std::vector<SummaryRow> rows;
    for (const CellResult& c : cells) {
        const Cell& cell = spec.cells.at(c.cell);
        SummaryRow r;
        r.cell = c.cell;
        r.label = cell_label(cell);
        for (const auto& layer : c.layers) r.layer_medians.push_back(layer[weight_grad_mean_abs].median);
        r.nonfinite = c.nonfinite_networks;
        if (with_theory) {
            // The same prediction results.json and theory.csv carry (and the same limits).
            const CellTheory t = cell_theory(spec, cell);
            if (t.applies && !t.weight_grad_rms.empty()) r.theory_ratio = t.weight_grad_rms.front() / t.weight_grad_rms.back();
            if (t.applies) r.theory_growth_rate = theory_growth_rate(cell.depth(), t.weight_grad_rms);
        }
        r.growth_rate = c.growth.rate;
        r.growth_stderr = c.growth.stderr_;
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string summary_table(const Spec& spec, const std::vector<CellResult>& cells, bool with_theory) {
    return summary_table(summary_rows(spec, cells, with_theory), spec.seed_count);
}

}  // namespace gs
