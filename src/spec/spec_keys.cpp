#include "spec/spec_keys.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace gs {

std::string join(const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
    return s;
}

std::string quote(const std::string& s, size_t max) {
    // ensure_ascii + replace: control characters, non-ASCII and invalid UTF-8 all
    // come out as escapes, never as raw bytes in a terminal line.
    std::string q = nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    if (q.size() > max + 2) {
        // Cut after whole characters only: an escape (\n, \u00e9) is one unit.
        size_t i = 1;
        while (i < max - 2) {
            const size_t len = q[i] != '\\' ? 1 : (q[i + 1] == 'u' ? 6 : 2);
            if (i + len > max - 2) break;
            i += len;
        }
        q = q.substr(0, i) + "...\"";
    }
    return q;
}

namespace {
bool is_identifier(const std::string& k) {
    if (k.empty() || !(std::isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_')) return false;
    return std::all_of(k.begin(), k.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}
}  // namespace

std::string join_path(const std::string& parent, const std::string& key) {
    if (!is_identifier(key) || key.size() > 40) return parent + "[" + quote(key) + "]";
    return parent.empty() ? key : parent + "." + key;
}

std::string index_path(const std::string& parent, size_t i) { return parent + "[" + std::to_string(i) + "]"; }

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// "ReLU", "leaky-relu" and "Kaiming Normal" are near misses, not typos.
std::string normalized(const std::string& s) {
    std::string n;
    for (char c : s) n += (c == '-' || c == ' ') ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return n;
}
}  // namespace

std::string suggestion(const std::string& given, const std::vector<std::string>& known) {
    if (given.empty() || given.size() > 64) return "";  // nothing useful, and keeps the distance cheap
    const std::string g = normalized(given);
    size_t best = std::string::npos;
    std::string best_name;
    for (const auto& k : known) {
        const std::string n = normalized(k);
        // One being a clear prefix of the other ("kaiming" for "kaiming_normal",
        // "batch_size" for "batch") counts as close.
        const std::string& shorter = g.size() < n.size() ? g : n;
        const std::string& longer = g.size() < n.size() ? n : g;
        const size_t d = g == n ? 0
                         : (shorter.size() >= 3 && longer.compare(0, shorter.size(), shorter) == 0) ? 1
                                                                                                     : edit_distance(g, n);
        if (d < best) { best = d; best_name = k; }
    }
    if (best_name.empty() || best > std::max<size_t>(2, g.size() / 3)) return "";
    return " (did you mean \"" + best_name + "\"?)";
}

}  // namespace gs
