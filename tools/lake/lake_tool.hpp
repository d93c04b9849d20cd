#pragma once

#include <ostream>

namespace vigil {

/// vigil-lake's exit codes.
enum lake_tool_exit : int {
  lake_tool_ok = 0,
  lake_tool_failed = 1,   ///< verify found problems, or the table could not be read.
  lake_tool_invalid = 2,  ///< Bad usage.
};

/// The whole of vigil-lake (history, files, schema, verify of a Delta table): parses `argv`
/// (argv[0] is the program name), writes results to `out` and diagnostics to `err`, returns
/// the exit code.
int run_lake_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace vigil
