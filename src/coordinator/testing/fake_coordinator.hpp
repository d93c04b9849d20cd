#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "coordinator/api_server.hpp"
#include "coordinator/cluster_service.hpp"
#include "coordinator/coordinator_api.hpp"
#include "coordinator/job_service.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"

namespace vigil::testing {

/// An in-memory coordinator core for tests of the API edge: validates graphs with the real
/// planner and built-in registry, places subtasks round-robin on the configured workers'
/// free slots (without changing them) and keeps jobs in a map. Ids are "job-1", "job-2", ...;
/// submission times 1000 µs, 2000 µs, ...
class fake_coordinator final : public coordinator_api {
 public:
  explicit fake_coordinator(std::vector<worker_info> workers)
      : registry_(make_builtin_registry()), workers_(std::move(workers)) {}

  result<job_info> submit(const v1::JobGraph& graph, const std::string& from_savepoint = {},
                          const std::string& owner = {}) override {
    auto plan = plan_job(graph, registry_);
    if (!plan) return plan.err();
    uint32_t needed = 0;
    for (const auto& n : plan->nodes) needed += n.parallelism;
    uint32_t free = 0;
    std::vector<const worker_info*> slots;
    for (const auto& w : workers_) {
      if (!w.alive) continue;
      free += w.free_slots;
      for (uint32_t i = 0; i < w.free_slots; ++i) slots.push_back(&w);
    }
    if (needed > free) {
      return make_error(errc::resource_exhausted,
                        "job '" + graph.name() + "' needs " + std::to_string(needed) +
                            " task slots, the cluster has " + std::to_string(free) + " free");
    }
    std::lock_guard lock(mutex_);
    job_info job;
    job.id = "job-" + std::to_string(++next_id_);
    job.name = graph.name();
    job.submitted_at_us = static_cast<int64_t>(next_id_) * 1000;
    job.from_savepoint = from_savepoint;
    job.owner = owner;
    size_t slot = 0;
    for (const auto& n : plan->nodes) {
      for (uint32_t i = 0; i < n.parallelism; ++i) {
        job.subtasks.push_back({n.id, i, slots[slot++]->id, "deploying"});
      }
    }
    jobs_[job.id] = job;
    return job;
  }

  result<job_info> get(std::string_view job_id) override {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(std::string(job_id));
    if (it == jobs_.end()) return unknown(job_id);
    return it->second;
  }

  std::vector<job_info> list() override {
    std::lock_guard lock(mutex_);
    std::vector<job_info> out;
    for (const auto& [id, job] : jobs_) out.push_back(job);
    return out;
  }

  result<job_info> cancel(std::string_view job_id) override {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(std::string(job_id));
    if (it == jobs_.end()) return unknown(job_id);
    auto& job = it->second;
    if (job.state == job_state::pending || job.state == job_state::running) {
      job.state = job_state::cancelling;
    }
    return job;
  }

  /// A pending or running job is marked drained (drained()); an ended one is refused.
  status end_input(std::string_view job_id) override {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(std::string(job_id));
    if (it == jobs_.end()) return unknown(job_id);
    if (it->second.state != job_state::pending && it->second.state != job_state::running) {
      return make_error(errc::failed_precondition, "job '" + it->second.id + "' has ended");
    }
    drained_.insert(it->first);
    return {};
  }

  /// Whether end_input was called for `job_id`.
  bool drained(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    return drained_.count(job_id) > 0;
  }

  /// A running job gets the savepoint "savepoints/<job id>/chk-<n>" (nothing is written).
  result<savepoint_info> savepoint(std::string_view job_id, bool stop) override {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(std::string(job_id));
    if (it == jobs_.end()) return unknown(job_id);
    auto& job = it->second;
    if (job.state != job_state::running) {
      return make_error(errc::failed_precondition,
                        "job '" + job.id + "' is not running, so it has no savepoint to take");
    }
    savepoint_info sp;
    sp.checkpoint_id = static_cast<int64_t>(++savepoints_);
    sp.path = "savepoints/" + job.id + "-" + std::to_string(sp.checkpoint_id);
    job.last_savepoint = sp.path;
    if (stop) job.state = job_state::cancelling;
    sp.job = job;
    return sp;
  }

  std::vector<worker_info> workers() override { return workers_; }

  /// Sets a job's state directly, as the real core would on a worker's report.
  void set_state(const std::string& job_id, job_state state, std::string error = {}) {
    std::lock_guard lock(mutex_);
    jobs_.at(job_id).state = state;
    jobs_.at(job_id).error = std::move(error);
  }

 private:
  static error unknown(std::string_view job_id) {
    return make_error(errc::not_found, "no job with id '" + std::string(job_id) + "'");
  }

  operator_registry registry_;
  std::vector<worker_info> workers_;
  std::mutex mutex_;
  std::map<std::string, job_info> jobs_;  ///< "job-1" < "job-2" < ... up to job-9: list order.
  std::set<std::string> drained_;
  uint64_t next_id_ = 0;
  uint64_t savepoints_ = 0;
};

/// A real gRPC server with job_service and cluster_service over `core`, listening on a free
/// port of 127.0.0.1. Shuts down when destroyed.
class test_server {
 public:
  explicit test_server(coordinator_api& core) {
    auto s = api_server::start(core, host_port{"127.0.0.1", 0});
    if (s) server_ = std::move(*s);
  }

  bool started() const { return server_ != nullptr; }
  std::string address() const { return server_ ? server_->address() : std::string(); }

 private:
  std::unique_ptr<api_server> server_;
};

}  // namespace vigil::testing
