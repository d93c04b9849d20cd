// The kafka_sink's write-ahead protocol against a fake transactional Kafka that implements
// commit, abort and fencing: a crash injected at every step of the protocol, then a restore
// from the last complete checkpoint and a replay of the input after it, must leave every
// record in the committed view exactly once.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "operators/kafka/sink/fake_txn_client.hpp"
#include "operators/kafka/sink/kafka_sink.hpp"
#include "operators/kafka/sink/sink_test_support.hpp"
#include "operators/kafka/sink/sink_wal.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using kafka::fake_txn_broker;
using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::str;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;
constexpr int epochs = 4;
constexpr int per_epoch = 3;
constexpr int tail = 2;  ///< Records after the last checkpoint, committed by close().
constexpr int total_records = epochs * per_epoch + tail;

using testing::discard_output;

using kafka::sink_test::quiet_logs;
using kafka::sink_test::rows_schema;

/// The input: batch i (0-based) holds records i*per_epoch+1 ...; the last one is the tail.
std::vector<batch_ptr> input_batches() {
  std::vector<batch_ptr> out;
  int64_t id = 1;
  for (int b = 0; b <= epochs; ++b) {
    std::vector<std::vector<cell>> rows;
    std::vector<int64_t> times;
    int n = b < epochs ? per_epoch : tail;
    for (int i = 0; i < n; ++i, ++id) {
      cell name = id % 5 == 0 ? cell{} : cell{std::string("p") + std::to_string(id % 3)};
      rows.push_back({id, name});
      times.push_back(jan1_2026 + id * 1'000'000);
    }
    out.push_back(make_rows(rows_schema(), rows, times));
  }
  return out;
}

/// The ids in the values of `records`, in order.
std::vector<int64_t> ids_of(const std::vector<fake_txn_broker::record>& records) {
  std::vector<int64_t> out;
  for (const auto& r : records) out.push_back(nlohmann::json::parse(r.value).at("id"));
  return out;
}

std::vector<int64_t> all_ids() {
  std::vector<int64_t> out;
  for (int64_t i = 1; i <= total_records; ++i) out.push_back(i);
  return out;
}

/// Where the runner stops a sink instance outside client calls.
enum class step_crash {
  none,
  after_snapshot_incomplete,  ///< The barrier was snapshotted but the checkpoint never completes.
  before_notify,              ///< The checkpoint completed; the sink died before hearing of it.
};

class KafkaSinkProtocolTest : public ::testing::Test {
 protected:
  KafkaSinkProtocolTest() { reset(); }

  /// A fresh broker and a registry whose kafka_sink talks to it.
  void reset() {
    broker_ = fake_txn_broker();
    registry_ = operator_registry();
    kafka_sink_hooks hooks;
    hooks.make_client = broker_.maker();
    hooks.now_us = [this] { return now_us_; };
    registry_.add(make_kafka_sink_factory(std::move(hooks)));
  }

