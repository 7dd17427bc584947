#include "spec/spec_reader.hpp"

#include <cstdio>
#include <unordered_set>
#include <vector>

#include "spec/spec_keys.hpp"

namespace gs {

namespace {

// Where the parser is, kept from its callback events so that an error found in
// the middle of the text can still be named by JSON path.
class PathTracker {
public:
    std::string path() const {
        std::string p;
        for (const Frame& f : stack_) {
            if (f.array) p = index_path(p, f.index);
            else if (f.has_key) p = join_path(p, f.key);
        }
        return p;
    }

    bool on_event(ojson::parse_event_t event, ojson& parsed) {
        using E = ojson::parse_event_t;
        switch (event) {
            case E::object_start:
            case E::array_start:
                if (stack_.size() >= kMaxNesting)
                    throw SpecError(path(), "nested more than " + std::to_string(kMaxNesting) + " levels deep");
                stack_.emplace_back();
                stack_.back().array = event == E::array_start;
                break;
            case E::key: {
                Frame& f = stack_.back();
                f.key = parsed.get<std::string>();
                f.has_key = true;
                if (!f.seen.insert(f.key).second)
                    throw SpecError(path(), "duplicate key: it appears more than once in the same object");
                break;
            }
            case E::object_end:
            case E::array_end:
                stack_.pop_back();
                element_done();
                break;
            case E::value:
                element_done();
                break;
        }
        return true;
    }

private:
    struct Frame {
        bool array = false;
        size_t index = 0;       // arrays: the element being read
        bool has_key = false;   // objects: the member being read
        std::string key;
        std::unordered_set<std::string> seen;
    };
    void element_done() {
        if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
    }
    std::vector<Frame> stack_;
};

// Bytes from the input echoed in nlohmann's message ("last read: '...'") can be
// anything; keep the line printable and short.
std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

std::string syntax_problem(const std::string& what) {
    const auto p = what.find("syntax error");
    std::string s = p == std::string::npos ? what : what.substr(p);
    // A long token (an unterminated string runs to the end of the file) is cut
    // to its last characters, which are where the parser gave up.
    const std::string marker = "last read: '";
    const auto a = s.find(marker);
    const auto b = s.rfind('\'');
    if (a != std::string::npos && b != std::string::npos && b > a + marker.size()) {
        const size_t start = a + marker.size();
        const std::string token = s.substr(start, b - start);
        if (token.size() > 40) s = s.substr(0, start) + "..." + token.substr(token.size() - 37) + s.substr(b);
    }
    return printable(s);
}

}  // namespace

ojson read_spec_json(const std::string& text) {
    if (text.size() > kMaxSpecBytes)
        throw SpecError("", "spec is larger than " + std::to_string(kMaxSpecBytes) + " bytes");
    PathTracker where;
    try {
        return ojson::parse(text, [&](int, ojson::parse_event_t e, ojson& v) { return where.on_event(e, v); });
    } catch (const ojson::parse_error& e) {
        // nlohmann reports a byte offset; users want line and column.
        size_t line = 1, col = 1;
        for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
            if (text[i] == '\n') { line++; col = 1; } else { col++; }
        }
        throw SpecError("", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                                syntax_problem(e.what()));
    } catch (const ojson::out_of_range& e) {
        // 1e999: a JSON number that no double can hold.
        const std::string what = e.what();
        const auto a = what.find('\''), b = what.rfind('\'');
        const std::string number = a != std::string::npos && b > a ? what.substr(a + 1, b - a - 1) : "";
        throw SpecError(where.path(), "number " + printable(number.size() > 40 ? number.substr(0, 37) + "..." : number) +
                                          " is out of range (it overflows a double)");
    } catch (const ojson::exception& e) {
        throw SpecError(where.path(), "invalid JSON: " + printable(e.what()));
    }
}

}  // namespace gs
