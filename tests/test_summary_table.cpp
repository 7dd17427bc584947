// The table printed after `gradsweep run` and `gradsweep merge`: its content on
// hand-made results, including cells without finite data.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <sstream>

#include "gradsweep/spec.hpp"
#include "gradsweep/summary_table.hpp"
#include "gradsweep/theory.hpp"

using namespace gs;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// Whitespace-separated fields of a line.
std::vector<std::string> fields(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string f; in >> f;) out.push_back(f);
    return out;
}

CellResult hand_made(int cell, const std::vector<double>& medians, uint64_t nonfinite) {
    CellResult r;
    r.cell = cell;
    r.networks = 10;
    r.nonfinite_networks = nonfinite;
    for (double m : medians) {
        std::array<Summary, kNumQuantities> layer{};
        layer[weight_grad_mean_abs].median = m;
        layer[weight_grad_mean_abs].n = std::isnan(m) ? 0 : 10;
        r.layers.push_back(layer);
    }
    return r;
}

}  // namespace

TEST_CASE("summary table: first and last layer medians, their ratio, non-finite count", "[summary]") {
    std::vector<SummaryRow> rows(5);
    rows[0] = {0, "depth=3 relu plain", {1e-3, 5e-4, 2e-2}, 0};
    rows[1] = {1, "depth=3 relu shortcut", {4e-2, 1, 2e-2}, 3};
    rows[2] = {2, "dead last layer", {1e-3, 0.5, 0.0}, 0};        // ratio: inf
    rows[3] = {3, "all dead", {0.0, 0.0}, 0};                     // 0/0: nan
    rows[4] = {4, "exploded", {kNan, 2.0, kNan}, 10};             // no finite data: a dash
    const std::string t = summary_table(rows, 10);
    INFO(t);
    const auto L = lines_of(t);
    REQUIRE(L.size() >= 7);
    CHECK(fields(L[0]) == std::vector<std::string>{"cell", "network", "first", "layer", "last", "layer", "first/last", "nonfinite"});
    CHECK(fields(L[1]) == std::vector<std::string>{"0", "depth=3", "relu", "plain", "0.001", "0.02", "0.05", "0"});
    CHECK(fields(L[2]) == std::vector<std::string>{"1", "depth=3", "relu", "shortcut", "0.04", "0.02", "2", "3"});
    CHECK(fields(L[3]) == std::vector<std::string>{"2", "dead", "last", "layer", "0.001", "0", "inf", "0"});
    CHECK(fields(L[4]) == std::vector<std::string>{"3", "all", "dead", "0", "0", "nan", "0"});
    CHECK(fields(L[5]) == std::vector<std::string>{"4", "exploded", "\u2014", "\u2014", "\u2014", "10"});
    CHECK(t.find("-nan") == std::string::npos);
    CHECK(t.find("median over 10 seeds") != std::string::npos);
    CHECK(t.find("no network of the cell gave a finite value") != std::string::npos);
    CHECK(t.find("mean-field") == std::string::npos);  // no theory given: no column
    // Columns line up: every row as wide as the header in characters (the dash is one).
    auto width = [](const std::string& s) {
        size_t n = 0;
        for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
        return n;
    };
    for (int i = 1; i <= 5; ++i) CHECK(width(L[i]) == width(L[0]));
}

TEST_CASE("summary rows from a spec: labels from the grid axes, the mean-field ratio from the outputs' theory", "[summary]") {
    const Spec spec = parse_spec_text(R"({"name": "t", "seeds": {"count": 10},
        "grid": {"depth": [2, 3], "shortcut": [false, true]},
        "network": {"width": 16, "input_dim": 3, "activation": "tanh", "last_activation": false},
        "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.0}})");
    REQUIRE(spec.cells.size() == 4);
    std::vector<CellResult> cells{hand_made(0, {1e-3, 2e-3}, 0), hand_made(1, {3e-3, 1e-3}, 0),
                                  hand_made(2, {kNan, 1e-3, 5e-3}, 7), hand_made(3, {2e-3, 1e-3, 1e-3}, 0)};
    const auto rows = summary_rows(spec, cells);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].label == "depth=2 plain");
    CHECK(rows[3].label == "depth=3 shortcut");
    CHECK(rows[2].nonfinite == 7);
    for (int c = 0; c < 4; ++c) {
        const CellTheory th = cell_theory(spec, spec.cells[c]);
        REQUIRE(th.applies);
        CHECK(rows[c].theory_ratio == Approx(th.weight_grad_rms.front() / th.weight_grad_rms.back()));
    }
    const std::string t = summary_table(spec, cells);
    INFO(t);
    const auto L = lines_of(t);
    CHECK(L[0].find("mean-field f/l") != std::string::npos);
    const auto f2 = fields(L[3]);  // cell 2: no finite first layer
    REQUIRE(f2.size() == 8);
    CHECK(f2[0] == "2");
    CHECK(f2[3] == "\u2014");
    CHECK(f2[4] == "0.005");
    CHECK(f2[5] == "\u2014");
    CHECK(f2[6] == "7");
    CHECK(f2[7] != "\u2014");  // the theory does not depend on the data
    CHECK(fields(L[1])[5] == "0.5");  // 1e-3 / 2e-3
    // Without theory: no column.
    CHECK(summary_table(summary_rows(spec, cells, false), 10).find("mean-field") == std::string::npos);
}
