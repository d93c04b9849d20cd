#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/text_table.hpp"

namespace vigil {

/// vigilctl's exit codes.
enum vigilctl_exit : int {
  vigilctl_ok = 0,
  vigilctl_failed = 1,       ///< Any other refusal or error of the coordinator.
  vigilctl_invalid = 2,      ///< Bad usage, an unreadable graph file, or INVALID_ARGUMENT.
  vigilctl_unreachable = 3,  ///< The coordinator could not be reached or did not answer in time.
  vigilctl_not_found = 4,    ///< NOT_FOUND: no such job.
};

/// The whole of vigilctl: parses `argv` (argv[0] is the program name), talks to the
/// coordinator, writes results to `out` and diagnostics to `err`, returns the exit code.
int run_vigilctl(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

/// The lower-case hex SHA-256 of `token`: what `vigilctl hash-token` prints for a token, the
/// third field of a coordinator's --auth-tokens line.
std::string token_hash_hex(std::string_view token);

/// µs since the Unix epoch as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds); "-" for 0.
std::string format_time_us(int64_t us);

}  // namespace vigil
