#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers `union`: merges any number of streams with identical schemas.
///
/// No config. Ports: in "in" (variadic: one entry of plan_context::inputs per edge), out "out".
/// Every input must have the same field names, types and nullability in the same order. The
/// output has that schema; it is keyed (on the inputs' key fields) only if every input is keyed
/// on the same key fields, otherwise unkeyed (and its batches carry no key hashes). Batches pass
/// through unchanged, in arrival order.
void register_union_operator(operator_registry& r);

}  // namespace vigil
