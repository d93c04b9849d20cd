#include "tools/replay/kafka_output.hpp"

#include <librdkafka/rdkafka.h>

namespace vigil::replay {

result<std::unique_ptr<kafka_output>> kafka_output::connect(const std::string& bootstrap,
                                                            const std::string& topic,
                                                            std::chrono::milliseconds timeout,
                                                            std::chrono::milliseconds linger) {
  std::unique_ptr<kafka_output> self(new kafka_output());
  self->bootstrap_ = bootstrap;
  self->topic_name_ = topic;
  self->timeout_ = timeout;
  const std::string where = "Kafka at " + bootstrap + ": ";

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::string timeout_ms = std::to_string(timeout.count());
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", bootstrap},
      {"enable.idempotence", "true"},
      {"linger.ms", std::to_string(linger.count())},
      {"message.timeout.ms", timeout_ms},
      {"socket.timeout.ms", timeout_ms},
      {"client.id", "vigil-replay"},
      // A typo in --topic is an error, not a new topic.
      {"allow.auto.create.topics", "false"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::invalid_argument, where + key + ": " + errstr);
    }
  }
  rd_kafka_conf_set_opaque(conf, self.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &kafka_output::on_delivery);
  self->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (self->rk_ == nullptr) {  // rd_kafka_new() destroyed conf.
    return make_error(errc::invalid_argument, where + errstr);
  }
  self->topic_ = rd_kafka_topic_new(self->rk_, topic.c_str(), nullptr);
  if (self->topic_ == nullptr) {
    return make_error(errc::invalid_argument,
                      where + "topic '" + topic + "': " + rd_kafka_err2str(rd_kafka_last_error()));
  }

  // Ask for the topic's metadata first, so that a dead broker or a missing topic is reported
  // before anything is sent.
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(self->rk_, 0, self->topic_, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(errc::io_error, where + "no broker answered within " +
                                          std::to_string(timeout.count()) + " ms (" +
                                          rd_kafka_err2str(err) + ")");
  }
  std::string topic_problem;
  if (md->topic_cnt != 1) {
    topic_problem = "not in the metadata";
  } else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    topic_problem = rd_kafka_err2str(md->topics[0].err);
  } else if (md->topics[0].partition_cnt == 0) {
    topic_problem = "has no partitions";
  }
  rd_kafka_metadata_destroy(md);
  if (!topic_problem.empty()) {
    return make_error(errc::io_error, where + "topic '" + topic + "': " + topic_problem);
  }
  return self;
}

kafka_output::~kafka_output() {
  if (topic_ != nullptr) rd_kafka_topic_destroy(topic_);
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

void kafka_output::on_delivery(rd_kafka_s*, const rd_kafka_message_s* msg, void* opaque) {
  auto* self = static_cast<kafka_output*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (self->failed_++ == 0) self->first_error_ = rd_kafka_err2str(msg->err);
}

status kafka_output::delivery_status() const {
  char errstr[512];
  if (rd_kafka_fatal_error(rk_, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(errc::io_error,
                      "Kafka at " + bootstrap_ + ": fatal producer error: " + errstr);
  }
  if (failed_ == 0) return {};
  return make_error(errc::io_error, "Kafka at " + bootstrap_ + ", topic '" + topic_name_ +
                                        "': " + std::to_string(failed_) +
                                        " messages not delivered (first: " + first_error_ + ")");
}

status kafka_output::send(std::string_view key, std::string_view payload, int64_t sent_at_us) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    // RD_KAFKA_MSG_F_COPY: the payload buffer is reused for the next message.
    const rd_kafka_resp_err_t err =
        rd_kafka_producev(rk_, RD_KAFKA_V_RKT(topic_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
                          RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_TIMESTAMP(sent_at_us / 1000), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_poll(rk_, 0);
      return delivery_status();
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return make_error(errc::io_error, "Kafka at " + bootstrap_ + ", topic '" + topic_name_ +
                                            "': " + rd_kafka_err2str(err));
    }
    VIGIL_TRY(delivery_status());
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(errc::io_error, "Kafka at " + bootstrap_ +
                                            ": the producer queue stayed full for " +
                                            std::to_string(timeout_.count()) + " ms");
    }
    rd_kafka_poll(rk_, 10);  // Serves delivery reports, which free queue space.
  }
}

status kafka_output::finish() {
  const rd_kafka_resp_err_t err = rd_kafka_flush(rk_, static_cast<int>(timeout_.count()));
  VIGIL_TRY(delivery_status());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error(errc::io_error, "Kafka at " + bootstrap_ + ": " +
                                          std::to_string(rd_kafka_outq_len(rk_)) +
                                          " messages not delivered within " +
                                          std::to_string(timeout_.count()) + " ms");
  }
  return {};
}

}  // namespace vigil::replay
