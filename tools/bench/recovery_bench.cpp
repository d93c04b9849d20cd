#include "recovery_bench.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "common/result.hpp"

extern char** environ;

namespace vigil::bench {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// How long a process may take to print its startup line or to exit after SIGTERM, and how
/// long the job may take to produce output again.
constexpr auto startup_timeout = 15s;
constexpr auto output_timeout = 60s;
/// How often the benchmark looks at files it waits on.
constexpr auto poll_interval = 2ms;
/// The job's checkpoint interval.
constexpr int checkpoint_interval_ms = 200;
/// Steady running time before each kill.
constexpr auto steady_time = 2s;
/// Pause before a replacement worker that exited is started again.
constexpr auto relaunch_delay = 100ms;

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The last `n` characters of a file, for error messages.
std::string tail_of(const fs::path& path, size_t n) {
  std::string s = read_text(path);
  return s.size() <= n ? s : "[...]" + s.substr(s.size() - n);
}

/// The first line of `path`, or nothing while it has no complete line.
std::optional<std::string> first_line(const fs::path& path) {
  std::string s = read_text(path);
  auto nl = s.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  return s.substr(0, nl);
}

/// The word after `key` in a startup line: word_after("... api 127.0.0.1:4242 ...", "api").
std::string word_after(const std::string& line, const std::string& key) {
  std::istringstream words(line);
  for (std::string w; words >> w;) {
    if (w == key && words >> w) return w;
  }
  return {};
}

/// posix_spawn's file actions, released when done.
class file_actions {
 public:
  file_actions() { posix_spawn_file_actions_init(&fa_); }
  ~file_actions() { posix_spawn_file_actions_destroy(&fa_); }
  file_actions(const file_actions&) = delete;
  file_actions& operator=(const file_actions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

/// Starts `argv` with the file actions `fa`; returns its pid.
result<pid_t> spawn(const std::vector<std::string>& argv, file_actions& fa) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv.front().c_str(), fa.get(), nullptr, args.data(), environ);
  if (rc != 0) {
    return make_error(errc::io_error, "cannot start " + argv.front() + ": " + std::strerror(rc));
  }
  return pid;
}

/// A child process with stdin from /dev/null and stdout and stderr appended to files. It is
/// killed (SIGKILL) and reaped when destroyed unless it was reaped before.
class child {
 public:
  static result<std::unique_ptr<child>> start(const std::vector<std::string>& argv,
                                              const fs::path& out, const fs::path& err) {
    file_actions fa;
    posix_spawn_file_actions_addopen(fa.get(), 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(fa.get(), 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(fa.get(), 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    auto pid = spawn(argv, fa);
    if (!pid) return pid.err();
    return std::unique_ptr<child>(new child(*pid, out, err));
  }

  ~child() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      reap();
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Sends `sig` unless the process has been reaped.
  void signal(int sig) {
    if (!reaped_) ::kill(pid_, sig);
  }

  /// Waits until the process exited (SIGKILL cannot be ignored, so this returns).
  void reap() {
    int status = 0;
    while (!reaped_ && ::waitpid(pid_, &status, 0) == -1 && errno == EINTR) {
    }
    reaped_ = true;
  }

  /// Waits at most `timeout` for the process to exit; true if it did.
  bool wait(std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!reaped_) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r == -1 && errno != EINTR)) {
        reaped_ = true;
        break;
      }
      if (steady::now() >= deadline) return false;
      std::this_thread::sleep_for(poll_interval);
    }
    return true;
  }

  /// Waits at most `timeout` for the process's first stdout line.
  result<std::string> startup_line(std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    for (;;) {
      if (auto line = first_line(out_)) return *line;
      if (wait(0ms)) {
        return make_error(errc::io_error,
                          "process " + std::to_string(pid_) +
                              " exited before its startup line: " + tail_of(err_, 2000));
      }
      if (steady::now() >= deadline) {
        return make_error(errc::io_error,
                          "process " + std::to_string(pid_) + " printed no startup line");
      }
      std::this_thread::sleep_for(poll_interval);
    }
  }

  const fs::path& out_path() const { return out_; }
  const fs::path& err_path() const { return err_; }

 private:
  child(pid_t pid, fs::path out, fs::path err)
      : pid_(pid), out_(std::move(out)), err_(std::move(err)) {}

  pid_t pid_;
  bool reaped_ = false;
  fs::path out_;
  fs::path err_;
};

