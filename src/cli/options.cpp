#include "gradsweep/cli.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <limits>
#include <sstream>

#include "gradsweep/resources.hpp"

namespace gs {

namespace {

// An option's integer value in [lo, hi]: a non-number, a number out of range and
// one too large for any integer type each get their own message with the bound.
int64_t int_option(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
    const bool digits = !v.empty() && std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; }) && v != "-";
    if (!digits) throw UsageError(flag + " expects an integer, got \"" + one_line_text(v) + "\"");
    int64_t x = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
    const bool overflow = r.ec == std::errc::result_out_of_range;
    if ((overflow && v[0] != '-') || (!overflow && x > hi))
        throw UsageError(flag + " is too large: " + v + " (at most " + std::to_string(hi) + ")");
    if (overflow || x < lo) throw UsageError(flag + " must be at least " + std::to_string(lo) + ", got " + v);
    return x;
}

int to_int(const std::string& flag, const std::string& v) {
    return static_cast<int>(int_option(flag, v, 0, std::numeric_limits<int>::max()));
}

std::vector<int> parse_device_list(const std::string& text) {
    std::vector<int> ids;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const int d = to_int("--devices", item);
        if (d < 0) throw UsageError("--devices: device numbers are >= 0, got " + item);
        if (std::find(ids.begin(), ids.end(), d) != ids.end()) throw UsageError("--devices: device " + item + " given twice");
        ids.push_back(d);
    }
    if (ids.empty() || text.back() == ',') throw UsageError("--devices expects all or a list such as 0,1, got \"" + text + "\"");
    return ids;
}

}  // namespace

std::string one_line_text(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += static_cast<char>(c);
    }
    return out;
}

ShardId shard_of(const CliOptions& o) { return o.shard.empty() ? ShardId{} : parse_shard(o.shard); }

CliOptions parse_cli(const std::vector<std::string>& args) {
    CliOptions o;
    if (args.empty()) throw UsageError("missing command");
    o.command = args[0];
    if (o.command != "run" && o.command != "validate" && o.command != "plan" && o.command != "merge")
        throw UsageError("unknown command \"" + o.command + "\"");
    // Each option at most once (a second -o would silently win otherwise), as
    // "--opt value" or "--opt=value"; -o and --out, -q and --quiet are one option.
    std::vector<std::string> seen;
    // Checked once every option is read, in the order their messages have always come.
    std::string devices, max_memory;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 2 || arg[0] != '-') {
            if (o.command == "merge") o.inputs.push_back(arg);
            else if (o.spec_path.empty()) o.spec_path = arg;
            else throw UsageError("unexpected argument \"" + one_line_text(arg) + "\"");
            continue;
        }
        const size_t eq = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string::npos;
        const std::string a = arg.substr(0, eq);
        const std::string name = a == "-o" ? "--out" : a == "-q" ? "--quiet" : a;
        static const char* const kValued[] = {"--out", "--threads", "--device", "--devices", "--backend", "--shard",
                                              "--max-memory", "--seed-block"};
        static const char* const kFlags[] = {"--per-seed", "--quiet", "--force", "--resume", "--plot", "--checkpoint-units"};
        const bool valued = std::find(std::begin(kValued), std::end(kValued), name) != std::end(kValued);
        if (!valued && std::find(std::begin(kFlags), std::end(kFlags), name) == std::end(kFlags))
            throw UsageError("unknown option " + one_line_text(a));
        if (std::find(seen.begin(), seen.end(), name) != seen.end())
            throw UsageError(a + " given twice; give each option once");
        seen.push_back(name);
        if (!valued && eq != std::string::npos) throw UsageError(a + " takes no value, got \"" + one_line_text(arg) + "\"");
        std::string v;
        if (valued) {
            if (eq != std::string::npos) v = arg.substr(eq + 1);
            else if (i + 1 < args.size()) v = args[++i];
            else throw UsageError(a + " needs a value");
        }
        if (name == "--out") {
            if (v.empty()) throw UsageError(a + " needs a directory, got \"\"");
            o.out_dir = v;
        } else if (name == "--threads") {
            // A thread per core is the useful maximum; far beyond it is a typo, not a plan.
            o.threads = static_cast<int>(int_option(a, v, 0, 4096));
        } else if (name == "--device") {
            o.device = to_int(a, v);
            o.device_given = true;
        } else if (name == "--devices") devices = v;
        else if (name == "--backend") {
            o.backend = v;
            if (o.backend != "auto" && o.backend != "cpu" && o.backend != "cuda")
                throw UsageError("--backend must be auto, cpu or cuda, got \"" + one_line_text(o.backend) + "\"");
        } else if (name == "--shard") o.shard = v;
        else if (name == "--max-memory") {
            max_memory = v;
            if (max_memory.empty()) throw UsageError("--max-memory expects a size such as 8G, 512M or 1000000, got \"\"");
        } else if (name == "--seed-block") {
            o.seed_block = static_cast<uint64_t>(int_option(a, v, 1, 1 << 24));
        } else if (name == "--per-seed") o.per_seed = true;
        else if (name == "--quiet") o.quiet = true;
        else if (name == "--force") o.force = true;
        else if (name == "--resume") o.resume = true;
        else if (name == "--plot") o.plot = true;
        else if (name == "--checkpoint-units") o.checkpoint_units = true;
    }
    if (o.command == "merge") {
        if (o.inputs.empty()) throw UsageError("merge needs the shard directories");
        if (o.out_dir.empty()) throw UsageError("merge needs -o DIR");
    } else if (o.spec_path.empty()) {
        throw UsageError("missing SPEC file");
    }
    if (o.command == "run" && o.out_dir.empty()) throw UsageError("run needs -o DIR");
    if (o.resume && o.force) throw UsageError("--resume and --force contradict each other");
    // An empty --devices= is as if it were not given.
    if (o.device_given && !devices.empty()) throw UsageError("give --device or --devices, not both");
    if (devices == "all") o.all_devices = true;
    else if (!devices.empty()) o.devices = parse_device_list(devices);
    if (!max_memory.empty()) {
        try {
            o.max_memory = parse_bytes(max_memory);
        } catch (const InputError& e) {
            throw UsageError(e.what());
        }
    }
    if (!o.shard.empty() && o.shard != "auto") {
        try {
            parse_shard(o.shard);
        } catch (const InputError& e) {
            throw UsageError(e.what());
        }
    }
    return o;
}

}  // namespace gs
