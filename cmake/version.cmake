# src/version.cpp (from cmake/version.cpp.in) carries the version, the commit and
# the CUDA build settings into the binary (results.json's provenance, --version).
# The commit is read at build time, not only at configure time, so a build after
# a new commit says the new one; the file is rewritten only when it changes.
#
# Two modes: included from CMakeLists.txt (after gradsweep_core is defined) it
# adds the target that regenerates the file on every build; run with -P it
# writes the file.
if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${GS_SOURCE_DIR}
                  OUTPUT_VARIABLE GS_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT GS_GIT_COMMIT)
    set(GS_GIT_COMMIT unknown)
  endif()
  string(REPLACE "|" ";" GS_CUDA_ARCHITECTURES "${GS_CUDA_ARCHITECTURES}")
  configure_file(${GS_SOURCE_DIR}/cmake/version.cpp.in ${GS_OUTPUT} @ONLY)
  return()
endif()

set(GS_VERSION_CPP ${CMAKE_BINARY_DIR}/generated/version.cpp)
# "80-real;90" travels as "80-real|90": a ';' would split the command-line argument.
string(REPLACE ";" "|" gs_archs "${CMAKE_CUDA_ARCHITECTURES}")
set(GS_VERSION_ARGS -DGS_SOURCE_DIR=${CMAKE_SOURCE_DIR} -DGS_OUTPUT=${GS_VERSION_CPP}
    -DPROJECT_VERSION=${PROJECT_VERSION}
    -DGS_CUDA_ARCHITECTURES=${gs_archs} -DGS_CUDA_COMPILER_VERSION=${CMAKE_CUDA_COMPILER_VERSION})
execute_process(COMMAND ${CMAKE_COMMAND} ${GS_VERSION_ARGS} -P ${CMAKE_SOURCE_DIR}/cmake/version.cmake)
add_custom_target(gradsweep_version
                  COMMAND ${CMAKE_COMMAND} ${GS_VERSION_ARGS} -P ${CMAKE_SOURCE_DIR}/cmake/version.cmake
                  BYPRODUCTS ${GS_VERSION_CPP} VERBATIM)
add_dependencies(gradsweep_core gradsweep_version)
