// The kafka_sink restored with another parallelism, against the fake transactional Kafka:
// every old subtask's pending epochs are committed once, under the old subtask's sink id, by
// the one new subtask that owns the old state; old ids are fenced; a crash at any client call
// of the new job, followed by a restore, still leaves every record exactly once.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
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
constexpr int batches = 5;     ///< Epoch e's input is batch e (1-based); the last one is closed.
constexpr int per_batch = 12;  ///< Records per batch over all subtasks.
constexpr int savepoint = 3;   ///< The old job's last complete checkpoint.
constexpr int total_records = batches * per_batch;

using testing::discard_output;

using kafka::sink_test::quiet_logs;
using kafka::sink_test::rows_schema;

/// The records of batch `e` (1-based) that subtask `k` of `p` receives: ids with id % p == k,
/// as a key_by on the id would route them.
batch_ptr batch_for(int e, uint32_t k, uint32_t p) {
  std::vector<std::vector<cell>> rows;
  std::vector<int64_t> times;
  for (int64_t id = int64_t{e - 1} * per_batch + 1; id <= int64_t{e} * per_batch; ++id) {
    if (static_cast<uint32_t>(id % p) != k) continue;
    rows.push_back({id, cell{"p" + std::to_string(id % 3)}});
    times.push_back(jan1_2026 + id * 1'000'000);
  }
  return make_rows(rows_schema(), rows, times);
}

/// The operator states of one complete checkpoint of the whole sink node.
struct checkpoint {
  uint32_t parallelism = 0;
  int64_t id = 0;
  std::vector<std::string> states;  ///< By subtask.
};

class KafkaSinkRescaleTest : public ::testing::Test {
 protected:
  KafkaSinkRescaleTest() { reset(); }

