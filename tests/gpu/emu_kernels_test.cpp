// Host emulation of the CUDA kernels: the kernel bodies and the backend's chunk
// loop run on the CPU (emu_device.hpp) and must agree with the CPU backend. This
// is what verifies the CUDA code's indexing, tiling, reductions and barriers on a
// machine without a GPU; what it cannot check is listed in docs/cuda_backend.md.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "emu_device.hpp"
#include "gpu_test_util.hpp"
#include "gradsweep/backend.hpp"
#include "gradsweep/cuda_extras.hpp"
#include "../torch/reference_cases.hpp"
#include "../test_seed.hpp"

using namespace gs;
using namespace gs::gputest;

namespace {

template <class T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
void check_expand_block() {
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 2000; ++trial) {
        const uint64_t seed = rng();
        const uint32_t key = static_cast<uint32_t>(rng()), layer = static_cast<uint32_t>(rng() % 64),
                       blk = static_cast<uint32_t>(rng() % 100000);
        const Dist d{trial % 2 ? Dist::uniform : Dist::normal, 0.37 + trial * 1e-3};
        const U32x4 r = philox_block(seed, key, Stream::weight, layer, blk);
        T v[4];
        kern::expand_block<T>(r, d.kind, static_cast<T>(d.scale), v);
        for (uint32_t q = 0; q < 4; ++q) REQUIRE(same_bits(v[q], draw_value<T>(seed, key, Stream::weight, layer, blk * 4 + q, d)));
    }
}

template <class T>
void check_weight_run4() {
    Spec spec = make_spec(Precision::float64, 1, true, 0, 1, 1);
    kern::NetArgs<T> a;
    a.rng_key = 99;
    for (int n_in : {1, 2, 3, 4, 5, 6, 7, 9, 13, 33}) {
        for (int n_out : {1, 3, 5}) {
            kern::LayerDesc L;
            L.n_in = n_in;
            L.n_out = n_out;
            for (auto kind : {Dist::uniform, Dist::normal, Dist::zero}) {
                L.wdist = Dist{kind, 0.5};
                const int l = 3;
                const uint64_t seed = 123456789ull + n_in;
                for (int i = 0; i < n_out; ++i)
                    for (int j0 = 0; j0 < n_in; j0 += 4) {
                        const int c = std::min(4, n_in - j0);
                        T v[4];
                        kern::weight_run4<T>(a, L, l, seed, nullptr, static_cast<uint64_t>(i) * n_in + j0, c, v);
                        for (int q = 0; q < 4; ++q) {
                            const T want = q < c ? draw_value<T>(seed, a.rng_key, Stream::weight, l,
                                                                 static_cast<uint32_t>(i * n_in + j0 + q), L.wdist)
                                                 : T(0);
                            REQUIRE(same_bits(v[q], want));
                        }
                    }
            }
        }
    }
}

// weight_run4_cached walked as the P = 1 column sweep walks it: groups J in order,
// each pass (tiles) over the rows i, reading buffer J % 2 and writing (J + 1) % 2
// of a cache that starts poisoned (NaN) but for cache_row_starts' group 0. Every
// weight must be draw_value's, bit for bit, in every tile.
template <class T>
void check_weight_run4_cached() {
    for (int n_in : {1, 2, 3, 5, 6, 7, 9, 13, 30, 33}) {
        for (int n_out : {1, 3, 5, 17}) {
            for (auto kind : {Dist::uniform, Dist::normal, Dist::zero}) {
                kern::NetArgs<T> a;
                a.rng_key = 99 + n_out;
                a.wcache_rows = n_out;
                const uint64_t nets = 3, k = 1;  // network 1 of three, interleaved
                std::vector<kern::Quad<T>> cache(2 * n_out * nets);
                for (auto& u : cache)
                    for (T& x : u.v) x = std::numeric_limits<T>::quiet_NaN();
                kern::Quad<T>* const cq = cache.data() + k;
                kern::LayerDesc L;
                L.n_in = n_in;
                L.n_out = n_out;
                L.wdist = Dist{kind, 0.5};
                const int l = 2;
                const uint64_t seed = 987654321ull + n_in;
                kern::cache_row_starts<T>(a, L, l, seed, cq, nets);
                const uint64_t cbuf = static_cast<uint64_t>(n_out) * nets;
                for (int J = 0; 4 * J < n_in; ++J) {
                    const int j0 = 4 * J, c = std::min(4, n_in - j0);
                    for (int tile = 0; tile < 2; ++tile) {
                        const kern::Quad<T>* rd = cq + (J & 1) * cbuf;
                        kern::Quad<T>* wr = cq + ((J + 1) & 1) * cbuf;
                        for (int i = 0; i < n_out; ++i, rd += nets, wr += nets) {
                            T v[4];
                            kern::weight_run4_cached<T>(a, L, l, seed, nullptr, static_cast<uint32_t>(i * n_in + j0), c, rd, wr, v);
                            for (int q = 0; q < c; ++q) {
                                const T want = draw_value<T>(seed, a.rng_key, Stream::weight, l, static_cast<uint32_t>(i * n_in + j0 + q), L.wdist);
                                INFO("n_in " << n_in << " n_out " << n_out << " kind " << static_cast<int>(kind) << " J " << J << " tile " << tile
                                              << " row " << i << " column " << j0 + q);
                                REQUIRE(same_bits(v[q], want));
                            }
                        }
                    }
                }
                // The other networks' units are never touched.
                for (uint64_t u = 0; u < cache.size(); ++u)
                    if (u % nets != k)
                        for (T x : cache[u].v) REQUIRE(std::isnan(x));
            }
        }
    }
}

