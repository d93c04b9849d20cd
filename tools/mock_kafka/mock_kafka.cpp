#include "tools/mock_kafka/mock_kafka.hpp"

// rdkafka_mock.h must follow rdkafka.h (include sorting keeps this order).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

namespace vigil::tools {
namespace {

/// Kafka's limit on topic name length.
constexpr size_t max_topic_name = 249;

bool legal_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

/// Parses a whole decimal field in [lo, hi]; `what` names it in the error.
result<int> parse_count(std::string_view text, int lo, int hi, std::string_view spec,
                        std::string_view what) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < lo ||
      value > hi) {
    return make_error(errc::invalid_argument, "--topic '" + std::string(spec) +
                                                  "': " + std::string(what) +
                                                  " must be a whole number from " +
                                                  std::to_string(lo) + " to " + std::to_string(hi));
  }
  return value;
}

}  // namespace

result<mock_topic> parse_mock_topic(std::string_view spec, int brokers) {
  auto first = spec.find(':');
  if (first == std::string_view::npos) {
    return make_error(errc::invalid_argument, "--topic '" + std::string(spec) +
                                                  "': expected NAME:PARTITIONS[:REPLICATION]");
  }
  mock_topic topic;
  topic.name = std::string(spec.substr(0, first));
  if (topic.name.empty() || topic.name.size() > max_topic_name || topic.name == "." ||
      topic.name == ".." || !std::all_of(topic.name.begin(), topic.name.end(), legal_topic_char)) {
    return make_error(errc::invalid_argument,
                      "--topic '" + std::string(spec) +
                          "': the name must be 1 to 249 of [a-zA-Z0-9._-], not '.' or '..'");
  }
  auto rest = spec.substr(first + 1);
  auto second = rest.find(':');
  auto partitions = parse_count(rest.substr(0, second), 1, max_mock_partitions, spec, "PARTITIONS");
  if (!partitions) return partitions.err();
  topic.partitions = *partitions;
  topic.replication_factor = std::min(3, brokers);
  if (second != std::string_view::npos) {
    auto replication =
        parse_count(rest.substr(second + 1), 1, std::max(brokers, 1), spec, "REPLICATION");
    if (!replication) return replication.err();
    topic.replication_factor = *replication;
  }
  return topic;
}

result<std::unique_ptr<mock_kafka_cluster>> mock_kafka_cluster::start(
    int brokers, const std::vector<mock_topic>& topics) {
  if (brokers < 1 || brokers > max_mock_brokers) {
    return make_error(errc::invalid_argument, "--brokers must be from 1 to " +
                                                  std::to_string(max_mock_brokers) + ", not " +
                                                  std::to_string(brokers));
  }
  std::set<std::string> names;
  for (const auto& t : topics) {
    if (!names.insert(t.name).second) {
      return make_error(errc::invalid_argument, "--topic '" + t.name + "' is given twice");
    }
    if (t.partitions < 1 || t.partitions > max_mock_partitions || t.replication_factor < 1 ||
        t.replication_factor > brokers) {
      return make_error(errc::invalid_argument,
                        "--topic '" + t.name + "': " + std::to_string(t.partitions) +
                            " partitions with replication " + std::to_string(t.replication_factor) +
                            " on " + std::to_string(brokers) + " brokers");
    }
  }

  std::unique_ptr<mock_kafka_cluster> cluster(new mock_kafka_cluster());
  // The mock API needs an rd_kafka_t for its bookkeeping; a producer that is never used to
  // produce is the lightest kind. rd_kafka_new takes ownership of conf on success only.
  char errstr[512] = {};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Log level 4 (warning) hides the notice that this handle has no bootstrap.servers.
  for (const auto& [key, value] :
       {std::pair{"client.id", "vigil-mock-kafka"}, std::pair{"log_level", "4"}}) {
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::internal, std::string("librdkafka config: ") + errstr);
    }
  }
  cluster->owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (cluster->owner_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(errc::io_error,
                      std::string("cannot create the librdkafka handle: ") + errstr);
  }
  cluster->cluster_ = rd_kafka_mock_cluster_new(cluster->owner_, brokers);
  if (cluster->cluster_ == nullptr) {
    return make_error(errc::io_error, "librdkafka could not create a mock cluster of " +
                                          std::to_string(brokers) + " brokers");
  }
  for (const auto& t : topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster->cluster_, t.name.c_str(),
                                                         t.partitions, t.replication_factor);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(errc::io_error,
                        "cannot create topic '" + t.name + "': " + rd_kafka_err2str(err));
    }
  }
  cluster->bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster->cluster_);
  return cluster;
}

mock_kafka_cluster::~mock_kafka_cluster() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (owner_ != nullptr) rd_kafka_destroy(owner_);
}

}  // namespace vigil::tools
