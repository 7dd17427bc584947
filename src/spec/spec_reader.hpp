// Turns spec text into JSON, stricter than nlohmann's defaults: a syntax error
// gets its line and column, a key given twice in one object is an error (nlohmann
// would silently keep the last), and nesting is bounded so that nothing later
// (dump, destruction) can recurse deeply on hostile input.
#pragma once
#include <string>

#include "gradsweep/spec.hpp"

namespace gs {

inline constexpr size_t kMaxSpecBytes = 16u << 20;  // a spec is a few hundred bytes; 16 MiB is surely a mistake
inline constexpr size_t kMaxNesting = 32;           // the deepest valid spec nests 4 levels

// Throws SpecError (with the JSON path where one is known).
ojson read_spec_json(const std::string& text);

}  // namespace gs
