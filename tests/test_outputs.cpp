// What results.csv and results.json say about each cell: every grid axis and
// every setting that changes a number identifies a row; the loss has its row;
// layer_sizes stays short however deep the network; results.json is written as
// it is produced, formatted as one dump of the whole document, and records the
// spec with every default; a stop while writing leaves nothing behind.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "gradsweep/cuda_sizing.hpp"
#include "gradsweep/resources.hpp"
#include "gradsweep/results_io.hpp"
#include "gradsweep/spec.hpp"
#include "gradsweep/sweep.hpp"

using namespace gs;
namespace fs = std::filesystem;

namespace {

// Every cell with `spec.seed_count` networks and summaries that differ per
// cell, layer and quantity (so rows can be told apart by their numbers too).
SweepResult numbered_result(const Spec& spec) {
    SweepResult r;
    for (const Cell& c : spec.cells) {
        CellResult cr;
        cr.cell = c.index;
        cr.networks = spec.seed_count;
        cr.layers.resize(static_cast<size_t>(c.depth()));
        for (int l = 0; l < c.depth(); ++l)
            for (int q = 0; q < kNumQuantities; ++q) {
                Summary& s = cr.layers[l][q];
                s.n = spec.seed_count;
                s.mean = c.index + 0.001 * l + 0.0001 * q;
                s.median = s.q05 = s.q95 = s.min = s.max = s.geomean = s.mean;
            }
        cr.loss.n = spec.seed_count;
        cr.loss.mean = cr.loss.median = 1000.0 + c.index;
        r.cells.push_back(std::move(cr));
    }
    return r;
}

// RFC 4180 records (quoted fields may hold commas, quotes and newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (quoted) {
            if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
            else if (ch == '"') quoted = false;
            else field += ch;
        } else if (ch == '"') quoted = true;
        else if (ch == ',') row.push_back(std::move(field)), field.clear();
        else if (ch == '\n') {
            row.push_back(std::move(field));
            field.clear();
            rows.push_back(std::move(row));
            row.clear();
        } else field += ch;
    }
    REQUIRE(field.empty());
    REQUIRE(row.empty());
    return rows;
}

const std::set<std::string> kNotIdentifying = {"cell", "layer", "quantity", "n", "mean", "std", "min", "q05", "median",
                                               "q95", "max", "geomean", "n_nonfinite", "n_zero"};

// Layer sizes from the compact form ("3x5-1"); empty when it was cut.
std::vector<int> expand_layer_sizes(const std::string& s) {
    if (s.find("...") != std::string::npos) return {};
    std::vector<int> sizes;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, '-')) {
        const size_t x = part.find('x');
        const int size = std::stoi(part.substr(0, x));
        const int n = x == std::string::npos ? 1 : std::stoi(part.substr(x + 1));
        sizes.insert(sizes.end(), static_cast<size_t>(n), size);
    }
    return sizes;
}

