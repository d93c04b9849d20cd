#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "operators/kafka/sink/txn_client.hpp"

namespace vigil::kafka {

/// A txn_client over librdkafka's C API: a transactional producer when the config has a
/// transactional id, else an idempotent one (enable.idempotence, no message timeout, so that
/// a message is never dropped while the broker is away). Broker problems that librdkafka
/// reports asynchronously are logged as warnings (spdlog) and named in the errors of the calls
/// that time out. Creating one does not touch the network.
result<std::unique_ptr<txn_client>> make_rdkafka_txn_client(const txn_client_config& config);

/// The properties the sink sets itself and refuses in its `properties` config.
const std::vector<std::string>& managed_producer_properties();

/// Checks extra producer properties without connecting (names and values librdkafka accepts):
/// invalid_argument "config.properties.<name>: ..." for the first bad one.
status check_producer_properties(const std::vector<std::pair<std::string, std::string>>& props);

}  // namespace vigil::kafka
