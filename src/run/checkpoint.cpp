#include "gradsweep/checkpoint.hpp"

#include <type_traits>

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gradsweep/file_io.hpp"
#include "gradsweep/stats.hpp"
#include "gradsweep/sweep.hpp"

namespace gs {

namespace fs = std::filesystem;

namespace {

// The digit is the version of the engine's per-network values (kValuesVersion):
// unit and cell files made by a build whose numbers differ are refused by
// merge and redone by --resume, never mixed with this build's.
// 2: weight_grad_rms squares summed in double (2026-11-27). 3: NaN through relu,
// the float32 loss as PyTorch's float32 mse_loss, float64 sums of squares
// rescaled when they leave double's range, std of one value NaN (2026-12-01).
// 4: float64 activation_rms's sum of squares fused the same way in every SIMD
// lane, so a network's value no longer depends on its lane (2026-12-01).
// 5: summaries' sums in the order the host and the device share
// (column_sums.hpp), quantile interpolation in fma: cell files' bits (2026-12-01).
// 6: growth fits in double in that order, squares scaled by powers of two
// (growth_terms.hpp), the device's fit the same bits: cell files' bits (2026-12-01).
constexpr char kValuesVersion = '6';
constexpr char kMagic[8] = {'G', 'S', 'U', 'N', 'I', 'T', kValuesVersion, '\n'};

// Why a file with another magic cannot be used: another version's, or not ours at all.
std::string magic_mismatch(const char* got, const char* want, const char* what) {
    if (std::memcmp(got, want, 6) == 0 && got[7] == '\n' && got[6] >= '0' && got[6] <= '9')
        return std::string("made by another gradsweep version, whose per-network values differ from this build's (") + what +
               " format " + std::string(got, 7) + ", this build " + std::string(want, 7) + "); run it again with this build";
    return std::string("not a gradsweep ") + what + " file";
}
struct Header {
    char magic[8];
    char hash[16];
    uint64_t cell, block, seed_offset, count, stride, block_seeds;
};
static_assert(sizeof(Header) == 72, "unit file header is 9 words");

uint64_t mix(uint64_t h, const void* data, size_t bytes) {
    // Word-wise FNV-1a: catches truncation, torn pages and bit flips, and runs at
    // memory speed. Not cryptographic: it guards against accidents only.
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;

Header make_header(const Spec& spec, uint64_t block_seeds, const WorkUnit& u) {
    Header h{};
    std::memcpy(h.magic, kMagic, 8);
    std::memset(h.hash, '0', 16);
    std::memcpy(h.hash, spec.hash.data(), std::min<size_t>(16, spec.hash.size()));
    h.cell = static_cast<uint64_t>(u.cell);
    h.block = u.block;
    h.seed_offset = u.seed_offset;
    h.count = u.count;
    h.stride = static_cast<uint64_t>(row_stride(spec.cells[u.cell].depth()));
    h.block_seeds = block_seeds;
    return h;
}

bool read_checked(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, double* rows,
                  std::string* why) {
    auto fail = [&](const std::string& w) {
        if (why) *why = w;
        return false;
    };
    const Header want = make_header(spec, block_seeds, u);
    const uint64_t payload = want.count * want.stride * sizeof(double);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) return fail(ec == std::errc::no_such_file_or_directory ? "missing" : "cannot read: " + ec.message());
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return fail(std::string("cannot read: ") + std::strerror(errno));
    struct Closer {
        std::FILE* f;
        ~Closer() { std::fclose(f); }
    } closer{f};
    // The header first: it says best what is wrong with a file.
    Header got{};
    if (size < sizeof got || std::fread(&got, sizeof got, 1, f) != 1) return fail("truncated (" + std::to_string(size) + " bytes)");
    if (std::memcmp(got.magic, kMagic, 8) != 0) return fail(magic_mismatch(got.magic, kMagic, "unit"));
    if (std::memcmp(got.hash, want.hash, 16) != 0) return fail("belongs to another sweep (spec hash " + std::string(got.hash, 16) + ")");
    if (std::memcmp(&got, &want, sizeof got) != 0)
        return fail("holds another unit (cell " + std::to_string(got.cell) + " block " + std::to_string(got.block) + ", block size " +
                    std::to_string(got.block_seeds) + ")");
    if (size != sizeof(Header) + payload + 8)
        return fail("truncated or padded: " + std::to_string(size) + " bytes, expected " + std::to_string(sizeof(Header) + payload + 8));
    std::vector<double> local;
    if (!rows) {
        local.resize(static_cast<size_t>(want.count * want.stride));
        rows = local.data();
    }
    uint64_t stored = 0;
    if ((payload && std::fread(rows, payload, 1, f) != 1) || std::fread(&stored, 8, 1, f) != 1) return fail("short read");
    const uint64_t h = mix(mix(kFnvBasis, &got, sizeof got), rows, payload);
    if (h != stored) return fail("checksum mismatch (corrupt file)");
    return true;
}

// Cell files: the same digit (from version 4 they also hold the two growth-rate records).
constexpr char kCellMagic[8] = {'G', 'S', 'C', 'E', 'L', 'L', kValuesVersion, '\n'};

struct CellHeader {
    char magic[8];
    char hash[16];
    uint64_t cell, depth, networks, nonfinite;
};
static_assert(sizeof(CellHeader) == 56, "cell file header is 7 words");
static_assert(sizeof(Summary) == 88, "a Summary is 11 words, no padding");
static_assert(sizeof(GrowthRate) == 56 && std::is_trivially_copyable_v<GrowthRate>, "a growth record is 7 words");

}  // namespace

void write_cell_file(const std::string& path, const Spec& spec, const CellResult& r) {
    CellHeader h{};
    std::memcpy(h.magic, kCellMagic, 8);
    std::memset(h.hash, '0', 16);
    std::memcpy(h.hash, spec.hash.data(), std::min<size_t>(16, spec.hash.size()));
    h.cell = static_cast<uint64_t>(r.cell);
    h.depth = r.layers.size();
    h.networks = r.networks;
    h.nonfinite = r.nonfinite_networks;
    // Written from the summaries in place (a deep cell's are hundreds of MB; no
    // copy). Every piece is a whole number of words, so the checksum over the
    // pieces in turn is the checksum of the file's bytes.
    const char* layers = reinterpret_cast<const char*>(r.layers.data());
    const size_t layer_bytes = sizeof(r.layers[0]) * r.layers.size();
    static_assert(sizeof(r.layers[0]) == sizeof(Summary) * kNumQuantities, "a layer's summaries are contiguous");
    uint64_t sum = mix(kFnvBasis, &h, sizeof h);
    sum = mix(sum, layers, layer_bytes);
    sum = mix(sum, &r.loss, sizeof r.loss);
    sum = mix(sum, &r.growth, sizeof r.growth);
    sum = mix(sum, &r.delta_growth, sizeof r.delta_growth);
    write_file_atomic_parts(path,
                            {std::string_view(reinterpret_cast<const char*>(&h), sizeof h), std::string_view(layers, layer_bytes),
                             std::string_view(reinterpret_cast<const char*>(&r.loss), sizeof r.loss),
                             std::string_view(reinterpret_cast<const char*>(&r.growth), sizeof r.growth),
                             std::string_view(reinterpret_cast<const char*>(&r.delta_growth), sizeof r.delta_growth),
                             std::string_view(reinterpret_cast<const char*>(&sum), sizeof sum)},
                            /*sync=*/false);
}

bool read_cell_file(const std::string& path, const Spec& spec, int cell, CellResult& out, std::string* why) {
    auto fail = [&](const std::string& w) {
        if (why) *why = w;
        return false;
    };
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return fail("missing");
    const auto size = static_cast<uint64_t>(f.tellg());
    f.seekg(0);
    const uint64_t depth = static_cast<uint64_t>(spec.cells[cell].depth());
    const uint64_t want = sizeof(CellHeader) + (depth * kNumQuantities + 1) * sizeof(Summary) + 2 * sizeof(GrowthRate) + 8;
    CellHeader h{};
    if (size < sizeof h || !f.read(reinterpret_cast<char*>(&h), sizeof h)) return fail("truncated");
    if (std::memcmp(h.magic, kCellMagic, 8) != 0) return fail(magic_mismatch(h.magic, kCellMagic, "cell"));
    if (spec.hash.size() != 16 || std::memcmp(h.hash, spec.hash.data(), 16) != 0) return fail("belongs to another sweep");
    if (h.cell != static_cast<uint64_t>(cell) || h.depth != depth) return fail("holds another cell");
    if (size != want) return fail("truncated or padded");
    // Read straight into the summaries (no copy of a deep cell's file).
    CellResult r;
    r.cell = cell;
    r.networks = h.networks;
    r.nonfinite_networks = h.nonfinite;
    r.layers.resize(depth);
    uint64_t stored = 0;
    const size_t layer_bytes = sizeof(r.layers[0]) * r.layers.size();
    if (!f.read(reinterpret_cast<char*>(r.layers.data()), static_cast<std::streamsize>(layer_bytes)) ||
        !f.read(reinterpret_cast<char*>(&r.loss), sizeof r.loss) || !f.read(reinterpret_cast<char*>(&r.growth), sizeof r.growth) ||
        !f.read(reinterpret_cast<char*>(&r.delta_growth), sizeof r.delta_growth) ||
        !f.read(reinterpret_cast<char*>(&stored), sizeof stored))
        return fail("truncated");
    uint64_t sum = mix(kFnvBasis, &h, sizeof h);
    sum = mix(sum, r.layers.data(), layer_bytes);
    sum = mix(sum, &r.loss, sizeof r.loss);
    sum = mix(sum, &r.growth, sizeof r.growth);
    sum = mix(sum, &r.delta_growth, sizeof r.delta_growth);
    if (sum != stored) return fail("checksum mismatch (corrupt file)");
    out = std::move(r);
    return true;
}

void write_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, const double* rows) {
    const Header h = make_header(spec, block_seeds, u);
    const size_t payload = static_cast<size_t>(h.count * h.stride * sizeof(double));
    // The header is 9 words, so the checksum over header then payload equals the
    // one over them laid end to end; written in pieces, without a copy.
    const uint64_t sum = mix(mix(kFnvBasis, &h, sizeof h), rows, payload);
    write_file_atomic_parts(path,
                            {std::string_view(reinterpret_cast<const char*>(&h), sizeof h),
                             std::string_view(payload ? reinterpret_cast<const char*>(rows) : "", payload),
                             std::string_view(reinterpret_cast<const char*>(&sum), 8)},
                            /*sync=*/false);
}

