// Every kind of failure gradsweep reports, in one place, with the exit code the
// command line gives it (src/cli/cli.cpp catches them in this order of meaning):
//   SpecError   the spec file is bad                         exit 2, "SPEC: PATH: problem"
//   UsageError  the command line is bad                      exit 2
//   InputError  other bad input: shards that do not fit together, a checkpoint of
//               another sweep, a sweep too big for this machine  exit 2
//   OutputError an output cannot be written (disk full, unwritable directory) exit 1
// Anything else thrown while running is a failure: exit 1.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

namespace gs {

// `path` is the JSON path of the offending value (e.g. "grid.width[2]"), empty
// for file-level problems; what() is the whole one-line message.
class SpecError : public std::runtime_error {
public:
    SpecError(std::string path, const std::string& problem)
        : std::runtime_error(path.empty() ? problem : path + ": " + problem), path_(std::move(path)) {}
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct OutputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace gs