// A random spec: a random subset of the network keys as grid axes (1-3 distinct
// values each), the others fixed or left to their defaults, random spec-wide settings.
ojson random_spec(std::mt19937_64& rng) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
    auto coin = [&]() { return (rng() & 1) != 0; };
    // Candidate values per key; an axis takes 1-3 of them, distinct.
    const std::map<std::string, std::vector<ojson>> candidates = {
        {"depth", {1, 2, 3, 5}},
        {"width", {1, 2, 4, 7}},
        {"input_dim", {nullptr, 1, 3}},
        {"output_dim", {1, 2}},
        {"layer_sizes", {ojson::parse("[3, 1]"), ojson::parse("[3, 3, 1]"), ojson::parse("[3, 3, 3, 1]"),
                         ojson::parse("[2, 5, 1]"), ojson::parse("[3, 4, 4, 4, 2]")}},
        {"activation", {"relu", "gelu", "tanh", "leaky_relu", "identity", "sigmoid"}},
        {"leaky_slope", {0.01, 0.2, 0.5, -0.1}},
        {"shortcut", {false, true}},
        {"bias", {false, true}},
        {"last_activation", {false, true}},
        {"residual_scale", {1.0, 0.5, 2, 0.25, "1/sqrt(depth)"}},
        // The normal init's parameters as keys of their own (refused beside another init).
        {"sigma_w2", {0.5, 2.0, 1.0}},
        {"sigma_b", {0.0, 0.1}},
        {"init", {"torch_default", "kaiming_normal", "xavier_uniform", ojson::parse(R"({"kind": "normal", "sigma_w": 1.5})"),
                  ojson::parse(R"({"kind": "normal"})"),
                  ojson::parse(R"({"kind": "normal", "sigma_w": 1.5, "sigma_b": 0.25})"),
                  ojson::parse(R"({"kind": "normal", "sigma_w": 2.0, "sigma_b": 0.25})")}},
    };
    const bool by_sizes = coin();
    std::vector<std::string> keys = {"activation", "leaky_slope", "shortcut", "bias", "last_activation", "residual_scale", "init",
                                     "sigma_w2", "sigma_b"};
    if (by_sizes) keys.push_back("layer_sizes");
    else keys.insert(keys.end(), {"depth", "width", "input_dim", "output_dim"});
    std::shuffle(keys.begin(), keys.end(), rng);
    ojson grid = ojson::object(), network = ojson::object();
    for (const std::string& k : keys) {
        const auto& values = candidates.at(k);
        const int mode = pick(3);  // 0: left out, 1: network, 2: grid axis
        const bool required = k == "layer_sizes" || k == "depth" || k == "width";
        if (mode == 0 && !required) continue;
        if (mode == 2 || (mode == 0 && required && coin())) {
            std::vector<ojson> pool = values;
            std::shuffle(pool.begin(), pool.end(), rng);
            pool.resize(1 + static_cast<size_t>(pick(std::min<int>(3, static_cast<int>(pool.size())))));
            grid[k] = pool;
        } else {
            network[k] = values[static_cast<size_t>(pick(static_cast<int>(values.size())))];
        }
    }
    ojson spec = ojson::object();
    const char* names[] = {"random", "with, comma", "with \"quotes\"", "x"};
    spec["name"] = names[pick(4)];
    if (coin()) spec["seeds"] = ojson{{"count", 1 + pick(9)}, {"first", pick(1000)}};
    if (coin()) spec["precision"] = coin() ? "float32" : "float64";
    if (coin()) spec["rng_key"] = pick(5);
    if (coin()) spec["input"] = ojson{{"distribution", "normal"}, {"batch", 1 + pick(3)}};
    if (coin()) spec["loss"] = ojson{{"kind", "mse"}, {"target", coin() ? 0.5 : -1.0}};
    if (!grid.empty()) spec["grid"] = grid;
    if (!network.empty()) spec["network"] = network;
    return spec;
}

uint64_t test_seed() {
    if (const char* v = std::getenv("GS_TEST_SEED")) return std::strtoull(v, nullptr, 10);
    return std::random_device{}();
}

// The identifying columns of each cell in results.csv, checked to be the same on
// every row of the cell (layers and the loss row).
std::map<int, std::vector<std::string>> identities(const std::vector<std::vector<std::string>>& rows) {
    const auto& header = rows.at(0);
    std::map<int, std::vector<std::string>> ids;
    for (size_t r = 1; r < rows.size(); ++r) {
        REQUIRE(rows[r].size() == header.size());
        std::vector<std::string> id;
        for (size_t i = 0; i < header.size(); ++i)
            if (!kNotIdentifying.count(header[i])) id.push_back(header[i] + "=" + rows[r][i]);
        const int cell = std::stoi(rows[r][0]);
        auto [it, fresh] = ids.emplace(cell, id);
        if (!fresh) REQUIRE(it->second == id);
    }
    return ids;
}

size_t column(const std::vector<std::string>& header, const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE(it != header.end());
    return static_cast<size_t>(it - header.begin());
}

}  // namespace

