// The mean-field prediction in the outputs: results.json's per-cell "theory"
// (or null with a reason) and theory.csv, both from cell_theory.
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"
#include "gradsweep/theory.hpp"

using namespace gs;

namespace {

SweepResult empty_result(const Spec& spec) {
    SweepResult r;
    for (const Cell& c : spec.cells) {
        CellResult cr;
        cr.cell = c.index;
        cr.networks = spec.seed_count;
        cr.layers.resize(c.depth());
        r.cells.push_back(cr);
    }
    return r;
}

}  // namespace

TEST_CASE("results.json and theory.csv carry the per-layer prediction of every cell", "[theory][outputs]") {
    const Spec spec = parse_spec_text(R"({"name": "t", "seeds": {"count": 4},
        "grid": {"depth": [2, 5], "activation": ["relu", "tanh"], "shortcut": [false, true]},
        "network": {"width": 8, "input_dim": 3, "last_activation": false},
        "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.0}})");
    const SweepResult r = empty_result(spec);
    const ojson j = ojson::parse(results_json_text(spec, r));
    const std::string csv = theory_csv_text(spec, r);
    std::istringstream in(csv);
    std::string line;
    std::getline(in, line);
    CHECK(line == "cell,layer,quantity,value");
    for (const Cell& c : spec.cells) {
        const CellTheory th = cell_theory(spec, c);
        REQUIRE(th.applies);
        REQUIRE(th.weight_grad_rms.size() == static_cast<size_t>(c.depth()));
        // sqrt of the recursion's E[weight_grad_rms^2]
        const std::vector<double> ms = predict_weight_grad_ms(spec, c);
        const ojson& cj = j["cells"][c.index];
        REQUIRE(cj["theory"].is_object());
        CHECK(!cj.contains("theory_reason"));
        const ojson& v = cj["theory"]["weight_grad_rms"];
        REQUIRE(v.size() == static_cast<size_t>(c.depth()));
        for (int l = 0; l < c.depth(); ++l) {
            CHECK(v[l].get<double>() == th.weight_grad_rms[l]);
            CHECK(th.weight_grad_rms[l] == Approx(std::sqrt(ms[l])).epsilon(1e-15));
            CHECK(th.weight_grad_rms[l] > 0);
            REQUIRE(std::getline(in, line));
            CHECK(line == std::to_string(c.index) + "," + std::to_string(l) + ",weight_grad_rms," + format_double(th.weight_grad_rms[l]));
        }
    }
    CHECK(!std::getline(in, line));  // one row per cell and layer, nothing else
}

TEST_CASE("a cell the prediction does not cover gets theory null, a reason, and no theory.csv rows", "[theory][outputs]") {
    // 200 fixed rows: 20100 pairs of rows per layer, over the cost limit.
    std::string rows;
    for (int b = 0; b < 200; ++b) rows += std::string(b ? "," : "") + "[" + std::to_string(b % 7 - 3) + ".0, 1.0, 0.5]";
    const Spec spec = parse_spec_text(R"({"name": "big batch", "seeds": {"count": 2},
        "network": {"depth": 2, "width": 4, "input_dim": 3}, "input": {"values": [)" + rows + "]}}");
    const CellTheory th = cell_theory(spec, spec.cells[0]);
    CHECK(!th.applies);
    CHECK(th.weight_grad_rms.empty());
    CHECK(th.reason.find("200 rows") != std::string::npos);
    const SweepResult r = empty_result(spec);
    const ojson j = ojson::parse(results_json_text(spec, r));
    CHECK(j["cells"][0]["theory"].is_null());
    CHECK(j["cells"][0]["theory_reason"].get<std::string>() == th.reason);
    CHECK(theory_csv_text(spec, r) == "cell,layer,quantity,value\n");
}

TEST_CASE("layers where the recursion overflows are null in results.json and NaN in theory.csv", "[theory][outputs]") {
    // sigma_w = 1e60: the forward kernel overflows double within a few layers.
    // float64: a float32 spec refuses a weight scale beyond float32's range.
    const Spec spec = parse_spec_text(R"({"name": "huge", "seeds": {"count": 2}, "precision": "float64",
        "network": {"depth": 8, "width": 4, "input_dim": 3, "activation": "identity",
                    "init": {"kind": "normal", "sigma_w": 1e60, "sigma_b": 0.0}},
        "input": {"values": [[1.0, 0.0, -1.0]]}})");
    const CellTheory th = cell_theory(spec, spec.cells[0]);
    REQUIRE(th.applies);
    REQUIRE(th.weight_grad_rms.size() == 8);
    bool any_nan = false;
    for (double x : th.weight_grad_rms) any_nan = any_nan || std::isnan(x);
    REQUIRE(any_nan);
    const SweepResult r = empty_result(spec);
    const ojson j = ojson::parse(results_json_text(spec, r));
    const std::string csv = theory_csv_text(spec, r);
    for (int l = 0; l < 8; ++l) {
        const ojson& v = j["cells"][0]["theory"]["weight_grad_rms"][l];
        if (std::isnan(th.weight_grad_rms[l])) {
            CHECK(v.is_null());
            CHECK(csv.find("0," + std::to_string(l) + ",weight_grad_rms,NaN\n") != std::string::npos);
        } else {
            CHECK(v.get<double>() == th.weight_grad_rms[l]);
        }
    }
}
