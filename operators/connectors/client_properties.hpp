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

/// Refuses librdkafka settings that would let a graph author run code or commands on Vigil's
/// hosts (plugin.library.paths loads a shared library when set; sasl.kerberos.kinit.cmd is a
/// shell command). Errors name "config.<key>.<name>".
status refuse_unsafe_kafka_properties(const client_properties& props, std::string_view key);

}  // namespace vigil