  plan_ptr make_plan(config_map config) {
    config_ = std::move(config);
    plan_context ctx;
    ctx.node_id = "sink";
    ctx.config = &config_;
    ctx.inputs = {stream_info{rows_schema(), {}}};
    auto p = registry_.find("kafka_sink")->plan(ctx);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.err().message);
    return p.ok() ? *p : nullptr;
  }

  plan_ptr exactly_once_plan() {
    return make_plan(
        cfg({{"bootstrap", str("fake:9092")}, {"topic", str("out")}, {"key_field", str("name")}}));
  }

  /// A started sink instance with its context.
  struct instance {
    operator_context ctx;
    std::unique_ptr<operator_base> op;
  };

  std::unique_ptr<instance> start(const plan_ptr& plan) {
    auto in = std::make_unique<instance>();
    in->ctx.job_name = "job";
    in->ctx.node_id = "sink";
    in->op = plan->instantiate();
    auto st = in->op->open(in->ctx);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    return in;
  }

  /// Runs the job to the end of its input, restarting the sink after each crash from the last
  /// complete checkpoint and replaying the input after it. `crashes` are armed one after the
  /// other: the first at the start, each next one when the sink restarts.
  void run_job(const plan_ptr& plan, std::vector<std::pair<int64_t, bool>> crashes,
               step_crash at_step = step_crash::none, int step_epoch = 0) {
    auto batches = input_batches();
    std::map<int64_t, std::string> checkpoints;
    int64_t completed = 0;
    size_t next_crash = 0;
    bool step_crash_done = at_step == step_crash::none;
    discard_output out;
    for (int restarts = 0;; ++restarts) {
      ASSERT_LT(restarts, 10) << "the job does not finish";
      broker_.clear_crash();
      if (next_crash < crashes.size()) {
        broker_.crash_at(crashes[next_crash].first, crashes[next_crash].second);
        ++next_crash;
      }
      auto in = start(plan);
      if (completed > 0) {
        auto st = in->op->restore_state(checkpoints[completed]);
        if (broker_.crashed()) continue;
        ASSERT_TRUE(st.ok()) << st.err().message;
      }
      bool crashed = false;
      for (int e = static_cast<int>(completed) + 1; e <= epochs + 1 && !crashed; ++e) {
        in->op->process(0, *batches[e - 1], out);
        if (e > epochs) {
          auto st = in->op->close(out);
          crashed = broker_.crashed();
          if (!crashed) {
            ASSERT_TRUE(st.ok()) << st.err().message;
          }
          break;
        }
        std::string bytes = in->op->snapshot_state(e);
        if (!step_crash_done && e == step_epoch &&
            at_step == step_crash::after_snapshot_incomplete) {
          step_crash_done = crashed = true;
          break;
        }
        checkpoints[e] = std::move(bytes);
        completed = e;
        if (!step_crash_done && e == step_epoch && at_step == step_crash::before_notify) {
          step_crash_done = crashed = true;
          break;
        }
        EXPECT_TRUE(in->op->notify_checkpoint_complete(e, {}).ok());
        crashed = broker_.crashed();
      }
      if (!crashed) return;
    }
  }

  /// The committed view equals the input exactly, with consistent headers and markers.
  void expect_exactly_once(const std::string& context) {
    auto out = broker_.committed("out");
    ASSERT_EQ(ids_of(out), all_ids()) << context;
    auto markers = broker_.committed("out.progress");
    std::set<int64_t> epochs_seen;
    std::map<std::pair<std::string, std::string>, int64_t> per_marker;
    for (const auto& r : out) {
      EXPECT_EQ(r.header("vigil.sink"), "job/sink/0") << context;
      ++per_marker[{r.header("vigil.epoch"), r.header("vigil.attempt")}];
      int64_t id = nlohmann::json::parse(r.value).at("id");
      if (id % 5 == 0) {
        EXPECT_FALSE(r.key.has_value()) << context;
      } else {
        EXPECT_EQ(r.key, "p" + std::to_string(id % 3)) << context;
      }
    }
    for (const auto& r : markers) {
      auto m = kafka::parse_marker(r.value);
      ASSERT_TRUE(m.ok()) << m.err().message;
      EXPECT_EQ(r.key, "job/sink/0");
      EXPECT_TRUE(epochs_seen.insert(m->epoch).second)
          << context << ": epoch " << m->epoch << " committed twice";
      EXPECT_EQ(r.header("vigil.epoch"), std::to_string(m->epoch));
      EXPECT_EQ(r.header("vigil.attempt"), m->attempt);
      EXPECT_EQ((per_marker[{std::to_string(m->epoch), m->attempt}]), m->records) << context;
    }
    EXPECT_EQ(markers.empty(), false) << context;
  }

  fake_txn_broker broker_;
  operator_registry registry_;
  config_map config_;
  int64_t now_us_ = 1'000'000'000;
};

