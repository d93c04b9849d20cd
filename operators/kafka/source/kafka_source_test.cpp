#include "operators/kafka/source/kafka_source.hpp"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "operators/connectors/json_format.hpp"
#include "operators/kafka/source/kafka_source_state.hpp"
#include "operators/kafka/source/partition_watermarks.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::operator_harness;
using testing::str;
using tools::mock_kafka_cluster;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;
constexpr int64_t sec = 1'000'000;
/// How long a test waits for the broker before failing.
constexpr auto broker_deadline = std::chrono::seconds(15);

/// The harness plans without a declared schema; this wrapper adds one (the graph's
/// `output_schema:`).
class with_declared_schema final : public operator_factory {
 public:
  with_declared_schema(std::unique_ptr<operator_factory> inner, schema_ptr s)
      : inner_(std::move(inner)), schema_(std::move(s)) {}
  const operator_traits& traits() const override { return inner_->traits(); }
  result<plan_ptr> plan(const plan_context& ctx) const override {
    plan_context c = ctx;
    c.declared_output = schema_;
    return inner_->plan(c);
  }

 private:
  std::unique_ptr<operator_factory> inner_;
  schema_ptr schema_;
};

schema_ptr obs_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"name", type_id::string, true},
                      {"ts", type_id::timestamp, false}});
}

std::string iso(int64_t us) {
  return format_timestamp_iso(us);
}

/// A JSON record of obs_schema().
std::string obs_json(int64_t id, int64_t ts_us) {
  return "{\"id\":" + std::to_string(id) + ",\"name\":\"n" + std::to_string(id) + "\",\"ts\":\"" +
         iso(ts_us) + "\"}";
}

/// row_text() of the record obs_json(id, ts_us) becomes.
std::string obs_row(int64_t id, int64_t ts_us) {
  return std::to_string(id) + "|n" + std::to_string(id) + "|" + std::to_string(ts_us) + "@" +
         std::to_string(ts_us);
}

/// A message to produce: partition, value (nullopt: no value), Kafka timestamp in ms (0: now).
struct message {
  int32_t partition = 0;
  std::optional<std::string> value;
  int64_t timestamp_ms = 0;
};

