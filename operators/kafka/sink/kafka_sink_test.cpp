// The kafka_sink's config checks, and the sink against a real Kafka protocol: librdkafka's
// in-process mock cluster (no transaction isolation: the committed view is rebuilt from the
// markers with read_committed_view) and a dead broker.
#include "operators/kafka/sink/kafka_sink.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "operators/kafka/sink/committed_view.hpp"
#include "operators/kafka/sink/rdkafka_txn_client.hpp"
#include "operators/kafka/sink/topic_reader.hpp"
#include "runtime/testing/operator_harness.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;

using testing::discard_output;

schema_ptr vitals() {
  return make_schema({{"patient", type_id::string, false},
                      {"hr", type_id::int64, true},
                      {"at", type_id::timestamp, true}});
}

/// Rows first..first+n-1: patient "p<i % 4>", hr i, event time i seconds after 2026-01-01.
batch_ptr rows(int first, int n) {
  std::vector<std::vector<cell>> r;
  std::vector<int64_t> times;
  for (int i = first; i < first + n; ++i) {
    int64_t t = jan1_2026 + int64_t{i} * 1'000'000;
    r.push_back({std::string("p") + std::to_string(i % 4), int64_t{i}, t});
    times.push_back(t);
  }
  return make_rows(vitals(), r, times);
}

/// The JSON value the sink writes for row i of rows().
std::string json_of(int i) {
  std::string t = "2026-01-01T00:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z";
  return R"({"patient":"p)" + std::to_string(i % 4) + R"(","hr":)" + std::to_string(i) +
         R"(,"at":")" + t + R"(","_event_time":")" + t + R"("})";
}

/// Forwards to a real client but fails produce() to one topic while `fail_topic` is set, after
/// delivering what was produced before: the transaction is aborted with records on the broker.
class failing_client final : public kafka::txn_client {
 public:
  failing_client(std::unique_ptr<kafka::txn_client> inner, const std::string* fail_topic)
      : inner_(std::move(inner)), fail_topic_(fail_topic) {}

  status init_transactions() override { return inner_->init_transactions(); }
  status begin_transaction() override { return inner_->begin_transaction(); }
  status produce(const std::string& topic, std::optional<std::string_view> key,
                 std::string_view value, std::span<const kafka::message_header> headers) override {
    if (!fail_topic_->empty() && topic == *fail_topic_) {
      // What was produced so far reaches the broker before the transaction is aborted.
      EXPECT_TRUE(inner_->flush().ok());
      return make_error(errc::io_error, "injected failure");
    }
    return inner_->produce(topic, key, value, headers);
  }
  status commit_transaction() override { return inner_->commit_transaction(); }
  status abort_transaction() override { return inner_->abort_transaction(); }
  status flush() override { return inner_->flush(); }
  result<std::optional<kafka::progress_marker>> last_marker(const std::string& progress_topic,
                                                            std::string_view sink_id,
                                                            std::string_view run) override {
    return inner_->last_marker(progress_topic, sink_id, run);
  }
  bool fenced() const override { return inner_->fenced(); }

 private:
  std::unique_ptr<kafka::txn_client> inner_;
  const std::string* fail_topic_;
};

class KafkaSinkTest : public ::testing::Test {
 protected:
  KafkaSinkTest() {
    registry_.add(make_kafka_sink_factory());
    kafka_sink_hooks hooks;
    hooks.make_client =
        [this](const kafka::txn_client_config& c) -> result<std::unique_ptr<kafka::txn_client>> {
      auto inner = kafka::make_rdkafka_txn_client(c);
      if (!inner) return inner.err();
      return std::unique_ptr<kafka::txn_client>(
          new failing_client(std::move(*inner), &fail_topic_));
    };
    failing_registry_.add(make_kafka_sink_factory(std::move(hooks)));
  }

  std::string plan_error(const config_map& config) {
    auto p = operator_harness::try_plan(registry_, "kafka_sink", config, {{vitals(), {}}});
    return p ? "" : p.err().message;
  }

  /// A started sink instance of `registry` for `config`.
  struct instance {
    config_map config;
    plan_ptr plan;
    operator_context ctx;
    std::unique_ptr<operator_base> op;
  };

