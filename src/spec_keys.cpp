#include "spec_keys.hpp"

#include <algorithm>

namespace gs {

std::string join(const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
    return s;
}

std::string join_path(const std::string& parent, const std::string& key) { return parent.empty() ? key : parent + "." + key; }

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
}  // namespace

std::string suggestion(const std::string& given, const std::vector<std::string>& known) {
    size_t best = std::string::npos;
    std::string best_name;
    for (const auto& k : known) {
        const size_t d = edit_distance(given, k);
        if (d < best) { best = d; best_name = k; }
    }
    if (best_name.empty() || best > std::max<size_t>(2, given.size() / 3)) return "";
    return " (did you mean \"" + best_name + "\"?)";
}

}  // namespace gs
