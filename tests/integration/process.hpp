#pragma once

#include <string>
#include <vector>

namespace vigil::testing {

/// The outcome of a child process run by run_process().
struct process_result {
  int exit_code = -1;  ///< -1 if killed by a signal.
  int signal = 0;
  std::string out;
  std::string err;
  long peak_rss_bytes = 0;
};

/// Runs `argv` (argv[0] is a path), waits for it, and returns its output. With
/// interrupt_after_ms > 0 the child receives SIGINT after that long (to stop unbounded jobs).
process_result run_process(const std::vector<std::string>& argv, int interrupt_after_ms = 0);

/// A fresh empty temporary directory.
std::string make_temp_dir(const std::string& prefix);

/// Writes `text` to `path`.
void write_file(const std::string& path, const std::string& text);

/// Reads all lines of every file in `dir` whose name starts with `prefix`, sorted.
std::vector<std::string> read_sorted_lines(const std::string& dir, const std::string& prefix);

}  // namespace vigil::testing
