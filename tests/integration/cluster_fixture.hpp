// Test support for multi-process cluster tests (integration and chaos): a coordinator and
// workers as child processes on 127.0.0.1, driven through vigilctl.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"

namespace vigil::testing {

using namespace std::chrono_literals;
using nlohmann::json;

inline const std::string vigil_bin = VIGIL_BIN;
inline const std::string coordinator_bin = VIGIL_COORDINATOR_BIN;
inline const std::string worker_bin = VIGIL_WORKER_BIN;
inline const std::string vigilctl_bin = VIGILCTL_BIN;

/// How long a process may take to print its startup line, or to exit after SIGTERM.
inline constexpr auto startup_timeout = 15s;
/// How long a short job may take end to end, and slots to come back after it.
inline constexpr auto job_timeout = 30s;
/// The coordinator's --heartbeat-timeout-ms. Workers heartbeat every 200 ms: ten chances, so a
/// busy machine does not lose a worker that is merely slow.
inline constexpr auto heartbeat_timeout = 2000ms;

/// The word after `key` in a startup line: word_after("... api 127.0.0.1:4242 ...", "api").
inline std::string word_after(const std::string& line, const std::string& key) {
  std::istringstream words(line);
  for (std::string w; words >> w;) {
    if (w == key && words >> w) return w;
  }
  return {};
}

/// A string field of a JSON object; empty if `j` is not an object or lacks it.
inline std::string text(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return {};
  return j[key].get<std::string>();
}

inline bool is_terminal(const std::string& state) {
  return state == "finished" || state == "failed" || state == "cancelled";
}

/// The last `n` characters of `s`, for logs that may be long.
inline std::string tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "[...]\n" + s.substr(s.size() - n);
}