// Random cells through the emulated CUDA path and the CPU backend.
void check_random_cells(Precision precision, int n_cells, const CellOptions& opt, uint64_t seeds, int force_p, double tol,
                        uint64_t rng_seed) {
    std::mt19937_64 rng(rng_seed);
    auto cpu = make_cpu_backend(1);
    double worst = 0;
    for (int k = 0; k < n_cells; ++k) {
        const Cell cell = random_cell(rng, opt);
        const int batches[] = {1, 1, 2, 4, 5, 9};
        const int batch = batches[rng() % 6];
        const Spec spec = make_spec(precision, batch, rng() % 3 != 0, 1000 + rng() % 1000, seeds, cell.input_dim(),
                                    static_cast<uint32_t>(rng()));
        const auto want = run_poisoned(*cpu, spec, cell, 3, seeds);
        const auto got = emu::emulate_run_precision(spec, cell, 3, seeds, force_p);
        const std::vector<double> tols = cpu_row_tolerances(*cpu, spec, cell, 3, seeds, want, tol, tol);
        const Comparison c = compare_rows(got, want, tols, 1e-300, row_stride(cell.depth()));
        INFO(describe(cell, spec) << " P=" << (force_p ? force_p : kern::threads_per_network(kern::make_layout(spec, cell).max_width)));
        INFO(c.first);
        CHECK(c.ok());
        worst = std::max(worst, c.max_rel);
    }
    WARN("max relative difference emulated CUDA vs CPU (" << precision_name(precision) << ", P=" << force_p << "): " << worst);
}

}  // namespace

TEST_CASE("expand_block gives draw_from_block's values bit for bit", "[emu][philox]") {
    check_expand_block<float>();
    check_expand_block<double>();
}

TEST_CASE("weight_run4 gives draw_value's weights for every row phase", "[emu][philox]") {
    check_weight_run4<float>();
    check_weight_run4<double>();
}

TEST_CASE("weight_run4_cached (P = 1 row cache) gives draw_value's weights in every group and tile", "[emu][philox]") {
    check_weight_run4_cached<float>();
    check_weight_run4_cached<double>();
}

TEST_CASE("threads per network and chunk sizes", "[emu][layout]") {
    CHECK(kern::threads_per_network(1) == 1);
    CHECK(kern::threads_per_network(32) == 1);
    CHECK(kern::threads_per_network(33) == 32);
    CHECK(kern::threads_per_network(128) == 32);
    CHECK(kern::threads_per_network(129) == 64);
    CHECK(kern::threads_per_network(512) == 128);
    CHECK(kern::threads_per_network(1024) == 256);
    CHECK(kern::threads_per_network(8192) == 256);
    CHECK(kern::networks_per_chunk(10, 100, 1000, 1 << 20) == 10);
    CHECK(kern::networks_per_chunk(100, 100, 1050, 1 << 20) == 10);
    CHECK(kern::networks_per_chunk(100, 100, 1 << 20, 7) == 7);
    CHECK_THROWS_AS(kern::networks_per_chunk(100, 100, 99, 1 << 20), std::runtime_error);
}