bool read_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, double* rows,
                    std::string* why) {
    return read_checked(path, spec, block_seeds, u, rows, why);
}

bool verify_unit_file(const std::string& path, const Spec& spec, uint64_t block_seeds, const WorkUnit& u, std::string* why) {
    return read_checked(path, spec, block_seeds, u, nullptr, why);
}

size_t remove_temporaries(const std::string& dir) {
    size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.find(".tmp.") != std::string::npos && it->is_regular_file(ec)) n += fs::remove(it->path(), ec) ? 1 : 0;
    }
    return n;
}

ojson read_checkpoint_json(const std::string& dir) {
    const std::string path = dir + "/" + kCheckpointFile;
    const JsonFile f = read_json_file(path);
    if (!f.found) return ojson::object();
    if (!f.valid) throw InputError(path + ": unreadable checkpoint (not JSON); use --force to start over");
    if (!f.json.is_object()) throw InputError(path + ": not a gradsweep checkpoint");
    return f.json;
}

Checkpoint::Checkpoint(std::string dir, const Spec& spec, uint64_t block_seeds, const ShardId& shard,
                       const std::vector<WorkUnit>& units, Mode mode)
    : dir_(std::move(dir)),
      spec_(spec),
      block_(block_seeds),
      units_(units),
      done_(units.size(), 0),
      cell_done_(spec.cells.size(), 0),
      cell_units_(spec.cells.size(), {0, 0}),
      rows_at_(spec.cells.size(), in_files),
      memory_(spec.cells.size()) {
    for (size_t i = 0; i < units.size(); ++i) {
        auto& r = cell_units_[units[i].cell];
        if (r.first == r.second) r = {i, i};
        r.second = i + 1;  // units come cell by cell, so a cell's units are contiguous
    }
    const std::string units_dir = dir_ + "/" + kUnitsDir, cells_dir = dir_ + "/" + kCellsDir;
    std::error_code ec;
    if (mode == Mode::fresh) {
        fs::remove(dir_ + "/" + kCheckpointFile, ec);
        fs::remove_all(units_dir, ec);
        fs::remove_all(cells_dir, ec);
        ojson j;
        j["format"] = "gradsweep-checkpoint/1";
        j["spec_hash"] = spec.hash;
        j["seed_block"] = block_seeds;
        j["shard"] = ojson{{"index", shard.index}, {"count", shard.count}};
        j["units"] = units.size();
        j["spec"] = spec.raw;
        write_file_atomic(dir_ + "/" + kCheckpointFile, j.dump(1) + "\n");
        fs::create_directory(units_dir, ec);
        if (ec) {
            fs::remove(dir_ + "/" + kCheckpointFile);  // nothing half set up stays behind
            throw OutputError("cannot write " + units_dir + ": " + ec.message());
        }
        return;
    }
    const ojson j = read_checkpoint_json(dir_);
    const std::string where = dir_ + ": the checkpoint there ";
    if (j.value("format", std::string()) != "gradsweep-checkpoint/1")
        throw InputError(where + "is not a gradsweep checkpoint (no checkpoint.json); use --force to start over");
    if (j.value("spec_hash", std::string()) != spec.hash)
        throw InputError(where + "is of another spec (hash " + j.value("spec_hash", std::string("?")) + ", this spec " + spec.hash +
                         "); use --force to start over");
    if (j.value("seed_block", uint64_t{0}) != block_seeds)
        throw InputError(where + "uses --seed-block " + std::to_string(j.value("seed_block", uint64_t{0})) + ", not " +
                         std::to_string(block_seeds));
    const ojson& sj = j.contains("shard") ? j["shard"] : ojson();
    const ShardId was{sj.is_object() ? sj.value("index", uint64_t{0}) : 0, sj.is_object() ? sj.value("count", uint64_t{1}) : 1};
    if (was.index != shard.index || was.count != shard.count)
        throw InputError(where + "is shard " + was.label() + ", not " + shard.label());
    remove_temporaries(dir_);
    remove_temporaries(units_dir);
    remove_temporaries(cells_dir);
    fs::create_directory(units_dir, ec);
    if (ec) throw OutputError("cannot write " + units_dir + ": " + ec.message());
    // Summarised cells first: their units are done, and leftover unit files (a
    // kill between writing the cell file and deleting them) can go.
    if (fs::exists(cells_dir, ec))
        for (const Cell& c : spec.cells) {
            const std::string path = cell_path(c.index);
            if (!fs::exists(path, ec)) continue;
            CellResult r;
            const auto [first, last] = cell_units_[c.index];
            if (first != last && read_cell_file(path, spec, c.index, r, nullptr)) {
                cell_done_[c.index] = 1;
                for (size_t i = first; i < last; ++i) {
                    done_[i] = 1;
                    ++done_count_;
                    fs::remove(unit_path(units[i]), ec);
                }
            } else {
                fs::remove(path, ec);
                ++discarded_;
            }
        }
    for (size_t i = 0; i < units.size(); ++i) {
        if (done_[i]) continue;
        const std::string path = unit_path(units[i]);
        if (!fs::exists(path, ec)) continue;
        if (verify_unit_file(path, spec, block_seeds, units[i], nullptr)) {
            done_[i] = 1;
            ++done_count_;
        } else {
            fs::remove(path, ec);
            ++discarded_;
        }
    }
}