TEST_F(KafkaSinkProtocolTest, CleanRunCommitsEachEpochAtItsCheckpoint) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto in = start(plan);
  in->op->process(0, *batches[0], out);
  EXPECT_TRUE(broker_.log().empty()) << "nothing reaches Kafka before the checkpoint completes";
  in->op->snapshot_state(1);
  EXPECT_TRUE(broker_.log().empty());
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), (std::vector<int64_t>{1, 2, 3}));
  auto markers = broker_.committed("out.progress");
  ASSERT_EQ(markers.size(), 1u);
  auto m = kafka::parse_marker(markers[0].value);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->sink, "job/sink/0");
  EXPECT_EQ(m->epoch, 1);
  EXPECT_EQ(m->records, 3);
  EXPECT_FALSE(m->final);
  EXPECT_EQ(m->attempt.size(), 16u);

  // Epoch 2 waits for checkpoint 2, not for a notification of an older one.
  in->op->process(0, *batches[1], out);
  in->op->snapshot_state(2);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  EXPECT_EQ(broker_.committed("out").size(), 3u);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(2, {}).ok());
  EXPECT_EQ(broker_.committed("out").size(), 6u);

  for (int b = 2; b <= epochs; ++b) in->op->process(0, *batches[b], out);
  ASSERT_TRUE(in->op->close(out).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), all_ids());
  auto last = kafka::parse_marker(broker_.committed("out.progress").back().value);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->epoch, 3);
  EXPECT_TRUE(last->final);
  EXPECT_EQ(last->records, 2 * per_epoch + tail);
}

TEST_F(KafkaSinkProtocolTest, MessageValueIsTheRowAsJson) {
  auto plan = exactly_once_plan();
  discard_output out;
  auto in = start(plan);
  in->op->process(0, *input_batches()[0], out);
  in->op->snapshot_state(1);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  auto out_records = broker_.committed("out");
  ASSERT_EQ(out_records.size(), 3u);
  EXPECT_EQ(out_records[0].value, R"({"id":1,"name":"p1","_event_time":"2026-01-01T00:00:01Z"})");
  EXPECT_EQ(out_records[0].key, "p1");
  EXPECT_EQ(out_records[0].header("vigil.epoch"), "1");
}

TEST_F(KafkaSinkProtocolTest, CrashAtEveryClientCallLeavesEveryRecordExactlyOnce) {
  auto plan = exactly_once_plan();
  run_job(plan, {});
  expect_exactly_once("clean run");
  const int64_t clean_ops = broker_.ops();
  ASSERT_GT(clean_ops, 20);
  quiet_logs quiet;
  for (int64_t k = 1; k <= clean_ops + 1; ++k) {
    for (bool after : {false, true}) {
      reset();
      auto p = exactly_once_plan();
      run_job(p, {{k, after}});
      expect_exactly_once("crash " + std::string(after ? "after" : "at") + " call " +
                          std::to_string(k));
      if (HasFailure()) return;
    }
  }
}

TEST_F(KafkaSinkProtocolTest, SecondCrashDuringRecoveryStillExactlyOnce) {
  auto plan = exactly_once_plan();
  run_job(plan, {});
  const int64_t clean_ops = broker_.ops();
  quiet_logs quiet;
  for (int64_t k = 1; k <= clean_ops; ++k) {
    for (int64_t k2 = 1; k2 <= 8; ++k2) {
      for (bool after : {false, true}) {
        reset();
        auto p = exactly_once_plan();
        run_job(p, {{k, after}, {k2, after}});
        expect_exactly_once("crashes at calls " + std::to_string(k) + " then " +
                            std::to_string(k2) + (after ? " (after)" : ""));
        if (HasFailure()) return;
      }
    }
  }
}

TEST_F(KafkaSinkProtocolTest, CrashBetweenBarrierAndNotificationStillExactlyOnce) {
  quiet_logs quiet;
  for (int e = 1; e <= epochs; ++e) {
    for (auto at : {step_crash::after_snapshot_incomplete, step_crash::before_notify}) {
      reset();
      auto p = exactly_once_plan();
      run_job(p, {}, at, e);
      expect_exactly_once("step crash at epoch " + std::to_string(e));
      if (HasFailure()) return;
    }
  }
}

TEST_F(KafkaSinkProtocolTest, RestoreSkipsCommittedEpochsAndReplaysTheOthers) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto first = start(plan);
  first->op->process(0, *batches[0], out);
  first->op->snapshot_state(1);
  EXPECT_TRUE(first->op->notify_checkpoint_complete(1, {}).ok());
  first->op->process(0, *batches[1], out);
  std::string cp2 = first->op->snapshot_state(2);
  // Checkpoint 2 completed but its notification never arrived: epoch 2 is only in the WAL.
  first.reset();

  // Restored from checkpoint 2: epoch 2 is committed right away.
  auto second = start(plan);
  ASSERT_TRUE(second->op->restore_state(cp2).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  second.reset();

  // Restored once more from the same checkpoint: epoch 2 is in its WAL but already committed.
  auto third = start(plan);
  ASSERT_TRUE(third->op->restore_state(cp2).ok());
  EXPECT_EQ(broker_.committed("out").size(), 6u);
  for (int b = 2; b <= epochs; ++b) third->op->process(0, *batches[b], out);
  ASSERT_TRUE(third->op->close(out).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), all_ids());
}