/// Produces `messages` in order and waits until the broker acknowledged them all.
/// `keys[i]`, when given, is the record key of messages[i].
void produce(const std::string& bootstrap, const std::string& topic,
             const std::vector<message>& messages,
             const std::vector<std::optional<std::string>>& keys = {}) {
  char errstr[512] = {};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  ASSERT_EQ(rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  ASSERT_NE(producer, nullptr) << errstr;
  for (size_t i = 0; i < messages.size(); ++i) {
    const message& m = messages[i];
    const std::optional<std::string>* k = i < keys.size() ? &keys[i] : nullptr;
    void* payload = m.value ? const_cast<char*>(m.value->data()) : nullptr;
    const size_t len = m.value ? m.value->size() : 0;
    void* key = k && *k ? const_cast<char*>((*k)->data()) : nullptr;
    const size_t key_len = k && *k ? (*k)->size() : 0;
    rd_kafka_resp_err_t err =
        rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(m.partition), RD_KAFKA_V_VALUE(payload, len),
                          RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(m.timestamp_ms),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  EXPECT_EQ(rd_kafka_flush(producer, 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(rd_kafka_outq_len(producer), 0);
  rd_kafka_destroy(producer);
}

class KafkaSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = mock_kafka_cluster::start(1, {{"in", 4, 1}, {"one", 1, 1}});
    ASSERT_TRUE(cluster.ok()) << cluster.err().message;
    cluster_ = std::move(*cluster);
    registry_.add(
        std::make_unique<with_declared_schema>(make_kafka_source_factory(), obs_schema()));
  }

  const std::string& bootstrap() const { return cluster_->bootstrap(); }

  /// The config every test starts from: the mock cluster, topic `topic`, event time from "ts".
  config_map base_config(const std::string& topic, bool bounded) {
    return cfg({{"bootstrap", str(bootstrap())},
                {"topic", str(topic)},
                {"event_time_field", str("ts")},
                {"bounded", config_value::of_bool(bounded)},
                {"metadata_timeout", str("10s")}});
  }

  /// Polls `h` until it finishes; fails the test after broker_deadline.
  static std::vector<poll_result> run_to_end(operator_harness& h) {
    std::vector<poll_result> polls;
    const auto deadline = std::chrono::steady_clock::now() + broker_deadline;
    while (std::chrono::steady_clock::now() < deadline) {
      polls.push_back(h.poll());
      if (polls.back().st == poll_result::state::finished) return polls;
    }
    ADD_FAILURE() << "the source did not finish within the deadline";
    return polls;
  }

  /// Polls `h` until `done()` holds; returns the last poll result. Fails after broker_deadline.
  template <class Pred>
  static poll_result poll_until(operator_harness& h, Pred done) {
    poll_result last;
    const auto deadline = std::chrono::steady_clock::now() + broker_deadline;
    while (std::chrono::steady_clock::now() < deadline) {
      last = h.poll();
      if (done(last)) return last;
    }
    ADD_FAILURE() << "condition not reached within the deadline";
    return last;
  }

  std::unique_ptr<mock_kafka_cluster> cluster_;
  operator_registry registry_;
};

struct error_row {
  int64_t partition;
  int64_t offset;
  std::string reason;
  std::string raw;
};

std::vector<error_row> error_rows(operator_harness& h) {
  std::vector<error_row> out;
  for (const auto& b : h.batches(1)) {
    for (size_t r = 0; r < b->num_rows(); ++r) {
      out.push_back({b->columns[0].ints[r], b->columns[1].ints[r],
                     std::string(b->columns[2].string_at(r)),
                     std::string(b->columns[3].string_at(r))});
    }
  }
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(KafkaSourceTest, Traits) {
  auto f = make_kafka_source_factory();
  EXPECT_EQ(f->traits().name, "kafka_source");
  EXPECT_TRUE(f->traits().input_ports.empty());
  EXPECT_EQ(f->traits().output_ports, (std::vector<std::string>{"out", "errors"}));
  auto p = operator_harness::try_plan(registry_, "kafka_source", base_config("in", true), {});
  ASSERT_TRUE(p) << p.err().message;
  ASSERT_EQ((*p)->outputs.size(), 2u);
  EXPECT_EQ(*(*p)->outputs[0].schema, *obs_schema());
  EXPECT_EQ((*p)->outputs[1].schema->to_string(),
            "partition:int64, offset:int64, reason:string, raw:string");
}

TEST_F(KafkaSourceTest, TwoSubtasksReadTheirPartitionsAndReportBadMessages) {
  std::vector<message> messages;
  std::vector<std::vector<std::string>> expected(2);  // Rows per subtask.
  for (int32_t q = 0; q < 4; ++q) {
    for (int k = 0; k < 25; ++k) {
      const int64_t id = q * 1000 + k;
      const int64_t ts = jan1_2026 + k * sec + q;
      messages.push_back({q, obs_json(id, ts)});
      expected[q % 2].push_back(obs_row(id, ts));
    }
  }
  // Partition 1 (subtask 1) also holds messages that cannot become records.
  const std::vector<std::pair<std::optional<std::string>, std::string>> bad = {
      {"not json", "invalid JSON"},
      {"[1,2]", "expected a JSON object, got an array"},
      {"{\"id\":\"x\",\"ts\":\"" + iso(jan1_2026) + "\"}", "field 'id': expected int64, got \"x\""},
      {"{\"name\":\"a\",\"ts\":\"" + iso(jan1_2026) + "\"}", "missing field 'id'"},
      {"{\"id\":7,\"ts\":9000000000000000000}", "field 'ts': timestamp 9000000000000000000 is out"},
      {std::nullopt, "the message has no value"},
  };
  for (const auto& [value, reason] : bad) messages.push_back({1, value});
  produce(bootstrap(), "in", messages);

  const config_map config = base_config("in", true);
  std::vector<std::string> all_rows;
  for (uint32_t subtask = 0; subtask < 2; ++subtask) {
    operator_harness h(registry_, "kafka_source", config, {}, subtask, 2, 16);
    auto polls = run_to_end(h);
    ASSERT_FALSE(polls.empty());
    EXPECT_EQ(polls.back().watermark, max_watermark);
    for (const poll_result& p : polls) EXPECT_LE(p.watermark, polls.back().watermark);
    EXPECT_EQ(sorted(h.rows(0)), sorted(expected[subtask])) << "subtask " << subtask;
    auto errors = error_rows(h);
    if (subtask == 0) {
      EXPECT_TRUE(errors.empty());
    } else {
      ASSERT_EQ(errors.size(), bad.size());
      for (size_t i = 0; i < bad.size(); ++i) {
        EXPECT_EQ(errors[i].partition, 1);
        EXPECT_EQ(errors[i].offset, static_cast<int64_t>(25 + i));
        EXPECT_EQ(errors[i].reason.rfind(bad[i].second, 0), 0u) << errors[i].reason;
        EXPECT_EQ(errors[i].raw, bad[i].first.value_or(""));
      }
    }
    // The position for a checkpoint's lineage: the next offset of each of its partitions.
    const nlohmann::json position = nlohmann::json::parse(h.op().position_json());
    const nlohmann::json expected_position =
        subtask == 0
            ? nlohmann::json{{"topic", "in"}, {"offsets", {{"0", 25}, {"2", 25}}}}
            : nlohmann::json{{"topic", "in"}, {"offsets", {{"1", 25 + bad.size()}, {"3", 25}}}};
    EXPECT_EQ(position, expected_position) << "subtask " << subtask;
    auto rows = h.rows(0);
    all_rows.insert(all_rows.end(), rows.begin(), rows.end());
    h.finish();
  }
  std::vector<std::string> produced = expected[0];
  produced.insert(produced.end(), expected[1].begin(), expected[1].end());
  EXPECT_EQ(sorted(all_rows), sorted(produced));
}

TEST_F(KafkaSourceTest, WatermarkIsTheMinimumOverPartitions) {
  // Subtask 0 of 2 reads partitions 0 and 2; partition 2 lags 90 s behind partition 0.
  std::vector<message> messages;
  for (int k = 0; k <= 10; ++k) {
    messages.push_back({0, obs_json(k, jan1_2026 + 10 * k * sec)});
    messages.push_back({2, obs_json(100 + k, jan1_2026 + k * sec)});
  }
  produce(bootstrap(), "in", messages);
  config_map config = base_config("in", false);
  config.emplace_back("max_out_of_orderness", str("2s"));
  config.emplace_back("idle_timeout", str("1h"));
  operator_harness h(registry_, "kafka_source", config, {}, 0, 2, 1024);
  poll_result last = poll_until(h, [&](const poll_result&) { return h.rows(0).size() == 22; });
  EXPECT_EQ(last.watermark, jan1_2026 + 10 * sec - 2 * sec - 1);

  // The lagging partition catches up: the watermark follows it.
  produce(bootstrap(), "in", {{2, obs_json(200, jan1_2026 + 50 * sec)}});
  last = poll_until(h, [&](const poll_result&) { return h.rows(0).size() == 23; });
  EXPECT_EQ(last.watermark, jan1_2026 + 50 * sec - 2 * sec - 1);
  produce(bootstrap(), "in", {{2, obs_json(201, jan1_2026 + 500 * sec)}});
  last = poll_until(h, [&](const poll_result&) { return h.rows(0).size() == 24; });
  EXPECT_EQ(last.watermark, jan1_2026 + 100 * sec - 2 * sec - 1);
  const poll_result idle = h.poll();
  EXPECT_EQ(idle.st, poll_result::state::no_data);
  EXPECT_GT(idle.retry_after_us, 0);
  EXPECT_LE(idle.retry_after_us, 10'000);
  h.finish();
}

TEST_F(KafkaSourceTest, ArrivingMessagesWakeTheSubtaskWithoutPolling) {
  std::mutex mu;
  std::condition_variable cv;
  int wakes = 0;
  auto wakeup = [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++wakes;
    cv.notify_all();
  };
  auto wakes_now = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return wakes;
  };
  config_map config = base_config("one", false);
  operator_harness h(registry_, "kafka_source", config, {}, 0, 1, 1024, wakeup);
  // This test polls as the subtask does: once per wake-up, and again at once while a poll says
  // `more`. It leaves out, on purpose, the poll the subtask also makes after the retry delay
  // (100 ms): without it a missing wake-up shows. librdkafka calls back only when the consumer
  // queue goes from empty to non-empty, so a wake-up for an internal event (an assignment step,
  // say) must be served by a poll too, or the next message lands on a non-empty queue and wakes
  // nobody.
  int served = 0;  // Wake-ups that happened before the latest poll began.
  auto poll_now = [&] {
    served = wakes_now();
    while (h.poll().st == poll_result::state::more) {
    }
  };
  auto poll_on_wake = [&] {
    {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, broker_deadline, [&] { return wakes > served; })) return false;
    }
    poll_now();
    return true;
  };
  // Nothing to read: the source asks for a long retry, since librdkafka wakes it.
  served = wakes_now();
  poll_result idle = h.poll();
  EXPECT_EQ(idle.st, poll_result::state::no_data);
  EXPECT_GE(idle.retry_after_us, 50'000);

  for (int k = 0; k < 3; ++k) {
    produce(bootstrap(), "one", {{0, obs_json(k, jan1_2026 + k * sec)}});
    while (h.rows(0).size() < static_cast<size_t>(k + 1))
      ASSERT_TRUE(poll_on_wake()) << "message " << k << " did not wake the source";
    EXPECT_EQ(h.rows(0).size(), static_cast<size_t>(k + 1));
    // Polling an empty queue must not wake the source again (a wake-up loop would spin).
    const int settled = wakes_now();
    for (int i = 0; i < 50; ++i) {
      served = wakes_now();
      EXPECT_EQ(h.poll().st, poll_result::state::no_data);
    }
    EXPECT_LE(wakes_now() - settled, 2) << "polls of an empty queue woke the source";
  }
  h.finish();
}

TEST_F(KafkaSourceTest, IdlePartitionStopsHoldingTheWatermarkBack) {
  // Partitions 1..3 stay empty; after idle_timeout only partition 0 counts.
  produce(bootstrap(), "in",
          {{0, obs_json(1, jan1_2026 + sec)}, {0, obs_json(2, jan1_2026 + 3 * sec)}});
  config_map config = base_config("in", false);
  config.emplace_back("idle_timeout", str("200ms"));
  operator_harness h(registry_, "kafka_source", config, {}, 0, 1, 1024);
  poll_until(h, [&](const poll_result&) { return h.rows(0).size() == 2; });
  poll_result last =
      poll_until(h, [](const poll_result& p) { return p.watermark != min_watermark; });
  EXPECT_EQ(last.watermark, jan1_2026 + 3 * sec - 1);
  // Then partition 0 goes idle too: no data, and the watermark stays where it was.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  while (std::chrono::steady_clock::now() < until) {
    last = h.poll();
    EXPECT_EQ(last.st, poll_result::state::no_data);
    EXPECT_EQ(last.watermark, jan1_2026 + 3 * sec - 1);
  }
  h.finish();
}

TEST_F(KafkaSourceTest, SnapshotAndRestoreReadEveryRecordExactlyOnce) {
  std::vector<message> messages;
  std::vector<std::string> produced;
  for (int32_t q = 0; q < 4; ++q) {
    for (int k = 0; k < 40; ++k) {
      const int64_t id = q * 1000 + k;
      const int64_t ts = jan1_2026 + k * sec;
      messages.push_back({q, obs_json(id, ts)});
      produced.push_back(obs_row(id, ts));
    }
  }
  produce(bootstrap(), "in", messages);

  static std::atomic<int> counter{0};
  const auto root =
      std::filesystem::temp_directory_path() /
      ("vigil-kafka-source-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  checkpoint_storage storage(root);
  const operator_factory& factory = *registry_.find("kafka_source");
  const config_map config = base_config("in", true);
  plan_context pc;
  pc.node_id = "src";
  pc.config = &config;
  auto plan = factory.plan(pc);
  ASSERT_TRUE(plan) << plan.err().message;

  struct collect final : output {
    std::vector<std::string> rows;
    void emit(size_t port, batch_ptr batch) override {
      EXPECT_EQ(port, 0u);
      for (size_t r = 0; r < batch->num_rows(); ++r) rows.push_back(testing::row_text(*batch, r));
    }
  };
  subtask_driver::options opts;
  opts.job_name = "job";
  opts.node_id = "src";
  opts.batch_size = 7;

  collect first;
  {
    auto d = subtask_driver::make(factory, **plan, opts, first);
    ASSERT_TRUE(d) << d.err().message;
    const auto deadline = std::chrono::steady_clock::now() + broker_deadline;
    while (first.rows.size() < 50 && std::chrono::steady_clock::now() < deadline) {
      ASSERT_NE((*d)->poll().st, poll_result::state::finished);
    }
    ASSERT_GE(first.rows.size(), 50u);
    auto stats = (*d)->snapshot(1, storage, "src-0");
    ASSERT_TRUE(stats) << stats.err().message;
    ASSERT_TRUE(storage.complete(1, "{}"));
  }  // A crash right after the checkpoint: nothing after it counts.

  collect second;
  opts.restore_from = &storage;
  opts.restore_id = 1;
  auto d = subtask_driver::make(factory, **plan, opts, second);
  ASSERT_TRUE(d) << d.err().message;
  const auto deadline = std::chrono::steady_clock::now() + broker_deadline;
  poll_result last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = (*d)->poll();
    if (last.st == poll_result::state::finished) break;
  }
  EXPECT_EQ(last.st, poll_result::state::finished);
  EXPECT_LT(second.rows.size(), produced.size());
  std::vector<std::string> all = first.rows;
  all.insert(all.end(), second.rows.begin(), second.rows.end());
  EXPECT_EQ(sorted(all), sorted(produced));
  ASSERT_TRUE((*d)->finish());
  std::filesystem::remove_all(root);
}

TEST_F(KafkaSourceTest, StartLatestSkipsWhatIsAlreadyThere) {
  produce(bootstrap(), "one", {{0, obs_json(1, jan1_2026)}, {0, obs_json(2, jan1_2026 + sec)}});
  config_map bounded = base_config("one", true);
  bounded.emplace_back("start", str("latest"));
  {
    operator_harness h(registry_, "kafka_source", bounded, {}, 0, 1, 1024);
    auto polls = run_to_end(h);
    EXPECT_TRUE(h.rows(0).empty());
    h.finish();
  }
  config_map unbounded = base_config("one", false);
  unbounded.emplace_back("start", str("latest"));
  operator_harness h(registry_, "kafka_source", unbounded, {}, 0, 1, 1024);
  produce(bootstrap(), "one",
          {{0, obs_json(3, jan1_2026 + 2 * sec)}, {0, obs_json(4, jan1_2026 + 3 * sec)}});
  poll_until(h, [&](const poll_result&) { return h.rows(0).size() >= 2; });
  EXPECT_EQ(h.rows(0), (std::vector<std::string>{obs_row(3, jan1_2026 + 2 * sec),
                                                 obs_row(4, jan1_2026 + 3 * sec)}));
  h.finish();
}

TEST_F(KafkaSourceTest, StartAtTimestampAndKafkaTimestampAsEventTime) {
  const int64_t t0_ms = jan1_2026 / 1000;
  std::vector<message> messages;
  for (int k = 0; k < 10; ++k) {
    messages.push_back({0, "{\"id\":" + std::to_string(k) + ",\"ts\":0}", t0_ms + k * 1000});
  }
  // After the start point in the log, an older timestamp is still read (Kafka's semantics).
  messages.push_back({0, "{\"id\":10,\"ts\":0}", t0_ms + 1000});
  produce(bootstrap(), "one", messages);
  config_map config = cfg({{"bootstrap", str(bootstrap())},
                           {"topic", str("one")},
                           {"bounded", config_value::of_bool(true)},
                           {"start", str(iso(jan1_2026 + 6 * sec + 500'000))}});
  operator_harness h(registry_, "kafka_source", config, {}, 0, 1, 1024);
  run_to_end(h);
  std::vector<std::string> expected;
  for (int k = 7; k < 10; ++k) {
    expected.push_back(std::to_string(k) + "|null|0@" + std::to_string(jan1_2026 + k * sec));
  }
  expected.push_back("10|null|0@" + std::to_string(jan1_2026 + sec));
  EXPECT_EQ(h.rows(0), expected);
  h.finish();
}

TEST_F(KafkaSourceTest, SubtaskWithoutPartitions) {
  // Topic "one" has a single partition: subtask 1 of 2 reads nothing.
  produce(bootstrap(), "one", {{0, obs_json(1, jan1_2026)}});
  {
    operator_harness h(registry_, "kafka_source", base_config("one", true), {}, 1, 2, 1024);
    EXPECT_EQ(h.poll().st, poll_result::state::finished);
    EXPECT_TRUE(h.rows(0).empty());
    h.finish();
  }
  operator_harness h(registry_, "kafka_source", base_config("one", false), {}, 1, 2, 1024);
  const poll_result p = h.poll();
  EXPECT_EQ(p.st, poll_result::state::no_data);
  EXPECT_EQ(p.watermark, min_watermark);
  h.finish();
}

TEST_F(KafkaSourceTest, MessagesDeletedBeforeTheyWereReadAreReportedNotSkippedSilently) {
  // The mock broker keeps about 5 MB of a partition and drops its oldest messages beyond that:
  // 8 MB in 10 kB messages loses the first few hundred.
  const std::string padding(10'000, 'x');
  std::vector<message> messages;
  std::vector<std::string> produced;
  for (int64_t id = 0; id < 800; ++id) {
    const int64_t ts = jan1_2026 + id * sec;
    messages.push_back({0, "{\"id\":" + std::to_string(id) + ",\"name\":\"" + padding +
                               "\",\"ts\":\"" + iso(ts) + "\"}"});
    produced.push_back(std::to_string(id) + "|" + padding + "|" + std::to_string(ts) + "@" +
                       std::to_string(ts));
  }
  produce(bootstrap(), "one", messages);
  int64_t low = 0, high = 0;
  {
    char errstr[512] = {};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    ASSERT_EQ(
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap().c_str(), errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    ASSERT_NE(c, nullptr) << errstr;
    EXPECT_EQ(rd_kafka_query_watermark_offsets(c, "one", 0, &low, &high, 10'000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c);
  }
  ASSERT_GT(low, 0) << "the broker kept every message: nothing to test";
  ASSERT_EQ(high, 800);

  // A subtask restored at offset 0, as after a checkpoint taken before the deletion.
  operator_harness h(registry_, "kafka_source", base_config("one", true), {}, 0, 1, 1024);
  kafka_source_state state;
  state.topic = "one";
  state.partitions.push_back({.partition = 0, .next_offset = 0});
  ASSERT_TRUE(h.op().restore_state(encode_kafka_source_state(state)).ok());
  run_to_end(h);
  // Compared by size and ends: a failure prints no 10 kB rows.
  const auto read = h.rows(0);
  ASSERT_EQ(read.size(), static_cast<size_t>(high - low));
  EXPECT_TRUE(read == std::vector<std::string>(produced.begin() + low, produced.end()));
  const auto errors = error_rows(h);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].partition, 0);
  EXPECT_EQ(errors[0].offset, 0);
  EXPECT_EQ(errors[0].reason, "offsets 0 to " + std::to_string(low - 1) +
                                  " of partition 0 could not be read: the broker no longer holds "
                                  "them (deleted by retention, or the log was truncated)");
  EXPECT_EQ(errors[0].raw, "");
  h.finish();

  // Restored beyond the partition's end (the topic was recreated since; an unbounded read, as a
  // bounded one ends there): the source says so and reads what the partition holds now.
  operator_harness h2(registry_, "kafka_source", base_config("one", false), {}, 0, 1, 1024);
  state.partitions[0].next_offset = 5000;
  ASSERT_TRUE(h2.op().restore_state(encode_kafka_source_state(state)).ok());
  poll_until(
      h2, [&](const poll_result&) { return h2.rows(0).size() >= static_cast<size_t>(high - low); });
  const auto again = h2.rows(0);
  ASSERT_EQ(again.size(), static_cast<size_t>(high - low));
  EXPECT_TRUE(again.front() == produced[low] && again.back() == produced.back());
  const auto restarted = error_rows(h2);
  ASSERT_EQ(restarted.size(), 1u);
  EXPECT_EQ(restarted[0].offset, 5000);
  EXPECT_EQ(restarted[0].reason,
            "partition 0 restarted below offset 5000 (the topic was recreated or truncated): "
            "reading goes on from offset " +
                std::to_string(low));
  h2.finish();
}

TEST_F(KafkaSourceTest, DeadBrokerNeverCrashesPoll) {
  produce(bootstrap(), "one", {{0, obs_json(1, jan1_2026)}});
  operator_harness h(registry_, "kafka_source", base_config("one", false), {}, 0, 1, 1024);
  poll_until(h, [&](const poll_result&) { return h.rows(0).size() == 1; });
  cluster_.reset();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < until) {
    const auto before = std::chrono::steady_clock::now();
    const poll_result p = h.poll();
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(50));
    EXPECT_EQ(p.st, poll_result::state::no_data);
    EXPECT_EQ(p.watermark, jan1_2026 - 1);
  }
  h.finish();
}

/// Opens a kafka_source with `config` and returns the error of open().
std::string open_error(const operator_registry& registry, const config_map& config) {
  plan_context pc;
  pc.node_id = "src";
  pc.config = &config;
  const operator_factory& f = *registry.find("kafka_source");
  auto plan = f.plan(pc);
  if (!plan) return "plan: " + plan.err().message;
  struct discard final : output {
    void emit(size_t, batch_ptr) override {}
  } out;
  subtask_driver::options opts;
  opts.node_id = "src";
  auto d = subtask_driver::make(f, **plan, opts, out);
  return d ? "" : d.err().message;
}

TEST_F(KafkaSourceTest, MissingTopicFailsOpenNamingIt) {
  config_map config = base_config("no-such-topic", false);
  const std::string err = open_error(registry_, config);
  EXPECT_NE(err.find("'no-such-topic'"), std::string::npos) << "[" << err << "]";
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
}

TEST_F(KafkaSourceTest, UnreachableBootstrapFailsOpenWithinMetadataTimeout) {
  // Port 1 on loopback has no listener: connections are refused.
  config_map config = cfg(
      {{"bootstrap", str("127.0.0.1:1")}, {"topic", str("in")}, {"metadata_timeout", str("1s")}});
  const auto start = std::chrono::steady_clock::now();
  const std::string err = open_error(registry_, config);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(err.find("'in'"), std::string::npos) << err;
  EXPECT_NE(err.find("127.0.0.1:1"), std::string::npos) << err;
  EXPECT_NE(err.find("metadata_timeout 1s"), std::string::npos) << err;
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(KafkaSourceTest, ConfigErrorsNameTheKey) {
  auto error_of = [&](const config_map& config) {
    auto p = operator_harness::try_plan(registry_, "kafka_source", config, {});
    return p ? std::string() : p.err().message;
  };
  const config_value b = str("127.0.0.1:9092");
  const config_value t = str("in");
  const std::vector<std::pair<config_map, std::string>> cases = {
      {cfg({{"topic", t}}), "config.bootstrap"},
      {cfg({{"bootstrap", str("")}, {"topic", t}}), "config.bootstrap"},
      {cfg({{"bootstrap", b}}), "config.topic"},
      {cfg({{"bootstrap", b}, {"topic", str("")}}), "config.topic"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"start", str("yesterday")}}), "config.start"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"start", str("2026-01-01T00:00:00")}}),
       "config.start"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"max_out_of_orderness", str("-1s")}}),
       "config.max_out_of_orderness"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"idle_timeout", str("0s")}}), "config.idle_timeout"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"metadata_timeout", str("soon")}}),
       "config.metadata_timeout"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"bounded", str("yes")}}), "config.bounded"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"isolation", str("serializable")}}),
       "config.isolation"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"group_id", str("")}}), "config.group_id"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"event_time_field", str("nope")}}),
       "config.event_time_field"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"event_time_field", str("id")}}),
       "config.event_time_field"},
      {cfg({{"bootstrap", b}, {"topic", t}, {"topics", str("x")}}), "topics"},
  };
  for (const auto& [config, key] : cases) {
    const std::string err = error_of(config);
    EXPECT_NE(err.find(key), std::string::npos) << "want " << key << ", got: " << err;
  }
  // Without a declared schema the node is refused, naming the missing setting.
  plan_context pc;
  pc.node_id = "src";
  const config_map ok = cfg({{"bootstrap", b}, {"topic", t}});
  pc.config = &ok;
  auto p = make_kafka_source_factory()->plan(pc);
  ASSERT_FALSE(p);
  EXPECT_NE(p.err().message.find("output_schema"), std::string::npos) << p.err().message;
}