TEST_CASE("scratch layout: regions are disjoint and inside a network's scratch", "[emu][layout]") {
    std::mt19937_64 rng(5);
    for (int k = 0; k < 200; ++k) {
        const Cell cell = random_cell(rng, CellOptions{64, 10, k % 2 == 0});
        const Spec spec = make_spec(Precision::float32, 1 + static_cast<int>(rng() % 6), true, 0, 1, cell.input_dim());
        const kern::NetLayout L = kern::make_layout(spec, cell);
        const uint64_t B = spec.input.batch;
        std::vector<int> owner(L.scratch_per_net, 0);
        auto claim = [&](uint64_t off, uint64_t n) {
            REQUIRE(off + n <= L.scratch_per_net);
            for (uint64_t e = off; e < off + n; ++e) ++owner[e];
        };
        claim(L.layers[0].off_a_in, B * cell.layer_sizes[0]);
        for (int l = 0; l < cell.depth(); ++l) {
            const auto& d = L.layers[l];
            REQUIRE(d.n_in == cell.layer_sizes[l]);
            REQUIRE(d.n_out == cell.layer_sizes[l + 1]);
            if (l > 0) REQUIRE(d.off_a_in == L.layers[l - 1].off_a_out);
            claim(d.off_a_out, B * d.n_out);
            claim(d.off_z, B * d.n_out);
        }
        claim(L.off_g0, B * L.max_width);
        claim(L.off_g1, B * L.max_width);
        claim(L.off_delta, B * L.max_width);
        // The row cache: at P = 1 where a layer past the first has an unaligned input.
        bool unaligned = false;
        for (int l = 1; l < cell.depth(); ++l) unaligned = unaligned || cell.layer_sizes[l] % 4 != 0;
        const bool cached = L.threads_per_net == 1 && unaligned;
        CHECK(L.wcache_rows == (cached ? L.max_width : 0));
        if (cached) claim(L.off_wcache, 8 * static_cast<uint64_t>(L.wcache_rows));
        for (int o : owner) REQUIRE(o <= 1);  // the cache starts at a multiple of 4: up to 3 padding elements
        CHECK(L.off_wcache % 4 == 0);
        CHECK(L.scratch_per_net - static_cast<uint64_t>(std::count(owner.begin(), owner.end(), 1)) == (cached ? L.off_wcache - L.vectors_end : 0));
        // Forcing P sizes it again: a block per network has none, a thread per network has it.
        kern::NetLayout F = L;
        kern::force_threads_per_net(F, L.threads_per_net == 1 ? 32 : 1);
        CHECK(F.wcache_rows == (F.threads_per_net == 1 && unaligned ? F.max_width : 0));
        CHECK(F.scratch_per_net == (F.wcache_rows ? F.off_wcache + 8 * static_cast<uint64_t>(F.wcache_rows) : F.vectors_end));
    }
}

TEST_CASE("emulated kernel = CPU backend, float64, thread per network", "[emu][network]") {
    check_random_cells(Precision::float64, 60, CellOptions{32, 12, true}, 5, 0, 1e-12, 1);
    check_random_cells(Precision::float64, 30, CellOptions{32, 12, false}, 4, 0, 1e-12, 2);
}

TEST_CASE("emulated kernel = CPU backend, float32, thread per network", "[emu][network]") {
    // Same operation order as the CPU backend: only FMA contraction differs.
    check_random_cells(Precision::float32, 60, CellOptions{32, 12, true}, 5, 0, 2e-5, 3);
}

TEST_CASE("emulated kernel = CPU backend, block per network", "[emu][network]") {
    // Forced block sizes on small cells exercise every tile edge case cheaply.
    check_random_cells(Precision::float64, 12, CellOptions{40, 5, true}, 2, 32, 1e-12, 4);
    check_random_cells(Precision::float64, 8, CellOptions{70, 4, false}, 2, 64, 1e-12, 5);
    check_random_cells(Precision::float32, 8, CellOptions{40, 5, true}, 2, 32, 2e-5, 6);
    // The backend's own choice for wider layers (P = 32..128).
    check_random_cells(Precision::float64, 4, CellOptions{300, 3, true}, 1, 0, 1e-12, 7);
}