/// Runs `argv` to its end and returns its stdout; stderr is appended to `err`.
result<std::string> run_capture(const std::vector<std::string>& argv, const fs::path& err) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return make_error(errc::io_error, std::string("pipe: ") + std::strerror(errno));
  }
  file_actions fa;
  posix_spawn_file_actions_addopen(fa.get(), 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(fa.get(), fds[1], 1);
  posix_spawn_file_actions_addopen(fa.get(), 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  auto pid = spawn(argv, fa);
  ::close(fds[1]);
  if (!pid) {
    ::close(fds[0]);
    return pid.err();
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(*pid, &status, 0) == -1 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(errc::io_error,
                      argv.front() + " " + argv.back() + " failed: " + tail_of(err, 1000));
  }
  return out;
}

/// The highest checkpoint id with a directory (complete or not) under the coordinator's
/// checkpoint root (one directory per job below it); 0 if none.
int64_t highest_checkpoint(const fs::path& root) {
  int64_t highest = 0;
  auto scan = [&](const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("chk-", 0) == 0) {
        highest = std::max<int64_t>(highest, std::strtoll(name.c_str() + 4, nullptr, 10));
      }
    }
  };
  std::error_code ec;
  for (const auto& job : fs::directory_iterator(root, ec)) {
    if (job.is_directory()) scan(job.path());
  }
  return highest;
}

/// Follows a Delta table's log: reads each commit once, in version order.
class commit_watch {
 public:
  explicit commit_watch(fs::path table) : log_(std::move(table) / "_delta_log") {}

  /// Reads the commits that appeared since the last call; returns the highest streaming epoch
  /// (txn version) among them, or -1 if none appeared or none carries one.
  int64_t poll() {
    int64_t highest = -1;
    for (;;) {
      char name[32];
      std::snprintf(name, sizeof name, "%020lld.json", static_cast<long long>(next_));
      const fs::path path = log_ / name;
      std::ifstream in(path);
      if (!in) break;  // Commits are linked into place whole: absent means not yet written.
      for (std::string line; std::getline(in, line);) {
        auto action = nlohmann::json::parse(line, nullptr, false);
        if (action.is_object() && action.contains("txn") && action["txn"].contains("version")) {
          highest = std::max(highest, action["txn"]["version"].get<int64_t>());
        }
      }
      ++next_;
    }
    return highest;
  }

  int64_t commits() const { return next_; }

 private:
  fs::path log_;
  int64_t next_ = 0;
};

/// The coordinator and workers of the benchmark, each a child process logging into `dir`.
class cluster {
 public:
  cluster(fs::path dir, fs::path bin_dir) : dir_(std::move(dir)), bin_dir_(std::move(bin_dir)) {}

  ~cluster() {
    // SIGTERM first so that the processes shut down as in production; SIGKILL what remains.
    for (auto& [id, w] : workers_) w->signal(SIGTERM);
    if (coordinator_) coordinator_->signal(SIGTERM);
    for (auto& [id, w] : workers_) w->wait(startup_timeout);
    if (coordinator_) coordinator_->wait(startup_timeout);
  }

  status start_coordinator() {
    auto c = child::start(
        {(bin_dir_ / "vigil-coordinator").string(), "--listen", "127.0.0.1:0", "--cluster-listen",
         "127.0.0.1:0", "--data-dir", (dir_ / "coordinator-data").string(), "--checkpoint-dir",
         checkpoint_root().string()},
        dir_ / "coordinator.out", dir_ / "coordinator.log");
    if (!c) return c.err();
    coordinator_ = std::move(*c);
    auto line = coordinator_->startup_line(startup_timeout);
    if (!line) return line.err();
    api_ = word_after(*line, "api");
    cluster_ = word_after(*line, "cluster");
    if (api_.empty() || cluster_.empty()) {
      return make_error(errc::internal, "unexpected coordinator startup line: " + *line);
    }
    return {};
  }

  /// Starts worker `id` (replacing a dead one of that id) without waiting for it to be up.
  result<child*> launch_worker(const std::string& id, int slots) {
    const std::string n = std::to_string(++launches_);
    auto w = child::start(
        {(bin_dir_ / "vigil-worker").string(), "--id", id, "--coordinator", cluster_, "--slots",
         std::to_string(slots), "--state-dir", (dir_ / (id + "-state")).string()},
        dir_ / (id + "-" + n + ".out"), dir_ / (id + "-" + n + ".log"));
    if (!w) return w.err();
    auto& slot = workers_[id];
    slot = std::move(*w);
    return slot.get();
  }