  std::unique_ptr<instance> start(const config_map& config,
                                  const operator_registry* registry = nullptr) {
    auto in = std::make_unique<instance>();
    in->config = config;
    plan_context pc;
    pc.node_id = "sink";
    pc.config = &in->config;
    pc.inputs = {stream_info{vitals(), {}}};
    auto p = (registry != nullptr ? *registry : registry_).find("kafka_sink")->plan(pc);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.err().message);
    if (!p.ok()) return nullptr;
    in->plan = *p;
    in->ctx.job_name = "job";
    in->ctx.node_id = "sink";
    in->op = in->plan->instantiate();
    auto st = in->op->open(in->ctx);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    return in;
  }

  static std::unique_ptr<tools::mock_kafka_cluster> start_cluster() {
    auto cluster = tools::mock_kafka_cluster::start(1, {{"out", 3, 1}, {"out.progress", 1, 1}});
    EXPECT_TRUE(cluster.ok()) << (cluster.ok() ? "" : cluster.err().message);
    return cluster.ok() ? std::move(*cluster) : nullptr;
  }

  operator_registry registry_;
  operator_registry failing_registry_;
  std::string fail_topic_;
  discard_output out_;
};

TEST_F(KafkaSinkTest, Traits) {
  const auto* f = registry_.find("kafka_sink");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->traits().input_ports, (std::vector<std::string>{"in"}));
  EXPECT_TRUE(f->traits().output_ports.empty());
  EXPECT_FALSE(f->traits().summary.empty());
}

TEST_F(KafkaSinkTest, ConfigErrorsNameTheKey) {
  auto base = [](std::initializer_list<std::pair<std::string, config_value>> extra) {
    config_map c = cfg({{"bootstrap", str("127.0.0.1:9092")}, {"topic", str("out")}});
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  };
  EXPECT_EQ(plan_error(base({})), "");
  EXPECT_EQ(plan_error(cfg({{"topic", str("out")}})), "config.bootstrap: required");
  EXPECT_EQ(plan_error(cfg({{"bootstrap", str("")}, {"topic", str("out")}})),
            "config.bootstrap: must not be empty");
  EXPECT_EQ(plan_error(cfg({{"bootstrap", str("127.0.0.1:9092")}})), "config.topic: required");
  EXPECT_EQ(plan_error(base({{"mode", str("exactly_twice")}})),
            "config.mode: expected exactly_once or at_least_once, got 'exactly_twice'");
  EXPECT_EQ(plan_error(base({{"key_field", str("mrn")}})),
            "config.key_field: no field 'mrn' in the input");
  EXPECT_EQ(plan_error(base({{"key_field", str("patient")}})), "");
  EXPECT_EQ(plan_error(base({{"progress_topic", str("out")}})),
            "config.progress_topic: must be a topic other than 'out'");
  EXPECT_EQ(plan_error(base({{"transaction_timeout", str("10ms")}})),
            "config.transaction_timeout: must be from 1s to 15m");
  EXPECT_NE(
      plan_error(base({{"transaction_timeout", str("soon")}})).find("config.transaction_timeout"),
      std::string::npos);
  EXPECT_NE(plan_error(base({{"partitions", str("3")}})).find("partitions"), std::string::npos);

  config_value props;
  props.k = config_value::kind::map;
  props.map = {{"linger.ms", config_value::of_int(5)},
               {"compression.type", config_value::of_string("zstd")}};
  EXPECT_EQ(plan_error(base({{"properties", props}})), "");
  props.map = {{"no.such.property", config_value::of_string("1")}};
  EXPECT_EQ(
      plan_error(base({{"properties", props}})).rfind("config.properties.no.such.property: ", 0),
      0u);
  props.map = {{"linger.ms", config_value::of_string("soon")}};
  EXPECT_EQ(plan_error(base({{"properties", props}})).rfind("config.properties.linger.ms: ", 0),
            0u);
  props.map = {{"transactional.id", config_value::of_string("mine")}};
  EXPECT_EQ(plan_error(base({{"properties", props}})),
            "config.properties.transactional.id: is set by the sink itself");
  EXPECT_EQ(plan_error(base({{"properties", testing::list({"linger.ms=5"})}})), "");
  EXPECT_EQ(plan_error(base({{"properties", testing::list({"linger.ms"})}})),
            "config.properties: expected \"name=value\" items");
  EXPECT_NE(plan_error(base({{"properties", str("linger.ms=5")}})).find("config.properties:"),
            std::string::npos);
}

