// The pieces of the device summary of a column (device_summary.cu) that run in
// its kernels, shared with the host emulation (tests/gpu/emu_device.hpp) so the
// emulated and the real device summary are the same code. Same semantics, and
// the same bits, as gs::summarize (src/aggregate/stats.cpp): the sums over the
// finite values in the summation order of column_sums.hpp (each block's partial
// by one thread, then the pairwise tree), the counts, and the order statistics
// of the values sorted ascending with every non-finite value mapped to +inf (so
// the n finite ones are v[0 .. n)). Mean, std and geomean are then finished on
// the host by moments_from_sums, as the host summariser finishes its own.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "gradsweep/column_sums.hpp"
#include "gradsweep/hd.hpp"
#include "gradsweep/stats.hpp"

namespace gs::kern {

// One block's partial of a lane term over a column's n finite values (in seed
// order): the work of one device thread.
GS_HD double term_block_partial(const double* finite, uint64_t n, uint64_t block, SumTerm t, double a, double b) {
    return block_partial(finite, n, block, [t, a, b](double acc, double x) { return add_term(t, acc, x, a, b); });
}

// Counts of a column's finite values: n is known (the compaction's); positive and zero ones.
GS_HD void count_signs(const double* finite, uint64_t n, uint64_t& n_pos, uint64_t& n_zero) {
    n_pos = n_zero = 0;
    for (uint64_t i = 0; i < n; ++i) {
        n_pos += finite[i] > 0;
        n_zero += finite[i] == 0;
    }
}

// min, max and the quantiles from the column's order keys sorted ascending
// (order_key, column_sums.hpp: -0.0 below +0.0; non-finite values, as +inf,
// after the n >= 1 finite ones): what the host's key selection finds.
GS_HD void order_statistics_sorted_keys(const uint64_t* k, uint64_t n, Summary& s) {
    s.min = from_order_key(k[0]);
    s.max = from_order_key(k[n - 1]);
    const QuantileAt q05 = quantile_at(0.05, n), qm = quantile_at(0.5, n), q95 = quantile_at(0.95, n);
    auto at = [k, n](uint64_t i) { return from_order_key(k[i < n ? i : n - 1]); };
    s.q05 = interpolate(at(q05.lo), at(q05.lo + 1), q05.frac);
    s.median = interpolate(at(qm.lo), at(qm.lo + 1), qm.frac);
    s.q95 = interpolate(at(q95.lo), at(q95.lo + 1), q95.frac);
}

// min, max and the quantiles from the sorted column (n >= 1 finite values first).
GS_HD void order_statistics_sorted(const double* v, uint64_t n, Summary& s) {
    s.min = v[0];
    s.max = v[n - 1];
    const QuantileAt q05 = quantile_at(0.05, n), qm = quantile_at(0.5, n), q95 = quantile_at(0.95, n);
    auto next = [n](uint64_t lo) { return lo + 1 < n ? lo + 1 : n - 1; };
    s.q05 = interpolate(v[q05.lo], v[next(q05.lo)], q05.frac);
    s.median = interpolate(v[qm.lo], v[next(qm.lo)], qm.frac);
    s.q95 = interpolate(v[q95.lo], v[next(q95.lo)], q95.frac);
}

// Whether row s (of `stride` values) has a non-finite value: the cell's
// nonfinite_networks counts these rows (CellColumns::add_rows on the host).
GS_HD bool row_has_nonfinite(const double* rows, int stride, uint64_t s) {
    bool bad = false;
    for (int k = 0; k < stride; ++k) bad |= !hd_finite(rows[s * static_cast<uint64_t>(stride) + k]);
    return bad;
}

}  // namespace gs::kern
