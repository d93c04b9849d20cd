#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "vigil/v1/graph.pb.h"

namespace vigil {

/// The life cycle of a job: pending -> running -> finished | failed; cancel moves a pending,
/// running or restarting job to cancelling, then cancelled once every subtask stopped. A job
/// with checkpoints goes from running (or pending) to restarting on a failure and back to
/// running once restored, as its graph's restart settings allow; then it fails.
enum class job_state { pending, running, finished, failed, cancelling, cancelled, restarting };

/// Where one subtask of a node runs.
struct subtask_placement {
  std::string node_id;    ///< The graph node the subtask belongs to.
  uint32_t subtask = 0;   ///< 0 .. parallelism - 1.
  std::string worker_id;  ///< Empty while not placed.
  std::string state;      ///< As the worker reports it: "deploying", "running", "finished", ...
};

/// A submitted job as the coordinator knows it.
struct job_info {
  std::string id;    ///< Assigned at submission; only [A-Za-z0-9_.-], at most 128 characters.
  std::string name;  ///< The graph's name.
  job_state state = job_state::pending;
  std::string error;                        ///< Why the job failed; empty otherwise.
  int64_t submitted_at_us = 0;              ///< µs since the Unix epoch, UTC.
  std::vector<subtask_placement> subtasks;  ///< Plan (topological) order, then subtask.
  uint32_t restarts = 0;                    ///< Restarts after failures so far.
  uint32_t restart_attempts = 0;            ///< Restarts since the newest completed checkpoint.
  int64_t last_checkpoint = 0;              ///< Newest complete checkpoint id; 0 if none.
  std::string last_failure;                 ///< The failure behind the latest restart.
  uint64_t checkpoints_completed = 0;
  uint64_t checkpoints_failed = 0;      ///< Declined or timed out.
  std::string last_checkpoint_failure;  ///< Why the newest failed one failed.
  std::string from_savepoint;           ///< The savepoint the job started from; empty if none.
  std::string last_savepoint;           ///< The newest savepoint taken of it; empty if none.
  std::string owner;  ///< The principal that submitted it; empty when authentication was off.
};

/// A savepoint that was written.
struct savepoint_info {
  std::string path;  ///< Self-contained directory, for submit(graph, path).
  int64_t checkpoint_id = 0;
  job_info job;  ///< The job after the request.
};

/// A worker process registered with the coordinator.
struct worker_info {
  std::string id;
  std::string address;  ///< host:port of its data and control endpoint.
  uint32_t slots = 0;
  uint32_t free_slots = 0;
  int64_t last_heartbeat_us = 0;  ///< µs since the Unix epoch, UTC.
  bool alive = false;             ///< False once it missed its heartbeat deadline.
};

/// What the gRPC services (job_service, cluster_service) call: the coordinator's core. Every
/// method is thread-safe: gRPC calls them from its own threads, concurrently. None blocks on a
/// worker; state changes caused by a call (deploying, cancelling) happen after it returns.
/// Errors carry a message a pipeline author can act on; the services pass it through verbatim
/// and map the code: invalid_graph, invalid_argument and parse_error -> INVALID_ARGUMENT,
/// not_found -> NOT_FOUND, resource_exhausted -> RESOURCE_EXHAUSTED, anything else -> INTERNAL
/// (to_grpc_status in job_service.hpp).
class coordinator_api {
 public:
  virtual ~coordinator_api() = default;

  /// Validates, stores and schedules a graph. Refuses an invalid graph (invalid_graph, the
  /// message naming the node and field, e.g. "node 'w': config.size: required") and a graph
  /// needing more task slots than the cluster has free (resource_exhausted, e.g. "job 'vitals'
  /// needs 6 task slots, the cluster has 3 free").
  /// With `from_savepoint`, the job starts from that savepoint (a directory savepoint()
  /// returned); its nodes may have another parallelism. `owner` is recorded as the job's owner
  /// (the authenticated principal; empty when authentication is off).
  virtual result<job_info> submit(const v1::JobGraph& graph, const std::string& from_savepoint = {},
                                  const std::string& owner = {}) = 0;

  /// One job; not_found for an unknown id.
  virtual result<job_info> get(std::string_view job_id) = 0;

  /// Every job, oldest submission first.
  virtual std::vector<job_info> list() = 0;

  /// Requests cancellation; returns the job after the request. A job that already ended is
  /// returned unchanged. not_found for an unknown id.
  virtual result<job_info> cancel(std::string_view job_id) = 0;

  /// Takes a savepoint of a running job with checkpoints and returns once it is written; with
  /// `stop`, cancels the job then. failed_precondition if the job does not run or takes no
  /// checkpoints; not_found for an unknown id.
  virtual result<savepoint_info> savepoint(std::string_view job_id, bool stop) = 0;

  /// Drains a job: its sources end their input, everything downstream flushes and commits, and
  /// the job finishes. failed_precondition when it has ended; not_found for an unknown id.
  virtual status end_input(std::string_view job_id) = 0;

  /// Every registered worker, alive or not, ordered by id.
  virtual std::vector<worker_info> workers() = 0;
};

}  // namespace vigil
