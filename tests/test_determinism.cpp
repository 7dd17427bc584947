// A network's result depends only on (spec, seed): not on threads, on how the
// seed range is split, or on the order cells run in.
#include <catch2/catch.hpp>
#include <cstring>

#include "gradsweep/backend.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/stats.hpp"

using namespace gs;

namespace {
std::vector<double> run_rows(Backend& b, const Spec& spec, const Cell& c, uint64_t off, uint64_t count) {
    std::vector<double> rows(count * row_stride(c.depth()));
    b.run(spec, c, off, count, rows.data());
    return rows;
}
bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
}  // namespace

TEST_CASE("results are bit-identical for 1 and 2 threads and any seed split", "[determinism]") {
    const Spec spec = parse_spec_text(R"({"seeds": {"count": 203, "first": 5},
        "grid": {"width": [3, 100], "activation": ["gelu", "tanh"], "shortcut": [false, true]},
        "network": {"depth": 4, "input_dim": 3},
        "input": {"distribution": "normal", "batch": 2}})");
    auto one = make_cpu_backend(1);
    auto two = make_cpu_backend(2);
    for (const Cell& c : spec.cells) {
        const auto a = run_rows(*one, spec, c, 0, spec.seed_count);
        const auto b = run_rows(*two, spec, c, 0, spec.seed_count);
        CHECK(bit_equal(a, b));
        // Split at a point that is not a multiple of the lane count.
        auto head = run_rows(*two, spec, c, 0, 37);
        const auto tail = run_rows(*one, spec, c, 37, spec.seed_count - 37);
        head.insert(head.end(), tail.begin(), tail.end());
        CHECK(bit_equal(a, head));
    }
    // Running a cell alone gives the same rows as inside the full sweep.
    const Spec single = parse_spec_text(R"({"seeds": {"count": 203, "first": 5},
        "network": {"depth": 4, "input_dim": 3, "width": 100, "activation": "tanh", "shortcut": true},
        "input": {"distribution": "normal", "batch": 2}})");
    CHECK(bit_equal(run_rows(*two, single, single.cells[0], 0, 203), run_rows(*one, spec, spec.cells.back(), 0, 203)));
}