TEST_CASE("results.csv: a leaky_slope axis gives cells that the columns tell apart", "[outputs]") {
    const Spec spec = parse_spec_text(R"({"grid": {"leaky_slope": [0.01, 0.2]},
        "network": {"depth": 2, "width": 3, "activation": "leaky_relu"}})");
    REQUIRE(spec.cells.size() == 2);
    const SweepResult r = numbered_result(spec);
    const auto rows = parse_csv(results_csv_text(spec, r));
    const auto ids = identities(rows);
    REQUIRE(ids.size() == 2);
    CHECK(ids.at(0) != ids.at(1));
    const size_t slope = column(rows[0], "leaky_slope");
    CHECK(rows[1][slope] == "0.01");
    CHECK(rows.back()[slope] == "0.2");
    const ojson j = ojson::parse(results_json_text(spec, r));
    CHECK(j["cells"][0]["params"]["leaky_slope"] == 0.01);
    CHECK(j["cells"][1]["params"]["leaky_slope"] == 0.2);
    CHECK(j["cells"][0]["params"] != j["cells"][1]["params"]);
}

TEST_CASE("cells with the same settings are refused; a value the network ignores still tells cells apart", "[outputs][spec]") {
    auto error_of = [](const std::string& text) -> std::string {
        try {
            parse_spec_text(text);
        } catch (const SpecError& e) {
            return e.what();
        }
        return "";
    };
    // input_dim null is the width: with width 3, null and 3 are the same cell.
    CHECK_THAT(error_of(R"({"grid": {"width": [3, 4], "input_dim": [null, 3]}, "network": {"depth": 2}})"),
               Catch::StartsWith("grid: cells 0 {\"width\":3,\"input_dim\":null} and 1 {\"width\":3,\"input_dim\":3} are the same network"));
    CHECK_THAT(error_of(R"({"grid": {"init": ["xavier_normal", {"kind": "xavier_normal"}]}, "network": {"depth": 2, "width": 3}})"),
               Catch::Contains("are the same network"));
    // Depth 1 has no hidden layer, so its width is unused, but a grid over
    // depth x width is the usual sweep: those cells stay, told apart by width.
    const Spec spec = parse_spec_text(R"({"grid": {"depth": [1, 2], "width": [2, 40]}, "network": {"input_dim": 3}})");
    REQUIRE(spec.cells.size() == 4);
    const auto rows = parse_csv(results_csv_text(spec, numbered_result(spec)));
    const auto ids = identities(rows);
    CHECK(ids.at(0) != ids.at(1));
    const size_t width = column(rows[0], "width");
    CHECK(rows[1][width] == "2");
    CHECK(rows.back()[width] == "40");
}