  /// vigilctl --json ARGS, parsed.
  result<nlohmann::json> ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {(bin_dir_ / "tools" / "vigilctl").string(),
                                     "--coordinator",
                                     api_,
                                     "--timeout",
                                     "5",
                                     "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto out = run_capture(argv, dir_ / "vigilctl.log");
    if (!out) return out.err();
    auto j = nlohmann::json::parse(*out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return make_error(errc::parse_error, "vigilctl printed no JSON object: " + *out);
    }
    return j;
  }

  child* worker(const std::string& id) { return workers_.at(id).get(); }
  fs::path checkpoint_root() const { return dir_ / "checkpoints"; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  fs::path bin_dir_;
  std::unique_ptr<child> coordinator_;
  std::map<std::string, std::unique_ptr<child>> workers_;
  std::string api_;
  std::string cluster_;
  int launches_ = 0;
};

/// The benchmark's job: endless, rate-limited (event time advances at wall-clock pace), eight
/// subtasks on the two workers' eight slots, so a restart needs the replacement worker.
std::string recovery_graph(const fs::path& table) {
  return R"yaml(
name: recovery-bench
checkpoints: {interval_ms: )yaml" +
         std::to_string(checkpoint_interval_ms) + R"yaml(}
restart: {backoff_ms: 100, max_backoff_ms: 1000, max_attempts: 100}
execution: {default_parallelism: 2}
nodes:
  - id: gen
    operator: generator
    config: {count: 0, keys: 1000, interval: 100us, rate: 10000, seed: 9}
  - id: keyed
    operator: key_by
    config: {key: key}
  - id: win
    operator: tumbling_window
    config: {size: 200ms, aggregates: [{name: n, fn: count}]}
  - id: sink
    operator: lake_sink
    config: {path: ")yaml" +
         table.string() + R"yaml("}
edges:
  - {from: gen, to: keyed}
  - {from: keyed, to: win}
  - {from: win, to: sink}
)yaml";
}

/// The worker running subtask 0 of node `node`; empty if the status names none.
std::string worker_of(const nlohmann::json& job, const std::string& node) {
  if (!job.contains("subtasks")) return {};
  for (const auto& s : job["subtasks"]) {
    if (s.value("node_id", "") == node && s.value("subtask", -1) == 0) {
      return s.value("worker_id", "");
    }
  }
  return {};
}

/// Waits until `watch` sees a commit of an epoch above `epoch`; false after `timeout`.
bool wait_for_commit_above(commit_watch& watch, int64_t epoch, std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (watch.poll() <= epoch) {
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(poll_interval);
  }
  return true;
}

constexpr int slots_per_worker = 4;