/// A map config value of `items`.
config_value map_of(std::vector<std::pair<std::string, config_value>> items) {
  config_value v;
  v.k = config_value::kind::map;
  v.map = std::move(items);
  return v;
}

TEST_F(KafkaSourceTest, PropertiesAreCheckedAndReachTheConsumer) {
  auto with_properties = [&](config_value props) {
    config_map c = base_config("one", true);
    c.emplace_back("properties", std::move(props));
    return c;
  };
  auto error_of = [&](const config_map& config) {
    auto p = operator_harness::try_plan(registry_, "kafka_source", config, {});
    return p ? std::string() : p.err().message;
  };
  EXPECT_EQ(error_of(with_properties(map_of({{"isolation.level", str("read_uncommitted")}}))),
            "config.properties.isolation.level: is managed by kafka_source (use "
            "config.isolation)");
  EXPECT_EQ(error_of(with_properties(map_of({{"enable.auto.commit", str("true")}}))),
            "config.properties.enable.auto.commit: is managed by kafka_source (offsets live in "
            "checkpoints)");
  EXPECT_EQ(error_of(with_properties(map_of({{"no.such.property", str("1")}})))
                .rfind("config.properties.no.such.property: ", 0),
            0u);
  EXPECT_EQ(error_of(with_properties(map_of({{"fetch.wait.max.ms", str("soon")}})))
                .rfind("config.properties.fetch.wait.max.ms: ", 0),
            0u);
  EXPECT_EQ(error_of(with_properties(map_of({{"fetch.wait.max.ms", map_of({})}}))),
            "config.properties.fetch.wait.max.ms: expected a string, number or bool, got map");
  EXPECT_EQ(error_of(with_properties(str("fetch.wait.max.ms=5"))),
            "config.properties: expected a map of client properties, got string");

  EXPECT_EQ(error_of(with_properties(map_of({{"plugin.library.paths", str("/x/evil.so")}}))),
            "config.properties.plugin.library.paths: is refused: it would run code or commands "
            "on Vigil's hosts");
  EXPECT_EQ(error_of(with_properties(map_of({{"metadata.broker.list", str("a:1")}}))),
            "config.properties.metadata.broker.list: is managed by kafka_source (use "
            "config.bootstrap)");
  EXPECT_EQ(error_of(with_properties(map_of({{"client.id", str("x")}}))),
            "config.properties.client.id: is managed by kafka_source (is <group_id>-<subtask>)");

  // Settings reach the consumer: TLS towards the plaintext mock broker cannot fetch metadata.
  config_map tls = with_properties(map_of({{"security.protocol", str("ssl")}}));
  for (auto& [k, v] : tls) {
    if (k == "metadata_timeout") v = str("1s");
  }
  EXPECT_NE(open_error(registry_, tls), "");

  // A valid setting reaches the consumer: a bounded read with it completes.
  produce(bootstrap(), "one", {{0, obs_json(1, jan1_2026)}, {0, obs_json(2, jan1_2026 + sec)}});
  operator_harness h(registry_, "kafka_source",
                     with_properties(map_of({{"fetch.wait.max.ms", config_value::of_int(5)},
                                             {"fetch.error.backoff.ms", str("10")}})),
                     {}, 0, 1, 1024);
  run_to_end(h);
  EXPECT_EQ(h.rows(0),
            (std::vector<std::string>{obs_row(1, jan1_2026), obs_row(2, jan1_2026 + sec)}));
  h.finish();
}