TEST_F(KafkaSinkTest, ExactlyOnceOnTheMockClusterCommitsEachRecordOnceWithHeaders) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto in = start(cfg({{"bootstrap", str(cluster->bootstrap())},
                       {"topic", str("out")},
                       {"key_field", str("patient")},
                       {"transaction_timeout", str("10s")}}));
  ASSERT_NE(in, nullptr);
  in->op->process(0, *rows(1, 5), out_);
  in->op->snapshot_state(1);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  in->op->process(0, *rows(6, 4), out_);
  in->op->snapshot_state(2);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(2, {}).ok());
  in->op->process(0, *rows(10, 3), out_);
  ASSERT_TRUE(in->op->close(out_).ok());
  in.reset();

  auto view = kafka::read_committed_view({cluster->bootstrap(), "out", "", 10'000'000, {}});
  ASSERT_TRUE(view.ok()) << view.err().message;
  EXPECT_EQ(view->discarded, 0u);
  EXPECT_EQ(view->replayed_epochs, 0u);
  EXPECT_EQ(view->duplicate_epochs, 0u);
  EXPECT_EQ(view->incomplete_epochs, 0u);
  ASSERT_EQ(view->markers.size(), 3u);
  std::map<int64_t, std::string> attempt_of;
  for (const auto& m : view->markers) {
    EXPECT_EQ(m.sink, "job/sink/0");
    attempt_of[m.epoch] = m.attempt;
  }
  EXPECT_EQ(view->markers[0].records, 5);
  EXPECT_EQ(view->markers[1].records, 4);
  EXPECT_EQ(view->markers[2].epoch, 3);
  EXPECT_EQ(view->markers[2].records, 3);
  EXPECT_TRUE(view->markers[2].final);

  // Every record once; per partition in the order written; the key chooses the partition.
  std::set<std::string> values;
  std::map<std::string, int32_t> partition_of_key;
  std::map<int32_t, int> last_hr;
  for (const auto& r : view->records) {
    values.insert(r.value);
    ASSERT_TRUE(r.key.has_value());
    auto [it, fresh] = partition_of_key.emplace(*r.key, r.partition);
    EXPECT_EQ(it->second, r.partition) << "key " << *r.key << " in two partitions";
    auto hr = std::stoi(r.value.substr(r.value.find("\"hr\":") + 5));
    EXPECT_EQ(*r.key, "p" + std::to_string(hr % 4));
    EXPECT_GT(hr, last_hr[r.partition]);
    last_hr[r.partition] = hr;
    int64_t epoch = hr <= 5 ? 1 : hr <= 9 ? 2 : 3;
    EXPECT_EQ(r.header("vigil.sink"), "job/sink/0");
    EXPECT_EQ(r.header("vigil.epoch"), std::to_string(epoch));
    EXPECT_EQ(r.header("vigil.attempt"), attempt_of[epoch]);
  }
  std::set<std::string> expected;
  for (int i = 1; i <= 12; ++i) expected.insert(json_of(i));
  EXPECT_EQ(view->records.size(), 12u);
  EXPECT_EQ(values, expected);
}

TEST_F(KafkaSinkTest, ARestoreThatReplaysAnEpochCountsItOnce) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  config_map config = cfg({{"bootstrap", str(cluster->bootstrap())},
                           {"topic", str("out")},
                           {"transaction_timeout", str("10s")}});
  auto first = start(config, &failing_registry_);
  ASSERT_NE(first, nullptr);
  first->op->process(0, *rows(1, 3), out_);
  first->op->snapshot_state(1);
  EXPECT_TRUE(first->op->notify_checkpoint_complete(1, {}).ok());
  first->op->process(0, *rows(4, 3), out_);
  std::string cp2 = first->op->snapshot_state(2);
  // Epoch 2's records reach the broker, but its marker does not: the transaction is aborted
  // (the mock broker still shows the records). Then the subtask dies.
  fail_topic_ = "out.progress";
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);
  EXPECT_TRUE(first->op->notify_checkpoint_complete(2, {}).ok());
  spdlog::set_level(level);
  first.reset();
  fail_topic_.clear();

  auto second = start(config, &failing_registry_);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->op->restore_state(cp2).ok());
  second->op->process(0, *rows(7, 2), out_);
  ASSERT_TRUE(second->op->close(out_).ok());
  second.reset();

  auto view = kafka::read_committed_view({cluster->bootstrap(), "out", "", 10'000'000, {}});
  ASSERT_TRUE(view.ok()) << view.err().message;
  std::set<std::string> values;
  for (const auto& r : view->records) values.insert(r.value);
  std::set<std::string> expected;
  for (int i = 1; i <= 8; ++i) expected.insert(json_of(i));
  EXPECT_EQ(view->records.size(), 8u);
  EXPECT_EQ(values, expected);
  EXPECT_EQ(view->replayed_epochs, 1u);
  EXPECT_EQ(view->discarded, 3u) << "epoch 2's aborted records";
  EXPECT_EQ(view->duplicate_epochs, 0u);
  EXPECT_EQ(view->incomplete_epochs, 0u);
}