TEST_CASE("results.csv: no two cells of random specs share all identifying columns", "[outputs]") {
    const uint64_t seed = test_seed();
    std::printf("random specs: seed %llu (set GS_TEST_SEED=%llu to repeat)\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(seed));
    INFO("GS_TEST_SEED=" << seed);
    std::mt19937_64 rng(seed);
    int specs = 0, multi = 0;
    for (int attempt = 0; attempt < 400 && specs < 150; ++attempt) {
        const ojson sj = random_spec(rng);
        Spec spec;
        try {
            spec = parse_spec_text(sj.dump());
        } catch (const SpecError&) {
            continue;  // e.g. a layer_sizes axis whose lists take other input sizes than the batch: not this test's concern
        }
        ++specs;
        multi += spec.cells.size() > 1;
        INFO("spec " << sj.dump());
        const SweepResult r = numbered_result(spec);
        const auto rows = parse_csv(results_csv_text(spec, r));
        const auto& header = rows.at(0);
        const auto ids = identities(rows);
        REQUIRE(ids.size() == spec.cells.size());
        std::set<std::vector<std::string>> distinct;
        for (const auto& [cell, id] : ids) distinct.insert(id);
        CHECK(distinct.size() == spec.cells.size());
        // The columns say what each cell is, and the spec-wide settings.
        for (size_t row = 1; row < rows.size(); ++row) {
            const auto& x = rows[row];
            const Cell& c = spec.cells.at(static_cast<size_t>(std::stoi(x[0])));
            CHECK(expand_layer_sizes(x[column(header, "layer_sizes")]) == c.layer_sizes);
            if (c.given_width) CHECK(x[column(header, "width")] == std::to_string(c.given_width));
            CHECK(std::stod(x[column(header, "leaky_slope")]) == c.leaky_slope);
            CHECK(std::stod(x[column(header, "residual_scale")]) == c.residual_scale);
            CHECK(x[column(header, "init")] == kInitNames[static_cast<int>(c.init.kind)]);
            if (c.init.kind == InitKind::normal) {
                CHECK(std::stod(x[column(header, "sigma_w")]) == c.init.sigma_w);
                CHECK(std::stod(x[column(header, "sigma_b")]) == c.init.sigma_b);
            } else {
                CHECK(x[column(header, "sigma_w")].empty());
            }
            CHECK(x[column(header, "name")] == spec.name);
            CHECK(x[column(header, "precision")] == precision_name(spec.precision));
            CHECK(x[column(header, "rng")] == rng_name(spec.rng));
            CHECK(x[column(header, "rng_key")] == std::to_string(spec.rng_key));
            CHECK(x[column(header, "seeds_first")] == std::to_string(spec.seed_first));
            CHECK(x[column(header, "seeds_count")] == std::to_string(spec.seed_count));
            CHECK(x[column(header, "input")] == (spec.input.random ? "normal" : "values"));
            CHECK(x[column(header, "input_batch")] == std::to_string(spec.input.batch));
            CHECK(std::stod(x[column(header, "loss_target")]) == spec.target);
        }
        // results.json: params tell the cells apart too.
        const ojson j = ojson::parse(results_json_text(spec, r));
        std::set<std::string> params;
        for (const auto& cj : j["cells"]) params.insert(cj["params"].dump());
        CHECK(params.size() == spec.cells.size());
    }
    INFO(specs << " specs, " << multi << " with several cells");
    CHECK(specs >= 100);
    CHECK(multi >= 50);
}

TEST_CASE("results.csv: one loss row per cell, layer empty, quantity loss", "[outputs]") {
    const Spec spec = parse_spec_text(R"({"grid": {"depth": [1, 3], "bias": [true, false]}, "network": {"width": 2}})");
    const SweepResult r = numbered_result(spec);
    const auto rows = parse_csv(results_csv_text(spec, r));
    const auto& h = rows[0];
    std::map<int, int> losses;
    for (size_t i = 1; i < rows.size(); ++i) {
        if (rows[i][column(h, "quantity")] != "loss") {
            CHECK(!rows[i][column(h, "layer")].empty());
            continue;
        }
        const int cell = std::stoi(rows[i][0]);
        ++losses[cell];
        CHECK(rows[i][column(h, "layer")].empty());
        CHECK(rows[i][column(h, "median")] == format_double(r.cells[cell].loss.median));
        CHECK(rows[i][column(h, "n")] == std::to_string(r.cells[cell].loss.n));
    }
    REQUIRE(losses.size() == spec.cells.size());
    for (const auto& [cell, n] : losses) CHECK(n == 1);
    // depth 1+3+1+3 layers; 5 quantities with bias, 4 without; one loss row per cell.
    CHECK(rows.size() - 1 == (1 + 3) * 5 + (1 + 3) * 4 + 4);
}

TEST_CASE("layer_sizes in runs, cut with a fingerprint when long", "[outputs]") {
    Cell c;
    c.layer_sizes = {3, 3, 3, 3, 3, 1};
    CHECK(c.layer_sizes_compact() == "3x5-1");
    c.layer_sizes = {16, 32, 64, 32, 16, 1};
    CHECK(c.layer_sizes_compact() == "16-32-64-32-16-1");
    c.layer_sizes = {3, 64, 64, 64, 1};
    CHECK(c.layer_sizes_compact() == "3-64x3-1");
    c.layer_sizes.assign(10001, 1);
    CHECK(c.layer_sizes_compact() == "1x10001");
    // 100001 sizes without repeats: cut, short, and different lists read differently.
    c.layer_sizes.clear();
    for (int i = 0; i <= 100000; ++i) c.layer_sizes.push_back(1 + i % 2);
    const std::string a = c.layer_sizes_compact();
    c.layer_sizes[50000] = 7;
    const std::string b = c.layer_sizes_compact();
    CHECK(a.size() <= kMaxLayerSizesText + 60);
    CHECK(a.find("-...-") != std::string::npos);
    CHECK(a.find("(100001 sizes, fnv ") != std::string::npos);
    CHECK(a != b);
    CHECK(a.substr(0, 20) == "1-2-1-2-1-2-1-2-1-2-");
}

TEST_CASE("results.csv grows linearly with depth", "[outputs]") {
    // The row prefix used to hold the whole layer_sizes string: depth 10000 made
    // results.csv ~1 GB. Now each row is bounded whatever the depth.
    for (int depth : {100, 10000}) {
        const Spec spec = parse_spec_text(R"({"network": {"depth": )" + std::to_string(depth) + R"(, "width": 1}})");
        const SweepResult r = numbered_result(spec);
        const std::string csv = results_csv_text(spec, r);
        const size_t rows = static_cast<size_t>(depth) * 5 + 1;
        INFO("depth " << depth << ": " << csv.size() << " bytes for " << rows << " rows");
        CHECK(csv.size() < rows * 300 + 1000);
        const std::string json = results_json_text(spec, r);
        CHECK(json.size() < static_cast<size_t>(depth) * 2500 + 10000);
    }
}

TEST_CASE("results.json is written piece by piece exactly as one dump of the document", "[outputs]") {
    // Cells with and without bias, with and without a theory, a single-layer cell,
    // and provenance extras: the streamed text must be what nlohmann's dump(1) of
    // the parsed document gives (same layout as before streaming).
    const Spec spec = parse_spec_text(R"({"name": "stream", "seeds": {"count": 3, "first": 7},
        "grid": {"depth": [1, 4], "bias": [true, false], "init": ["torch_default", {"kind": "normal", "sigma_w": 2}]},
        "network": {"width": 3, "input_dim": 2}, "input": {"values": [[1, -1], [0.5, 0.25]]}})");
    SweepResult r = numbered_result(spec);
    r.info.backend = "cpu";
    r.info.device = "test";
    r.cells[1].layers[0][weight_grad_rms].median = std::nan("");
    const ojson extra{{"seed_block", 4096}, {"work_units", 8}};
    const std::string text = results_json_text(spec, r, extra);
    const ojson j = ojson::parse(text);
    CHECK(j.dump(1) + "\n" == text);
    CHECK(j["provenance"]["seed_block"] == 4096);
    CHECK(j["provenance"]["work_units"] == 8);
    REQUIRE(j["cells"].size() == spec.cells.size());
    CHECK(j["cells"][1]["layers"][0]["weight_grad_rms"]["median"].is_null());
    CHECK(j["cells"][4]["layers"].size() == 4);
    CHECK(!j["cells"][2]["layers"][0].contains("bias_grad_mean_abs"));
    CHECK(j["cells"][4]["layers"][3]["fan_out"] == 1);
    // A text made in small pieces is the same as one made whole.
    std::string pieces;
    TextOut out([&](std::string_view s) { pieces.append(s); });
    write_results_json(spec, r, extra, out);
    out.flush();
    CHECK(pieces == text);
}

