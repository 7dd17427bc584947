#include "gradsweep/file_io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gs {

namespace {

std::string temporary_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

// Flushes (and with sync, fsyncs) and closes f, whose writes so far succeeded
// when ok; on any failure removes tmp and throws naming path.
void finish_temporary(FILE* f, const std::string& path, const std::string& tmp, bool ok, bool sync) {
    ok = ok && std::fflush(f) == 0;
    ok = ok && (!sync || ::fsync(fileno(f)) == 0);
    int err = errno;
    // fclose can be the first to see a deferred write error (NFS, quotas).
    if (std::fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        throw OutputError("cannot write " + path + ": " + std::strerror(err ? err : EIO));
    }
}

// Writes content to a temporary name beside `path` (flushed to disk when `sync`);
// returns that name. On any failure the temporary file is removed and an
// OutputError names the real path and the system's reason.
std::string write_temporary(const std::string& path, const std::string_view* parts, size_t nparts, bool sync) {
    const std::string tmp = temporary_name(path);
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw OutputError("cannot write " + path + ": " + std::strerror(errno));
    errno = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < nparts; ++i) ok = std::fwrite(parts[i].data(), 1, parts[i].size(), f) == parts[i].size();
    finish_temporary(f, path, tmp, ok, sync);
    return tmp;
}

// The same for text produced while it is written; poll runs after each chunk.
std::string write_temporary(const std::string& path, const std::function<void(TextOut&)>& produce,
                            const std::function<void()>& poll, bool sync) {
    const std::string tmp = temporary_name(path);
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw OutputError("cannot write " + path + ": " + std::strerror(errno));
    errno = 0;
    bool ok = true;
    try {
        TextOut out([&](std::string_view chunk) {
            if (ok) ok = std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size();
            if (poll) poll();
        });
        produce(out);
        out.flush();
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    finish_temporary(f, path, tmp, ok, sync);
    return tmp;
}

void rename_into_place(const std::string& tmp, const std::string& path) {
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        throw OutputError("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
    }
}

}  // namespace

void write_files_atomic(const std::vector<OutputFile>& files, const std::function<void()>& poll, bool sync) {
    // Every file is complete on disk before any is renamed into place, so a
    // failure (disk full, read-only, quota) leaves the directory as it was:
    // earlier results are never mixed with, or replaced by, part of a new run.
    std::vector<std::string> tmps;
    try {
        for (const OutputFile& f : files) tmps.push_back(write_temporary(f.path, f.produce, poll, sync));
    } catch (...) {
        for (const auto& t : tmps) std::remove(t.c_str());
        throw;
    }
    for (size_t i = 0; i < files.size(); ++i) {
        if (std::rename(tmps[i].c_str(), files[i].path.c_str()) != 0) {
            const int e = errno;
            for (size_t j = i; j < tmps.size(); ++j) std::remove(tmps[j].c_str());
            throw OutputError("cannot rename " + tmps[i] + " to " + files[i].path + ": " + std::strerror(e));
        }
    }
}

void write_file_atomic(const std::string& path, const std::string& content, bool sync) {
    const std::string_view part(content);
    rename_into_place(write_temporary(path, &part, 1, sync), path);
}

void write_file_atomic_parts(const std::string& path, const std::vector<std::string_view>& parts, bool sync) {
    rename_into_place(write_temporary(path, parts.data(), parts.size(), sync), path);
}

JsonFile read_json_file(const std::string& path) {
    JsonFile r;
    std::ifstream f(path, std::ios::binary);
    if (!f) return r;
    r.found = true;
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        r.json = nlohmann::ordered_json::parse(ss.str());
        r.valid = true;
    } catch (const nlohmann::json::exception&) {
        // not valid: what that means is the caller's to say
    }
    return r;
}

}  // namespace gs