TEST_CASE("emulated kernel, width 1024 and depth 64", "[emu][network][slow]") {
    auto cpu = make_cpu_backend(1);
    {
        Cell cell;
        cell.layer_sizes = {1024, 1024, 1024, 3};
        cell.activation = Activation::gelu;
        cell.shortcut = true;
        const Spec spec = make_spec(Precision::float64, 2, true, 77, 1, 1024);
        const auto c = compare_rows(emu::emulate_run<double>(spec, cell, 0, 1), run_poisoned(*cpu, spec, cell, 0, 1), 1e-12,
                                    1e-300, row_stride(cell.depth()));
        INFO(c.first);
        CHECK(c.ok());
    }
    {
        Cell cell;
        cell.layer_sizes.assign(65, 8);
        cell.layer_sizes.front() = 3;
        cell.layer_sizes.back() = 1;
        cell.activation = Activation::tanh;
        cell.shortcut = true;
        const Spec spec = make_spec(Precision::float64, 3, false, 0, 9, 3);
        // 64 layers of chain rule amplify last-bit (FMA contraction) differences.
        const auto c = compare_rows(emu::emulate_run<double>(spec, cell, 0, 9), run_poisoned(*cpu, spec, cell, 0, 9), 1e-10,
                                    1e-300, row_stride(cell.depth()));
        INFO(c.first);
        CHECK(c.ok());
    }
}

TEST_CASE("emulated kernel: result does not depend on threads per network", "[emu][network]") {
    std::mt19937_64 rng(8);
    for (int k = 0; k < 6; ++k) {
        const Cell cell = random_cell(rng, CellOptions{48, 4, k % 2 == 0});
        const Spec spec = make_spec(Precision::float64, 1 + k % 5, k % 3 != 0, 40, 3, cell.input_dim());
        const auto p1 = emu::emulate_run<double>(spec, cell, 0, 3, 1);
        for (int P : {2, 32, 64}) {
            const auto c = compare_rows(emu::emulate_run<double>(spec, cell, 0, 3, P), p1, 1e-13, 1e-300, row_stride(cell.depth()));
            INFO(describe(cell, spec) << " P=" << P << ": " << c.first);
            CHECK(c.ok());
        }
    }
}

