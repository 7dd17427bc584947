// The GPU tests' comparison machinery itself, on the host: the ReLU kink
// allowance (kink_reference.hpp) must accept a float32 result that took the other
// side of a kink, and only there.
#include <catch2/catch.hpp>
#include <cmath>

#include "gpu_test_util.hpp"
#include "kink_reference.hpp"

using namespace gs;
using namespace gs::gputest;

TEST_CASE("kink allowance: a ReLU unit on the kink widens only its own network's tolerance", "[emu][kink]") {
    Cell cell;
    cell.layer_sizes = {2, 2, 1};
    cell.activation = Activation::relu;
    cell.bias = false;
    cell.last_activation = false;
    Spec spec = make_spec(Precision::float64, 1, false, 5, 2, 2);
    // Seed 5: unit 0 of layer 0 on the kink, z = W00 x0 + W01 x1 = 0 up to rounding.
    const test::RefNet probe(spec, cell, 5);
    spec.input.values = {{1.0, -probe.W[0][0] / probe.W[0][1]}};
    const int stride = row_stride(cell.depth());

    auto cpu = make_cpu_backend(1);
    const auto cpu64 = run_poisoned(*cpu, spec, cell, 0, 2);
    // A float32 CPU run that stayed on float64's side (its own error ~1e-7) ...
    std::vector<double> cpu32 = cpu64;
    for (double& v : cpu32) v *= 1 + 1e-7;
    // ... and a float32 GPU run that put that z on the other side of 0, by half
    // the bound. Which side float64 itself took (z is 0 up to rounding) depends on
    // FMA contraction: take the side farther from the CPU's row.
    test::RefNet ref = reference_net(spec, cell, 5);
    ref.pin_layer = 0;
    ref.pin_unit = 0;
    const double s = std::fabs(ref.W[0][0]) + std::fabs(ref.W[0][1] * spec.input.values[0][1]);
    auto distance = [&](const std::vector<double>& row) {
        double d = 0;
        for (int q = 0; q < stride; ++q) d += std::fabs(row[q] - cpu64[q]);
        return d;
    };
    ref.pin_z = 0.5 * kKinkBound * s;
    const auto above = ref.stats_row();
    ref.pin_z = -ref.pin_z;
    const auto below = ref.stats_row();
    const auto& other_row = distance(above) > distance(below) ? above : below;
    std::vector<double> got = cpu64;
    std::copy(other_row.begin(), other_row.end(), got.begin());

    const auto plain = float32_tolerance(cpu32, cpu64, 1e-4, stride);
    // Without the allowance that is a failure (what the flat comparison reported).
    const Comparison before = compare_rows(got, cpu64, plain, 1e-30, stride);
    INFO("without the allowance: " << before.first);
    CHECK_FALSE(before.ok());

    auto tol = plain;
    CHECK(add_kink_allowance(spec, cell, 0, 2, cpu64, tol) == 1);
    const Comparison after = compare_rows(got, cpu64, tol, 1e-30, stride);
    INFO("with the allowance: " << after.first);
    CHECK(after.ok());

    // Local: the loss (moved only by the unit's tiny output) and seed 6 (no unit
    // at the kink) keep about the plain tolerance.
    auto wrong_loss = got;
    wrong_loss[loss_index(cell.depth())] *= 1.01;
    CHECK_FALSE(compare_rows(wrong_loss, cpu64, tol, 1e-30, stride).ok());
    auto wrong_other_net = got;
    for (int q = 0; q < stride; ++q) wrong_other_net[stride + q] *= 1.5;
    REQUIRE(cpu64[stride + loss_index(cell.depth())] > 0);
    CHECK_FALSE(compare_rows(wrong_other_net, cpu64, tol, 1e-30, stride).ok());
    CHECK(kink_allowance(reference_net(spec, cell, 6)).units == 0);

    // Smooth activations have no kink to allow for.
    Cell smooth = cell;
    smooth.activation = Activation::gelu;
    auto tol_smooth = plain;
    CHECK(add_kink_allowance(spec, smooth, 0, 2, cpu64, tol_smooth) == 0);
    CHECK(tol_smooth == plain);
}
