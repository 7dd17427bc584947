// The CPU reference and production path: forward, backward and per-layer
// statistics for L networks at once, one network per SIMD lane. Each lane runs
// exactly the same instruction stream, so a network's result depends only on its
// seed — never on which lane, thread or batch of seeds it ran in.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gradsweep/activation.hpp"
#include "gradsweep/init.hpp"
#include "gradsweep/random_values.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/torch_params.hpp"

namespace gs::cpu {

// Everything about a cell that the inner loops need, resolved once.
struct CellPlan {
    std::vector<int> n;                 // layer sizes
    int depth = 0, batch = 1, max_width = 0;
    std::vector<Dist> wdist, bdist;     // per layer
    std::vector<char> act, res;         // per layer: activation applied, residual added
    double rs = 1.0, slope = 0.01, target = 0.0;
    bool bias = true, torch = false, random_input = true;
    uint32_t rng_key = 0;
    std::vector<double> input;          // fixed input [batch][n0]
    const Cell* cell = nullptr;
    const InputSpec* input_spec = nullptr;

    CellPlan(const Spec& spec, const Cell& c);
};

template <class T, int L>
struct Scratch {
    std::vector<T> a, z;       // per layer offsets below; [b][unit][lane]
    std::vector<size_t> off;   // offset of layer l's activations in a (l = 0..D) and z (l = 1..D)
    std::vector<T> w, bias, g, gprev, delta, sabs, ssq, smax, row;
    std::vector<HostParams> torch;  // per lane, torch mode only

    explicit Scratch(const CellPlan& p) {
        off.assign(p.depth + 2, 0);
        for (int l = 0; l <= p.depth; ++l) off[l + 1] = off[l] + static_cast<size_t>(p.batch) * p.n[l] * L;
        a.assign(off[p.depth + 1], T(0));
        z.assign(off[p.depth + 1], T(0));
        size_t wmax = 0;
        for (int l = 0; l < p.depth; ++l) wmax = std::max(wmax, static_cast<size_t>(p.n[l]) * p.n[l + 1]);
        w.assign(wmax * L, T(0));
        const size_t m = static_cast<size_t>(p.max_width) * L, bm = m * p.batch;
        bias.assign(m, T(0));
        g.assign(bm, T(0));
        gprev.assign(bm, T(0));
        delta.assign(bm, T(0));
        sabs.assign(m, T(0));
        ssq.assign(m, T(0));
        smax.assign(m, T(0));
        row.assign(m, T(0));
        if (p.torch) torch.resize(L);
    }
};

// Writes row_stride(depth) doubles per lane for lanes [0, nvalid); lanes past
// nvalid run on padding seeds so every lane does identical work.
template <class T, int L>
void run_lanes(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s);

}  // namespace gs::cpu
