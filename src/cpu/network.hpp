// The CPU reference and production path: forward, backward and per-layer
// statistics for L networks at once, one network per SIMD lane (L = 16 floats or
// 8 doubles), or one network at a time vectorised over units (L = 1, wide layers).
// Each lane runs exactly the same instruction stream, so a network's result
// depends only on its seed — never on which lane, thread or batch of seeds it ran in.
//
// Where the time goes and what is done about it (numbers: bench/results/, and
// bench/bench_tiny_floor for the parts of a tiny network no kernel can avoid):
// - Philox: every weight is one Philox word. Words are made 16 lanes x 2 groups at
//   a time (philox_simd.hpp) and written straight into the [element][lane]
//   layout, so no scatter. Each weight is drawn once per network: the forward pass
//   keeps the layer's weights for the backward pass while they fit a cache-sized
//   budget (kKeepWeightsBytes), and regenerates them in the backward pass beyond it.
// - Activations: float exp/erf/tanh are straight-line polynomials (vec_math.hpp)
//   that vectorise across lanes; the forward pass also stores f'(z), so the backward
//   pass needs no transcendental function at all.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
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

// One network per SIMD lane (L = 16 floats or 8 doubles) while every layer, the
// input included, is at most this wide; one network at a time vectorised over
// units (L = 1) beyond: a wide layer fills the vectors on its own, and L copies
// of its weights would leave the cache.
inline constexpr int kLanesMaxWidth = 64;

// Calls f.template operator()<T, L>() with the element type and lane count the
// CPU backend runs a cell of this precision and widest layer with. The backend
// (backend.cpp) and `gradsweep plan` (memory_plan.cpp: Scratch::bytes_for) both
// decide through here.
template <class F>
void with_lane_layout(Precision precision, int max_width, F&& f) {
    const bool narrow = max_width <= kLanesMaxWidth;
    if (precision == Precision::float32) {
        if (narrow) f.template operator()<float, 16>();
        else f.template operator()<float, 1>();
    } else {
        if (narrow) f.template operator()<double, 8>();
        else f.template operator()<double, 1>();
    }
}

// Threads that work on one call of `networks` networks in groups of L: no more
// than there are groups (at least one).
inline uint64_t threads_for_call(int threads, uint64_t networks, int L) {
    const uint64_t groups = (networks + static_cast<uint64_t>(L) - 1) / static_cast<uint64_t>(L);
    return std::max<uint64_t>(1, std::min<uint64_t>(static_cast<uint64_t>(std::max(1, threads)), groups));
}

// Weights are kept from the forward to the backward pass while all layers' weights
// (for all L lanes) fit in this many bytes per thread: re-reading them from L2/L3
// is cheaper than a second Philox pass; from DRAM it is not.
inline constexpr size_t kKeepWeightsBytes = size_t(6) << 20;

// Pre-generation (Scratch::pregenerate) while a group's weights and biases fit in L1.
inline constexpr size_t kPregenerateBytes = size_t(40) << 10;