TEST_F(KafkaSinkProtocolTest, RestoreAfterTheFinalCommitWritesNothingMore) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto first = start(plan);
  first->op->process(0, *batches[0], out);
  std::string cp1 = first->op->snapshot_state(1);
  EXPECT_TRUE(first->op->notify_checkpoint_complete(1, {}).ok());
  for (int b = 1; b <= epochs; ++b) first->op->process(0, *batches[b], out);
  ASSERT_TRUE(first->op->close(out).ok());
  ASSERT_EQ(ids_of(broker_.committed("out")), all_ids());
  first.reset();

  // The job died after the sink finished but before the job did: restored from checkpoint 1,
  // the replayed input is already in Kafka.
  auto second = start(plan);
  ASSERT_TRUE(second->op->restore_state(cp1).ok());
  for (int b = 1; b <= epochs; ++b) second->op->process(0, *batches[b], out);
  second->op->snapshot_state(2);
  EXPECT_TRUE(second->op->notify_checkpoint_complete(2, {}).ok());
  ASSERT_TRUE(second->op->close(out).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), all_ids());
  EXPECT_EQ(second->ctx.dropped_records, static_cast<uint64_t>(total_records - per_epoch));
}

TEST_F(KafkaSinkProtocolTest, ARestartedJobWithTheSameNameIsNotMistakenForARestore) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  // A previous run of the same job committed epochs 1..3.
  {
    auto old = start(plan);
    for (int e = 1; e <= 3; ++e) {
      old->op->process(0, *batches[e - 1], out);
      old->op->snapshot_state(e);
      EXPECT_TRUE(old->op->notify_checkpoint_complete(e, {}).ok());
    }
  }
  size_t before = broker_.committed("out").size();
  // A new run (no checkpoint) numbers its checkpoints from 1 again, crashes, and restores.
  auto fresh = start(plan);
  fresh->op->process(0, *batches[0], out);
  std::string cp1 = fresh->op->snapshot_state(1);
  fresh.reset();
  auto restored = start(plan);
  ASSERT_TRUE(restored->op->restore_state(cp1).ok());
  EXPECT_EQ(broker_.committed("out").size(), before + per_epoch)
      << "epoch 1 of the new run must not be skipped because of the old run's markers";
}

