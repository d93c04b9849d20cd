#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers the connector operators: sources `generator` and `file_source`, sinks `stdout`,
/// `jsonl_file` and `null`.
void register_connectors(operator_registry& r);

}  // namespace vigil
