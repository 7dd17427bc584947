// One group of L networks from seeds to result rows, in the order the work
// happens; each step is a small always-inlined function in the header named
// beside it, so this reads as the algorithm while compiling to one function
// per (T, L, activation), as it did when it was a single body.
#include "cpu/network.hpp"

#include "cpu/backward.hpp"     // mse_loss, backward_delta, backward_input
#include "cpu/forward.hpp"      // load_input, forward_layer
#include "cpu/lane_random.hpp"  // lane_keys, draw_torch_params, pregenerate_all
#include "cpu/layer_stats.hpp"  // bias_grad_statistics, weight_grad_statistics, stage_to_rows

namespace gs::cpu {

CellPlan::CellPlan(const Spec& spec, const Cell& c) {
    cell = &c;
    input_spec = &spec.input;
    n = c.layer_sizes;
    depth = c.depth();
    batch = spec.input.batch;
    max_width = *std::max_element(n.begin(), n.end());
    rs = c.residual_scale;
    slope = c.leaky_slope;
    target = spec.target;
    bias = c.bias;
    torch = spec.rng == RngKind::torch;
    rng_key = spec.rng_key;
    random_input = spec.input.random;
    for (int l = 0; l < depth; ++l) {
        wdist.push_back(weight_dist(c.init, n[l], n[l + 1]));
        bdist.push_back(c.bias ? bias_dist(c.init, n[l]) : Dist{});
        act.push_back(c.activation_at(l));
        res.push_back(c.residual_at(l));
    }
    if (!random_input)
        for (const auto& r : spec.input.values) input.insert(input.end(), r.begin(), r.end());
}

namespace {

template <class T, int L, Activation A>
void run_lanes_act(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s) {
    const int D = p.depth;
    const LaneKeys keys = lane_keys<L>(seeds);
    if (p.torch) draw_torch_params<T, L>(p, seeds, s);
    load_input<T, L>(p, keys, s);
    if (s.pregenerate) pregenerate_all<T, L>(p, keys, s);

    double act_ss[L];
    for (int l = 0; l < D; ++l) forward_layer<T, L, A>(p, keys, s, l, act_ss);
    mse_loss<T, L>(p, s);

    // Backward: s.g holds dLoss/da_{l+1} on entry to layer l.
    for (int l = D - 1; l >= 0; --l) {
        backward_delta<T, L, A>(p, s, l);
        bias_grad_statistics<T, L>(p, s, l);
        if (l > 0) backward_input<T, L>(p, keys, s, l);
        weight_grad_statistics<T, L>(p, s, l);
        if (l > 0) std::swap(s.g, s.gprev);
    }
    // Rows out of the lane-major staging area: whole-lane loops above vectorise
    // (divisions and square roots 8 lanes at a time); this is the only strided pass.
    stage_to_rows<L>(s.stage.data(), row_stride(D), nvalid, out);
}

}  // namespace

template <class T, int L>
void run_lanes(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s) {
    dispatch_activation(p.cell->activation, [&]<Activation A>() { run_lanes_act<T, L, A>(p, seeds, nvalid, out, s); });
}

template void run_lanes<float, 1>(const CellPlan&, const uint64_t*, int, double*, Scratch<float, 1>&);
template void run_lanes<float, 16>(const CellPlan&, const uint64_t*, int, double*, Scratch<float, 16>&);
template void run_lanes<double, 1>(const CellPlan&, const uint64_t*, int, double*, Scratch<double, 1>&);
template void run_lanes<double, 8>(const CellPlan&, const uint64_t*, int, double*, Scratch<double, 8>&);

}  // namespace gs::cpu
