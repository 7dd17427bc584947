// Files written whole or not at all, and JSON files read back. Every writer
// here writes to a temporary name in the same directory and renames it into
// place, so a reader never sees half a file (results, checkpoint, unit files).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gradsweep/errors.hpp"

namespace gs {

// Text made piece by piece and handed to a sink in chunks of about kChunk
// bytes, so a results file of any size needs only one chunk in memory, and
// whoever writes the chunks gets a chance between them (to notice a signal).
class TextOut {
public:
    static constexpr size_t kChunk = size_t{1} << 20;
    using Sink = std::function<void(std::string_view)>;
    explicit TextOut(Sink sink) : sink_(std::move(sink)) {}
    TextOut& operator<<(std::string_view s) {
        if (s.size() >= kChunk) {  // large pieces go straight through, without a copy
            flush();
            for (size_t i = 0; i < s.size(); i += kChunk) sink_(s.substr(i, kChunk));
            return *this;
        }
        buf_.append(s);
        if (buf_.size() >= kChunk) flush();
        return *this;
    }
    void flush() {
        if (buf_.empty()) return;
        sink_(buf_);
        buf_.clear();
    }

private:
    Sink sink_;
    std::string buf_;
};

// One output file: its path and what writes its text.
struct OutputFile {
    std::string path;
    std::function<void(TextOut&)> produce;
};

// Failures throw OutputError ("cannot write PATH: reason"). sync = false skips
// fsync: the file still appears only whole (rename), but a power cut may lose it
// (checkpoint units, which are recomputed if lost).
void write_file_atomic(const std::string& path, const std::string& content, bool sync = true);
// The same for content given in pieces, written one after another (no copy).
void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, bool sync = true);
// All or nothing: writes every file to a temporary name first and renames them
// into place only when all are safely written. Each file's text is produced
// while it is written, one chunk in memory at a time. poll runs after every chunk written; whatever it throws (a
// stop on SIGINT/SIGTERM) removes every temporary file, renames nothing, and
// propagates, as a write error does.
void write_files_atomic(const std::vector<OutputFile>& files, const std::function<void()>& poll, bool sync = true);

// A JSON file as read: found is false when it cannot be opened, valid false
// when its text is not JSON. Each caller words what that means for its file
// (a shard's results.json, checkpoint.json, a finished run's results.json).
struct JsonFile {
    bool found = false, valid = false;
    nlohmann::ordered_json json;  // null unless valid
};
JsonFile read_json_file(const std::string& path);

}  // namespace gs
