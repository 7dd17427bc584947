// A whole cell summarised "on the device", emulated: what kern::summarize_cell_on_device
// (device_summary.cu, growth in device_growth.cu) computes from the rows the
// network kernel left in device memory, step by step with the same bodies:
// networks with a non-finite value counted per row, the rows transposed to
// columns with non-finite values as +inf, both growth fits from those columns
// (emu_growth.hpp), then each column's summary (emulate_summary).
#pragma once
#include <limits>
#include <vector>

#include "emu_device.hpp"
#include "emu_growth.hpp"
#include "gradsweep/sweep.hpp"

namespace gs::emu {

// rows: count x stride doubles; cols: room for as many (the emulated backend
// passes its kept workspace's column slice, as the device transposes into it).
inline CellResult emulate_cell_summary_of_rows(const Cell& cell, const double* rows, uint64_t count, double* cols) {
    const int D = cell.depth(), stride = row_stride(D);
    CellResult r;
    r.cell = cell.index;
    r.networks = count;
    for (uint64_t s = 0; s < count; ++s) r.nonfinite_networks += kern::row_has_nonfinite(rows, stride, s);
    for (uint64_t s = 0; s < count; ++s)  // transpose_sanitize
        for (int c = 0; c < stride; ++c) {
            const double x = rows[s * stride + c];
            cols[c * count + s] = std::isfinite(x) ? x : std::numeric_limits<double>::infinity();
        }
    emulate_growth(cols, count, D, r.growth, r.delta_growth);
    r.layers.resize(D);
    for (int c = 0; c < stride; ++c) {
        const Summary sm = emulate_summary(std::vector<double>(cols + c * count, cols + (c + 1) * count));
        if (c < D * kNumQuantities) r.layers[c / kNumQuantities][c % kNumQuantities] = sm;
        else r.loss = sm;
    }
    return r;
}

inline CellResult emulate_cell_summary_of_rows(const Cell& cell, const std::vector<double>& rows, uint64_t count) {
    std::vector<double> cols(count * row_stride(cell.depth()));
    return emulate_cell_summary_of_rows(cell, rows.data(), count, cols.data());
}

// The cell's seeds [off, off + count) run by the emulated kernel, then summarised as above.
inline CellResult emulate_cell_summary(const Spec& spec, const Cell& cell, uint64_t off, uint64_t count) {
    return emulate_cell_summary_of_rows(cell, emulate_run_precision(spec, cell, off, count), count);
}

}  // namespace gs::emu
