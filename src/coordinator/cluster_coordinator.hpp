#pragma once

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "coordinator/coordinator_api.hpp"
#include "coordinator/job_store.hpp"
#include "runtime/checkpoint_coordinator.hpp"
#include "runtime/executor.hpp"
#include "runtime/job_plan.hpp"
#include "runtime/messages.hpp"
#include "runtime/operator.hpp"
#include "worker/cluster_tls.hpp"

namespace vigil {

/// A request from the API threads to the coordinator actor: deploy (cancel = false) or cancel
/// a job. Deliberately not a registered message type: it cannot arrive over the network, so
/// only this process can schedule or cancel a job.
struct local_request {
  std::string job_id;
  bool cancel = false;
  uint64_t savepoint = 0;  ///< Non-zero: take savepoint request number `savepoint` instead.
};

struct coordinator_options {
  /// The CAF endpoint workers connect to; port 0 picks a free port (see cluster_port()).
  host_port cluster_listen{"127.0.0.1", 0};
  /// Directory of the durable job store; empty keeps jobs in memory only (embedded clusters).
  std::filesystem::path data_dir;
  /// Checkpoint storage root, shared by the coordinator and every worker (a shared volume in
  /// Kubernetes): a job's checkpoints go to <checkpoint_dir>/<job id>. Empty: jobs whose graph
  /// asks for checkpoints are refused.
  std::filesystem::path checkpoint_dir;
  /// Where savepoints go (<savepoint_dir>/<job id>-<checkpoint id>); empty: <checkpoint_dir>/
  /// savepoints.
  std::filesystem::path savepoint_dir;
  /// A worker that sent no heartbeat for this long is declared lost. A worker whose connection
  /// drops (a killed process) is declared lost at once.
  std::chrono::milliseconds heartbeat_timeout{3000};
  /// Deploying and wiring a job's subtasks must finish within this.
  std::chrono::milliseconds deploy_timeout{30000};
  /// Actor system threads; 0 = two.
  size_t threads = 0;
  /// TLS on the cluster endpoint (workers must present a certificate signed by tls.ca); off
  /// when not enabled().
  cluster_tls tls;
};

/// The coordinator's core: the worker registry, the scheduler, and the job masters' work
/// (deploy, wire, start, watch, cancel) for every job, over CAF remote actors. Implements
/// coordinator_api for the gRPC services; every method is thread-safe.
///
/// One coordinator actor talks to the workers and subtasks; the API methods and that
/// actor share the cluster table under one mutex. Submission validates the graph, reserves
/// slots (one subtask per slot) and stores the job before it returns; the actor then deploys it.
/// See docs/design/0005-cluster.md for the protocol.
class cluster_coordinator final : public coordinator_api {
 public:
  /// Opens the job store and starts listening for workers. Jobs a previous coordinator left
  /// running stopped when it went away: those with checkpoints are restarted from their newest
  /// complete checkpoint once enough workers have registered (as their restart settings
  /// allow); the others are marked failed. `registry` must outlive the coordinator.
  static result<std::unique_ptr<cluster_coordinator>> start(coordinator_options opts,
                                                            const operator_registry& registry);
  ~cluster_coordinator() override;
  cluster_coordinator(const cluster_coordinator&) = delete;
  cluster_coordinator& operator=(const cluster_coordinator&) = delete;

  /// The bound CAF port workers connect to.
  uint16_t cluster_port() const { return cluster_port_; }
  /// Problems found when opening the job store (skipped files), for the log.
  const std::vector<error>& store_errors() const { return store_errors_; }

  result<job_info> submit(const v1::JobGraph& graph, const std::string& from_savepoint = {},
                          const std::string& owner = {}) override;
  result<savepoint_info> savepoint(std::string_view job_id, bool stop) override;
  result<job_info> get(std::string_view job_id) override;
  std::vector<job_info> list() override;
  result<job_info> cancel(std::string_view job_id) override;
  std::vector<worker_info> workers() override;

  /// Drains a job: its sources stop reading and end their streams, so event-time operators
  /// flush, sinks make their final commits and the job finishes. A pending or restarting job's
  /// next attempt ends once it runs, and so does every later attempt (a restart replays from
  /// the newest checkpoint, then ends). failed_precondition when the job has ended.
  status end_input(std::string_view job_id) override;

