#pragma once

#include "runtime/operator.hpp"

/// Stateless record-at-a-time operators driven by the expression language
/// (operators/core/expr/expr.hpp):
///
/// - `filter`: keeps the records for which `where` (a bool expression) is true; a null result
///   drops the record. Output schema and keying = the input's.
/// - `map`: computes fields. `set` maps output field names to expressions (evaluated against
///   the input record, so one assignment does not see another's result); an existing field
///   keeps its position and takes the expression's type, a new one is appended in `set` order.
///   `drop` lists input fields to remove. A computed field is nullable unless the checker proves
///   the expression is never null.
/// - `project`: keeps only `fields`, in that order.
///
/// Keying: filter keeps the input's key. map and project keep the stream keyed (same key hash,
/// key field indices remapped) only if every key field survives unchanged under its name;
/// otherwise their output is not keyed.

namespace vigil {

/// Registers filter, map and project.
void register_relational_operators(operator_registry& registry);

}  // namespace vigil
