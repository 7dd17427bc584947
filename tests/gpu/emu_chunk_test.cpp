// The chunk loop's double-buffered row copies (run_chunks, chunk_runner.cuh) under
// the emulation: the rows bit for bit whatever the chunking, and the order the
// loop issues its launches, copies and waits in (EmuDev::ops): chunk k + 1
// launched before chunk k's copy is waited for (the overlap), and never a launch
// into a row buffer, or a copy out of one, while that buffer's last copy is not
// waited for (the hazards). The emulation runs a copy when it is waited for, the
// latest a device may run it, so a broken hazard rule also shows in the rows.
#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "emu_device.hpp"
#include "gpu_test_util.hpp"
#include "../test_seed.hpp"

using namespace gs;
using namespace gs::gputest;

namespace {

using emu::DevOp;

// "" when the schedule keeps the rules, else the first rule it breaks. Chunk k
// uses buffer k % kRowBuffers; `chunks` chunks went to the host.
std::string schedule_fault(const std::vector<DevOp>& ops, uint64_t chunks) {
    bool pending[kern::kRowBuffers] = {};
    uint64_t launched = 0, waited = 0;  // chunks launched, chunks whose copy was waited for
    for (size_t i = 0; i < ops.size(); ++i) {
        const DevOp& op = ops[i];
        const std::string at = " (op " + std::to_string(i) + ")";
        switch (op.kind) {
            case DevOp::upload_params: break;
            case DevOp::launch:
                if (op.buffer != static_cast<int>(launched % kern::kRowBuffers)) return "chunk in the wrong buffer" + at;
                if (pending[op.buffer]) return "launch into a buffer whose copy is not waited for" + at;
                ++launched;
                break;
            case DevOp::download:
                if (op.buffer != static_cast<int>((launched - 1) % kern::kRowBuffers)) return "copy of another chunk than the last launched" + at;
                if (pending[op.buffer]) return "copy into staging not yet stored" + at;
                pending[op.buffer] = true;
                break;
            case DevOp::wait_download:
                if (op.buffer != static_cast<int>(waited % kern::kRowBuffers) || !pending[op.buffer])
                    return "wait for a copy out of order" + at;
                // The overlap: chunk k's copy is waited for only once chunk k + 1 is launched.
                if (waited + 1 < chunks && launched < waited + 2) return "chunk " + std::to_string(waited + 1) + " launched after chunk " +
                                                                          std::to_string(waited) + "'s copy was waited for" + at;
                pending[op.buffer] = false;
                ++waited;
                break;
            case DevOp::wait_launches:
                if (i + 1 != ops.size()) return "wait_launches before the end" + at;
                break;
        }
    }
    if (launched != chunks || waited != chunks) return "chunks launched " + std::to_string(launched) + ", stored " + std::to_string(waited);
    if (ops.empty() || ops.back().kind != DevOp::wait_launches) return "no final wait_launches";
    return "";
}

template <class T>
std::vector<double> rows_via(emu::EmuDev<T>& dev, const Spec& spec, const Cell& cell, const kern::NetLayout& L, uint64_t off,
                             uint64_t count, bool to_host) {
    std::vector<double> out(count * row_stride(cell.depth()), std::numeric_limits<double>::quiet_NaN());
    if (to_host) kern::run_chunks<T>(dev, spec, cell, L, off, count, out.data(), nullptr);
    else kern::run_chunks<T>(dev, spec, cell, L, off, count, nullptr, out.data());
    return out;
}

template <class T>
void check_chunkings(std::mt19937_64& rng, int trial) {
    CellOptions co;
    co.max_width = trial % 3 == 2 ? 40 : 6;  // P = 32 for the wide ones
    const Cell cell = random_cell(rng, co);
    Spec spec = make_spec(sizeof(T) == 4 ? Precision::float32 : Precision::float64, 1 + static_cast<int>(rng() % 3), rng() % 2 == 0,
                          rng() % 1000, 100, cell.input_dim(), static_cast<uint32_t>(rng()));
    if (trial % 4 == 1) spec.rng = RngKind::torch;
    kern::NetLayout L = kern::make_layout(spec, cell);
    const uint64_t count = 5 + rng() % 20, off = rng() % 50;
    INFO("trial " << trial << ": " << describe(cell, spec) << " P=" << L.threads_per_net << " seeds " << off << "+" << count);
    // The reference: rows written straight into device rows (no copies, no staging) in one launch.
    emu::EmuDev<T> whole;
    const std::vector<double> want = rows_via(whole, spec, cell, L, off, count, false);
    CHECK(whole.launches == std::vector<uint64_t>{count});
    // Rows to device memory: the launches (after their parameters in torch mode), one wait, no copies.
    std::vector<DevOp> direct;
    if (L.torch) direct.push_back({DevOp::upload_params});
    direct.push_back({DevOp::launch, -1});
    direct.push_back({DevOp::wait_launches});
    CHECK(whole.ops == direct);
    const uint64_t per_net = kern::bytes_per_network(L, sizeof(T), true);
    for (uint64_t chunks : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{4}, uint64_t{7}, count}) {
        const uint64_t chunk = (count + chunks - 1) / chunks;
        INFO("chunks of " << chunk);
        emu::EmuDev<T> dev;
        dev.budget_bytes = chunk * per_net + per_net / 2;
        const std::vector<double> got = rows_via(dev, spec, cell, L, off, count, true);
        const uint64_t made = (count + chunk - 1) / chunk;
        REQUIRE(dev.launches.size() == made);
        for (size_t k = 0; k + 1 < made; ++k) CHECK(dev.launches[k] == chunk);
        CHECK(got.size() == want.size());
        CHECK(std::memcmp(got.data(), want.data(), want.size() * sizeof(double)) == 0);
        CHECK(schedule_fault(dev.ops, made) == "");
        // The device holds two row buffers, the host two staging buffers, of a chunk each.
        CHECK(dev.rows.size() == kern::kRowBuffers * chunk * row_stride(cell.depth()));
        CHECK(dev.staging.size() == dev.rows.size());
    }
}

}  // namespace