std::string Checkpoint::unit_path(const WorkUnit& u) const { return dir_ + "/" + kUnitsDir + "/" + unit_file_name(u); }
std::string Checkpoint::cell_path(int cell) const { return dir_ + "/" + kCellsDir + "/cell-" + std::to_string(cell) + ".bin"; }

bool Checkpoint::any_cell_summarised() const {
    for (char c : cell_done_)
        if (c) return true;
    return false;
}

namespace {

uint64_t column_bytes(const Spec& spec, const Cell& c) {
    return spec.seed_count * static_cast<uint64_t>(row_stride(c.depth())) * sizeof(double);
}

}  // namespace

void Checkpoint::keep_cells_in_memory(std::vector<char> eligible, uint64_t budget_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    memory_budget_ = budget_bytes;
    for (const Cell& c : spec_.cells) {
        const auto [first, last] = cell_units_[c.index];
        bool any_done = false;
        for (size_t i = first; i < last; ++i) any_done |= done_[i] != 0;
        // A cell part done in unit files goes on in them: its rows on disk stay useful.
        rows_at_[c.index] = eligible[c.index] && !any_done && first != last ? undecided : in_files;
    }
}

void Checkpoint::store(size_t i, const double* rows) {
    const WorkUnit& u = units_[i];
    CellColumns* columns = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        CellRows& at = rows_at_[u.cell];
        if (at == undecided) {
            // Decided by the cell's first unit: in memory while the budget has room
            // (cells in flight hold their columns until they are summarised).
            const uint64_t bytes = column_bytes(spec_, spec_.cells[u.cell]);
            at = memory_used_ + bytes <= memory_budget_ ? in_memory : in_files;
            if (at == in_memory) {
                memory_[u.cell] = std::make_unique<CellColumns>();
                memory_[u.cell]->start(spec_.cells[u.cell], spec_.seed_count);
                memory_used_ += bytes;
            }
        }
        if (at == in_files) {
            write_unit_file(unit_path(u), spec_, block_, u, rows);
            done_[i] = 1;
            ++done_count_;
            return;
        }
        columns = memory_[u.cell].get();
    }
    columns->add_rows(u.seed_offset, rows, u.count);  // outside the lock: units of a cell fill disjoint seeds
}