TEST_F(KafkaSourceTest, RawFormatKeepsValueKeyAndTimestamp) {
  const int64_t t0_ms = jan1_2026 / 1000;
  const std::string hl7 = "MSH|^~\\&|A|B|C|D|20260101000000||ORU^R01|m1|P|2.5\rPID|||p1";
  produce(bootstrap(), "one", {{0, hl7, t0_ms}, {0, std::string("not json {"), t0_ms + 1000}},
          {"p1", std::nullopt});
  config_map c = cfg({{"bootstrap", str(bootstrap())},
                      {"topic", str("one")},
                      {"format", str("raw")},
                      {"bounded", config_value::of_bool(true)}});
  operator_registry plain;
  plain.add(make_kafka_source_factory());
  auto p = operator_harness::try_plan(plain, "kafka_source", c, {});
  ASSERT_TRUE(p) << p.err().message;
  EXPECT_EQ((*p)->outputs[0].schema->to_string(), kafka_source_raw_schema()->to_string());
  operator_harness h(plain, "kafka_source", c, {}, 0, 1, 1024);
  run_to_end(h);
  const auto& batches = h.batches(0);
  std::vector<std::tuple<std::string, std::string, int64_t, int64_t>> rows;
  for (const auto& b : batches) {
    for (size_t r = 0; r < b->num_rows(); ++r) {
      rows.emplace_back(
          std::string(b->columns[0].string_at(r)),
          b->columns[1].is_null(r) ? "<null>" : std::string(b->columns[1].string_at(r)),
          b->columns[2].ints[r], b->event_time[r]);
    }
  }
  const int64_t t0 = t0_ms * 1000;
  EXPECT_EQ(rows, (std::vector<std::tuple<std::string, std::string, int64_t, int64_t>>{
                      {hl7, "p1", t0, t0}, {"not json {", "<null>", t0 + sec, t0 + sec}}));
  EXPECT_TRUE(h.batches(1).empty());
  h.finish();

  auto error_of = [&](config_map config) {
    auto q = operator_harness::try_plan(plain, "kafka_source", config, {});
    return q ? std::string() : q.err().message;
  };
  config_map bad_format = c;
  for (auto& [key, value] : bad_format) {
    if (key == "format") value = str("avro");
  }
  EXPECT_EQ(error_of(bad_format), "config.format: expected \"json\" or \"raw\", got \"avro\"");
  config_map with_time = c;
  with_time.emplace_back("event_time_field", str("timestamp"));
  EXPECT_EQ(error_of(with_time).rfind("config.event_time_field: not with format raw", 0), 0u);
  // A declared schema other than the raw one is refused, naming output_schema.
  auto q = operator_harness::try_plan(registry_, "kafka_source", c, {});
  ASSERT_FALSE(q);
  EXPECT_EQ(q.err().message.rfind("output_schema: with format raw", 0), 0u) << q.err().message;
}

