// The spec: how a grid expands into cells, what the defaults are, and that every
// bad spec in tests/bad_specs/ fails with exactly its expected message.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gradsweep/spec.hpp"

using namespace gs;
namespace fs = std::filesystem;

namespace {
std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// The message a spec fails with, or "" when it parses.
std::string error_of(const std::string& text) {
    try {
        parse_spec_text(text);
    } catch (const SpecError& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("grid expansion: every combination, last axis fastest, axes in written order", "[spec]") {
    const Spec s = parse_spec_text(R"({"grid": {"width": [4, 5, 6], "depth": [2, 3]}, "network": {"input_dim": 3}})");
    REQUIRE(s.axes == std::vector<std::string>{"width", "depth"});
    REQUIRE(s.cells.size() == 6);
    const int want[6][2] = {{4, 2}, {4, 3}, {5, 2}, {5, 3}, {6, 2}, {6, 3}};
    for (int i = 0; i < 6; ++i) {
        const Cell& c = s.cells[i];
        CHECK(c.index == i);
        CHECK(c.width() == want[i][0]);
        CHECK(c.depth() == want[i][1]);
        CHECK(c.axes["width"] == want[i][0]);
        CHECK(c.axes["depth"] == want[i][1]);
        CHECK(c.axes.size() == 2);  // only grid axes label a cell
        CHECK(c.input_dim() == 3);
    }
    CHECK(s.networks() == 6);
}

TEST_CASE("a spec without a grid is one cell with empty labels", "[spec]") {
    const Spec s = parse_spec_text(R"({"network": {"depth": 2, "width": 3}, "seeds": {"count": 7}})");
    REQUIRE(s.cells.size() == 1);
    CHECK(s.axes.empty());
    CHECK(s.cells[0].axes == ojson::object());
    CHECK(s.networks() == 7);
}

TEST_CASE("depth and width: input_dim null means width, output_dim defaults to 1", "[spec]") {
    const Spec s = parse_spec_text(R"({"grid": {"input_dim": [null, 2], "depth": [1, 3]}, "network": {"width": 5}})");
    REQUIRE(s.cells.size() == 4);
    CHECK(s.cells[0].layer_sizes == std::vector<int>{5, 1});  // depth 1: one Linear from input to output
    CHECK(s.cells[1].layer_sizes == std::vector<int>{5, 5, 5, 1});
    CHECK(s.cells[2].layer_sizes == std::vector<int>{2, 1});
    CHECK(s.cells[3].layer_sizes == std::vector<int>{2, 5, 5, 1});
    CHECK(s.cells[3].layer_sizes_label() == "2-5-5-1");
    CHECK(s.cells[3].width() == 5);
    CHECK(s.cells[0].width() == 0);  // no hidden layer
    const Spec o = parse_spec_text(R"({"network": {"depth": 2, "width": 4, "input_dim": 3, "output_dim": 7}})");
    CHECK(o.cells[0].layer_sizes == std::vector<int>{3, 4, 7});
}

TEST_CASE("layer_sizes replaces depth and width, and may be an axis", "[spec]") {
    const Spec s = parse_spec_text(R"({"grid": {"layer_sizes": [[3, 3, 1], [2, 7, 7, 7, 2], [4, 8, 6, 1]]}})");
    REQUIRE(s.cells.size() == 3);
    CHECK(s.cells[0].depth() == 2);
    CHECK(s.cells[1].depth() == 4);
    CHECK(s.cells[1].input_dim() == 2);
    CHECK(s.cells[1].output_dim() == 2);
    CHECK(s.cells[1].width() == 7);
    CHECK(s.cells[2].width() == 0);  // hidden sizes differ
    CHECK(s.cells[2].axes["layer_sizes"] == ojson::parse("[4, 8, 6, 1]"));
}

TEST_CASE("defaults", "[spec]") {
    const Spec s = parse_spec_text(R"({"network": {"depth": 2, "width": 3}})");
    CHECK(s.name == "sweep");
    CHECK(s.description.empty());
    CHECK(s.seed_first == 0);
    CHECK(s.seed_count == 1);
    CHECK(s.rng == RngKind::philox);
    CHECK(s.rng_key == 0);
    CHECK(s.precision == Precision::float32);
    CHECK(s.input.random);
    CHECK(s.input.batch == 1);
    CHECK(s.target == 0.0);
    const Cell& c = s.cells[0];
    CHECK(c.layer_sizes == std::vector<int>{3, 3, 1});
    CHECK(c.activation == Activation::relu);
    CHECK(c.leaky_slope == 0.01);
    CHECK_FALSE(c.shortcut);
    CHECK(c.bias);
    CHECK(c.last_activation);
    CHECK(c.residual_scale == 1.0);
    CHECK(c.init == Init{});
    CHECK(c.init.kind == InitKind::torch_default);
}

TEST_CASE("every key is read", "[spec]") {
    const Spec s = parse_spec_text(R"({"name": "n", "description": "d", "seeds": {"count": 9, "first": 4},
        "rng": "philox", "rng_key": 4294967295, "precision": "float64",
        "network": {"depth": 3, "width": 4, "input_dim": 2, "output_dim": 3, "activation": "leaky_relu",
                    "leaky_slope": 0.2, "shortcut": true, "bias": false, "last_activation": false,
                    "residual_scale": 0.5, "init": {"kind": "normal", "sigma_w": 1.5, "sigma_b": 0.25}},
        "input": {"distribution": "normal", "batch": 6}, "loss": {"kind": "mse", "target": -0.5}})");
    CHECK(s.name == "n");
    CHECK(s.description == "d");
    CHECK(s.seed_count == 9);
    CHECK(s.seed_first == 4);
    CHECK(s.rng_key == 4294967295u);
    CHECK(s.precision == Precision::float64);
    CHECK(s.input.random);
    CHECK(s.input.batch == 6);
    CHECK(s.target == -0.5);
    const Cell& c = s.cells[0];
    CHECK(c.layer_sizes == std::vector<int>{2, 4, 4, 3});
    CHECK(c.activation == Activation::leaky_relu);
    CHECK(c.leaky_slope == 0.2);
    CHECK(c.shortcut);
    CHECK_FALSE(c.bias);
    CHECK_FALSE(c.last_activation);
    CHECK(c.residual_scale == 0.5);
    CHECK(c.init.kind == InitKind::normal);
    CHECK(c.init.sigma_w == 1.5);
    CHECK(c.init.sigma_b == 0.25);
    CHECK(init_label(c.init) == "normal(sigma_w=1.5,sigma_b=0.25)");
    // Shapes decide where the shortcut applies; last_activation only the last layer.
    CHECK_FALSE(c.residual_at(0));  // 2 -> 4
    CHECK(c.residual_at(1));        // 4 -> 4
    CHECK_FALSE(c.residual_at(2));  // 4 -> 3
    CHECK(c.activation_at(0));
    CHECK(c.activation_at(1));
    CHECK_FALSE(c.activation_at(2));
}

TEST_CASE("fixed input rows set the batch", "[spec]") {
    const Spec s = parse_spec_text(R"({"network": {"depth": 2, "width": 3},
        "input": {"values": [[1, 0, -1], [0.5, 2, 3]]}})");
    CHECK_FALSE(s.input.random);
    CHECK(s.input.batch == 2);
    CHECK(s.input.values == std::vector<std::vector<double>>{{1, 0, -1}, {0.5, 2, 3}});
}

TEST_CASE("init names and the normal init's label", "[spec]") {
    const Spec s = parse_spec_text(R"({"network": {"depth": 2, "width": 3},
        "grid": {"init": ["torch_default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                          {"kind": "normal", "sigma_w": 1e6}, {"kind": "normal"}]}})");
    REQUIRE(s.cells.size() == 7);
    CHECK(s.cells[1].init.kind == InitKind::kaiming_normal);
    CHECK(s.cells[4].init.kind == InitKind::xavier_uniform);
    CHECK(init_label(s.cells[5].init) == "normal(sigma_w=1e+06,sigma_b=0)");
    CHECK(init_label(s.cells[6].init) == "normal(sigma_w=1,sigma_b=0)");
    // The object form of a named init is that init (in a grid beside its name it
    // would be the same cell twice, which is refused).
    const Spec o = parse_spec_text(R"({"network": {"depth": 2, "width": 3, "init": {"kind": "kaiming_normal"}}})");
    CHECK(o.cells[0].init.kind == InitKind::kaiming_normal);
}

TEST_CASE("the spec hash ignores layout but not content, and is stable across versions", "[spec]") {
    const std::string a = R"({"name": "h", "grid": {"depth": [2, 3]}, "network": {"width": 4}, "seeds": {"count": 10}})";
    const std::string b = "{\n  \"name\":\"h\",\n  \"grid\": {\"depth\": [2,3]},\n  \"network\": {\"width\": 4},\n  \"seeds\": {\"count\": 10}\n}\n";
    const std::string c = R"({"name": "h", "grid": {"depth": [2, 3]}, "network": {"width": 4}, "seeds": {"count": 11}})";
    const Spec sa = parse_spec_text(a);
    CHECK(sa.hash.size() == 16);
    CHECK(sa.hash.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(parse_spec_text(a).hash == sa.hash);
    CHECK(parse_spec_text(b).hash == sa.hash);
    CHECK(parse_spec_text(c).hash != sa.hash);
    // Shards of one sweep find each other by this value: it must not change
    // between versions. (FNV-1a 64 of the compact JSON text, keys in written order.)
    CHECK(sa.hash == "903add37a8301208");
    // Re-parsing the spec as stored in results.json gives the same sweep.
    const Spec again = parse_spec_text(sa.raw.dump());
    CHECK(again.hash == sa.hash);
    CHECK(again.cells.size() == sa.cells.size());
}

TEST_CASE("the example sweeps are valid", "[spec]") {
    int n = 0;
    for (const auto& e : fs::directory_iterator(fs::path(GS_SOURCE_DIR) / "sweeps")) {
        if (e.path().extension() != ".json") continue;
        INFO(e.path());
        CHECK_NOTHROW(load_spec_file(e.path().string()));
        ++n;
    }
    CHECK(n >= 1);
}

TEST_CASE("every bad spec fails with exactly its expected message", "[spec][bad_specs]") {
    const fs::path dir = fs::path(GS_SOURCE_DIR) / "tests" / "bad_specs";
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".json") continue;
        fs::path expected_file = e.path();
        expected_file.replace_extension(".expected");
        std::string expected = read_text(expected_file);
        while (!expected.empty() && expected.back() == '\n') expected.pop_back();
        INFO(e.path().filename().string());
        const std::string got = error_of(read_text(e.path()));
        CHECK(got == expected);
        CHECK(got.find('\n') == std::string::npos);
        ++n;
    }
    CHECK(n >= 40);
}

TEST_CASE("SpecError carries the JSON path separately", "[spec]") {
    try {
        parse_spec_text(R"({"grid": {"width": [3, 16, 0]}, "network": {"depth": 2}})");
        FAIL("no error");
    } catch (const SpecError& e) {
        CHECK(e.path() == "grid.width[2]");
        CHECK(std::string(e.what()) == "grid.width[2]: expected an integer >= 1, got 0");
    }
    try {
        parse_spec_text("{\n\"seeds\": 3,\n}");
        FAIL("no error");
    } catch (const SpecError& e) {
        CHECK(e.path().empty());
        CHECK(std::string(e.what()).rfind("invalid JSON at line 3, column 1:", 0) == 0);
    }
}

TEST_CASE("hostile keys and values stay on one short line", "[spec]") {
    const std::string long_key(5000, 'k');
    for (const std::string& text : {
             R"({"network": {"depth": 2, "width": 3, ")" + long_key + R"(": 1}})",
             R"({"network": {"depth": 2, "width": 3, "activation": ")" + long_key + R"("}})",
             std::string(R"({"network": {"depth": 2, "width": 3, "activation": "re\nlu\u0000\u00e9"}})"),
             std::string(R"({"name": ")") + long_key + "\x01",
             std::string("{\"na\xc3\x28me\": 1}"),
         }) {
        const std::string e = error_of(text);
        INFO(e);
        CHECK_FALSE(e.empty());
        CHECK(e.size() < 400);
        for (unsigned char ch : e) CHECK((ch >= 0x20 && ch < 0x7f));
    }
}

TEST_CASE("limits: the largest accepted grid, and one past it", "[spec][limits]") {
    // 10 x 10000 = kMaxCells cells: accepted; one more value on an axis is not.
    std::string widths;
    for (int w = 1; w <= 10000; ++w) widths += (w > 1 ? "," : "") + std::to_string(w);
    const Spec s = parse_spec_text(R"({"grid": {"depth": [1,2,3,4,5,6,7,8,9,10], "width": [)" + widths + "]}}");
    CHECK(s.cells.size() == kMaxCells);
    CHECK(error_of(R"({"grid": {"depth": [1,2,3,4,5,6,7,8,9,10,11], "width": [)" + widths + "]}}") ==
          "grid: more than 100000 cells; split the sweep into several specs");
    // Very deep cells: the total number of layers is bounded, not just each depth.
    CHECK(error_of(R"({"grid": {"depth": [1048576, 1048575, 1048574, 1048573, 1048572, 1048571, 1048570,
                                          1048569, 1048568, 1048567]}, "network": {"width": 1}})") ==
          "grid: the cells have more than 10000000 layers in total; split the sweep into several specs");
    CHECK(error_of(R"({"network": {"depth": 2, "width": 65536, "input_dim": 65535}})").empty());  // 65535 x 65536 < 2^32
    CHECK(error_of(R"({"network": {"depth": 2, "width": 65536}})") ==
          "network.width: layer 0 would have 65536 x 65536 = 4294967296 weights (at most 4294967295 per layer)");
    CHECK(error_of(R"({"seeds": {"count": 1000000000000}, "network": {"depth": 1, "width": 1}})").empty());
}
