#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/result.hpp"

namespace vigil {

/// Name/value settings handed to a client library as they are (e.g. librdkafka properties).
using client_properties = std::vector<std::pair<std::string, std::string>>;

/// Reads `key` (absent: no properties): a map of scalar values (strings, numbers, bools, written
/// as their text) or a list of "name=value" strings. Errors name "config.<key>[.<name>]".
result<client_properties> read_client_properties(config_reader& r, std::string_view key);

}  // namespace vigil
