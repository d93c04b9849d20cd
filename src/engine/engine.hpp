#pragma once

#include <string>

#include "common/result.hpp"
#include "runtime/executor.hpp"
#include "runtime/job_plan.hpp"
#include "runtime/operator.hpp"

namespace vigil {

/// The composition root: a registry holding every built-in operator.
operator_registry make_builtin_registry();

/// Loads a YAML graph file and plans it against `registry`.
result<job_plan> load_job(const std::string& path, const operator_registry& registry);

/// A human-readable description of a plan: nodes, parallelism, schemas, edges.
std::string describe_plan(const job_plan& plan);

/// A short human-readable run summary (records per node, late records, throughput).
std::string describe_summary(const job_summary& summary);

}  // namespace vigil
