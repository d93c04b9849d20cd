#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/result.hpp"
#include "coordinator/cluster_coordinator.hpp"
#include "runtime/executor.hpp"
#include "worker/worker.hpp"

namespace vigil {

struct embedded_cluster_options {
  size_t workers = 2;
  uint32_t slots_per_worker = 8;
  /// Parent of the workers' state directories ("<state_dir>/<worker id>").
  std::filesystem::path state_dir;
  /// Checkpoint storage root (see coordinator_options::checkpoint_dir); empty: none.
  std::filesystem::path checkpoint_dir;
  /// Actor system threads of each worker; 0 = one per core.
  size_t threads_per_worker = 0;
};

/// A whole cluster in one process: a coordinator and `workers` workers, each with its own CAF
/// actor system, talking over TCP on 127.0.0.1 exactly as separate processes do (the same
/// registration, deployment and data plane, batches serialized on the wire). Used by
/// `vigil run --workers N`, the dist.* benchmarks and tests.
class embedded_cluster {
 public:
  /// Starts everything and waits (at most 10 s) until every worker has registered.
  static result<std::unique_ptr<embedded_cluster>> start(const embedded_cluster_options& opts,
                                                         const operator_registry& registry);

  cluster_coordinator& coordinator() { return *coordinator_; }

  /// Submits `graph`, waits until it has ended and returns what its nodes did. A job that
  /// failed returns its error; when `cancel` turns true the job is cancelled and an error
  /// "cancelled" returned.
  result<job_summary> run(const v1::JobGraph& graph, const std::atomic<bool>* cancel = nullptr);

 private:
  embedded_cluster() = default;

  std::unique_ptr<cluster_coordinator> coordinator_;
  std::vector<std::unique_ptr<worker_node>> workers_;
};

}  // namespace vigil
