#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

/// A process running in the background while a test talks to it. Its stdout is read by a
/// thread into a buffer (so the child never blocks on a full pipe), its stderr goes to a file.
/// The destructor kills it with SIGKILL and reaps it, also when a test assertion failed.
class child_process {
 public:
  /// Starts `argv` (argv[0] is a path) with stdin from /dev/null and stderr appended to
  /// `stderr_path`. Throws std::runtime_error if the process cannot be created.
  child_process(const std::vector<std::string>& argv, std::string stderr_path);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The next complete line of stdout (without the newline), or nothing if none arrived within
  /// `timeout` or stdout was closed first.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);

  /// The process id (still valid after the process exited, until this object is destroyed).
  pid_t pid() const { return pid_; }

  /// Sends `signal` unless the process has already been reaped.
  void kill(int signal);

  /// Waits up to `timeout` for the process to exit and reaps it. Returns its wait status
  /// (as from waitpid), or nothing if it is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  /// True until the process has been reaped by wait().
  bool running() const { return !status_.has_value(); }

  /// Everything the process wrote to stderr so far.
  std::string stderr_text() const;

  /// The program path, for messages.
  const std::string& program() const { return program_; }

 private:
  void read_stdout(int fd);

  std::string program_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string out_;  ///< Stdout not yet returned by read_line().
  bool out_closed_ = false;
  std::thread reader_;
};

/// Resident memory of a process, from /proc/<pid>/status.
struct memory_usage {
  long rss_bytes = 0;  ///< VmRSS: resident now.
  long hwm_bytes = 0;  ///< VmHWM: peak resident since the process started.
};

/// The current memory of `pid`, or nothing if it is not running (or not readable).
std::optional<memory_usage> read_memory_usage(pid_t pid);

/// Evaluates `condition` every `period` until it is true or `timeout` has passed; returns its
/// last value. For waiting on a condition another process brings about, never a bare sleep.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds period = std::chrono::milliseconds(50));

/// Runs `run(&cancel)` on this thread and sets `cancel` once `storage` (a checkpoint_storage)
/// holds `checkpoints` complete checkpoints, or after 30 s; returns what `run` returned.
template <class Storage, class Run>
auto run_until_checkpoints(const Storage& storage, size_t checkpoints, Run run) {
  std::atomic<bool> cancel{false};
  std::thread watcher([&] {
    wait_until([&] { return storage.completed().size() >= checkpoints; }, std::chrono::seconds(30));
    cancel = true;
  });
  auto result = run(&cancel);
  watcher.join();
  return result;
}

/// A fresh empty temporary directory.
std::string make_temp_dir(const std::string& prefix);

/// Writes `text` to `path`.
void write_file(const std::string& path, const std::string& text);

/// The whole content of `path`; empty if it cannot be read.
std::string read_file(const std::string& path);

/// Reads all lines of every file in `dir` whose name starts with `prefix`, sorted.
std::vector<std::string> read_sorted_lines(const std::string& dir, const std::string& prefix);

/// The node binary (for the DuckDB reader): the one found when configuring (VIGIL_NODE), else
/// the first `node` on PATH; empty if there is none.
std::string find_node();

}  // namespace vigil::testing
