// The growth-rate fit's per-seed work on a cell's columns in device memory
// (device_growth.cu), as one thread per seed runs it: shared with the host
// emulation (tests/gpu/emu_growth.hpp), which runs these same bodies over the
// same index spaces, so the emulated and the real device fit are one code.
// The terms are growth_terms.hpp's, which the host fit (growth_rate.cpp) runs
// too; the sums go through term_block_partial and pairwise_tree (the shared
// order), and fit_growth_with finishes them on the host in both cases.
#pragma once
#include <cstdint>

#include "gradsweep/growth_terms.hpp"
#include "gradsweep/hd.hpp"
#include "gradsweep/stats.hpp"  // kNumQuantities, Quantity

namespace gs::kern {

// A cell's columns, column-major (column l * kNumQuantities + q, `count` values
// each, in seed order; non-finite values may have been mapped to +inf, which the
// fit treats alike). Fitted layer k is layer first + k; num is its
// weight_grad_rms, den (ratio fits) the activation_rms of the layer before.
struct GrowthColumns {
    const double* cols = nullptr;
    uint64_t count = 0;
    int first = 1;
    int layers = 0;
    bool ratio = false;
    GS_HD double num(int k, uint64_t s) const {
        return cols[(static_cast<uint64_t>(first + k) * kNumQuantities + weight_grad_rms) * count + s];
    }
    GS_HD double den(int k, uint64_t s) const {
        return ratio ? cols[(static_cast<uint64_t>(first + k - 1) * kNumQuantities + activation_rms) * count + s] : 1.0;
    }
};

// Seed s: 1 when its value is usable in every fitted layer.
GS_HD unsigned char growth_used_body(const GrowthColumns& c, uint64_t s) {
    bool ok = true;
    for (int k = 0; ok && k < c.layers; ++k) ok = growth_usable(c.num(k, s), c.den(k, s));
    return ok ? 1 : 0;
}

// The j-th used seed (idx: the used seeds in seed order) in layer k: its
// exponent (kNoExponent for 0), whose maximum is the layer's E.
GS_HD int growth_exponent_body(const GrowthColumns& c, const uint64_t* idx, int k, uint64_t j) {
    return growth_exponent(c.num(k, idx[j]), c.den(k, idx[j]));
}

// ... its scaled square, the term of layer k's sum.
GS_HD double growth_term_body(const GrowthColumns& c, const uint64_t* idx, int k, int E, uint64_t j) {
    return growth_scaled_square(c.num(k, idx[j]), c.den(k, idx[j]), E);
}

// ... its delta-method value g_s: the layers in order, as growth_seed_value
// runs them (one fma each), without an array of the seed's terms.
GS_HD double growth_value_body(const GrowthColumns& c, const uint64_t* idx, const int* E, const double* r, uint64_t j) {
    double v = 0.0;
    for (int k = 0; k < c.layers; ++k) v = growth_seed_step(v, growth_scaled_square(c.num(k, idx[j]), c.den(k, idx[j]), E[k]), r[k]);
    return v;
}

}  // namespace gs::kern
