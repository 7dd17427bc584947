// The commands besides `run` (orchestrator.hpp), each in its own file, for
// cli_main to dispatch to. Each returns the exit code and throws the errors of
// errors.hpp.
#pragma once
#include "gradsweep/cli.hpp"

namespace gs {

int plan_command(const CliOptions& o);   // plan_command.cpp
int merge_command(const CliOptions& o);  // merge_command.cpp

}  // namespace gs