TEST(KafkaSourceStateTest, RoundTripsAndRefusesUnknownVersions) {
  kafka_source_state s;
  s.topic = "vitals";
  s.partitions.push_back({3, 42, true, -5, false, 0});
  s.partitions.push_back({7, 0, false, 0, true, jan1_2026});
  const std::string bytes = encode_kafka_source_state(s);
  auto back = decode_kafka_source_state(bytes);
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(*back, s);

  std::string newer = bytes;
  newer[4] = 7;
  auto v = decode_kafka_source_state(newer);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.err().code, errc::state_error);
  EXPECT_NE(v.err().message.find("version 7 is not supported"), std::string::npos)
      << v.err().message;
  EXPECT_FALSE(decode_kafka_source_state("garbage"));
  EXPECT_FALSE(decode_kafka_source_state(bytes.substr(0, bytes.size() - 1)));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_kafka_source_state(bytes.substr(0, n))) << n;
  }
}

TEST(PartitionWatermarksTest, MinimumOverActivePartitionsWithIdleTimeout) {
  const int64_t ms = 1000;
  partition_watermarks w(/*max_out_of_orderness_us=*/10, /*idle_timeout_us=*/100 * ms);
  w.reset(3, 0);
  EXPECT_EQ(w.advance(0), min_watermark);
  w.on_record(0, 1000, 60 * ms);
  w.on_record(1, 500, 60 * ms);
  // Partition 2 has no record yet and is not idle: the watermark stays at the minimum.
  EXPECT_EQ(w.advance(99 * ms), min_watermark);
  // After the idle timeout partition 2 stops holding it back.
  EXPECT_EQ(w.advance(100 * ms), 500 - 10 - 1);
  EXPECT_TRUE(w.idle(2));
  EXPECT_FALSE(w.all_idle());
  w.on_record(1, 2000, 120 * ms);
  EXPECT_EQ(w.advance(120 * ms), 1000 - 10 - 1);
  // Partition 0 goes idle too: only partition 1 counts.
  EXPECT_EQ(w.advance(160 * ms), 2000 - 10 - 1);
  EXPECT_TRUE(w.idle(0));
  EXPECT_FALSE(w.idle(1));
  // Everything idle: the watermark stays where it was.
  EXPECT_EQ(w.advance(400 * ms), 2000 - 10 - 1);
  EXPECT_TRUE(w.all_idle());
  // A partition that comes back behind does not move the watermark back.
  w.on_record(2, 100, 401 * ms);
  EXPECT_FALSE(w.idle(2));
  EXPECT_EQ(w.advance(401 * ms), 2000 - 10 - 1);
  w.on_record(2, 5000, 402 * ms);
  EXPECT_EQ(w.advance(402 * ms), 5000 - 10 - 1);
  // A finished partition never holds the watermark back.
  w.finish(2);
  EXPECT_TRUE(w.all_idle());
}

TEST(PartitionWatermarksTest, RestoredMaximaAndExtremes) {
  partition_watermarks w(5, 1'000'000);
  w.reset(2, 0);
  w.restore_max(0, 100);
  w.restore_max(1, 70);
  EXPECT_EQ(w.advance(1), 70 - 5 - 1);
  partition_watermarks low(5, 1'000'000);
  low.reset(1, 0);
  low.on_record(0, min_watermark + 3, 0);
  EXPECT_EQ(low.advance(0), min_watermark);
  partition_watermarks none(0, 1);
  none.reset(0, 0);
  EXPECT_TRUE(none.all_idle());
  EXPECT_EQ(none.advance(10), min_watermark);
}

}  // namespace
}  // namespace vigil