// Issue 13, items 2, 4 and 8 in the kernel body: NaN stays NaN through every
// activation (relu(NaN) was 0), float64 sums of squares that leave double's range
// are redone over scaled values, and the float32 loss is PyTorch's float32 one.
TEST_CASE("emulated kernel at the edges of the number range", "[emu][nonfinite]") {
    auto cpu = make_cpu_backend(1);
    for (int a = 0; a < kNumActivations; ++a) {
        Cell cell;
        cell.layer_sizes.assign(51, 3);
        cell.layer_sizes.back() = 1;
        cell.activation = static_cast<Activation>(a);
        cell.init = Init{InitKind::normal, 1000.0, 0.0};
        const Spec spec = make_spec(Precision::float32, 1, false, 0, 64, 3, 7, 2.0);
        const int D = cell.depth(), stride = row_stride(D);
        for (int P : {1, 32}) {
            const auto got = emu::emulate_run<float>(spec, cell, 0, 64, P);
            int nan_nets = 0;
            for (int s = 0; s < 64; ++s) {
                const double* row = got.data() + static_cast<size_t>(s) * stride;
                int first = -1;
                for (int l = 0; l < D && first < 0; ++l)
                    if (std::isnan(row[l * kNumQuantities + activation_rms])) first = l;
                if (first < 0) continue;
                ++nan_nets;
                INFO(kActivationNames[a] << " P=" << P << " seed " << s << " NaN from layer " << first);
                for (int l = first; l < D; ++l) CHECK(std::isnan(row[l * kNumQuantities + activation_rms]));
                CHECK(std::isnan(row[D * kNumQuantities]));
            }
            if (cell.activation == Activation::relu) CHECK(nan_nets > 0);
        }
    }
    // float64: gradients near 1e230 (sigma_w 1e10, depth 12), activations near 1e179
    // (3e7, depth 24; its gradients overflow, and where sums of infinities meet the
    // two backends' different summation orders may differ, so only activation_rms
    // is compared there), squares below 1e-308 (1e-10): finite and equal to the CPU
    // backend's, by one thread and by a block of threads.
    struct Case {
        double sigma;
        int depth;
        bool grads;  // gradients finite: compare everything
    };
    for (const Case& k : {Case{1e10, 12, true}, Case{3e7, 24, false}, Case{1e-10, 24, true}}) {
        Cell cell;
        cell.layer_sizes.assign(k.depth + 1, 5);
        cell.layer_sizes.front() = 3;
        cell.activation = Activation::identity;
        cell.bias = true;
        cell.init = Init{InitKind::normal, k.sigma, 0.0};
        const int stride = row_stride(k.depth);
        for (int batch : {1, 3}) {
            const Spec spec = make_spec(Precision::float64, batch, true, 5, 8, 3);
            auto want = run_poisoned(*cpu, spec, cell, 0, 8);
            for (int P : {1, 32}) {
                auto got = emu::emulate_run<double>(spec, cell, 0, 8, P);
                int finite = 0;
                for (size_t x = 0; x < got.size(); ++x) {
                    const int slot = static_cast<int>(x % stride);
                    const bool stat = slot < k.depth * kNumQuantities;
                    if (stat && slot % kNumQuantities == weight_grad_rms && std::isfinite(got[x + 1]))
                        CHECK(std::isfinite(got[x]));  // max|g| finite: rms finite
                    const int q = slot % kNumQuantities;
                    if (!k.grads && !(stat && q == activation_rms)) got[x] = want[x] = 0;
                    finite += stat && (q == (k.grads ? weight_grad_rms : activation_rms)) && std::isfinite(got[x]);
                }
                const auto c = compare_rows(got, want, 1e-9, 1e-300, stride);
                INFO("sigma " << k.sigma << " batch " << batch << " P=" << P << ": " << c.first);
                CHECK(c.ok());
                CHECK(finite > 0);
            }
        }
    }
    // The float32 loss: zero weights make the output 0, so the loss is target^2 in float32.
    Cell zero;
    zero.layer_sizes = {2, 2, 1};
    zero.init = Init{InitKind::normal, 0.0, 0.0};
    CHECK(std::isinf(emu::emulate_run<float>(make_spec(Precision::float32, 1, false, 0, 1, 2, 7, 3e19), zero, 0, 1)[2 * kNumQuantities]));
    CHECK(emu::emulate_run<float>(make_spec(Precision::float32, 1, false, 0, 1, 2, 7, 0.1), zero, 0, 1)[2 * kNumQuantities] ==
          static_cast<double>(0.1f * 0.1f));
}

TEST_CASE("emulated chunking: any chunk size gives the same rows", "[emu][chunks]") {
    Cell cell;
    cell.layer_sizes = {3, 7, 7, 2};
    cell.activation = Activation::silu;
    cell.shortcut = true;
    const Spec spec = make_spec(Precision::float32, 2, true, 10, 100, 3);
    const kern::NetLayout L = kern::make_layout(spec, cell);
    const uint64_t per_net = kern::bytes_per_network(L, sizeof(float), true);
    std::vector<uint64_t> launches;
    const auto whole = emu::emulate_run<float>(spec, cell, 5, 10, 0, uint64_t{1} << 30, &launches);
    CHECK(launches == std::vector<uint64_t>{10});
    const auto chunked = emu::emulate_run<float>(spec, cell, 5, 10, 0, 3 * per_net + per_net / 2, &launches);
    CHECK(launches == std::vector<uint64_t>{3, 3, 3, 1});
    CHECK(bit_equal(whole, chunked));
    // Seeds 5..14 = seeds 5..9 then 10..14.
    auto head = emu::emulate_run<float>(spec, cell, 5, 5);
    const auto tail = emu::emulate_run<float>(spec, cell, 10, 5);
    head.insert(head.end(), tail.begin(), tail.end());
    CHECK(bit_equal(whole, head));
    CHECK_THROWS_AS(emu::emulate_run<float>(spec, cell, 5, 10, 0, per_net - 1), std::runtime_error);
}

