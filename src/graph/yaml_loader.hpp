#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "vigil/v1/graph.pb.h"

namespace vigil {

/// Reads a job graph written in YAML (docs/authoring.md). The document maps 1:1 onto
/// vigil.v1.JobGraph: the same field names, enums written in lower case ("hash", "int64").
/// Errors name the line and column and the offending key: "line 12, column 5: nodes[2].config:
/// ...". Only the document's shape is checked here; plan_job() validates the graph.
result<v1::JobGraph> parse_graph_yaml(std::string_view text);

/// Reads a YAML file, expands environment variables in it (expand_graph_variables: `${NAME}`,
/// `${NAME:-default}`) and parses it; errors name the file.
result<v1::JobGraph> load_graph_file(const std::string& path);

}  // namespace vigil
