#pragma once

#include <string_view>

#include "common/result.hpp"
#include "operators/core/expr/ast.hpp"

namespace vigil::expr {

/// Parses `text` into an unchecked syntax tree (see expr.hpp for the grammar). BETWEEN and the
/// simple CASE form are desugared into comparisons here. Errors name the position.
result<node_ptr> parse(std::string_view text);

}  // namespace vigil::expr