TEST_CASE("emulated kernel, torch mode parameters", "[emu][torch]") {
    Cell cell;
    cell.layer_sizes = {3, 5, 5, 1};
    cell.activation = Activation::relu;
    cell.shortcut = true;
    auto cpu = make_cpu_backend(1);
    for (Precision p : {Precision::float32, Precision::float64}) {
        for (bool random_input : {true, false}) {
            Spec s = make_spec(p, 2, random_input, 0, 4, 3);
            s.rng = RngKind::torch;
            const auto c = compare_rows(emu::emulate_run_precision(s, cell, 0, 4), run_poisoned(*cpu, s, cell, 0, 4),
                                        p == Precision::float32 ? 2e-5 : 1e-12, 1e-300, row_stride(cell.depth()));
            INFO(describe(cell, s) << ": " << c.first);
            CHECK(c.ok());
        }
    }
}

TEST_CASE("emulated kernel, torch mode: seed-notebook specs and the PyTorch reference cases", "[emu][torch]") {
    auto cpu = make_cpu_backend(1);
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(source_dir()) / "sweeps" / "seeds";
    INFO("seed-notebook specs in " << dir.string());
    REQUIRE(fs::is_directory(dir));
    int cells = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".json") continue;
        const Spec spec = load_spec_file(entry.path().string());
        for (const Cell& cell : spec.cells) {
            const uint64_t n = std::min<uint64_t>(spec.seed_count, 4);
            const std::vector<double> want = run_poisoned(*cpu, spec, cell, 0, n);
            const std::vector<double> tols = cpu_row_tolerances(*cpu, spec, cell, 0, n, want, 1e-12, 2e-5);
            const auto c = compare_rows(emu::emulate_run_precision(spec, cell, 0, n), want, tols, 1e-300, row_stride(cell.depth()));
            INFO(entry.path().filename().string() << " cell " << cell.index << ": " << c.first);
            CHECK(c.ok());
            ++cells;
        }
    }
    REQUIRE(cells > 0);
    WARN(cells << " seed-notebook cells emulated");

    const nlohmann::json doc = torch_test::read_json(source_dir() + "/tests/data/torch_cases.json");  // throws (fails) when missing
    REQUIRE(doc["cases"].size() == 36);
    double worst = 0;
    for (const auto& cs : doc["cases"]) {
        nlohmann::json js;
        js["seeds"] = {{"count", 1}, {"first", cs["seed"]}};
        js["rng"] = "torch";
        js["precision"] = "float32";
        js["network"] = {{"layer_sizes", cs["layer_sizes"]}, {"activation", cs["activation"]}, {"shortcut", cs["shortcut"]},
                         {"bias", cs["bias"]}, {"last_activation", cs["last_activation"]}};
        if (cs["input"].contains("values")) js["input"] = cs["input"];
        else js["input"] = {{"distribution", "normal"}, {"batch", cs["input"]["batch"]}};
        js["loss"] = {{"kind", "mse"}, {"target", cs["target"]}};
        const Spec spec = parse_spec_text(js.dump());
        const Cell& cell = spec.cells.at(0);
        const auto rows = emu::emulate_run<float>(spec, cell, 0, 1);
        const auto& exp = cs["expected"];
        auto check = [&](double got, double want, const std::string& what) {
            INFO(cs["name"].get<std::string>() << " " << what << ": got " << got << " want " << want);
            CHECK(std::fabs(got - want) <= 1e-4 * std::fabs(want) + 1e-7);
            if (want != 0) worst = std::max(worst, std::fabs(got - want) / std::fabs(want));
        };
        check(rows[loss_index(cell.depth())], exp["loss"].get<double>(), "loss");
        for (int l = 0; l < cell.depth(); ++l)
            for (int q = 0; q < kNumQuantities; ++q)
                if (exp["layers"][l].contains(kQuantityNames[q]))
                    check(rows[l * kNumQuantities + q], exp["layers"][l][kQuantityNames[q]].get<double>(),
                          "layer " + std::to_string(l) + " " + kQuantityNames[q]);
    }
    WARN(doc["cases"].size() << " PyTorch reference cases emulated, max relative difference " << worst);
}