/// The measurement; `c` is set up and empty.
status measure(cluster& c, int kills) {
  const char* name = recovery_time_name;
  if (auto st = c.start_coordinator(); !st) return st;
  for (const char* id : {"w1", "w2"}) {
    auto w = c.launch_worker(id, slots_per_worker);
    if (!w) return w.err();
    if (auto line = (*w)->startup_line(startup_timeout); !line) return line.err();
  }
  const fs::path table = c.dir() / "table";
  const fs::path graph_path = c.dir() / "recovery.yaml";
  std::ofstream(graph_path) << recovery_graph(table);
  // Workers register asynchronously after their startup line: retry the submission while
  // slots are missing.
  std::string job_id;
  const auto submit_deadline = steady::now() + startup_timeout;
  for (;;) {
    auto submitted = c.ctl({"submit", graph_path.string()});
    if (submitted) {
      job_id = submitted->value("id", "");
      break;
    }
    if (steady::now() >= submit_deadline) return submitted.err();
    std::this_thread::sleep_for(50ms);
  }
  if (job_id.empty()) return make_error(errc::internal, "vigilctl submit returned no job id");

  commit_watch watch(table);
  if (!wait_for_commit_above(watch, 0, output_timeout)) {
    return make_error(errc::internal, "the job committed no output within 60 s");
  }
  std::vector<double> recovery_ms;
  std::vector<double> replacement_ms;
  int relaunches = 0;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(steady_time);  // Running undisturbed: part of the scenario.
    auto job = c.ctl({"status", job_id});
    if (!job) return job.err();
    if (job->value("state", "") != "running") {
      return make_error(errc::internal, "job not running before kill " + std::to_string(k + 1) +
                                            ": " + job->dump());
    }
    const std::string victim = worker_of(*job, "sink");
    if (victim.empty())
      return make_error(errc::internal, "no worker runs the sink: " + job->dump());
    watch.poll();
    const auto t0 = steady::now();
    child* dead = c.worker(victim);
    dead->signal(SIGKILL);
    dead->reap();
    // Every checkpoint that completes from now on with a higher id was triggered after the kill
    // (one started before it needs the dead worker's acknowledgement), so a commit of such an
    // epoch is output of the restarted job.
    const int64_t epoch_at_kill = highest_checkpoint(c.checkpoint_root());
    auto replacement = c.launch_worker(victim, slots_per_worker);
    if (!replacement) return replacement.err();
    double up_ms = -1;
    bool recovered = false;
    const auto deadline = t0 + output_timeout;
    while (steady::now() < deadline) {
      if ((*replacement)->wait(0ms)) {
        // Refused (the coordinator had not yet seen the old process's connection drop) or
        // failed: start it again, as Kubernetes restarts a pod's container.
        ++relaunches;
        std::this_thread::sleep_for(relaunch_delay);
        replacement = c.launch_worker(victim, slots_per_worker);
        if (!replacement) return replacement.err();
        up_ms = -1;
        continue;
      }
      if (up_ms < 0 && first_line((*replacement)->out_path())) up_ms = ms_since(t0);
      if (watch.poll() > epoch_at_kill) {
        recovered = true;
        break;
      }
      std::this_thread::sleep_for(poll_interval);
    }
    if (!recovered) {
      return make_error(errc::internal, "no output within 60 s after kill " +
                                            std::to_string(k + 1) + " (of worker " + victim + ")");
    }
    recovery_ms.push_back(ms_since(t0));
    replacement_ms.push_back(up_ms);
    std::fprintf(stderr,
                 "%s: kill %d of %s: output again after %.0f ms (replacement up after %.0f ms)\n",
                 name, k + 1, victim.c_str(), recovery_ms.back(), up_ms);
  }
  auto job = c.ctl({"status", job_id});
  if (!job) return job.err();
  const auto restarts = job->value("restarts", 0);
  const auto completed = job->value("checkpoints_completed", int64_t{0});
  if (auto cancelled = c.ctl({"cancel", job_id}); !cancelled) return cancelled.err();

  auto list = [](const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.0f", i == 0 ? "" : ",", v[i]);
      s += buf;
    }
    return s + "]";
  };
  std::printf(
      "{\"name\":\"%s\",\"kills\":%d,\"restarts\":%d,\"checkpoint_interval_ms\":%d,"
      "\"checkpoints_completed\":%lld,\"commits\":%lld,\"recovery_ms\":%s,\"p50_ms\":%.0f,"
      "\"max_ms\":%.0f,\"replacement_up_ms\":%s,\"replacement_relaunches\":%d,"
      "\"target_ms\":5000}\n",
      name, kills, restarts, checkpoint_interval_ms, static_cast<long long>(completed),
      static_cast<long long>(watch.commits()), list(recovery_ms).c_str(),
      quantile(recovery_ms, 0.5), quantile(recovery_ms, 1.0), list(replacement_ms).c_str(),
      relaunches);
  std::fflush(stdout);
  return {};
}

}  // namespace

int run_recovery_time(int kills, const std::string& state_dir) {
  const char* name = recovery_time_name;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "%s: cannot locate this binary: %s\n", name, ec.message().c_str());
    return 1;
  }
  // vigil-bench is <build>/tools/vigil-bench; the servers are <build>/vigil-*.
  const fs::path bin_dir = exe.parent_path().parent_path();
  for (const fs::path& p :
       {bin_dir / "vigil-coordinator", bin_dir / "vigil-worker", bin_dir / "tools" / "vigilctl"}) {
    if (!fs::exists(p)) {
      std::fprintf(stderr, "%s: %s not found (build vigil-coordinator, vigil-worker, vigilctl)\n",
                   name, p.c_str());
      return 1;
    }
  }
  const fs::path dir = fs::path(state_dir) / std::to_string(::getpid());
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "%s: %s: %s\n", name, dir.c_str(), ec.message().c_str());
    return 1;
  }
  status st;
  {
    cluster c(dir, bin_dir);
    st = measure(c, kills);
  }
  if (!st) {
    std::fprintf(stderr, "%s: %s (logs kept in %s)\n", name, st.err().message.c_str(), dir.c_str());
    return 1;
  }
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace vigil::bench