TEST_CASE("double-buffered row copies: the rows of any chunking, bit for bit, and the overlap schedule", "[emu][chunks]") {
    const uint64_t seed = gs::test::test_seed(1616);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    for (int trial = 0; trial < 12; ++trial) {
        if (trial % 2) check_chunkings<double>(rng, trial);
        else check_chunkings<float>(rng, trial);
    }
}

TEST_CASE("double-buffered row copies: the exact order of launches, copies and waits", "[emu][chunks]") {
    Cell cell;
    cell.layer_sizes = {3, 5, 5, 1};
    cell.activation = Activation::tanh;
    for (bool torch : {false, true}) {
        Spec spec = make_spec(Precision::float32, 1, true, 0, 10, 3);
        if (torch) spec.rng = RngKind::torch;
        const kern::NetLayout L = kern::make_layout(spec, cell);
        emu::EmuDev<float> dev;
        dev.budget_bytes = 3 * kern::bytes_per_network(L, sizeof(float), true);  // chunks of 3: 3, 3, 3, 1
        std::vector<double> out(10 * row_stride(cell.depth()));
        kern::run_chunks<float>(dev, spec, cell, L, 0, 10, out.data(), nullptr);
        std::vector<DevOp> want;
        for (int k = 0; k < 4; ++k) {
            if (torch) want.push_back({DevOp::upload_params});
            want.push_back({DevOp::launch, k % 2});
            want.push_back({DevOp::download, k % 2});
            if (k > 0) want.push_back({DevOp::wait_download, (k - 1) % 2});
        }
        want.push_back({DevOp::wait_download, 1});
        want.push_back({DevOp::wait_launches});
        INFO("torch " << torch);
        CHECK(dev.ops == want);
    }
}

TEST_CASE("the schedule check and the emulated copies catch a broken schedule", "[emu][chunks]") {
    // What a synchronous loop did: each chunk's copy waited for before the next launch.
    const std::vector<DevOp> serial = {{DevOp::launch, 0},        {DevOp::download, 0}, {DevOp::wait_download, 0},
                                       {DevOp::launch, 1},        {DevOp::download, 1}, {DevOp::wait_download, 1},
                                       {DevOp::wait_launches, -1}};
    CHECK(schedule_fault(serial, 2).find("launched after") != std::string::npos);
    // One buffer too few: chunk 2 launched into buffer 0 before chunk 0's copy is waited for.
    const std::vector<DevOp> overrun = {{DevOp::launch, 0},        {DevOp::download, 0}, {DevOp::launch, 1},
                                        {DevOp::download, 1},      {DevOp::launch, 0},   {DevOp::wait_download, 0},
                                        {DevOp::wait_download, 1}, {DevOp::wait_launches, -1}};
    CHECK(schedule_fault(overrun, 3).find("not waited for") != std::string::npos);

    // The emulation runs a copy when it is waited for: rows a launch put in the
    // buffer before that are what arrive, as on a device whose copy ran late.
    Cell cell;
    cell.layer_sizes = {3, 4, 1};
    const Spec spec = make_spec(Precision::float64, 1, true, 0, 4, 3);
    const kern::NetLayout L = kern::make_layout(spec, cell);
    const uint64_t stride = row_stride(cell.depth());
    emu::EmuDev<double> dev;
    kern::NetArgs<double> a = kern::make_args<double>(spec, cell, L);
    a.layers = dev.upload_layers(L.layers);
    a.scratch = dev.alloc_scratch(L.scratch_per_net);
    double* rows = dev.alloc_rows(kern::kRowBuffers * stride);
    double* staging = dev.alloc_staging(kern::kRowBuffers * stride);
    a.out = rows;
    a.nets = 1;
    a.seed0 = 0;
    dev.launch(a, 1);
    dev.download_async(0, staging, rows, stride);
    const std::vector<double> seed0(rows, rows + stride);
    a.seed0 = 1;
    dev.launch(a, 1);  // into buffer 0 again, its copy not waited for
    dev.wait_download(0);
    CHECK(std::memcmp(staging, seed0.data(), stride * sizeof(double)) != 0);
    CHECK(std::memcmp(staging, rows, stride * sizeof(double)) == 0);  // seed 1's row arrived in seed 0's place
}