namespace {
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The device summary (emulated) is gs::summarize's, bit for bit: the sums in the
// shared order, the same order statistics, even where -0.0 and +0.0 are both
// among the values may min, max or a quantile be the other zero (the sort puts
// -0.0 first, nth_element keeps either): those compare by value.
void check_summary(const std::vector<double>& v) {
    std::vector<double> copy = v;
    const Summary want = summarize(copy);
    const Summary got = emu::emulate_summary(v);
    INFO("n=" << v.size());
    CHECK(got.n == want.n);
    CHECK(got.n_nonfinite == want.n_nonfinite);
    CHECK(got.n_zero == want.n_zero);
    CHECK(same_bits(got.mean, want.mean));
    CHECK(same_bits(got.std, want.std));
    CHECK(same_bits(got.geomean, want.geomean));
    auto order_stat = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || same_bits(a, b); };
    CHECK(order_stat(got.min, want.min));
    CHECK(order_stat(got.max, want.max));
    CHECK(order_stat(got.q05, want.q05));
    CHECK(order_stat(got.median, want.median));
    CHECK(order_stat(got.q95, want.q95));
}
}  // namespace

TEST_CASE("emulated device summary = gs::summarize, bit for bit", "[emu][summary]") {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    const uint64_t seed = gs::test::test_seed(3);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    check_summary({});
    check_summary({nan, inf, -inf});
    check_summary({2.5});
    check_summary({0.0, -0.0, 0.0});
    check_summary({-0.0, 0.0, -0.0, 0.0, -0.0, 1.0, -1.0});
    for (size_t n : {size_t{20}, size_t{5000}, size_t{20000}}) {  // both zeros, small (nth_element's size) and radix sizes
        std::vector<double> z;
        for (size_t k = 0; k < n; ++k) z.push_back(k % 3 == 0 ? -0.0 : k % 3 == 1 ? 0.0 : (k % 2 ? 1.0 : -1.0) * static_cast<double>(k % 7));
        check_summary(z);
        std::vector<double> zeros_only;
        for (size_t k = 0; k < n; ++k) zeros_only.push_back(k % 5 == 2 ? -0.0 : 0.0);
        check_summary(zeros_only);
    }
    check_summary({-1.0, 3.0});
    check_summary({1.0, nan, 4.0, -inf, 0.0, 2.0, inf, -nan});
    check_summary({1e300, 1e300, -1e300, 1e300});  // sums beyond double's range: the rescaled moments
    for (size_t n : {size_t{1001}, size_t{4096}, size_t{4097}, size_t{100000}, size_t{1000000}}) {
        std::vector<double> v;
        for (size_t k = 0; k < n; ++k) {
            const double x = std::exp(3 * normal(rng));
            v.push_back(k % 97 == 0 ? 0.0 : k % 89 == 0 ? nan : k % 83 == 0 ? -x : k % 79 == 0 ? inf : x);
        }
        check_summary(v);
    }
    std::vector<double> ties(500, 0.125);
    ties[7] = 3;
    check_summary(ties);
    std::vector<double> subnormal(5000);
    for (size_t k = 0; k < subnormal.size(); ++k) subnormal[k] = std::ldexp(1.0 + static_cast<double>(k % 17), -1070);
    check_summary(subnormal);
}

TEST_CASE("cuda_available answers without a device and without aborting", "[emu][cuda]") {
    std::string name;
    const bool ok = cuda_available(&name, 0);
    WARN("cuda_available(0) = " << ok << ": " << name);
    CHECK(!name.empty());
    std::string other;
    CHECK_FALSE(cuda_available(&other, 1000));
    CHECK_FALSE(cuda_available(&other, -1));
    if (!ok) {
        CHECK_THROWS_AS(make_cuda_backend(0), std::runtime_error);
        std::vector<Summary> out;
        const Spec spec = make_spec(Precision::float32, 1, true, 0, 4, 3);
        Cell cell;
        cell.layer_sizes = {3, 3, 1};
        CHECK_FALSE(cuda_run_summarized(spec, cell, 0, 4, 0, out));
        const double rows[3] = {1, 2, 3};
        CHECK_FALSE(cuda_summarize_rows(rows, 3, 1, 0, out));
        CHECK(out.empty());
    }
}

