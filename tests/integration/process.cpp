#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vigil::testing {

process_result run_process(const std::vector<std::string>& argv, int interrupt_after_ms) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  process_result r;
  auto started = std::chrono::steady_clock::now();
  bool interrupted = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    int timeout = -1;
    if (interrupt_after_ms > 0 && !interrupted) {
      auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
      timeout = std::max<int>(0, interrupt_after_ms - static_cast<int>(elapsed));
    }
    int n = ::poll(fds, 2, timeout);
    if (n == 0) {
      kill(pid, SIGINT);
      interrupted = true;
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, got);
      }
    }
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.peak_rss_bytes = ru.ru_maxrss * 1024L;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

child_process::child_process(const std::vector<std::string>& argv, std::string stderr_path)
    : program_(argv.at(0)), stderr_path_(std::move(stderr_path)) {
  // Everything the child needs is prepared before fork(): the parent has other threads, so
  // the child may only call async-signal-safe functions until execv().
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (err_fd < 0 || null_fd < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_fd, null_fd}) {
      if (fd >= 0) close(fd);
    }
    throw std::runtime_error("cannot open " + stderr_path_ + " or /dev/null");
  }
  pid_ = fork();
  if (pid_ == 0) {
    // Dies with the test process even if that one crashes before its destructors run.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(null_fd, 0);
    dup2(out_pipe[1], 1);
    dup2(err_fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_fd);
  close(null_fd);
  if (pid_ < 0) {
    close(out_pipe[0]);
    throw std::runtime_error("fork failed for " + program_);
  }
  reader_ = std::thread([this, fd = out_pipe[0]] { read_stdout(fd); });
}

child_process::~child_process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (reader_.joinable()) reader_.join();
}

void child_process::read_stdout(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    std::lock_guard lock(mutex_);
    out_.append(buf, static_cast<size_t>(got));
    changed_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mutex_);
  out_closed_ = true;
  changed_.notify_all();
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout,
                    [this] { return out_.find('\n') != std::string::npos || out_closed_; });
  auto end = out_.find('\n');
  if (end == std::string::npos) return std::nullopt;
  std::string line = out_.substr(0, end);
  out_.erase(0, end + 1);
  return line;
}

void child_process::kill(int signal) {
  if (running()) ::kill(pid_, signal);
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  wait_until(
      [this] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
        return status_.has_value();
      },
      timeout, std::chrono::milliseconds(10));
  return status_;
}

std::string child_process::stderr_text() const {
  std::ifstream in(stderr_path_);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<memory_usage> read_memory_usage(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  memory_usage usage;
  bool found = false;
  for (std::string line; std::getline(in, line);) {
    // Lines look like "VmRSS:\t   12345 kB".
    long* field = line.rfind("VmRSS:", 0) == 0   ? &usage.rss_bytes
                  : line.rfind("VmHWM:", 0) == 0 ? &usage.hwm_bytes
                                                 : nullptr;
    if (field == nullptr) continue;
    *field = std::stol(line.substr(line.find(':') + 1)) * 1024;
    found = true;
  }
  if (!found) return std::nullopt;  // A zombie has no memory lines.
  return usage;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds period) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(period);
  }
}

std::string make_temp_dir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> read_sorted_lines(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string find_node() {
  const std::string configured = VIGIL_NODE;
  if (!configured.empty() && ::access(configured.c_str(), X_OK) == 0) {
    return configured;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = dir + "/node";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

}  // namespace vigil::testing
