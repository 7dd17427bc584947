// The table printed after a run: per cell, how much the gradient shrinks or
// grows from the last layer back to the first.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

struct SummaryRow {
    int cell = 0;
    std::string label;                  // what distinguishes the cell, e.g. "depth=20 width=64 relu shortcut"
    std::vector<double> layer_medians;  // per layer: median over seeds of weight_grad_mean_abs
    uint64_t nonfinite = 0;             // networks with any non-finite statistic
    // Mean-field first/last ratio of weight_grad_rms (NaN: no column).
    double theory_ratio = std::numeric_limits<double>::quiet_NaN();
    // Growth rate of E[weight_grad_rms^2] per layer towards the input (growth_rate.hpp),
    // its standard error, and the prediction's (NaN: none).
    double growth_rate = std::numeric_limits<double>::quiet_NaN();
    double growth_stderr = std::numeric_limits<double>::quiet_NaN();
    double theory_growth_rate = std::numeric_limits<double>::quiet_NaN();
};

// Aligned text table, one line per row, then a line saying what the numbers are.
std::string summary_table(const std::vector<SummaryRow>& rows, uint64_t seeds);

// The rows for a finished run: labels from the grid axes, theory from theory.hpp.
std::vector<SummaryRow> summary_rows(const Spec& spec, const std::vector<CellResult>& cells, bool with_theory = true);
std::string summary_table(const Spec& spec, const std::vector<CellResult>& cells, bool with_theory = true);

// "depth=20 width=64 relu shortcut": the cell's grid-axis values, booleans by name.
std::string cell_label(const Cell& cell);

}  // namespace gs
