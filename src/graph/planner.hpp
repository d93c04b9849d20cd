#pragma once

#include "common/result.hpp"
#include "runtime/job_plan.hpp"
#include "runtime/operator.hpp"
#include "vigil/v1/graph.pb.h"

namespace vigil {

/// Validates a job graph and plans every node, in topological order. Nothing runs before this
/// succeeds. Refuses, naming the node and the field: empty or duplicate node ids, unknown
/// operators, parallelism above max_parallelism, edges to unknown nodes or ports, unconnected
/// or over-connected input ports, inputs into sources, cycles, keyed operators whose input is
/// not keyed, partitionings that cannot work (hash on an unkeyed stream, forward between
/// different parallelisms, anything but hash into a keyed operator), config errors (missing,
/// ill-typed or unknown keys; bad expressions), schema mismatches between an edge and what the
/// operator needs, and a declared output_schema that differs from what the operator produces.
result<job_plan> plan_job(const v1::JobGraph& graph, const operator_registry& registry);

/// The graph's version for lineage (job_plan::graph_version): the first 16 hex digits of the
/// XXH3-128 hash of its deterministic protobuf encoding. The same graph gives the same version
/// in every process and across restarts; any change to it (a node, a config value, the
/// parallelism) gives another.
std::string graph_version(const v1::JobGraph& graph);

/// Converts a protobuf config map to the operators' config form.
config_map to_config_map(const v1::ValueMap& map);

/// Converts a protobuf schema; errors name `path` and the field.
result<schema_ptr> to_schema(const v1::Schema& s, const std::string& path);

}  // namespace vigil
