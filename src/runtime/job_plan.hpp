#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/operator.hpp"

namespace vigil {

enum class partitioning : uint8_t { forward, hash, broadcast, rebalance };

const char* to_string(partitioning p);

/// A validated job graph, ready to run: every node planned, every edge resolved to port indices
/// and a concrete partitioning. Produced by the graph component, consumed by the executor.
struct job_plan {
  struct node {
    std::string id;
    const operator_factory* factory = nullptr;
    plan_ptr plan;
    uint32_t parallelism = 1;
  };
  struct edge {
    size_t from = 0;       ///< Index into nodes.
    size_t from_port = 0;  ///< Index into the producer's output ports.
    size_t to = 0;
    size_t to_port = 0;  ///< Index into the consumer's input ports (0 for variadic ports).
    partitioning part = partitioning::forward;
  };

  std::string name;
  /// The job's id in a cluster (set by the worker that runs it); empty for a job run in process
  /// (`vigil run` without `--workers`), whose subtasks use the name instead.
  std::string job_id;
  /// A content hash of the graph the plan was built from (plan_job: 16 hex digits of XXH3-128
  /// over its deterministic protobuf encoding): the same graph gives the same version.
  std::string graph_version;
  std::vector<node> nodes;  ///< In topological order.
  std::vector<edge> edges;
  uint32_t max_parallelism = 128;
  int64_t allowed_lateness_us = 0;
  int64_t idle_timeout_us = 0;
  uint32_t batch_size = 1024;
  int64_t linger_us = 5000;
  uint32_t channel_credits = 4;
  int64_t checkpoint_interval_us = 0;  ///< 0: no checkpoints.
  int64_t checkpoint_timeout_us = 60'000'000;
  uint32_t checkpoint_retain = 3;
  uint32_t tolerable_checkpoint_failures = 3;
  /// Restart strategy of cluster jobs with checkpoints (RestartSettings in graph.proto).
  uint32_t restart_max_attempts = 10;
  int64_t restart_backoff_us = 100'000;
  int64_t restart_max_backoff_us = 10'000'000;

  /// Per node: true when it is a source (no edge leads into it).
  std::vector<bool> source_nodes() const {
    std::vector<bool> is_source(nodes.size(), true);
    for (const auto& e : edges) is_source[e.to] = false;
    return is_source;
  }
};

}  // namespace vigil
