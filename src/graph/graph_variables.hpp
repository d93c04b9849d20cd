#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace vigil {

/// Looks a variable up: its value, or nullopt when it is not set.
using variable_lookup = std::function<std::optional<std::string>(std::string_view name)>;

/// Expands variables in the text of a graph file, before it is parsed:
/// - `${NAME}` becomes NAME's value; an error names the line when NAME is not set;
/// - `${NAME:-default}` becomes NAME's value, or `default` when NAME is unset or empty;
/// - `$$` becomes `$`; any other `$` stays as it is.
/// NAME is [A-Za-z_][A-Za-z0-9_]*; the default runs to the first `}` and may not hold `$`. Lines
/// that are comments (a `#` after blanks only) are left as they are. Values are inserted as they
/// are, not escaped: quote them in the YAML when they may hold YAML syntax, with single quotes
/// when they may hold `"` or `\`.
result<std::string> expand_graph_variables(std::string_view text, const variable_lookup& lookup);

/// A lookup in the process environment.
std::optional<std::string> environment_variable(std::string_view name);

}  // namespace vigil