void Checkpoint::summarise_cell(int cell) {
    const size_t first = cell_units_[cell].first, last = cell_units_[cell].second;  // not a structured binding: a lambda below captures it
    const Cell& c = spec_.cells[cell];
    uint64_t seeds = 0;
    for (size_t i = first; i < last; ++i) seeds += units_[i].count;
    if (seeds != spec_.seed_count) throw std::logic_error("summarise_cell: cell " + std::to_string(cell) + " is not whole in this run");
    // Stored in memory (the columns are full: every unit of the cell was stored),
    // or unit by unit through a one-unit buffer into columns_ (both kept for the
    // next cell), so the rows of a cell in files are never in memory all at once.
    // The same rows in the same seed order either way: the same bits.
    const bool in_mem = rows_at_[cell] == in_memory;  // set before the cell's stores, which came before this call
    CellResult r;
    if (in_mem) {
        r = memory_[cell]->finish();
    } else {
        columns_.start(c, seeds);
        columns_.add_units(
            last - first, [&](size_t k) { return units_[first + k]; },
            [&](const WorkUnit& u, double* dst) { load_unit(u, dst); },
            unit_rows_);
        r = columns_.finish();
    }
    std::lock_guard<std::mutex> lock(mu_);  // freeze() must not cut this write short
    std::error_code ec;
    fs::create_directory(dir_ + "/" + kCellsDir, ec);
    if (ec) throw OutputError("cannot write " + dir_ + "/" + kCellsDir + ": " + ec.message());
    write_cell_file(cell_path(cell), spec_, r);
    cell_done_[cell] = 1;
    if (in_mem) {
        memory_[cell].reset();
        memory_used_ -= column_bytes(spec_, c);
        for (size_t i = first; i < last; ++i) done_[i] = 1;
        done_count_ += last - first;
        return;
    }
    for (size_t i = first; i < last; ++i) fs::remove(unit_path(units_[i]), ec);
}