// A block per network (P > 1) keeps the network's scratch in shared memory,
// after the reduction doubles, where the device says it fits
// (Dev::scratch_in_shared). Only where the values live changes: the rows are the
// device-scratch rows bit for bit, the launch records say which ran, a chunk
// holds no device scratch, and the emulation poisons the block's shared memory
// before every network, so a read before a write, or scratch overlapping the
// reduction doubles, would show.
TEST_CASE("shared-memory scratch (P > 1): the device-scratch rows, bit for bit", "[emu][chunks][shared]") {
    const uint64_t seed = gs::test::test_seed(1717);
    SEED_INFO(seed);
    std::mt19937_64 rng(seed);
    auto check = [&]<class T>(T, int trial) {
        CellOptions co;
        co.max_width = trial % 3 == 0 ? 40 : trial % 3 == 1 ? 70 : 140;
        co.max_depth = 5;
        const Cell cell = random_cell(rng, co);
        Spec spec = make_spec(sizeof(T) == 4 ? Precision::float32 : Precision::float64, 1 + static_cast<int>(rng() % 5), rng() % 2 == 0,
                              rng() % 1000, 100, cell.input_dim(), static_cast<uint32_t>(rng()));
        if (trial % 4 == 1) spec.rng = RngKind::torch;
        kern::NetLayout L = kern::make_layout(spec, cell);
        const int forced[] = {0, 32, 64, 256};
        if (forced[trial % 4] != 0) kern::force_threads_per_net(L, forced[trial % 4]);
        if (L.threads_per_net == 1) kern::force_threads_per_net(L, 32);  // shared scratch is for blocks per network
        const int P = L.threads_per_net;
        const uint64_t count = 3 + rng() % 6, off = rng() % 50;
        const uint64_t need = 3 * static_cast<uint64_t>(P) * sizeof(double) + L.scratch_per_net * sizeof(T);
        INFO("trial " << trial << ": " << describe(cell, spec) << " P=" << P << " seeds " << off << "+" << count << ", " << need
                      << " bytes of shared memory");
        emu::EmuDev<T> global;  // shared_bytes_per_block 0: device scratch
        const std::vector<double> want = rows_via(global, spec, cell, L, off, count, true);
        REQUIRE(global.records.size() == 1);
        CHECK(!global.records[0].shared_scratch);
        CHECK(global.records[0].scratch_elements == count * L.scratch_per_net);
        // One byte short: still device scratch.
        emu::EmuDev<T> short_by_one;
        short_by_one.shared_bytes_per_block = need - 1;
        CHECK(bit_equal(rows_via(short_by_one, spec, cell, L, off, count, true), want));
        CHECK(!short_by_one.records.at(0).shared_scratch);
        // Exactly enough: shared scratch, no device scratch, the same rows.
        emu::EmuDev<T> shared;
        shared.shared_bytes_per_block = need;
        const std::vector<double> got = rows_via(shared, spec, cell, L, off, count, true);
        REQUIRE(shared.records.size() == 1);
        CHECK(shared.records[0].shared_scratch);
        CHECK(shared.records[0].scratch_elements == 0);
        CHECK(shared.scratch.empty());
        CHECK(bit_equal(got, want));
        // Without device scratch a network costs fewer bytes: a budget of two
        // device-scratch networks holds more of them per chunk (a few more in torch
        // mode, where the parameters dominate).
        const uint64_t device_bytes = kern::bytes_per_network(L, sizeof(T), true);
        const uint64_t shared_bytes = kern::bytes_per_network(L, sizeof(T), true, true);
        CHECK(shared_bytes + L.scratch_per_net * sizeof(T) == device_bytes);
        emu::EmuDev<T> tight;
        tight.shared_bytes_per_block = need;
        tight.budget_bytes = 2 * device_bytes;
        CHECK(bit_equal(rows_via(tight, spec, cell, L, off, count, true), want));
        CHECK(tight.launches.front() == std::min<uint64_t>(count, 2 * device_bytes / shared_bytes));
        if (!L.torch) CHECK(tight.launches.front() > 2);
    };
    for (int trial = 0; trial < 16; ++trial) {
        if (trial % 2) check(double{}, trial);
        else check(float{}, trial);
    }
}
