// Shared by the PyTorch comparison tests: a torch_cases.json case as a
// gradsweep spec, one network through the CPU backend, and the tolerance rule.
#pragma once
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

namespace gs::torch_test {

// The committed PyTorch reference cases (regenerate with
// scripts/torch_reference.py --cases tests/data/torch_cases.json --out ...).
// A missing or unreadable file is a test failure: read_json throws.
inline const std::string kReferenceCasesPath = std::string(GS_SOURCE_DIR) + "/tests/data/torch_cases.json";

inline nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open " + path);
    return nlohmann::json::parse(f);
}

// The spec that runs exactly this case: one seed, rng "torch", float32.
inline std::string case_spec_text(const nlohmann::json& c) {
    nlohmann::json s;
    s["name"] = c.at("name");
    s["seeds"] = {{"count", 1}, {"first", c.at("seed")}};
    s["rng"] = "torch";
    s["precision"] = "float32";
    s["network"] = {{"layer_sizes", c.at("layer_sizes")},
                    {"activation", c.at("activation")},
                    {"shortcut", c.at("shortcut")},
                    {"bias", c.at("bias")},
                    {"last_activation", c.at("last_activation")}};
    if (c.contains("residual_scale")) s["network"]["residual_scale"] = c["residual_scale"];
    const auto& in = c.at("input");
    if (in.contains("values"))
        s["input"] = {{"values", in["values"]}};
    else
        s["input"] = {{"distribution", "normal"}, {"batch", in.at("batch")}};
    s["loss"] = {{"kind", "mse"}, {"target", c.at("target")}};
    return s.dump();
}

// One network's result row (layout: stats.hpp) for every cell of the spec.
inline std::vector<std::vector<double>> run_rows(const Spec& spec) {
    auto backend = make_cpu_backend(1);
    std::vector<std::vector<double>> rows;
    for (const Cell& cell : spec.cells) {
        std::vector<double> row(row_stride(cell.depth()) * spec.seed_count);
        backend->run(spec, cell, 0, spec.seed_count, row.data());
        rows.push_back(std::move(row));
    }
    return rows;
}

// The error measure the tests bound by 1e-5: relative error, except below 1e-9
// (zero bias gradients, vanished gradients), where it is the absolute error
// scaled so that the same bound means 1e-12 absolute.
inline constexpr double kTolerance = 1e-5;
inline double rel_err(double got, double want) {
    if (std::fabs(want) < 1e-9) return std::fabs(got - want) * (kTolerance / 1e-12);
    return std::fabs(got - want) / std::fabs(want);
}

}  // namespace gs::torch_test
