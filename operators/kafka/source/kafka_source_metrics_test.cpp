// vigil_kafka_consumer_lag_records of kafka_source against the librdkafka mock cluster.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <thread>

#include "metrics/registry.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/kafka/source/kafka_source.hpp"
#include "runtime/testing/operator_harness.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::operator_harness;
using testing::str;

/// kafka_source with a declared output schema (the graph's `output_schema:`).
class declared final : public operator_factory {
 public:
  declared() : inner_(make_kafka_source_factory()) {}
  const operator_traits& traits() const override { return inner_->traits(); }
  result<plan_ptr> plan(const plan_context& ctx) const override {
    plan_context c = ctx;
    c.declared_output = make_schema({{"id", type_id::int64, false}});
    return inner_->plan(c);
  }

 private:
  std::unique_ptr<operator_factory> inner_;
};

/// The lag gauge of partition 0 of topic "one" for the harness' subtask; -1 if absent.
double lag() {
  std::string text = metrics::serialize();
  std::string prefix =
      "vigil_kafka_consumer_lag_records{job=\"\",operator=\"test\",partition=\"0\","
      "subtask=\"0\",topic=\"one\"} ";
  auto at = text.find(prefix);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + prefix.size()));
}

TEST(KafkaSourceMetrics, ReportsConsumerLagPerPartition) {
  auto cluster = tools::mock_kafka_cluster::start(1, {{"one", 1, 1}});
  ASSERT_TRUE(cluster.ok()) << cluster.err().message;
  const std::string bootstrap = (*cluster)->bootstrap();
  {
    char errstr[512] = {};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    ASSERT_EQ(
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ASSERT_NE(producer, nullptr) << errstr;
    for (int i = 0; i < 100; ++i) {
      std::string v = "{\"id\":" + std::to_string(i) + "}";
      ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("one"), RD_KAFKA_V_PARTITION(0),
                                  RD_KAFKA_V_VALUE(v.data(), v.size()),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    EXPECT_EQ(rd_kafka_flush(producer, 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(producer);
  }
  operator_registry registry;
  registry.add(std::make_unique<declared>());
  auto config = cfg({{"bootstrap", str(bootstrap)},
                     {"topic", str("one")},
                     {"bounded", config_value::of_bool(false)},
                     {"metadata_timeout", str("10s")}});
  {
    // One record per poll, so that the source stays behind the partition's end.
    operator_harness h(registry, "kafka_source", config, {}, 0, 1, 1);
    EXPECT_EQ(lag(), 0) << "the series exists from open()";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (h.rows().empty() && std::chrono::steady_clock::now() < deadline) h.poll();
    ASSERT_FALSE(h.rows().empty());
    // The lag is refreshed at most once a second (from librdkafka's cached high watermark).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    h.poll();
    EXPECT_EQ(lag(), 100.0 - static_cast<double>(h.rows().size()));
    while (h.rows().size() < 100 && std::chrono::steady_clock::now() < deadline) h.poll();
    ASSERT_EQ(h.rows().size(), 100u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    h.poll();
    EXPECT_EQ(lag(), 0);
  }
  EXPECT_EQ(lag(), -1) << "removed with the subtask";
}

}  // namespace
}  // namespace vigil
