// Shared by the GPU tests and the host emulation tests: random cells, specs built
// in code, NaN-poisoned runs and a row comparison that says where it failed.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

namespace gs::gputest {

// The source tree the tests read their data from (tests/data, sweeps/seeds): the
// one this binary was built from, or GS_SOURCE_DIR from the environment when the
// binary runs from another checkout (a prebuilt binary carried to a GPU machine,
// scripts/gpu_accept.sh).
inline std::string source_dir() {
    const char* env = std::getenv("GS_SOURCE_DIR");
    return env && *env ? std::string(env) : std::string(GS_SOURCE_DIR);
}

inline Spec make_spec(Precision precision, int batch, bool random_input, uint64_t seed_first, uint64_t seed_count,
                      int input_dim, uint32_t rng_key = 7, double target = 0.25) {
    Spec s;
    s.name = "gpu-test";
    s.seed_first = seed_first;
    s.seed_count = seed_count;
    s.rng = RngKind::philox;
    s.rng_key = rng_key;
    s.precision = precision;
    s.target = target;
    s.input.random = random_input;
    s.input.batch = batch;
    if (!random_input) {
        // A fixed input with sign changes and an exact zero.
        for (int b = 0; b < batch; ++b) {
            std::vector<double> row;
            for (int j = 0; j < input_dim; ++j) row.push_back(std::sin(1.0 + 0.7 * j + 1.3 * b) * ((j + b) % 5 == 2 ? 0.0 : 1.5));
            s.input.values.push_back(row);
        }
    }
    return s;
}

struct CellOptions {
    int max_width = 32;
    int max_depth = 8;
    bool uniform_hidden = true;  // all hidden layers the same width (so shortcuts apply)
};

// A random but well-formed cell: every activation, init, shortcut, bias and
// last_activation setting is reachable.
inline Cell random_cell(std::mt19937_64& rng, const CellOptions& o) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Cell c;
    const int depth = pick(1, o.max_depth);
    const int width = pick(1, o.max_width);
    c.layer_sizes.push_back(pick(0, 2) == 0 ? width : pick(1, o.max_width));
    for (int l = 1; l < depth; ++l) c.layer_sizes.push_back(o.uniform_hidden ? width : pick(1, o.max_width));
    c.layer_sizes.push_back(pick(0, 3) == 0 ? width : pick(1, std::min(o.max_width, 8)));
    c.activation = static_cast<Activation>(pick(0, kNumActivations - 1));
    c.leaky_slope = 0.05;
    c.shortcut = pick(0, 1) == 1;
    c.bias = pick(0, 3) != 0;
    c.last_activation = pick(0, 1) == 1;
    c.residual_scale = pick(0, 1) ? 1.0 : 0.5;
    const int ik = pick(0, kNumInits - 1);
    c.init.kind = static_cast<InitKind>(ik);
    if (c.init.kind == InitKind::normal) {
        c.init.sigma_w = 1.3;
        c.init.sigma_b = pick(0, 1) ? 0.0 : 0.2;
    }
    return c;
}

inline std::string describe(const Cell& c, const Spec& s) {
    std::ostringstream o;
    o << "sizes=";
    for (size_t i = 0; i < c.layer_sizes.size(); ++i) o << (i ? "-" : "") << c.layer_sizes[i];
    o << " act=" << kActivationNames[static_cast<int>(c.activation)] << " shortcut=" << c.shortcut << " bias=" << c.bias
      << " last_act=" << c.last_activation << " rs=" << c.residual_scale << " init=" << kInitNames[static_cast<int>(c.init.kind)]
      << " batch=" << s.input.batch << " random_input=" << s.input.random << " precision=" << precision_name(s.precision);
    return o.str();
}

// Rows equal bit for bit (same length, same bytes: -0 is not +0, NaN payloads count).
inline bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Rows from a backend into a NaN-filled buffer, so a slot the backend forgets to
// write cannot pass for a value.
inline std::vector<double> run_poisoned(Backend& b, const Spec& spec, const Cell& c, uint64_t off, uint64_t count) {
    std::vector<double> rows(count * row_stride(c.depth()), std::numeric_limits<double>::quiet_NaN());
    b.run(spec, c, off, count, rows.data());
    return rows;
}

struct Comparison {
    uint64_t failures = 0;
    double max_rel = 0;     // over the compared finite pairs
    std::string first;      // the first failure, readable
    bool ok() const { return failures == 0; }
};

