#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "operators/core/expr/ast.hpp"

namespace vigil::expr {

/// Resolves the field references and functions of the tree at `root` against `input`, gives
/// every node its type and nullability, turns to_* functions into casts, inserts implicit
/// int64 → double casts, and numbers the nodes (node::slot, pre-order). `root` may be replaced
/// (an identity cast disappears). Returns the number of slots. A null literal whose type nothing
/// determines is left untyped only at the root; compile() settles or refuses it.
result<int> check(node_ptr& root, const schema& input);

/// Gives an untyped null literal the type `t`.
void settle_null(node& n, type_id t);

/// The date_trunc units and their length in microseconds.
int64_t date_trunc_unit_us(std::string_view unit);

}  // namespace vigil::expr