// A zeroed, 64-byte aligned array (one cache line = one 16-float vector).
template <class T>
class AlignedBuf {
public:
    AlignedBuf() = default;
    explicit AlignedBuf(size_t n) : n_(n) {
        if (n == 0) return;
        const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
        p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
        if (!p_) throw std::bad_alloc();
        std::memset(static_cast<void*>(p_), 0, bytes);
    }
    AlignedBuf(AlignedBuf&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
    AlignedBuf& operator=(AlignedBuf&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }
    AlignedBuf(const AlignedBuf&) = delete;
    AlignedBuf& operator=(const AlignedBuf&) = delete;
    ~AlignedBuf() { std::free(p_); }
    T* data() { return p_; }
    const T* data() const { return p_; }
    size_t size() const { return n_; }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

template <class T, int L>
struct Scratch {
    // Philox writes whole groups of 16 lanes x 4 blocks, and the L = 1 dot product
    // reads whole vectors, so every tensor gets this many spare elements after it.
    static constexpr size_t kPad = 512;
    static constexpr int kUnitAlign = L == 1 ? 64 / static_cast<int>(sizeof(T)) : 1;

    std::vector<int> np;          // units per layer as stored: L == 1 rounds up to a vector, zero padded
    std::vector<size_t> aoff;     // layer l's activations a_l (l = 0..D) and f'(z_l) at aoff[l]; [b][unit][lane]
    std::vector<size_t> woff;     // layer l's weights [out][in][lane] in w (all 0 when not kept)
    bool keep_weights = true;
    // Small networks with one network per lane (L = 16): every weight and bias of a
    // network group is drawn in one pass before the forward pass, with Philox
    // blocks of different tensors interleaved (a 3x3 layer has only 3 blocks, too
    // few to hide the multiply latency on its own). boff: layer l's bias in ball.
    bool pregenerate = false;
    std::vector<size_t> boff;
    AlignedBuf<T> ball;
    struct GenJob {  // one Philox block (16 lanes) of one tensor
        uint32_t block, layer, stream;
        bool to_bias;  // into ball, else into w
        size_t offset; // the tensor's start in that buffer
        Dist d;
    };
    std::vector<GenJob> jobs;
    AlignedBuf<T> a, dact, w, bias, z, g, gprev, delta, sabs, smax, tmp;
    AlignedBuf<double> ssq;  // squares of float gradients below 1e-19 underflow in float
    std::vector<HostParams> torch;  // per lane, torch mode only
    AlignedBuf<double> stage;       // one group's output rows, [value][lane]

    // Layer l's activations a_l and f'(z_l) (l = 0..D), [b][unit][lane] with np[l] units per sample.
    T* act_at(int l) { return a.data() + aoff[l]; }
    T* dact_at(int l) { return dact.data() + aoff[l]; }
    // Statistics of layer l in the staging area, [quantity][lane]; the loss follows the last layer's.
    double* stage_row(int l) { return stage.data() + static_cast<size_t>(l) * kNumQuantities * L; }

    // Every buffer's element count for layer sizes n, batch B and torch mode, and
    // the two choices that hang on them. The constructor allocates exactly these
    // and bytes_for adds them up, so `gradsweep plan` counts what a thread
    // allocates. In double: the plan's absurd specs stay finite instead of wrapping.
    struct Sizes {
        double acts = 0;      // a and dact, each: every layer's [b][unit][lane] and kPad
        double w = 0;         // every layer's weights when kept, else the largest layer's
        double ball = 0;      // every layer's bias when pre-generated, else nothing
        double stage = 0;     // one group's rows [value][lane] (doubles)
        double vec = 0;       // bias, sabs, smax (T) and ssq (double): the widest layer's units x lanes
        double vec_batch = 0; // z, g, gprev, delta: the same for the whole batch
        double tmp = 0;       // the unpadded input batch
        bool keep_weights = true, pregenerate = false;
    };
    static Sizes sizes_for(const std::vector<int>& n, int B, bool torch) {
        const int D = static_cast<int>(n.size()) - 1;
        double acts = 0, total = 0, largest = 0, biases = 0;
        int max_np = 0;
        for (int l = 0; l <= D; ++l) {
            const int np = (n[l] + kUnitAlign - 1) / kUnitAlign * kUnitAlign;
            acts += static_cast<double>(B) * np * L;
            max_np = std::max(max_np, np);
        }
        for (int l = 0; l < D; ++l) {
            const double sz = static_cast<double>(n[l]) * n[l + 1] * L + kPad;
            total += sz;
            largest = std::max(largest, sz);
            biases += static_cast<double>(n[l + 1]) * L + kPad;
        }
        Sizes out;
        out.keep_weights = total * sizeof(T) <= kKeepWeightsBytes;
        out.pregenerate = L == 16 && out.keep_weights && !torch && (total + biases) * sizeof(T) <= kPregenerateBytes;
        out.acts = acts + kPad;
        out.w = out.keep_weights ? total : largest;
        out.ball = out.pregenerate ? biases : 0;
        out.stage = static_cast<double>(row_stride(D)) * L;
        const double m = static_cast<double>(max_np) * L;
        out.vec = m + kPad;
        out.vec_batch = m * B + kPad;
        out.tmp = static_cast<double>(B) * n[0] * L + kPad;
        return out;
    }

    // The bytes the constructor below allocates for a network of layer sizes n,
    // batch B (torch: with each lane's parameters), computed without allocating:
    // what `gradsweep plan` counts per thread.
    static double bytes_for(const std::vector<int>& n, int B, bool torch) {
        const int D = static_cast<int>(n.size()) - 1;
        const Sizes sizes = sizes_for(n, B, torch);
        auto bytes = [](double elements, double size) { return std::ceil(elements * size / 64) * 64; };  // AlignedBuf's rounding
        double b = 2 * bytes(sizes.acts, sizeof(T)) + bytes(sizes.w, sizeof(T)) + bytes(sizes.ball, sizeof(T)) + bytes(sizes.stage, sizeof(double));
        b += 3 * bytes(sizes.vec, sizeof(T)) + bytes(sizes.vec, sizeof(double)) + 4 * bytes(sizes.vec_batch, sizeof(T)) + bytes(sizes.tmp, sizeof(T));
        b += (sizeof(int) + 2 * sizeof(size_t)) * (D + 2.0);  // np, aoff, woff, boff
        if (torch) {  // HostParams per lane
            double params = 0;
            for (int l = 0; l < D; ++l) params += (static_cast<double>(n[l]) + 1) * n[l + 1];
            b += L * (params + static_cast<double>(B) * n[0]) * sizeof(float);
        }
        return b;
    }

    explicit Scratch(const CellPlan& p) {
        const int D = p.depth, B = p.batch;
        const Sizes sizes = sizes_for(p.n, B, p.torch);
        auto count = [](double elements) { return static_cast<size_t>(elements); };
        np.resize(D + 1);
        for (int l = 0; l <= D; ++l) np[l] = (p.n[l] + kUnitAlign - 1) / kUnitAlign * kUnitAlign;
        aoff.assign(D + 2, 0);
        for (int l = 0; l <= D; ++l) aoff[l + 1] = aoff[l] + static_cast<size_t>(B) * np[l] * L;
        a = AlignedBuf<T>(count(sizes.acts));
        dact = AlignedBuf<T>(count(sizes.acts));
        woff.assign(D + 1, 0);
        for (int l = 0; l < D; ++l) woff[l + 1] = woff[l] + static_cast<size_t>(p.n[l]) * p.n[l + 1] * L + kPad;
        keep_weights = sizes.keep_weights;
        boff.assign(D + 1, 0);
        for (int l = 0; l < D; ++l) boff[l + 1] = boff[l] + static_cast<size_t>(p.n[l + 1]) * L + kPad;
        pregenerate = sizes.pregenerate;
        if (pregenerate) {
            ball = AlignedBuf<T>(count(sizes.ball));
            // Zero-distribution tensors (and absent biases) stay as allocated: zero.
            for (int l = 0; l < D; ++l) {
                const uint32_t nw = static_cast<uint32_t>(p.n[l] * p.n[l + 1]), nb = static_cast<uint32_t>(p.n[l + 1]);
                if (p.wdist[l].kind != Dist::zero)
                    for (uint32_t b = 0; b < (nw + 3) / 4; ++b)
                        jobs.push_back({b, static_cast<uint32_t>(l), static_cast<uint32_t>(Stream::weight), false, woff[l], p.wdist[l]});
                if (p.bias && p.bdist[l].kind != Dist::zero)
                    for (uint32_t b = 0; b < (nb + 3) / 4; ++b)
                        jobs.push_back({b, static_cast<uint32_t>(l), static_cast<uint32_t>(Stream::bias), true, boff[l], p.bdist[l]});
            }
        }
        if (!keep_weights) std::fill(woff.begin(), woff.end(), size_t(0));
        w = AlignedBuf<T>(count(sizes.w));
        stage = AlignedBuf<double>(count(sizes.stage));
        bias = AlignedBuf<T>(count(sizes.vec));
        z = AlignedBuf<T>(count(sizes.vec_batch));
        g = AlignedBuf<T>(count(sizes.vec_batch));
        gprev = AlignedBuf<T>(count(sizes.vec_batch));
        delta = AlignedBuf<T>(count(sizes.vec_batch));
        sabs = AlignedBuf<T>(count(sizes.vec));
        ssq = AlignedBuf<double>(count(sizes.vec));
        smax = AlignedBuf<T>(count(sizes.vec));
        tmp = AlignedBuf<T>(count(sizes.tmp));
        if (p.torch) torch.resize(L);
    }
};

// Writes row_stride(depth) doubles per lane for lanes [0, nvalid); lanes past
// nvalid run on padding seeds so every lane does identical work.
template <class T, int L>
void run_lanes(const CellPlan& p, const uint64_t* seeds, int nvalid, double* out, Scratch<T, L>& s);

}  // namespace gs::cpu