  void reset() {
    broker_ = fake_txn_broker();
    registry_ = operator_registry();
    kafka_sink_hooks hooks;
    hooks.make_client = broker_.maker();
    hooks.now_us = [] { return int64_t{1'000'000'000}; };
    registry_.add(make_kafka_sink_factory(std::move(hooks)));
    config_ = cfg({{"bootstrap", str("fake:9092")},
                   {"topic", str("out")},
                   {"key_field", str("name")},
                   {"transaction_timeout", str("1s")}});
    plan_context ctx;
    ctx.node_id = "sink";
    ctx.config = &config_;
    ctx.inputs = {stream_info{rows_schema(), {}}};
    auto p = registry_.find("kafka_sink")->plan(ctx);
    ASSERT_TRUE(p.ok()) << p.err().message;
    plan_ = *p;
  }

  struct instance {
    operator_context ctx;
    std::unique_ptr<operator_base> op;
  };

  /// Subtask `k` of `p`; `restored_from` is the checkpoint's parallelism when restoring, else 0.
  std::unique_ptr<instance> start(uint32_t k, uint32_t p, uint32_t restored_from = 0) {
    auto in = std::make_unique<instance>();
    in->ctx.job_name = "job";
    in->ctx.node_id = "sink";
    in->ctx.subtask_index = k;
    in->ctx.parallelism = p;
    in->ctx.restored_parallelism = restored_from;
    in->op = plan_->instantiate();
    auto st = in->op->open(in->ctx);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    return in;
  }

  /// The old job at parallelism `p`: epochs 1..savepoint, checkpoint 1 notified everywhere,
  /// checkpoint 2 only to subtask 0, checkpoint `savepoint` to nobody (the job was stopped
  /// with it). The input of epoch savepoint+1 was processed but never checkpointed. Returns
  /// the savepoint; the old instances are left in `old` (zombies, if a test wants them).
  checkpoint run_old_job(uint32_t p, std::vector<std::unique_ptr<instance>>* old = nullptr) {
    std::vector<std::unique_ptr<instance>> subtasks;
    for (uint32_t k = 0; k < p; ++k) subtasks.push_back(start(k, p));
    checkpoint sp{p, savepoint, {}};
    for (int e = 1; e <= savepoint; ++e) {
      for (uint32_t k = 0; k < p; ++k) subtasks[k]->op->process(0, *batch_for(e, k, p), out_);
      for (uint32_t k = 0; k < p; ++k) {
        std::string bytes = subtasks[k]->op->snapshot_state(e);
        if (e == savepoint) sp.states.push_back(std::move(bytes));
      }
      for (uint32_t k = 0; k < p; ++k) {
        if (e == 1 || (e == 2 && k == 0)) {
          EXPECT_TRUE(subtasks[k]->op->notify_checkpoint_complete(e, {}).ok());
        }
      }
    }
    for (uint32_t k = 0; k < p; ++k) {
      subtasks[k]->op->process(0, *batch_for(savepoint + 1, k, p), out_);
    }
    if (old != nullptr) *old = std::move(subtasks);
    return sp;
  }

  /// Runs the job at parallelism `p` from checkpoint `from` to the end of the input. A crash
  /// (armed with `crash`, if set) restarts every subtask from the newest complete checkpoint,
  /// as the runtime does; the restore of a checkpoint of another parallelism calls
  /// restore_state() on every subtask once per old subtask, in order.
  void run_new_job(checkpoint from, uint32_t p, std::optional<std::pair<int64_t, bool>> crash) {
    checkpoint current = std::move(from);
    for (int restarts = 0;; ++restarts) {
      ASSERT_LT(restarts, 10) << "the job does not finish";
      broker_.clear_crash();
      if (crash && restarts == 0) broker_.crash_at(crash->first, crash->second);
      bool crashed = false;
      std::vector<std::unique_ptr<instance>> subtasks;
      const bool rescaled = current.parallelism != p;
      for (uint32_t k = 0; k < p && !crashed; ++k) {
        subtasks.push_back(start(k, p, current.parallelism));
        for (uint32_t j = 0; j < current.parallelism && !crashed; ++j) {
          if (!rescaled && j != k) continue;
          auto st = subtasks[k]->op->restore_state(current.states[j]);
          crashed = broker_.crashed();
          if (!crashed) {
            ASSERT_TRUE(st.ok()) << st.err().message;
          }
        }
      }
      for (int e = static_cast<int>(current.id) + 1; e <= batches && !crashed; ++e) {
        for (uint32_t k = 0; k < p; ++k) subtasks[k]->op->process(0, *batch_for(e, k, p), out_);
        if (e == batches) {
          for (uint32_t k = 0; k < p && !crashed; ++k) {
            auto st = subtasks[k]->op->close(out_);
            crashed = broker_.crashed();
            if (!crashed) {
              ASSERT_TRUE(st.ok()) << st.err().message;
            }
          }
          break;
        }
        checkpoint next{p, e, {}};
        for (uint32_t k = 0; k < p; ++k) next.states.push_back(subtasks[k]->op->snapshot_state(e));
        current = std::move(next);
        for (uint32_t k = 0; k < p && !crashed; ++k) {
          EXPECT_TRUE(subtasks[k]->op->notify_checkpoint_complete(e, {}).ok());
          crashed = broker_.crashed();
        }
      }
      if (!crashed) return;
    }
  }

  /// Restores `from` at parallelism `p` and lets every subtask process the rest of the input
  /// without a checkpoint; the subtasks in `finished` reach their end (close(), final commits),
  /// the others crash before it.
  void run_unfinished_attempt(const checkpoint& from, uint32_t p,
                              const std::set<uint32_t>& finished) {
    std::vector<std::unique_ptr<instance>> subtasks;
    for (uint32_t k = 0; k < p; ++k) {
      subtasks.push_back(start(k, p, from.parallelism));
      for (uint32_t j = 0; j < from.parallelism; ++j) {
        auto st = subtasks[k]->op->restore_state(from.states[j]);
        ASSERT_TRUE(st.ok()) << st.err().message;
      }
      for (int e = static_cast<int>(from.id) + 1; e <= batches; ++e) {
        subtasks[k]->op->process(0, *batch_for(e, k, p), out_);
      }
    }
    for (uint32_t k : finished) {
      auto st = subtasks[k]->op->close(out_);
      ASSERT_TRUE(st.ok()) << st.err().message;
    }
  }

  /// The view a consumer without transaction isolation rebuilds: the records of the whole log
  /// whose (sink, epoch, attempt) headers match a committed marker. It must equal the input
  /// exactly, as must the committed records, and no (sink, epoch) may have two markers.
  /// `zombie`, a subtask of the old job that was never stopped, hears that the savepoint's
  /// checkpoint completed and then closes: its commits are fenced, and the output stays exactly
  /// once.
  void expect_zombie_fenced(instance& zombie) {
    EXPECT_TRUE(zombie.op->notify_checkpoint_complete(savepoint, {}).ok());
    auto closed = zombie.op->close(out_);
    ASSERT_FALSE(closed.ok());
    EXPECT_NE(closed.err().message.find("fenced"), std::string::npos) << closed.err().message;
    expect_exactly_once("after the zombie's tries");
  }

  void expect_exactly_once(const std::string& context) {
    std::set<std::tuple<std::string, std::string, std::string>> marked;
    std::set<std::pair<std::string, int64_t>> epochs_seen;
    std::map<std::tuple<std::string, std::string, std::string>, int64_t> expected_records;
    for (const auto& r : broker_.committed("out.progress")) {
      auto m = kafka::parse_marker(r.value);
      ASSERT_TRUE(m.ok()) << m.err().message;
      EXPECT_EQ(r.key, m->sink) << context;
      EXPECT_TRUE(epochs_seen.insert({m->sink, m->epoch}).second)
          << context << ": " << m->sink << " epoch " << m->epoch << " committed twice";
      marked.insert({m->sink, std::to_string(m->epoch), m->attempt});
      expected_records[{m->sink, std::to_string(m->epoch), m->attempt}] = m->records;
    }
    std::vector<int64_t> view;
    std::map<std::tuple<std::string, std::string, std::string>, int64_t> counted;
    for (const auto& r : broker_.log()) {
      if (r.topic != "out") continue;
      std::tuple<std::string, std::string, std::string> k{
          r.header("vigil.sink"), r.header("vigil.epoch"), r.header("vigil.attempt")};
      if (marked.count(k) == 0) continue;
      ++counted[k];
      view.push_back(nlohmann::json::parse(r.value).at("id"));
    }
    EXPECT_EQ(counted, expected_records) << context << ": marker record counts";
    std::vector<int64_t> committed;
    for (const auto& r : broker_.committed("out")) {
      committed.push_back(nlohmann::json::parse(r.value).at("id"));
    }
    std::vector<int64_t> all;
    for (int64_t i = 1; i <= total_records; ++i) all.push_back(i);
    std::sort(view.begin(), view.end());
    std::sort(committed.begin(), committed.end());
    EXPECT_EQ(view, all) << context << ": view rebuilt from markers";
    EXPECT_EQ(committed, all) << context << ": committed records";
  }

  /// The sink ids of the committed records of epoch `epoch`.
  std::set<std::string> sinks_of_epoch(int64_t epoch) {
    std::set<std::string> out;
    for (const auto& r : broker_.committed("out")) {
      if (r.header("vigil.epoch") == std::to_string(epoch)) out.insert(r.header("vigil.sink"));
    }
    return out;
  }

  fake_txn_broker broker_;
  operator_registry registry_;
  config_map config_;
  plan_ptr plan_;
  discard_output out_;
};

std::set<std::string> ids(uint32_t p) {
  std::set<std::string> out;
  for (uint32_t k = 0; k < p; ++k) out.insert("job/sink/" + std::to_string(k));
  return out;
}

TEST_F(KafkaSinkRescaleTest, RestoresWithMoreFewerOrOneSubtaskExactlyOnce) {
  for (auto [from, to] :
       std::vector<std::pair<uint32_t, uint32_t>>{{2, 4}, {4, 2}, {3, 1}, {1, 3}, {3, 2}}) {
    reset();
    std::string context = std::to_string(from) + " -> " + std::to_string(to);
    checkpoint sp = run_old_job(from);
    // Nothing of epoch 3, and only subtask 0's epoch 2, is committed before the restore.
    ASSERT_TRUE(sinks_of_epoch(savepoint).empty()) << context;
    run_new_job(sp, to, std::nullopt);
    expect_exactly_once(context);
    // The old epochs are committed under the ids of the old subtasks that wrote them, the new
    // ones under the new subtasks' ids.
    EXPECT_EQ(sinks_of_epoch(savepoint), ids(from)) << context;
    EXPECT_EQ(sinks_of_epoch(savepoint + 1), ids(to)) << context;
    if (HasFailure()) return;
  }
}

TEST_F(KafkaSinkRescaleTest, ACrashAtEveryClientCallOfTheNewJobStillExactlyOnce) {
  quiet_logs quiet;
  for (auto [from, to] : std::vector<std::pair<uint32_t, uint32_t>>{{2, 4}, {4, 2}, {3, 1}}) {
    reset();
    checkpoint sp = run_old_job(from);
    int64_t before = broker_.ops();
    run_new_job(sp, to, std::nullopt);
    const int64_t clean_ops = broker_.ops() - before;
    ASSERT_GT(clean_ops, 10);
    for (int64_t k = 1; k <= clean_ops + 1; ++k) {
      for (bool after : {false, true}) {
        reset();
        checkpoint again = run_old_job(from);
        run_new_job(again, to, std::pair<int64_t, bool>{k, after});
        expect_exactly_once(std::to_string(from) + " -> " + std::to_string(to) + ", crash " +
                            (after ? "after" : "at") + " call " + std::to_string(k));
        if (HasFailure()) return;
      }
    }
  }
}

TEST_F(KafkaSinkRescaleTest, AZombieOfARetiredSubtaskIsFencedAfterAScaleDown) {
  std::vector<std::unique_ptr<instance>> old;
  checkpoint sp = run_old_job(4, &old);
  // The new job at parallelism 2: new subtask 1 owns old subtask 3's state (3 % 2).
  run_new_job(sp, 2, std::nullopt);
  expect_exactly_once("after the restore");
  // Old subtask 3 was never stopped: it hears of checkpoint 3 now and commits its epochs 2 and
  // 3 again, plus epoch 4 at its end; all fenced.
  expect_zombie_fenced(*old[3]);
}

TEST_F(KafkaSinkRescaleTest, AZombieOfAnOldSubtaskWithANewSubtasksIdIsFencedAfterAScaleUp) {
  std::vector<std::unique_ptr<instance>> old;
  checkpoint sp = run_old_job(2, &old);
  // New subtask 0 takes over old subtask 0's state with a second client of its own
  // transactional.id, closes it, then opens its own: old subtask 0, never stopped, is fenced.
  run_new_job(sp, 3, std::nullopt);
  expect_exactly_once("after the restore");
  expect_zombie_fenced(*old[0]);
}

TEST_F(KafkaSinkRescaleTest, AnOldIdWithoutPendingEpochsIsFencedToo) {
  // Old subtask 3 of 4 received its share of batches 2 and 3 in epoch 2, committed it, and has
  // no pending epoch in the savepoint (checkpoint 3, never notified); then it began epoch 4.
  std::vector<std::unique_ptr<instance>> old;
  for (uint32_t k = 0; k < 4; ++k) old.push_back(start(k, 4));
  checkpoint sp{4, savepoint, {}};
  for (int e = 1; e <= savepoint; ++e) {
    for (uint32_t k = 0; k < 4; ++k) {
      if (k == 3 && e == savepoint) continue;
      old[k]->op->process(0, *batch_for(e, k, 4), out_);
      if (k == 3 && e == savepoint - 1) old[k]->op->process(0, *batch_for(e + 1, k, 4), out_);
    }
    for (uint32_t k = 0; k < 4; ++k) {
      std::string bytes = old[k]->op->snapshot_state(e);
      if (e == savepoint) sp.states.push_back(std::move(bytes));
    }
    if (e == savepoint) break;
    for (uint32_t k = 0; k < 4; ++k) {
      EXPECT_TRUE(old[k]->op->notify_checkpoint_complete(e, {}).ok());
    }
  }
  auto state = kafka::decode_sink_state(sp.states[3]);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->pending.empty());
  old[3]->op->process(0, *batch_for(savepoint + 1, 3, 4), out_);
  old[3]->op->snapshot_state(savepoint + 1);

  run_new_job(sp, 2, std::nullopt);
  expect_exactly_once("after the restore");
  // The zombie's epoch 4 duplicates what the new job wrote: its commit must be fenced.
  EXPECT_TRUE(old[3]->op->notify_checkpoint_complete(savepoint + 1, {}).ok());
  auto closed = old[3]->op->close(out_);
  EXPECT_FALSE(closed.ok());
  expect_exactly_once("after the zombie's tries");
}

TEST_F(KafkaSinkRescaleTest, VersionOneStatesAreMatchedToOldSubtasksByCallOrder) {
  checkpoint sp = run_old_job(3);
  // Rewrites each state as version 1 (no writer sink id, no subtask index).
  for (auto& bytes : sp.states) {
    auto st = kafka::decode_sink_state(bytes);
    ASSERT_TRUE(st.ok());
    size_t drop = 4 + st->sink_id.size() + 4;
    bytes = bytes.substr(0, 4) + std::string("\x01\0\0\0", 4) + bytes.substr(8 + drop);
    auto v1 = kafka::decode_sink_state(bytes);
    ASSERT_TRUE(v1.ok()) << v1.err().message;
    ASSERT_EQ(v1->subtask, -1);
  }
  run_new_job(sp, 2, std::nullopt);
  expect_exactly_once("version 1 states, 3 -> 2");
  EXPECT_EQ(sinks_of_epoch(savepoint), ids(3));
}

TEST_F(KafkaSinkRescaleTest, ARunThatCommittedEverythingDiscardsTheReplayedInput) {
  std::vector<std::unique_ptr<instance>> old;
  for (uint32_t k = 0; k < 2; ++k) old.push_back(start(k, 2));
  checkpoint cp1{2, 1, {}};
  for (uint32_t k = 0; k < 2; ++k) {
    old[k]->op->process(0, *batch_for(1, k, 2), out_);
    cp1.states.push_back(old[k]->op->snapshot_state(1));
  }
  for (uint32_t k = 0; k < 2; ++k) {
    EXPECT_TRUE(old[k]->op->notify_checkpoint_complete(1, {}).ok());
    for (int e = 2; e <= batches; ++e) old[k]->op->process(0, *batch_for(e, k, 2), out_);
    ASSERT_TRUE(old[k]->op->close(out_).ok());
  }
  expect_exactly_once("the old run");
  // Both old subtasks committed their final epochs; a restore of checkpoint 1 at parallelism
  // 3 replays epochs 2.. to subtasks that must write none of it.
  std::vector<std::unique_ptr<instance>> fresh;
  uint64_t dropped = 0;
  for (uint32_t k = 0; k < 3; ++k) {
    fresh.push_back(start(k, 3, 2));
    for (uint32_t j = 0; j < 2; ++j) ASSERT_TRUE(fresh[k]->op->restore_state(cp1.states[j]).ok());
    for (int e = 2; e <= batches; ++e) fresh[k]->op->process(0, *batch_for(e, k, 3), out_);
    ASSERT_TRUE(fresh[k]->op->close(out_).ok());
    dropped += fresh[k]->ctx.dropped_records;
  }
  expect_exactly_once("after the rescaled restore");
  EXPECT_EQ(dropped, static_cast<uint64_t>(total_records - per_batch));
}

TEST_F(KafkaSinkRescaleTest, ARescaleRestoredAgainAfterSomeSubtasksFinishedWritesEveryRecordOnce) {
  // Savepoint S of parallelism 2 is restored at 3; the new subtasks in `finished` reach their
  // end and commit their final epochs, no checkpoint completes (none is taken once a subtask
  // has finished), the others fail before their end; the job restores S at 3 again and runs to
  // the end. The new job's final markers must neither make a new subtask discard input it has
  // not written (data loss) nor refuse the restore.
  for (const std::set<uint32_t>& finished :
       {std::set<uint32_t>{0, 1}, std::set<uint32_t>{0}, std::set<uint32_t>{1, 2},
        std::set<uint32_t>{0, 1, 2}}) {
    reset();
    std::string context = "finished:";
    for (uint32_t k : finished) context += " " + std::to_string(k);
    checkpoint sp = run_old_job(2);
    run_unfinished_attempt(sp, 3, finished);
    if (HasFailure()) return;
    run_new_job(sp, 3, std::nullopt);
    expect_exactly_once(context);
    // The old epochs stay under the old ids.
    EXPECT_EQ(sinks_of_epoch(savepoint), ids(2)) << context;
    if (HasFailure()) return;
  }
}

TEST_F(KafkaSinkRescaleTest, ACrashAtEveryClientCallOfARepeatedRescaleStillExactlyOnce) {
  // As above with new subtasks 0 and 1 finished, then a crash at any client call of the second
  // attempt (its takeovers included), followed by restores until the job finishes.
  quiet_logs quiet;
  checkpoint sp = run_old_job(2);
  run_unfinished_attempt(sp, 3, {0, 1});
  int64_t before = broker_.ops();
  run_new_job(sp, 3, std::nullopt);
  const int64_t clean_ops = broker_.ops() - before;
  ASSERT_GT(clean_ops, 10);
  for (int64_t k = 1; k <= clean_ops + 1; ++k) {
    for (bool after : {false, true}) {
      reset();
      checkpoint again = run_old_job(2);
      run_unfinished_attempt(again, 3, {0, 1});
      run_new_job(again, 3, std::pair<int64_t, bool>{k, after});
      expect_exactly_once(std::string("crash ") + (after ? "after" : "at") + " call " +
                          std::to_string(k));
      if (HasFailure()) return;
    }
  }
}

TEST_F(KafkaSinkRescaleTest, ACheckpointOfTheRescaledJobRestoresAtItsParallelism) {
  // S of parallelism 2 restored at 3; the new job completes checkpoint 4, new subtasks 0 and 1
  // reach their end, subtask 2 fails; the job restores checkpoint 4 (parallelism 3, no rescale).
  checkpoint sp = run_old_job(2);
  std::vector<std::unique_ptr<instance>> first;
  checkpoint cp4{3, savepoint + 1, {}};
  for (uint32_t k = 0; k < 3; ++k) {
    first.push_back(start(k, 3, 2));
    for (uint32_t j = 0; j < 2; ++j) ASSERT_TRUE(first[k]->op->restore_state(sp.states[j]).ok());
    first[k]->op->process(0, *batch_for(savepoint + 1, k, 3), out_);
    cp4.states.push_back(first[k]->op->snapshot_state(savepoint + 1));
  }
  for (uint32_t k = 0; k < 3; ++k) {
    EXPECT_TRUE(first[k]->op->notify_checkpoint_complete(savepoint + 1, {}).ok());
    for (int e = savepoint + 2; e <= batches; ++e) {
      first[k]->op->process(0, *batch_for(e, k, 3), out_);
    }
  }
  for (uint32_t k = 0; k < 2; ++k) ASSERT_TRUE(first[k]->op->close(out_).ok());
  first.clear();
  run_new_job(cp4, 3, std::nullopt);
  expect_exactly_once("checkpoint 4 of the rescaled job");
  EXPECT_EQ(sinks_of_epoch(savepoint + 1), ids(3));
}

TEST_F(KafkaSinkRescaleTest, RefusesWhenOnlySomeOldSubtasksCommittedTheirFinalEpoch) {
  std::vector<std::unique_ptr<instance>> old;
  for (uint32_t k = 0; k < 2; ++k) old.push_back(start(k, 2));
  checkpoint cp1{2, 1, {}};
  for (uint32_t k = 0; k < 2; ++k) {
    old[k]->op->process(0, *batch_for(1, k, 2), out_);
    cp1.states.push_back(old[k]->op->snapshot_state(1));
    EXPECT_TRUE(old[k]->op->notify_checkpoint_complete(1, {}).ok());
  }
  // Only old subtask 0 reached its end.
  for (int e = 2; e <= batches; ++e) old[0]->op->process(0, *batch_for(e, 0, 2), out_);
  ASSERT_TRUE(old[0]->op->close(out_).ok());
  for (uint32_t k = 0; k < 3; ++k) {
    auto fresh = start(k, 3, 2);
    status st;
    for (uint32_t j = 0; j < 2 && st.ok(); ++j) st = fresh->op->restore_state(cp1.states[j]);
    ASSERT_FALSE(st.ok()) << "subtask " << k;
    EXPECT_NE(st.err().message.find("restore with parallelism 2"), std::string::npos)
        << st.err().message;
  }
}

TEST_F(KafkaSinkRescaleTest, AtLeastOnceRestoresWithAnotherParallelism) {
  config_ =
      cfg({{"bootstrap", str("fake:9092")}, {"topic", str("out")}, {"mode", str("at_least_once")}});
  plan_context ctx;
  ctx.node_id = "sink";
  ctx.config = &config_;
  ctx.inputs = {stream_info{rows_schema(), {}}};
  auto p = registry_.find("kafka_sink")->plan(ctx);
  ASSERT_TRUE(p.ok()) << p.err().message;
  plan_ = *p;
  checkpoint cp{2, 1, {}};
  for (uint32_t k = 0; k < 2; ++k) {
    auto in = start(k, 2);
    in->op->process(0, *batch_for(1, k, 2), out_);
    cp.states.push_back(in->op->snapshot_state(1));
  }
  for (uint32_t k = 0; k < 3; ++k) {
    auto in = start(k, 3, 2);
    for (uint32_t j = 0; j < 2; ++j) {
      auto st = in->op->restore_state(cp.states[j]);
      ASSERT_TRUE(st.ok()) << st.err().message;
    }
    in->op->process(0, *batch_for(2, k, 3), out_);
    ASSERT_TRUE(in->op->close(out_).ok());
  }
  EXPECT_EQ(broker_.committed("out").size(), static_cast<size_t>(2 * per_batch));
}

}  // namespace
}  // namespace vigil