TEST_CASE("the chunk loop keeps its buffers across calls: a reused device gives every call the rows of a fresh one", "[emu][cuda]") {
    // run_chunks no longer releases the buffers of earlier calls; a call that needs
    // less reuses them, one that needs more grows them. Several calls on one
    // (emulated) device, of other sizes, shapes, P and chunking, give the rows that
    // a fresh device gives each.
    const uint64_t seed = gs::test::test_seed(41);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    emu::EmuDev<float> dev;
    dev.budget_bytes = uint64_t{1} << 30;
    size_t most_scratch = 0;  // the largest scratch any call needed: kept, not given back
    for (int call = 0; call < 6; ++call) {
        CellOptions co;
        co.max_width = call % 2 ? 40 : 6;
        const Cell cell = random_cell(rng, co);
        const Spec spec = make_spec(Precision::float32, 1 + call % 3, call % 2 == 0, 5, 100, cell.input_dim());
        kern::NetLayout L = kern::make_layout(spec, cell);
        if (call >= 4) kern::force_threads_per_net(L, 32);
        dev.budget_bytes = call == 3 ? kern::bytes_per_network(L, sizeof(float), true) * 7 : uint64_t{1} << 30;  // chunks of 7
        const uint64_t count = 10 + 9 * call, off = 3 * call;
        std::vector<double> reused(count * row_stride(cell.depth()), std::numeric_limits<double>::quiet_NaN());
        kern::run_chunks<float>(dev, spec, cell, L, off, count, reused.data(), nullptr);
        most_scratch = std::max(most_scratch, dev.scratch.size());
        CHECK(dev.scratch.capacity() >= most_scratch);
        const std::vector<double> fresh = emu::emulate_run<float>(spec, cell, off, count, L.threads_per_net);
        INFO("call " << call << " layer sizes " << cell.layer_sizes_compact());
        REQUIRE(reused.size() == fresh.size());
        CHECK(std::memcmp(reused.data(), fresh.data(), fresh.size() * sizeof(double)) == 0);
    }
}

// Issue 17: the column sweep has one variant for rows that start on a Philox block
// boundary (every input width a multiple of 4) and one for the others, each with a
// one-row tile (batch 1) and a four-row tile whose statistics take the rows past
// the first tile from scratch; the forward handles a row's partial first and last
// blocks apart. Widths on both sides of the alignment, every batch up to 9 (tiles
// that are full, partial and more than one), every forced P, both precisions and
// both rngs, against the CPU backend.
TEST_CASE("emulated kernel = CPU backend: aligned and unaligned widths, every batch tile, P = 1/32/64/256", "[emu][network]") {
    const uint64_t seed = gs::test::test_seed(1717);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    auto cpu = make_cpu_backend(1);
    const int aligned[] = {4, 8, 12, 16, 20, 36, 64}, unaligned[] = {1, 3, 5, 6, 7, 18, 33, 66};
    const int forced_p[] = {1, 32, 64, 256};
    double worst = 0;
    for (int k = 0; k < 64; ++k) {
        auto width = [&](bool al) { return al ? aligned[rng() % 7] : unaligned[rng() % 8]; };
        Cell cell = random_cell(rng, CellOptions{8, 3, true});
        const int depth = cell.depth(), hidden = width(k % 2 == 0);
        cell.layer_sizes.assign(depth + 1, hidden);
        cell.layer_sizes.front() = width(k % 4 < 2);
        cell.layer_sizes.back() = width(rng() % 2 == 0);
        const int batch = 1 + static_cast<int>(rng() % 9);
        const Precision precision = k % 3 == 0 ? Precision::float32 : Precision::float64;
        Spec spec = make_spec(precision, batch, rng() % 3 != 0, rng() % 1000, 2, cell.input_dim(), static_cast<uint32_t>(rng()));
        if (k % 5 == 0) spec.rng = RngKind::torch;
        const int P = forced_p[k % 4];
        const auto want = run_poisoned(*cpu, spec, cell, 0, 2);
        const auto got = emu::emulate_run_precision(spec, cell, 0, 2, P);
        const std::vector<double> tols = cpu_row_tolerances(*cpu, spec, cell, 0, 2, want, 1e-12, 2e-5);
        const Comparison c = compare_rows(got, want, tols, 1e-300, row_stride(cell.depth()));
        INFO(describe(cell, spec) << " P=" << P << ": " << c.first);
        CHECK(c.ok());
        worst = std::max(worst, c.max_rel);
    }
    WARN("max relative difference emulated CUDA vs CPU, aligned/unaligned widths: " << worst);
}