TEST_F(KafkaSinkTest, AtLeastOnceOnTheMockClusterWritesEveryRecord) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto in = start(cfg({{"bootstrap", str(cluster->bootstrap())},
                       {"topic", str("out")},
                       {"mode", str("at_least_once")},
                       {"transaction_timeout", str("10s")}}));
  ASSERT_NE(in, nullptr);
  in->op->process(0, *rows(1, 6), out_);
  in->op->snapshot_state(1);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  in->op->process(0, *rows(7, 4), out_);
  ASSERT_TRUE(in->op->close(out_).ok());
  in.reset();

  std::multiset<std::string> values;
  std::map<std::string, int> per_epoch;
  kafka::topic_read_options opts;
  opts.bootstrap = cluster->bootstrap();
  opts.topic = "out";
  opts.timeout_us = 10'000'000;
  auto st = kafka::read_topic(opts, [&](const kafka::consumed_record& r) {
    values.insert(std::string(r.value));
    EXPECT_FALSE(r.key.has_value());
    for (const auto& [name, value] : r.headers) {
      if (name == "vigil.epoch") ++per_epoch[std::string(value)];
    }
  });
  ASSERT_TRUE(st.ok()) << st.err().message;
  std::multiset<std::string> expected;
  for (int i = 1; i <= 10; ++i) expected.insert(json_of(i));
  EXPECT_EQ(values, expected);
  EXPECT_EQ(per_epoch, (std::map<std::string, int>{{"1", 6}, {"2", 4}}));
  auto progress = kafka::read_committed_view({cluster->bootstrap(), "out", "", 10'000'000, {}});
  ASSERT_TRUE(progress.ok());
  EXPECT_TRUE(progress->markers.empty());
}

TEST_F(KafkaSinkTest, ADeadBrokerGivesClearErrorsInBoundedTime) {
  std::string bootstrap = "127.0.0.1:" + std::to_string(unused_loopback_port());
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  auto started = std::chrono::steady_clock::now();
  auto elapsed_s = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };

  auto in = start(cfg(
      {{"bootstrap", str(bootstrap)}, {"topic", str("out")}, {"transaction_timeout", str("1s")}}));
  ASSERT_NE(in, nullptr);
  in->op->process(0, *rows(1, 3), out_);
  std::string cp1 = in->op->snapshot_state(1);
  // Fails, logs and keeps the epoch for a retry, but does not fail the subtask (by design).
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  EXPECT_LT(elapsed_s(), 10.0);
  auto closed = in->op->close(out_);
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.err().message.find("kafka_sink 'job/sink/0'"), std::string::npos)
      << closed.err().message;
  EXPECT_NE(closed.err().message.find(bootstrap), std::string::npos) << closed.err().message;
  EXPECT_LT(elapsed_s(), 20.0);

  auto restored = start(in->config);
  auto st = restored->op->restore_state(cp1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("restore"), std::string::npos) << st.err().message;
  EXPECT_NE(st.err().message.find(bootstrap), std::string::npos) << st.err().message;

  auto alo = start(cfg({{"bootstrap", str(bootstrap)},
                        {"topic", str("out")},
                        {"mode", str("at_least_once")},
                        {"transaction_timeout", str("1s")}}));
  alo->op->process(0, *rows(1, 3), out_);
  alo->op->snapshot_state(1);  // Logs that the checkpoint does not cover 3 messages.
  auto alo_closed = alo->op->close(out_);
  ASSERT_FALSE(alo_closed.ok());
  EXPECT_NE(alo_closed.err().message.find("not acknowledged"), std::string::npos)
      << alo_closed.err().message;
  EXPECT_LT(elapsed_s(), 40.0);
  spdlog::set_level(level);
}

TEST_F(KafkaSinkTest, CommittedViewOfAMissingTopicIsEmptyAndADeadBrokerAnError) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto empty = kafka::read_committed_view({cluster->bootstrap(), "out", "", 10'000'000, {}});
  ASSERT_TRUE(empty.ok()) << empty.err().message;
  EXPECT_TRUE(empty->records.empty());
  auto missing = kafka::read_committed_view({cluster->bootstrap(), "nothing", "", 10'000'000, {}});
  ASSERT_TRUE(missing.ok()) << missing.err().message;

  std::string bootstrap = "127.0.0.1:" + std::to_string(unused_loopback_port());
  auto started = std::chrono::steady_clock::now();
  auto dead = kafka::read_committed_view({bootstrap, "out", "", 1'000'000, {}});
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.err().code, errc::io_error);
  EXPECT_NE(dead.err().message.find("out.progress"), std::string::npos) << dead.err().message;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
            10.0);
}

}  // namespace
}  // namespace vigil
