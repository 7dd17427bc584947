// What the network kernel needs to know about a cell, resolved on the host once
// per (spec, cell): per-layer sizes, distributions and flags, where each layer's
// vectors live in a network's scratch, how torch-mode parameters are packed, and
// how many networks fit on the device at a time. Plain host C++ (no CUDA API), so
// the host emulation tests build the same arguments the GPU gets.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gradsweep/cuda_sizing.hpp"  // threads_per_network, network_scratch_elements, torch_param_elements
#include "gradsweep/init.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/torch_params.hpp"

namespace gs::kern {

struct LayerDesc {
    int n_in = 0, n_out = 0;
    int act = 0, res = 0;  // activation applied / input added back
    Dist wdist, bdist;     // philox mode; bdist is zero when the cell has no bias
    // Element offsets (already multiplied by the batch) in a network's scratch:
    // layer input a_l [b][n_in], output a_{l+1} [b][n_out], pre-activation z [b][n_out].
    uint64_t off_a_in = 0, off_a_out = 0, off_z = 0;
    // Torch mode: offsets of W [n_out][n_in] and b [n_out] in a network's parameters.
    uint64_t off_w = 0, off_b = 0;
};

// Everything the kernel reads, as plain values and device pointers.
template <class T>
struct NetArgs {
    const LayerDesc* layers = nullptr;
    int depth = 0, batch = 1;
    Activation activation = Activation::relu;
    T slope = T(0), rs = T(1), target = T(0);
    uint32_t rng_key = 0;
    uint64_t seed0 = 0;  // network k of the launch has seed seed0 + k
    int torch = 0, random_input = 1, has_bias = 1;
    const T* fixed_input = nullptr;  // [batch][n0] when !random_input
    const T* params = nullptr;       // torch mode: params_per_net values per network
    uint64_t params_per_net = 0, off_input = 0;
    // Scratch: network k's element e is scratch[k * scratch_per_net + e] (block per
    // network) or scratch[e * nets + k] (soa: thread per network, so a warp's 32
    // networks read 32 consecutive words).
    T* scratch = nullptr;
    uint64_t scratch_per_net = 0, nets = 0;
    int soa = 0;
    // 1: block per network (P > 1) with the network's scratch in the block's shared
    // memory, right after the 3 * P reduction doubles; `scratch` is then unused.
    // Same layout, same offsets, same arithmetic: only where the values live.
    int shared_scratch = 0;
    int small_shape = -1;  // kSmallShapes index (small_net_body.cuh) of the body that runs, -1: network_body
    uint64_t off_g0 = 0, off_g1 = 0, off_delta = 0;  // upstream gradient (two) and delta, [b][unit]
    // The column sweep's row cache (P = 1, weight_cache_elements): network k's
    // buffer p, row i is Quad (four values) (p * wcache_rows + i) * nets + k of the
    // Quad array at scratch + off_wcache * nets. wcache_rows = 0: none.
    uint64_t off_wcache = 0;
    int wcache_rows = 0;
    double* out = nullptr;  // row_stride(depth) doubles per network
    int stride = 0;
};

struct NetLayout {
    std::vector<LayerDesc> layers;
    int depth = 0, batch = 1, max_width = 0, input_dim = 0;
    int threads_per_net = 1;
    bool small_kernel = true;  // false: network_body for every shape (test hook, for comparisons)
    bool torch = false, random_input = true, bias = true;
    uint64_t scratch_per_net = 0;  // elements
    uint64_t off_g0 = 0, off_g1 = 0, off_delta = 0;
    uint64_t vectors_end = 0;  // elements before the row cache
    uint64_t off_wcache = 0;   // the row cache, the scratch's last region (NetArgs)
    int wcache_rows = 0;
    uint64_t params_per_net = 0, off_input = 0;  // torch mode, elements
    std::vector<double> fixed_input;            // [batch][n0]
};

// Four values of the row cache, one vector load or store (cuda_sizing.hpp's
// weight_cache_start aligns them).
template <class T>
struct alignas(16) Quad {
    T v[4];
};

// The layer sizes n_0 .. n_D of a layout.
inline std::vector<int> layer_sizes(const NetLayout& L) {
    std::vector<int> n{L.layers.front().n_in};
    for (const LayerDesc& d : L.layers) n.push_back(d.n_out);
    return n;
}

// Sizes the row cache for the layout's threads per network (it exists at P = 1
// only), and with it the scratch. Called again whenever P is set.
inline void size_weight_cache(NetLayout& L) {
    if (L.layers.empty()) return;  // a probe layout (force_threads_per_net's argument check)
    const uint64_t cache = weight_cache_elements(layer_sizes(L), L.threads_per_net);
    L.wcache_rows = cache ? L.max_width : 0;
    L.off_wcache = weight_cache_start(L.vectors_end);
    L.scratch_per_net = scratch_with_cache(L.vectors_end, cache);
}

inline NetLayout make_layout(const Spec& spec, const Cell& cell) {
    NetLayout L;
    const auto& n = cell.layer_sizes;
    if (n.size() < 2) throw std::runtime_error("cuda backend: cell without layers");
    L.depth = cell.depth();
    L.batch = spec.input.batch;
    L.input_dim = n[0];
    L.max_width = *std::max_element(n.begin(), n.end());
    L.threads_per_net = threads_per_network(L.max_width);
    L.torch = spec.rng == RngKind::torch;
    L.random_input = spec.input.random;
    L.bias = cell.bias;
    const uint64_t B = static_cast<uint64_t>(L.batch);
    uint64_t a_total = 0;
    for (int l = 0; l <= L.depth; ++l) a_total += B * static_cast<uint64_t>(n[l]);
    uint64_t a_off = 0, z_off = a_total, p_off = 0;
    for (int l = 0; l < L.depth; ++l) {
        LayerDesc d;
        d.n_in = n[l];
        d.n_out = n[l + 1];
        // Philox counters index an element by a 32-bit word (block e/4, see random_values.hpp).
        if (static_cast<uint64_t>(d.n_in) * static_cast<uint64_t>(d.n_out) >= (uint64_t{1} << 32))
            throw std::runtime_error("cuda backend: layer " + std::to_string(l) + " has 2^32 or more weights");
        d.act = cell.activation_at(l) ? 1 : 0;
        d.res = cell.residual_at(l) ? 1 : 0;
        d.wdist = weight_dist(cell.init, n[l], n[l + 1]);
        d.bdist = cell.bias ? bias_dist(cell.init, n[l]) : Dist{};
        d.off_a_in = a_off;
        a_off += B * static_cast<uint64_t>(n[l]);
        d.off_a_out = a_off;
        d.off_z = z_off;
        z_off += B * static_cast<uint64_t>(n[l + 1]);
        d.off_w = p_off;
        p_off += static_cast<uint64_t>(d.n_in) * static_cast<uint64_t>(d.n_out);
        d.off_b = p_off;
        if (cell.bias) p_off += static_cast<uint64_t>(d.n_out);
        L.layers.push_back(d);
    }
    const uint64_t vec = B * static_cast<uint64_t>(L.max_width);
    L.off_g0 = z_off;
    L.off_g1 = L.off_g0 + vec;
    L.off_delta = L.off_g1 + vec;
    L.vectors_end = L.off_delta + vec;
    size_weight_cache(L);
    if (L.scratch_per_net != network_scratch_elements(n, L.batch))  // what the plan counts
        throw std::logic_error("cuda backend: scratch layout and network_scratch_elements disagree");
    if (L.torch) {
        L.off_input = p_off;
        if (L.random_input) p_off += B * static_cast<uint64_t>(n[0]);
        L.params_per_net = torch_param_elements(n, L.bias, L.random_input, L.batch);  // what the plan counts
        if (p_off != L.params_per_net) throw std::logic_error("cuda backend: parameter layout and torch_param_elements disagree");
    }
    if (!L.random_input) {
        if (spec.input.values.size() != B) throw std::runtime_error("cuda backend: fixed input rows != batch");
        for (const auto& r : spec.input.values) {
            if (r.size() != static_cast<size_t>(n[0])) throw std::runtime_error("cuda backend: fixed input row width != input_dim");
            L.fixed_input.insert(L.fixed_input.end(), r.begin(), r.end());
        }
    }
    return L;
}

// Torch-mode parameters of one network, converted to T as the CPU backend does.
template <class T>
void pack_torch_params(const NetLayout& L, const HostParams& hp, T* dst) {
    if (hp.weight.size() != L.layers.size()) throw std::runtime_error("torch_params: wrong number of weight tensors");
    for (size_t l = 0; l < L.layers.size(); ++l) {
        const LayerDesc& d = L.layers[l];
        const size_t numel = static_cast<size_t>(d.n_in) * static_cast<size_t>(d.n_out);
        if (hp.weight[l].size() != numel) throw std::runtime_error("torch_params: wrong weight size");
        for (size_t e = 0; e < numel; ++e) dst[d.off_w + e] = static_cast<T>(hp.weight[l][e]);
        if (L.bias) {
            if (hp.bias.size() != L.layers.size() || hp.bias[l].size() != static_cast<size_t>(d.n_out))
                throw std::runtime_error("torch_params: wrong bias size");
            for (int i = 0; i < d.n_out; ++i) dst[d.off_b + i] = static_cast<T>(hp.bias[l][i]);
        }
    }
    if (L.random_input) {
        const size_t ni = static_cast<size_t>(L.batch) * static_cast<size_t>(L.input_dim);
        if (hp.input.size() != ni) throw std::runtime_error("torch_params: wrong input size");
        for (size_t e = 0; e < ni; ++e) dst[L.off_input + e] = static_cast<T>(hp.input[e]);
    }
}

// Torch-mode parameters for seeds seed0 .. seed0+n-1, packed network after
// network, made on host threads (torch_params is a pure function of the seed).
template <class T>
void make_torch_params(const Spec& spec, const Cell& cell, const NetLayout& L, uint64_t seed0, uint64_t n, std::vector<T>& host) {
    host.assign(n * L.params_per_net, T(0));
    const uint64_t workers = std::min<uint64_t>(std::max(1u, std::thread::hardware_concurrency()), n);
    std::exception_ptr error;
    std::mutex mu;
    auto work = [&](uint64_t w) {
        try {
            for (uint64_t k = w; k < n; k += workers)
                pack_torch_params<T>(L, torch_params(cell, spec.input, seed0 + k), host.data() + k * L.params_per_net);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu);
            if (!error) error = std::current_exception();
        }
    };
    if (workers <= 1) {
        work(0);
    } else {
        std::vector<std::thread> pool;
        for (uint64_t w = 0; w < workers; ++w) pool.emplace_back(work, w);
        for (auto& th : pool) th.join();
    }
    if (error) std::rethrow_exception(error);
}

