#include "tools/bench/kafka_client.hpp"

namespace vigil::bench {

result<kafka_handle> make_client(rd_kafka_type_t type,
                                 const std::vector<std::pair<std::string, std::string>>& settings) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::internal, "librdkafka setting " + key + ": " + errstr);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(errc::io_error, std::string("cannot create a Kafka client: ") + errstr);
  }
  return kafka_handle(rk);
}

result<kafka_handle> make_assigned_consumer(
    const std::string& bootstrap, const std::string& group_id, int fetch_wait_ms,
    const std::vector<std::pair<std::string, int32_t>>& partitions) {
  auto c = make_client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                           {"group.id", group_id},
                                           {"enable.auto.commit", "false"},
                                           {"enable.auto.offset.store", "false"},
                                           {"enable.partition.eof", "false"},
                                           {"auto.offset.reset", "earliest"},
                                           {"isolation.level", "read_uncommitted"},
                                           {"fetch.wait.max.ms", std::to_string(fetch_wait_ms)}});
  if (!c) return c.err();
  rd_kafka_poll_set_consumer(c->get());
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (const auto& [topic, partition] : partitions) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(c->get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(errc::io_error,
                      std::string("cannot assign the topics to read: ") + rd_kafka_err2str(err));
  }
  return c;
}

std::string_view header_of(rd_kafka_headers_t* headers, const char* name) {
  const void* value = nullptr;
  size_t size = 0;
  if (headers == nullptr ||
      rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return {};
  }
  return {static_cast<const char*>(value), size};
}

}  // namespace vigil::bench
