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

}  // namespace vigil::bench
