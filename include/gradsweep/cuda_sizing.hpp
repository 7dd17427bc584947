// How the CUDA backend sizes its work, as plain functions of a cell: the
// backend (kernels/net_layout.cuh, kernels/chunk_runner.cuh) and `gradsweep plan`
// (src/run/memory_plan.cpp) both call these, so the plan counts what the backend
// allocates. Host C++ only, no CUDA API: the CPU-only build compiles the plan.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace gs::kern {

// Threads that cooperate on one network. Up to width 32 (the widest layer, the
// input included) a thread runs a whole network (thousands per launch); wider
// layers get a block, sized so the row sweep (one thread per output unit) and
// the column sweep (one thread per four input units) both keep most threads
// busy. A function of the cell only, never of the seed count, so a network's
// result never depends on how seeds were split.
inline int threads_per_network(int max_width) {
    if (max_width <= 32) return 1;
    int p = 32;
    const int want = (max_width + 3) / 4;
    while (p < want && p < 256) p *= 2;
    return p;
}

// Most networks per launch: enough to fill any GPU, few enough that one launch
// stays well under a second for the small networks that reach the cap.
inline uint64_t launch_cap(int threads_per_net) { return threads_per_net == 1 ? (uint64_t{1} << 20) : (uint64_t{1} << 16); }

// Elements of one network's scratch for layer sizes n and batch B: a_l of every
// layer (the input too), z of every layer after the input, and three gradient
// vectors (g twice, delta) as wide as the widest layer, input included.
// U: the plan counts in a wider type, so an absurd spec saturates instead of wrapping.
template <class U = uint64_t>
U network_scratch_elements(const std::vector<int>& n, int batch) {
    const U B = static_cast<U>(batch);
    U acts = 0, zs = 0;
    int widest = 0;
    for (size_t l = 0; l < n.size(); ++l) {
        acts += B * static_cast<U>(n[l]);
        if (l > 0) zs += B * static_cast<U>(n[l]);
        widest = std::max(widest, n[l]);
    }
    return acts + zs + 3 * B * static_cast<U>(widest);
}

// Elements of one network's torch-mode parameters: W and (with bias) b of every
// layer, and the input batch when it is drawn (a fixed input is shared).
template <class U = uint64_t>
U torch_param_elements(const std::vector<int>& n, bool bias, bool random_input, int batch) {
    U p = 0;
    for (size_t l = 0; l + 1 < n.size(); ++l) p += static_cast<U>(n[l]) * static_cast<U>(n[l + 1]) + (bias ? static_cast<U>(n[l + 1]) : 0);
    return p + (random_input ? static_cast<U>(batch) * static_cast<U>(n[0]) : 0);
}

}  // namespace gs::kern