TEST_CASE("results.json records the spec with every default filled in", "[outputs][spec]") {
    const Spec spec = parse_spec_text(R"({"grid": {"depth": [2, 3], "init": ["xavier_normal", {"kind": "normal", "sigma_w": 2}]},
        "network": {"width": 4}})");
    const SweepResult r = numbered_result(spec);
    const ojson j = ojson::parse(results_json_text(spec, r));
    const ojson& s = j["spec"];
    CHECK(j["spec_as_written"] == spec.raw);
    CHECK(s["name"] == "sweep");
    CHECK(s["seeds"] == ojson::parse(R"({"count": 1, "first": 0})"));
    CHECK(s["rng"] == "philox");
    CHECK(s["rng_key"] == 0);
    CHECK(s["precision"] == "float32");
    CHECK(s["input"] == ojson::parse(R"({"distribution": "normal", "batch": 1})"));
    CHECK(s["loss"] == ojson::parse(R"({"kind": "mse", "target": 0.0})"));
    CHECK(s["grid"]["init"] == ojson::parse(R"(["xavier_normal", {"kind": "normal", "sigma_w": 2.0, "sigma_b": 0.0}])"));
    const ojson& n = s["network"];
    CHECK(n == ojson::parse(R"({"width": 4, "input_dim": null, "output_dim": 1, "activation": "relu", "leaky_slope": 0.01,
        "shortcut": false, "bias": true, "last_activation": true, "residual_scale": 1.0})"));
    // It is itself a spec, with the same cells, and resolving it again changes nothing.
    const Spec again = parse_spec_text(s.dump());
    REQUIRE(again.cells.size() == spec.cells.size());
    for (size_t i = 0; i < spec.cells.size(); ++i) CHECK(cell_params(again.cells[i]) == cell_params(spec.cells[i]));
    CHECK(resolved_spec_json(again) == s);
}