  /// Blocks until the job has ended (finished, failed or cancelled) and its slots are free
  /// again, or `timeout` passed (then returns the job as it is). not_found for an unknown id.
  result<job_info> wait(std::string_view job_id, std::chrono::milliseconds timeout);
  /// Blocks until `n` workers are alive or `timeout` passed; returns how many are alive.
  size_t wait_for_workers(size_t n, std::chrono::milliseconds timeout);
  /// Records in and out per node, summed over the subtasks that reported so far (all of them
  /// once the job finished). not_found for a job this coordinator did not run.
  result<job_summary> summary(std::string_view job_id);

  /// The cluster table; public only for the coordinator actor in the .cpp file.
  struct worker_entry {
    worker_info info;
    caf::actor handle;
    std::chrono::steady_clock::time_point last_seen;
    /// It said it leaves: no heartbeat brings it back, only registering again.
    bool left = false;
    /// Slots held per job id, and the job's attempt they were reserved for (a release of an
    /// earlier attempt must not free them).
    struct reservation {
      uint32_t attempt = 0;
      uint32_t slots = 0;
    };
    std::map<std::string, reservation> slots_by_job;
  };
  struct job_entry {
    stored_job stored;
    std::shared_ptr<const job_plan> plan;          ///< Null for jobs loaded from the store.
    std::vector<subtask_ref> refs;                 ///< Parallel to stored.info.subtasks.
    std::map<caf::actor_addr, size_t> subtask_of;  ///< Subtask actor -> index in refs.
    std::vector<std::vector<caf::actor>> actors;   ///< [node][subtask], filled by deploy.
    /// Workers whose deploy answer is outstanding, with the attempt it belongs to.
    std::map<std::string, uint32_t> deploying;
    size_t pending_replies = 0;  ///< Deploy or wire answers still expected.
    size_t finished_subtasks = 0;
    job_summary summary;
    std::chrono::steady_clock::time_point started;
    // Checkpoints and recovery (docs/design/0007-recovery.md).
    std::filesystem::path checkpoint_dir;  ///< <checkpoint root>/<job id>; empty: none.
    std::unique_ptr<checkpoint_coordinator> checkpoints;  ///< While the job runs.
    /// The job's checkpoint and restart series (label job = graph name), kept across attempts.
    std::shared_ptr<metrics::job_metrics> metrics;
    uint64_t checkpoints_failed_before = 0;  ///< Failed checkpoints of earlier attempts.
    int64_t restore_id = 0;                  ///< Checkpoint the current attempt starts from.
    uint32_t attempt = 0;                    ///< Deployments so far; tags the attempt's timers.
    std::string restart_cause;               ///< The failure behind the current restart.
    bool deploying_attempt = false;          ///< The current attempt's deploy has begun.
    /// end_input was asked: every attempt's sources are told to end once it runs (not kept
    /// across a coordinator restart).
    bool drain_requested = false;
    std::filesystem::path restore_dir;  ///< Storage of restore_id: own or a savepoint.
    /// A savepoint request waiting for a checkpoint with id >= min_id to complete.
    struct savepoint_wait {
      bool stop = false;
      int64_t min_id = 0;
      bool done = false;
      std::string path;
      int64_t id = 0;
      std::optional<error> failure;
    };
    std::map<uint64_t, savepoint_wait> savepoints;  ///< By request number.
  };
  struct table {
    std::mutex mutex;
    std::condition_variable changed;  ///< Notified on every job or worker change.
    std::map<std::string, worker_entry, std::less<>> workers;
    std::map<std::string, job_entry, std::less<>> jobs;
    std::vector<std::string> job_order;  ///< Submission order.
    std::optional<job_store> store;
    std::filesystem::path checkpoint_root;
    std::filesystem::path savepoint_root;
    uint64_t savepoint_requests = 0;
    std::chrono::milliseconds heartbeat_timeout{3000};
    std::chrono::milliseconds deploy_timeout{30000};
  };

 private:
  explicit cluster_coordinator(const operator_registry& registry) : registry_(registry) {}

  /// A job the store lists as active, left by a previous coordinator: restarting if it can
  /// resume from checkpoints, else failed (or cancelled, if a cancel was under way).
  void recover(job_entry& j, const std::filesystem::path& checkpoint_root);

  const operator_registry& registry_;
  table table_;
  std::vector<error> store_errors_;
  std::unique_ptr<caf::actor_system_config> cfg_;  ///< The system keeps a reference to it.
  std::unique_ptr<caf::actor_system> sys_;
  caf::actor actor_;
  uint16_t cluster_port_ = 0;
  bool tls_ = false;  ///< Published through CAF's OpenSSL module.
};

}  // namespace vigil

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vigil::local_request)