// |got - want| <= tol[k] * max(|got|, |want|) + abs_floor, element k. Non-finite
// values must match in kind (NaN with NaN, +inf with +inf).
inline Comparison compare_rows(const std::vector<double>& got, const std::vector<double>& want, const std::vector<double>& tol,
                               double abs_floor, int stride) {
    Comparison r;
    if (got.size() != want.size()) {
        r.failures = 1;
        r.first = "size mismatch";
        return r;
    }
    for (size_t k = 0; k < got.size(); ++k) {
        const double g = got[k], w = want[k];
        bool ok;
        if (!std::isfinite(g) || !std::isfinite(w)) {
            ok = (std::isnan(g) && std::isnan(w)) || g == w;
        } else {
            const double scale = std::max(std::fabs(g), std::fabs(w));
            const double err = std::fabs(g - w);
            if (scale > 0) r.max_rel = std::max(r.max_rel, err / scale);
            ok = err <= tol[k] * scale + abs_floor;
        }
        if (!ok) {
            if (r.failures == 0) {
                const int slot = static_cast<int>(k % stride);
                const int depth = (stride - 1) / kNumQuantities;
                std::ostringstream o;
                o.precision(17);
                o << "network " << k / stride << " slot " << slot << " ("
                  << (slot == depth * kNumQuantities ? std::string("loss")
                                                     : "layer " + std::to_string(slot / kNumQuantities) + " " +
                                                           kQuantityNames[slot % kNumQuantities])
                  << "): got " << g << " want " << w << " tol " << tol[k];
                r.first = o.str();
            }
            ++r.failures;
        }
    }
    return r;
}

inline Comparison compare_rows(const std::vector<double>& got, const std::vector<double>& want, double tol, double abs_floor,
                               int stride) {
    return compare_rows(got, want, std::vector<double>(got.size(), tol), abs_floor, stride);
}

// Tolerance `base + factor * e32` for every value of a network, where e32 is the
// largest relative distance between float32 and float64 (the CPU backend in
// both) over that network's row. e32 measures how much the network amplifies
// rounding (deep chaotic nets, a ReLU kink hit almost exactly); taking the
// network's maximum rather than each value's own distance matters because one
// float32 run can land close to float64 on a value by luck while another float32
// computation (other rounding, other FMA contraction) does not.
// float32 runs: factor 10. float64 runs: rounding is ~1e9 times smaller than in
// float32, so factor 1e-5 still leaves a wide margin.
inline std::vector<double> conditioned_tolerance(const std::vector<double>& cpu32, const std::vector<double>& cpu64, double base,
                                                 double factor, int stride) {
    std::vector<double> tol(cpu64.size(), base);
    for (size_t r = 0; r + stride <= tol.size(); r += stride) {
        double e32 = 0;
        for (size_t k = r; k < r + stride; ++k) {
            const double a = cpu32[k], b = cpu64[k];
            if (std::isfinite(a) && std::isfinite(b)) {
                const double scale = std::max(std::fabs(a), std::fabs(b));
                if (scale > 0) e32 = std::max(e32, std::fabs(a - b) / scale);
            }
        }
        for (size_t k = r; k < r + stride; ++k) tol[k] = base + factor * e32;
    }
    return tol;
}

inline std::vector<double> float32_tolerance(const std::vector<double>& cpu32, const std::vector<double>& cpu64, double base,
                                             int stride) {
    return conditioned_tolerance(cpu32, cpu64, base, 10.0, stride);
}

// Per-value tolerances for rows compared with `want`, the CPU backend's rows of
// (spec, cell, off, count): tol64 for float64; for float32, whose operation order
// is the CPU backend's but whose FMA contraction may differ (and does between
// -march=native and not), what float32 rounding does to each value, measured as
// CPU float32 vs CPU float64, on top of tol32.
inline std::vector<double> cpu_row_tolerances(Backend& cpu, const Spec& spec, const Cell& cell, uint64_t off, uint64_t count,
                                              const std::vector<double>& want, double tol64, double tol32) {
    if (spec.precision != Precision::float32) return std::vector<double>(want.size(), tol64);
    Spec s64 = spec;
    s64.precision = Precision::float64;
    return float32_tolerance(want, run_poisoned(cpu, s64, cell, off, count), tol32, row_stride(cell.depth()));
}

}  // namespace gs::gputest
