#pragma once
// Provenance strings, defined in a generated source file so that a new commit
// recompiles one file instead of the whole project.
namespace gs {
const char* version_string();
const char* git_commit();
}  // namespace gs