TEST_CASE("the resolved spec of random specs runs the same cells", "[outputs][spec]") {
    const uint64_t seed = test_seed();
    INFO("GS_TEST_SEED=" << seed);
    std::mt19937_64 rng(seed);
    int checked = 0;
    for (int attempt = 0; attempt < 300 && checked < 100; ++attempt) {
        const ojson sj = random_spec(rng);
        Spec spec;
        try {
            spec = parse_spec_text(sj.dump());
        } catch (const SpecError&) {
            continue;
        }
        INFO("spec " << sj.dump());
        const ojson resolved = resolved_spec_json(spec);
        const Spec again = parse_spec_text(resolved.dump());
        REQUIRE(again.cells.size() == spec.cells.size());
        for (size_t i = 0; i < spec.cells.size(); ++i) {
            CHECK(cell_params(again.cells[i]) == cell_params(spec.cells[i]));
            CHECK(again.cells[i].init == spec.cells[i].init);
            CHECK(again.cells[i].layer_sizes == spec.cells[i].layer_sizes);
        }
        CHECK(spec_columns(again).at("spec_hash") != "");
        ojson a = spec_columns(again), b = spec_columns(spec);
        a.erase("spec_hash");
        b.erase("spec_hash");
        CHECK(a == b);
        CHECK(resolved_spec_json(again) == resolved);
        ++checked;
    }
    CHECK(checked >= 50);
}

TEST_CASE("a stop while result files are written leaves no file behind", "[outputs]") {
    const fs::path dir = fs::temp_directory_path() / ("gs_test_stop_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
        std::ofstream(dir / "b.txt") << "earlier results\n";
    }
    struct Stop {};
    int chunks = 0;
    const std::string big(3 * TextOut::kChunk + 17, 'x');
    std::vector<OutputFile> files{{(dir / "a.txt").string(), [&](TextOut& o) { o << "small\n"; }},
                                  {(dir / "b.txt").string(), [&](TextOut& o) {
                                       for (size_t i = 0; i < big.size(); i += 1000) o << std::string_view(big).substr(i, 1000);
                                   }}};
    CHECK_THROWS_AS(write_files_atomic(files,
                                       [&]() {
                                           if (++chunks == 3) throw Stop{};
                                       }),
                    Stop);
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"b.txt"});
    std::ifstream in(dir / "b.txt");
    std::string line;
    std::getline(in, line);
    CHECK(line == "earlier results");
    // Without a stop, both are written whole.
    chunks = -1000;
    write_files_atomic(files, [&]() { ++chunks; });
    CHECK(fs::file_size(dir / "b.txt") == big.size());
    CHECK(fs::file_size(dir / "a.txt") == 6);
    fs::remove_all(dir);
}

