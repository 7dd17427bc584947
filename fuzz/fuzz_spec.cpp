// libFuzzer target for the spec parser: any byte string must either parse into a
// sane Spec or fail with one short, printable SpecError line. Anything else
// (another exception, a crash, a sanitizer report, a hang, a memory blow-up) is
// a bug. Build and run with scripts/ci_fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gradsweep/spec.hpp"

namespace {

void require(bool ok, const char* what, const std::string& detail = "") {
    if (ok) return;
    std::fprintf(stderr, "fuzz_spec: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

void check_spec(const gs::Spec& spec) {
    require(!spec.cells.empty(), "a valid spec has at least one cell");
    require(spec.cells.size() <= gs::kMaxCells, "cell limit");
    require(spec.seed_count >= 1 && spec.seed_count <= gs::kMaxSeedCount, "seed count range");
    require(spec.seed_first <= UINT64_MAX - spec.seed_count, "seed range overflow");
    require(spec.input.batch >= 1, "batch >= 1");
    require(spec.hash.size() == 16 && spec.hash.find_first_not_of("0123456789abcdef") == std::string::npos, "hash format", spec.hash);
    uint64_t layers = 0;
    for (size_t i = 0; i < spec.cells.size(); ++i) {
        const gs::Cell& c = spec.cells[i];
        require(c.index == static_cast<int>(i), "cell index");
        require(c.depth() >= 1, "depth >= 1");
        for (int n : c.layer_sizes) require(n >= 1 && n <= gs::kMaxLayerSize, "layer size range");
        for (int l = 0; l < c.depth(); ++l)
            require(static_cast<uint64_t>(c.layer_sizes[l]) * c.layer_sizes[l + 1] <= gs::kMaxTensorElements, "weights per layer");
        require(c.axes.size() == spec.axes.size(), "every axis labels every cell");
        if (!spec.input.random)
            for (const auto& row : spec.input.values) require(static_cast<int>(row.size()) == c.input_dim(), "input rows match");
        layers += static_cast<uint64_t>(c.depth());
    }
    require(layers <= gs::kMaxTotalLayers, "total layers");
}

void check_message(const std::string& m) {
    require(!m.empty(), "empty error message");
    require(m.size() < 4000, "error message too long", m.substr(0, 200));
    for (unsigned char c : m) require(c >= 0x20 && c < 0x7f, "error message is not one printable ASCII line", m.substr(0, 200));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const gs::Spec spec = gs::parse_spec_text(text);
        check_spec(spec);
        // results.json stores spec.raw; reading it back must give the same sweep.
        const gs::Spec again = gs::parse_spec_text(spec.raw.dump());
        require(again.hash == spec.hash, "round trip changes the hash");
        require(again.cells.size() == spec.cells.size(), "round trip changes the cells");
        for (size_t i = 0; i < spec.cells.size(); ++i)
            require(again.cells[i].layer_sizes == spec.cells[i].layer_sizes, "round trip changes layer sizes");
    } catch (const gs::SpecError& e) {
        check_message(e.what());
    }
    // Any other exception escapes and libFuzzer reports it as a crash.
    return 0;
}
