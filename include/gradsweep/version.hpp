#pragma once
// Provenance strings, defined in a generated source file so that a new commit
// recompiles one file instead of the whole project.
namespace gs {
const char* version_string();
const char* git_commit();
bool cuda_compiled_in();              // whether this build has the CUDA backend
const char* cuda_architectures();     // CMAKE_CUDA_ARCHITECTURES of the build ("" without CUDA)
const char* cuda_compiler_version();  // nvcc's version ("" without CUDA)
}  // namespace gs