bool Checkpoint::cell_untouched(int cell) const {
    const auto [first, last] = cell_units_[cell];
    uint64_t seeds = 0;
    for (size_t i = first; i < last; ++i) {
        if (done_[i]) return false;
        seeds += units_[i].count;
    }
    return first != last && seeds == spec_.seed_count;
}

void Checkpoint::store_cell(const CellResult& r) {
    const auto [first, last] = cell_units_[r.cell];
    std::lock_guard<std::mutex> lock(mu_);  // freeze() must not cut this write short
    if (cell_done_[r.cell] || rows_at_[r.cell] == in_memory || !cell_untouched(r.cell))
        throw std::logic_error("store_cell: cell " + std::to_string(r.cell) + " is not whole and untouched in this run");
    std::error_code ec;
    fs::create_directory(dir_ + "/" + kCellsDir, ec);
    if (ec) throw OutputError("cannot write " + dir_ + "/" + kCellsDir + ": " + ec.message());
    write_cell_file(cell_path(r.cell), spec_, r);
    cell_done_[r.cell] = 1;
    for (size_t i = first; i < last; ++i) done_[i] = 1;
    done_count_ += last - first;
}

void Checkpoint::load_unit(const WorkUnit& u, double* dst) const {
    std::string why;
    if (!read_unit_file(unit_path(u), spec_, block_, u, dst, &why)) throw std::runtime_error(unit_path(u) + ": " + why);
}

CellResult Checkpoint::load_cell(int cell) const {
    CellResult r;
    std::string why;
    if (!read_cell_file(cell_path(cell), spec_, cell, r, &why)) throw std::runtime_error(cell_path(cell) + ": " + why);
    return r;
}

void Checkpoint::freeze() {
    mu_.lock();  // never unlocked: the process is about to exit
    remove_temporaries(dir_);
    remove_temporaries(dir_ + "/" + kUnitsDir);
    remove_temporaries(dir_ + "/" + kCellsDir);
}

void Checkpoint::remove_files() {
    std::error_code ec;
    fs::remove_all(dir_ + "/" + kUnitsDir, ec);
    fs::remove_all(dir_ + "/" + kCellsDir, ec);
    fs::remove(dir_ + "/" + kCheckpointFile, ec);
}

}  // namespace gs