template <class T>
NetArgs<T> make_args(const Spec& spec, const Cell& cell, const NetLayout& L) {
    NetArgs<T> a;
    a.depth = L.depth;
    a.batch = L.batch;
    a.activation = cell.activation;
    a.slope = static_cast<T>(cell.leaky_slope);
    a.rs = static_cast<T>(cell.residual_scale);
    a.target = static_cast<T>(spec.target);
    a.rng_key = spec.rng_key;
    a.torch = L.torch ? 1 : 0;
    a.random_input = L.random_input ? 1 : 0;
    a.has_bias = L.bias ? 1 : 0;
    a.params_per_net = L.params_per_net;
    a.off_input = L.off_input;
    a.scratch_per_net = L.scratch_per_net;
    a.soa = L.threads_per_net == 1 ? 1 : 0;
    a.off_g0 = L.off_g0;
    a.off_g1 = L.off_g1;
    a.off_delta = L.off_delta;
    a.off_wcache = L.off_wcache;
    a.wcache_rows = L.wcache_rows;
    a.stride = row_stride(L.depth);
    return a;  // pointers, seed0 and nets are per launch
}

// Device bytes one network needs during a launch: its scratch (unless it lives in
// shared memory), its torch-mode parameters and, when its row goes to the host,
// its row in each of the kRowBuffers row buffers (cuda_sizing.hpp); rows written
// straight into a caller's device buffer were allocated before the budget was
// measured.
inline uint64_t bytes_per_network(const NetLayout& L, size_t sizeof_t, bool rows_to_host, bool scratch_in_shared = false) {
    return ((scratch_in_shared ? 0 : L.scratch_per_net) + L.params_per_net) * sizeof_t +
           (rows_to_host ? kRowBuffers * static_cast<uint64_t>(row_stride(L.depth)) * sizeof(double) : 0);
}

// Networks per launch: as many as fit in `budget` bytes (what cudaMemGetInfo says
// is free, less a margin), at most `cap`, at least one or an error.
inline uint64_t networks_per_chunk(uint64_t count, uint64_t per_net_bytes, uint64_t budget, uint64_t cap) {
    if (count == 0) return 0;
    const uint64_t fit = per_net_bytes ? budget / per_net_bytes : count;
    if (fit == 0)
        throw std::runtime_error("cuda backend: one network needs " + std::to_string(per_net_bytes) + " bytes of device memory, " +
                                 std::to_string(budget) + " available");
    return std::min({count, fit, cap});
}

}  // namespace gs::kern