/// One coordinator and its workers, each a child process with its stderr in the test's
/// directory. Every process is killed (SIGKILL) when the test ends, whatever its outcome; on
/// failure their stderr is printed.
class cluster_fixture : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("vigil-cluster"); }

  void TearDown() override {
    bool failed = HasFailure();
    if (failed) {
      for (const auto& [name, p] : processes_) {
        std::fprintf(stderr, "----- stderr of %s (pid %d) -----\n%s\n", name.c_str(), p->pid(),
                     tail(p->stderr_text(), 8000).c_str());
      }
      std::fprintf(stderr, "----- graphs, logs and outputs kept in %s -----\n", dir_.c_str());
    }
    workers_.clear();
    coordinator_ = nullptr;
    processes_.clear();  // Kills and reaps every process before their files go.
    if (!failed) std::filesystem::remove_all(dir_);
  }

  /// Starts a process (`name` names its stderr file and its log on failure) and waits for its
  /// startup line, which goes to `startup_line`.
  child_process& spawn(const std::string& name, const std::vector<std::string>& argv,
                       std::string& startup_line) {
    auto proc = std::make_unique<child_process>(argv, dir_ + "/" + name + ".stderr");
    child_process& p = *proc;
    processes_.emplace_back(name, std::move(proc));
    auto line = p.read_line(startup_timeout);
    EXPECT_TRUE(line.has_value()) << name << " printed no startup line within "
                                  << startup_timeout.count() << " s";
    startup_line = line.value_or("");
    return p;
  }

  /// Starts a coordinator on `data_dir` and makes it the one vigilctl talks to. Workers reach
  /// it at `cluster_listen` (port 0: any free port; a restarted coordinator takes the old
  /// one's address, cluster_, so that its workers find it again). With checkpoint_dir_ set, it
  /// is the coordinator's --checkpoint-dir.
  void start_coordinator(const std::string& data_dir,
                         const std::string& cluster_listen = "127.0.0.1:0") {
    std::string line;
    std::vector<std::string> argv = {coordinator_bin,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--cluster-listen",
                                     cluster_listen,
                                     "--data-dir",
                                     data_dir,
                                     "--heartbeat-timeout-ms",
                                     std::to_string(heartbeat_timeout.count())};
    if (!checkpoint_dir_.empty()) {
      argv.push_back("--checkpoint-dir");
      argv.push_back(checkpoint_dir_);
    }
    coordinator_ = &spawn("coordinator-" + std::to_string(++coordinators_), argv, line);
    api_ = word_after(line, "api");
    cluster_ = word_after(line, "cluster");
    ASSERT_FALSE(api_.empty() || cluster_.empty()) << "startup line: '" << line << "'";
  }

  /// Stops the current coordinator with SIGTERM and expects a clean exit.
  void stop_coordinator() {
    coordinator_->kill(SIGTERM);
    auto status = coordinator_->wait(startup_timeout);
    ASSERT_TRUE(status.has_value()) << "the coordinator did not exit on SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "coordinator wait status " << *status;
  }

  /// Starts a worker "w<n>" with `slots` task slots.
  void start_worker(int n, int slots) {
    std::string id = "w" + std::to_string(n);
    std::string line;
    workers_[id] =
        &spawn(id,
               {worker_bin, "--id", id, "--coordinator", cluster_, "--slots", std::to_string(slots),
                "--state-dir", dir_ + "/" + id + "-state", "--heartbeat-ms", "200"},
               line);
    ASSERT_EQ(line.rfind("vigil-worker: " + id + " data 127.0.0.1:", 0), 0u)
        << "startup line: '" << line << "'";
  }

  /// A coordinator and `workers` workers with `slots` slots each, all registered and alive.
  void start_cluster(int workers, int slots) {
    ASSERT_NO_FATAL_FAILURE(start_coordinator(dir_ + "/coordinator-data"));
    for (int n = 1; n <= workers; ++n) ASSERT_NO_FATAL_FAILURE(start_worker(n, slots));
    bool all_alive = wait_until(
        [&] {
          auto ws = list_workers();
          return ws.size() == static_cast<size_t>(workers) &&
                 std::all_of(ws.begin(), ws.end(),
                             [](const json& w) { return w.value("alive", false); });
        },
        startup_timeout);
    ASSERT_TRUE(all_alive) << list_workers().dump(2);
  }

  /// Runs vigilctl against `address` with `args` after the global flags. Each call may take 15 s
  /// (vigilctl's default is 5 s): on a loaded 2-core machine a coordinator busy with fsyncs
  /// once took longer than 5 s to answer a status call. A dead coordinator fails at once.
  process_result ctl_at(const std::string& address, const std::vector<std::string>& args,
                        bool as_json = false) {
    std::vector<std::string> argv = {vigilctl_bin, "--coordinator", address, "--timeout", "15"};
    if (as_json) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  process_result ctl(const std::vector<std::string>& args) { return ctl_at(api_, args); }

  /// Runs `vigilctl --json ARGS` and parses its output; on failure records it and returns null.
  json ctl_json(const std::vector<std::string>& args) {
    auto r = ctl_at(api_, args, true);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "vigilctl " << args.front() << " exited " << r.exit_code << ": " << r.err;
      return nullptr;
    }
    auto j = json::parse(r.out, nullptr, false);
    if (j.is_discarded()) ADD_FAILURE() << "vigilctl printed no JSON: " << r.out;
    return j;
  }

  json list_workers() {
    auto j = ctl_json({"workers"});
    return j.is_object() && j.contains("workers") ? j["workers"] : json::array();
  }

  json job_status(const std::string& id) { return ctl_json({"status", id}); }

  /// Waits until the coordinator reports worker `victim` not alive and job `id` failed;
  /// leaves the last answers in `workers` and `job`.
  bool wait_for_lost(const std::string& victim, const std::string& id,
                     std::chrono::milliseconds timeout, json& workers, json& job) {
    return wait_until(
        [&] {
          workers = list_workers();
          job = job_status(id);
          bool lost = std::any_of(workers.begin(), workers.end(), [&](const json& w) {
            return text(w, "id") == victim && !w.value("alive", true);
          });
          return lost && text(job, "state") == "failed";
        },
        timeout, 20ms);
  }

  /// Submits a graph file and returns the job id (empty on failure, which is recorded).
  std::string submit(const std::string& graph_path) {
    auto job = ctl_json({"submit", graph_path});
    std::string id = text(job, "id");
    EXPECT_FALSE(id.empty()) << job.dump(2);
    return id;
  }

  /// Polls the job until it is in `state` or in a terminal state, for at most `timeout`, and
  /// returns its last status.
  json wait_for_state(const std::string& id, const std::string& state,
                      std::chrono::milliseconds timeout) {
    json job;
    wait_until(
        [&] {
          job = job_status(id);
          auto s = text(job, "state");
          return s == state || is_terminal(s) || job.is_null();
        },
        timeout);
    return job;
  }

  /// True when every worker has all of its slots free.
  bool all_slots_free() {
    auto ws = list_workers();
    return !ws.empty() && std::all_of(ws.begin(), ws.end(), [](const json& w) {
      return w.value("free_slots", -1) == w.value("slots", -2);
    });
  }

  /// The ids of the workers running subtasks of `node_id`, one entry per subtask.
  static std::vector<std::string> workers_of(const json& job, const std::string& node_id) {
    std::vector<std::string> out;
    if (!job.is_object() || !job.contains("subtasks")) return out;
    for (const auto& s : job["subtasks"]) {
      if (text(s, "node_id") == node_id) out.push_back(text(s, "worker_id"));
    }
    return out;
  }

  std::string dir_;
  std::string checkpoint_dir_;  ///< The coordinator's --checkpoint-dir; empty: none.
  std::string api_;             ///< The current coordinator's gRPC address.
  std::string cluster_;         ///< The current coordinator's address for workers.
  child_process* coordinator_ = nullptr;
  std::map<std::string, child_process*> workers_;  ///< By worker id.

 private:
  int coordinators_ = 0;
  std::vector<std::pair<std::string, std::unique_ptr<child_process>>> processes_;
};

}  // namespace vigil::testing