TEST_F(KafkaSinkProtocolTest, ZombieIsFencedByTheRestoredInstance) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto zombie = start(plan);
  zombie->op->process(0, *batches[0], out);
  zombie->op->snapshot_state(1);
  EXPECT_TRUE(zombie->op->notify_checkpoint_complete(1, {}).ok());
  zombie->op->process(0, *batches[1], out);
  std::string cp2 = zombie->op->snapshot_state(2);

  // The coordinator lost contact with the zombie and restored a new instance from checkpoint 2.
  auto fresh = start(plan);
  ASSERT_TRUE(fresh->op->restore_state(cp2).ok());
  // The zombie now hears of checkpoint 2 and tries to commit epoch 2 again: fenced.
  EXPECT_TRUE(zombie->op->notify_checkpoint_complete(2, {}).ok());
  auto closed = zombie->op->close(out);
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.err().message.find("fenced"), std::string::npos) << closed.err().message;
  EXPECT_EQ(ids_of(broker_.committed("out")), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(KafkaSinkProtocolTest, FakeFencesAnOlderProducerAndAbortsItsTransaction) {
  auto maker = broker_.maker();
  kafka::txn_client_config c;
  c.transactional_id = "tid";
  auto a = maker(c);
  auto b = maker(c);
  ASSERT_TRUE(a.ok() && b.ok());
  const kafka::message_header h[] = {{"vigil.epoch", "1"}};
  ASSERT_TRUE((*a)->init_transactions().ok());
  ASSERT_TRUE((*a)->begin_transaction().ok());
  ASSERT_TRUE((*a)->produce("out", std::nullopt, "from a", h).ok());
  ASSERT_TRUE((*b)->init_transactions().ok());
  EXPECT_FALSE((*a)->commit_transaction().ok());
  EXPECT_TRUE((*a)->fenced());
  EXPECT_FALSE((*b)->fenced());
  ASSERT_TRUE((*b)->begin_transaction().ok());
  ASSERT_TRUE((*b)->produce("out", std::string_view("k"), "from b", h).ok());
  ASSERT_TRUE((*b)->commit_transaction().ok());
  auto committed = broker_.committed("out");
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_EQ(committed[0].value, "from b");
  EXPECT_EQ(broker_.log().size(), 2u) << "the aborted record stays in the log";
}

TEST_F(KafkaSinkProtocolTest, AFailedCommitIsRetriedAfterABackoff) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto in = start(plan);
  in->op->process(0, *batches[0], out);
  in->op->snapshot_state(1);
  quiet_logs quiet;
  broker_.fail_at(5);  // init, read markers, begin, produce, then the second produce fails.
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  EXPECT_TRUE(broker_.committed("out").empty());
  in->op->process(0, *batches[1], out);
  std::string cp2 = in->op->snapshot_state(2);
  auto state = kafka::decode_sink_state(cp2);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->pending.size(), 2u) << "the failed epoch stays in the checkpoint";
  int64_t ops = broker_.ops();
  EXPECT_TRUE(in->op->notify_checkpoint_complete(2, {}).ok());
  EXPECT_EQ(broker_.ops(), ops) << "no new try within the backoff";
  now_us_ += 10'000'000;
  EXPECT_TRUE(in->op->notify_checkpoint_complete(2, {}).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  // The failed try's records stay in the log under another attempt id than the marker's.
  std::set<std::string> attempts;
  for (const auto& r : broker_.log()) {
    if (r.topic == "out") attempts.insert(r.header("vigil.attempt"));
  }
  EXPECT_EQ(attempts.size(), 2u);
}

TEST_F(KafkaSinkProtocolTest, CloseRetriesAFailedCommit) {
  auto plan = exactly_once_plan();
  auto batches = input_batches();
  discard_output out;
  auto in = start(plan);
  for (int b = 0; b <= epochs; ++b) in->op->process(0, *batches[b], out);
  quiet_logs quiet;
  broker_.fail_at(5);
  ASSERT_TRUE(in->op->close(out).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), all_ids());
}

TEST_F(KafkaSinkProtocolTest, RestoreRefusesStateOfAnotherVersion) {
  auto plan = exactly_once_plan();
  auto in = start(plan);
  std::string bytes = in->op->snapshot_state(1);
  bytes[4] = 9;
  auto st = start(plan)->op->restore_state(bytes);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("version 9 is not supported"), std::string::npos)
      << st.err().message;
  EXPECT_NE(st.err().message.find("kafka_sink 'job/sink/0'"), std::string::npos);
}

TEST_F(KafkaSinkProtocolTest, AtLeastOnceProducesRightAwayWithoutMarkers) {
  auto plan = make_plan(cfg(
      {{"bootstrap", str("fake:9092")}, {"topic", str("out")}, {"mode", str("at_least_once")}}));
  auto batches = input_batches();
  discard_output out;
  auto in = start(plan);
  in->op->process(0, *batches[0], out);
  ASSERT_EQ(broker_.committed("out").size(), 3u);
  EXPECT_EQ(broker_.committed("out")[0].header("vigil.epoch"), "1");
  EXPECT_FALSE(broker_.committed("out")[0].key.has_value());
  in->op->snapshot_state(1);
  EXPECT_TRUE(in->op->notify_checkpoint_complete(1, {}).ok());
  in->op->process(0, *batches[1], out);
  EXPECT_EQ(broker_.committed("out")[3].header("vigil.epoch"), "2");
  for (int b = 2; b <= epochs; ++b) in->op->process(0, *batches[b], out);
  ASSERT_TRUE(in->op->close(out).ok());
  EXPECT_EQ(ids_of(broker_.committed("out")), all_ids());
  EXPECT_TRUE(broker_.committed("out.progress").empty());
}

}  // namespace
}  // namespace vigil