TEST_CASE("the memory plan counts a cell summarised on a GPU: its rows and the summary's workspace", "[outputs][resources]") {
    // Cheap to redo: 5 x 3 and 40 x 3 (40 x 3 the larger); 5 x 256 and 40 x 256
    // are not, and stay on the chunk path.
    const Spec spec =
        parse_spec_text(R"({"seeds": {"count": 100000}, "grid": {"depth": [5, 40], "width": [3, 256]}, "network": {"input_dim": 3}})");
    MemoryInputs in;
    in.units = 100;
    in.cuda = true;
    in.units_per_call = 64;
    const MemoryPlan off = estimate_memory(spec, in);
    CHECK(off.cuda_device_cell == 0);
    CHECK(off.cuda_per_device == off.cuda_chunks);
    in.cells_on_device = true;
    const MemoryPlan m = estimate_memory(spec, in);
    const Cell& c = spec.cells[m.largest_device_cell];
    REQUIRE(c.depth() == 40);
    REQUIRE(c.layer_sizes[1] == 3);
    REQUIRE(cell_cheap_to_redo(spec, c.index));
    const uint64_t seeds = 100000, stride = row_stride(40), rows = seeds * stride * 8;
    // Rows, then the summary (columns, finite values, CUB's sort keys, per-column
    // partials) and the growth fits; the chunk loop's scratch (P = 1: a launch of
    // all 100000 networks, float64) is smaller here.
    const uint64_t scratch = seeds * 8 * kern::network_scratch_elements(c.layer_sizes, 1);
    const uint64_t work = kern::summary_workspace_bytes(seeds, static_cast<int>(stride)) + kern::growth_workspace_bytes(seeds, 40);
    REQUIRE(scratch < work);
    CHECK(m.cuda_device_cell == rows + work);
    // The figure the backend's fit rule checks (device_cell_fits): the same rows and workspace.
    CHECK(kern::device_cell_bytes(seeds, 40).total() == rows + work);
    CHECK(kern::device_cell_fits(seeds, 40, rows + work));
    CHECK_FALSE(kern::device_cell_fits(seeds, 40, rows + work - 1));
    CHECK(m.cuda_device_cell >= 4 * rows);  // rows, columns, finite values, the sort's copy of the keys
    CHECK(m.cuda_per_device == std::max(m.cuda_chunks, m.cuda_device_cell));
    CHECK(m.cuda_chunks == off.cuda_chunks);
    // The chunk path: 64 units of 4096 seeds in flight, capped at 2^20 (P = 1) and
    // 2^16 networks (P = 64 at width 256), two row buffers each; the pinned staging
    // on the host holds the same rows, per GPU.
    const uint64_t in_flight_256 = uint64_t{1} << 16, in_flight_3 = 100000;
    CHECK(m.cuda_staging == std::max(in_flight_256 * 2 * row_stride(40) * 8, in_flight_3 * 2 * row_stride(40) * 8));
    CHECK(m.cuda_host_compute == 2 * m.unit_rows * 64 + m.cuda_staging);
    // Without a cheap cell nothing is summarised on the device.
    const Spec costly = parse_spec_text(R"({"seeds": {"count": 100000}, "network": {"depth": 40, "width": 256, "input_dim": 3}})");
    REQUIRE_FALSE(cell_cheap_to_redo(costly, 0));
    CHECK(estimate_memory(costly, in).cuda_device_cell == 0);
}

TEST_CASE("the memory plan counts the summaries and the writing of deep networks", "[outputs][resources]") {
    const Spec spec = parse_spec_text(R"({"network": {"depth": 1048576, "width": 1}})");
    MemoryInputs in;
    in.units = 1;
    const MemoryPlan m = estimate_memory(spec, in);
    CHECK(m.results >= uint64_t{1048576} * kNumQuantities * sizeof(Summary));
    CHECK(m.writing >= TextOut::kChunk);
    CHECK(m.host_peak >= m.results + m.cell_rows);
    CHECK(m.results_csv_bytes >= uint64_t{1048576} * 5 * 100);
    CHECK(m.results_csv_bytes <= uint64_t{1048576} * 5 * 600);
    CHECK_THROWS_AS(check_memory(spec, m, 256u << 20, 0), InputError);
}
