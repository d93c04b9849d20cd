// Property: the same input, run with parallelism 1, 2 and 4 and batch sizes 1, 7 and 1024,
// yields the same result multiset. Runs real graphs through the local executor (CAF actors,
// RocksDB state, credit-based channels, hash repartitioning).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "process.hpp"
#include "runtime/checkpoint_storage.hpp"

namespace vigil {
namespace {

/// Runs `yaml` after replacing {P}, {B} and {DIR}; returns the sorted lines of the files whose
/// names start with each of `outputs`.
std::vector<std::vector<std::string>> run_graph(std::string yaml, int parallelism, int batch,
                                                const std::vector<std::string>& outputs,
                                                const std::string& checkpoint_dir = "",
                                                job_summary* summary_out = nullptr) {
  std::string dir = testing::make_temp_dir("vigil-prop");
  yaml = std::regex_replace(yaml, std::regex("\\{P\\}"), std::to_string(parallelism));
  yaml = std::regex_replace(yaml, std::regex("\\{B\\}"), std::to_string(batch));
  yaml = std::regex_replace(yaml, std::regex("\\{DIR\\}"), dir);
  auto graph = parse_graph_yaml(yaml);
  EXPECT_TRUE(graph.ok()) << (graph.ok() ? "" : graph.err().message);
  if (!graph.ok()) return {};
  static const operator_registry registry = make_builtin_registry();
  auto plan = plan_job(*graph, registry);
  EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.err().message);
  if (!plan.ok()) return {};
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = checkpoint_dir;
  auto summary = run_local(*plan, opts);
  EXPECT_TRUE(summary.ok()) << (summary.ok() ? "" : summary.err().message);
  if (summary.ok() && summary_out != nullptr) *summary_out = *summary;
  std::vector<std::vector<std::string>> result;
  for (const auto& prefix : outputs) result.push_back(testing::read_sorted_lines(dir, prefix));
  std::filesystem::remove_all(dir);
  return result;
}

void expect_same_for_all_shapes(const std::string& yaml, const std::vector<std::string>& outputs,
                                size_t min_lines) {
  auto reference = run_graph(yaml, 1, 1024, outputs);
  ASSERT_EQ(reference.size(), outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_GE(reference[i].size(), min_lines) << outputs[i] << " produced too little";
  }
  for (int p : {1, 2, 4}) {
    for (int b : {1, 7, 1024}) {
      if (p == 1 && b == 1024) continue;
      auto got = run_graph(yaml, p, b, outputs);
      for (size_t i = 0; i < outputs.size(); ++i) {
        EXPECT_EQ(got[i], reference[i])
            << outputs[i] << " differs with parallelism " << p << ", batch size " << b;
      }
    }
  }
}

TEST(EngineProperty, WindowsGiveTheSameResultForEveryParallelismAndBatchSize) {
  const char* yaml = R"(
name: windows
max_parallelism: 32
execution: {batch_size: {B}}
nodes:
  - id: gen
    operator: generator
    config: {count: 20000, keys: 40, seed: 11, interval: 10ms, out_of_orderness: 300ms}
  - id: positive
    operator: filter
    parallelism: {P}
    config: {where: "value >= 10"}
  - id: keyed
    operator: key_by
    parallelism: {P}
    config: {key: key}
  - id: tumbling
    operator: tumbling_window
    parallelism: {P}
    config:
      size: 1s
      aggregates:
        - {name: n, fn: count}
        - {name: seq_sum, fn: sum, field: seq}
        - {name: lo, fn: min, field: value}
        - {name: hi, fn: max, field: value}
        - {name: first_seq, fn: first, field: seq}
        - {name: last_seq, fn: last, field: seq}
  - id: sessions
    operator: session_window
    parallelism: {P}
    config:
      gap: 400ms
      aggregates: [{name: n, fn: count}, {name: seq_sum, fn: sum, field: seq}]
  - id: tumbling_out
    operator: jsonl_file
    parallelism: {P}
    config: {path: "{DIR}/tumbling-{subtask}.jsonl"}
  - id: sessions_out
    operator: jsonl_file
    parallelism: {P}
    config: {path: "{DIR}/sessions-{subtask}.jsonl"}
  - id: late_out
    operator: jsonl_file
    parallelism: {P}
    config: {path: "{DIR}/late-{subtask}.jsonl"}
edges:
  - {from: gen, to: positive, partitioning: rebalance}
  - {from: positive, to: keyed}
  - {from: keyed, to: tumbling}
  - {from: keyed, to: sessions}
  - {from: tumbling, to: tumbling_out}
  - {from: tumbling, from_port: late, to: late_out}
  - {from: sessions, to: sessions_out}
)";
  expect_same_for_all_shapes(yaml, {"tumbling-", "sessions-", "late-"}, 0);
  auto reference = run_graph(yaml, 1, 1024, {"tumbling-", "sessions-", "late-"});
  // 20000 records over 200 s of event time, 40 keys: about 40 windows per second.
  EXPECT_GT(reference[0].size(), 4000u);
  EXPECT_GT(reference[1].size(), 1000u);
  EXPECT_TRUE(reference[2].empty()) << "the generator's watermark must not make records late";
}

TEST(EngineProperty, DedupAndJoinGiveTheSameResultForEveryParallelismAndBatchSize) {
  // Two feeds deliver the same 6000 messages (same seed), each up to 100 ms out of order;
  // dedup by message (seq) within 2 s keeps exactly one copy of each, whatever the arrival
  // order. The join pairs every message with the labs of the same key within 200 ms.
  const char* yaml = R"(
name: dedup-join
max_parallelism: 32
execution: {batch_size: {B}}
nodes:
  - id: feed_a
    operator: generator
    config: {count: 6000, keys: 30, seed: 5, interval: 20ms, out_of_orderness: 100ms}
  - id: feed_b
    operator: generator
    config: {count: 6000, keys: 30, seed: 5, interval: 20ms, out_of_orderness: 100ms}
  - id: labs
    operator: generator
    config: {count: 3000, keys: 30, seed: 6, interval: 40ms, out_of_orderness: 100ms}
  - id: both_feeds
    operator: union
    parallelism: {P}
  - id: by_message
    operator: key_by
    parallelism: {P}
    config: {key: seq}
  - id: once
    operator: dedup
    parallelism: {P}
    config: {ttl: 2s}
  - id: by_patient
    operator: key_by
    parallelism: {P}
    config: {key: key}
  - id: labs_keyed
    operator: key_by
    parallelism: {P}
    config: {key: key}
  - id: join
    operator: interval_join
    parallelism: {P}
    config: {lower: "-200ms", upper: "200ms"}
  - id: dedup_out
    operator: jsonl_file
    parallelism: {P}
    config: {path: "{DIR}/dedup-{subtask}.jsonl"}
  - id: join_out
    operator: jsonl_file
    parallelism: {P}
    config: {path: "{DIR}/join-{subtask}.jsonl"}
edges:
  - {from: feed_a, to: both_feeds, partitioning: rebalance}
  - {from: feed_b, to: both_feeds, partitioning: rebalance}
  - {from: both_feeds, to: by_message}
  - {from: by_message, to: once}
  - {from: once, to: by_patient}
  - {from: by_patient, to: join, to_port: left}
  - {from: labs, to: labs_keyed, partitioning: rebalance}
  - {from: labs_keyed, to: join, to_port: right}
  - {from: once, to: dedup_out}
  - {from: join, to: join_out}
)";
  expect_same_for_all_shapes(yaml, {"dedup-", "join-"}, 50);
  auto reference = run_graph(yaml, 1, 1024, {"dedup-", "join-"});
  EXPECT_EQ(reference[0].size(), 6000u) << "each message exactly once";
}

TEST(EngineSummary, DedupReportsTheDuplicatesItDropped) {
  auto graph = parse_graph_yaml(R"(
nodes:
  - {id: a, operator: generator, config: {count: 1000, keys: 10, seed: 9}}
  - {id: b, operator: generator, config: {count: 1000, keys: 10, seed: 9}}
  - {id: both, operator: union}
  - {id: by_message, operator: key_by, config: {key: seq}}
  - {id: once, operator: dedup, parallelism: 2, config: {ttl: 1m}}
  - {id: out, operator: "null"}
edges:
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: by_message}
  - {from: by_message, to: once}
  - {from: once, to: out}
)");
  ASSERT_TRUE(graph.ok()) << graph.err().message;
  static const operator_registry registry = make_builtin_registry();
  auto plan = plan_job(*graph, registry);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  run_options opts;
  opts.state_dir = testing::make_temp_dir("vigil-summary");
  auto summary = run_local(*plan, opts);
  ASSERT_TRUE(summary.ok()) << summary.err().message;
  std::filesystem::remove_all(opts.state_dir);
  for (const auto& n : summary->nodes) {
    if (n.id != "once") continue;
    EXPECT_EQ(n.records_in, 2000u);
    EXPECT_EQ(n.rows_out[0].second, 1000u);
    EXPECT_EQ(n.dropped_records, 1000u) << "every second copy is a counted duplicate";
    return;
  }
  ADD_FAILURE() << "no node 'once' in the summary";
}

TEST(EngineProperty, AlignedCheckpointsDoNotChangeResults) {
  // A union and a two-input join align barriers from several inputs; the sources are throttled
  // so that checkpoints (every 20 ms) fall in the middle of the stream.
  const char* yaml = R"(
name: checkpointed
max_parallelism: 32
{CHECKPOINTS}
nodes:
  - id: feed_a
    operator: generator
    config: {count: 3000, keys: 30, seed: 5, interval: 20ms, out_of_orderness: 100ms, rate: 6000}
  - id: feed_b
    operator: generator
    config: {count: 3000, keys: 30, seed: 5, interval: 20ms, out_of_orderness: 100ms, rate: 6000}
  - id: labs
    operator: generator
    config: {count: 1500, keys: 30, seed: 6, interval: 40ms, out_of_orderness: 100ms, rate: 3000}
  - {id: both_feeds, operator: union, parallelism: 2}
  - {id: by_message, operator: key_by, parallelism: 2, config: {key: seq}}
  - {id: once, operator: dedup, parallelism: 2, config: {ttl: 2s}}
  - {id: by_patient, operator: key_by, parallelism: 2, config: {key: key}}
  - {id: labs_keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - {id: join, operator: interval_join, parallelism: 2, config: {lower: "-200ms", upper: "200ms"}}
  - {id: dedup_out, operator: jsonl_file, parallelism: 2, config: {path: "{DIR}/dedup-{subtask}.jsonl"}}
  - {id: join_out, operator: jsonl_file, parallelism: 2, config: {path: "{DIR}/join-{subtask}.jsonl"}}
edges:
  - {from: feed_a, to: both_feeds, partitioning: rebalance}
  - {from: feed_b, to: both_feeds, partitioning: rebalance}
  - {from: both_feeds, to: by_message}
  - {from: by_message, to: once}
  - {from: once, to: by_patient}
  - {from: by_patient, to: join, to_port: left}
  - {from: labs, to: labs_keyed, partitioning: rebalance}
  - {from: labs_keyed, to: join, to_port: right}
  - {from: once, to: dedup_out}
  - {from: join, to: join_out}
)";
  std::string plain = std::regex_replace(yaml, std::regex("\\{CHECKPOINTS\\}"), "");
  std::string checkpointed = std::regex_replace(yaml, std::regex("\\{CHECKPOINTS\\}"),
                                                "checkpoints: {interval_ms: 20, retain: 2}");
  auto reference = run_graph(plain, 1, 1024, {"dedup-", "join-"});
  std::string storage = testing::make_temp_dir("vigil-checkpoints");
  job_summary summary;
  auto got = run_graph(checkpointed, 1, 1024, {"dedup-", "join-"}, storage, &summary);
  EXPECT_EQ(reference[0].size(), 3000u);
  EXPECT_EQ(got, reference);
  std::printf("[ info     ] %llu checkpoints completed, %llu failed, last %lld (%llu bytes)\n",
              static_cast<unsigned long long>(summary.checkpoints.completed),
              static_cast<unsigned long long>(summary.checkpoints.failed),
              static_cast<long long>(summary.checkpoints.last_completed),
              static_cast<unsigned long long>(summary.checkpoints.last_bytes));
  EXPECT_GE(summary.checkpoints.completed, 3u);
  EXPECT_EQ(summary.checkpoints.failed, 0u);
  // Retention keeps the newest two; both are complete, with the join's RocksDB state.
  checkpoint_storage chk(storage);
  auto kept = chk.completed();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept.back(), summary.checkpoints.last_completed);
  auto files = chk.shared_files(kept.front(), "join-0");
  ASSERT_TRUE(files.ok()) << files.err().message;
  std::filesystem::remove_all(storage);
}

TEST(EngineProperty, ARunRestoredFromACheckpointLosesAndRepeatsNothing) {
  // Run B is cancelled once two checkpoints completed; run C starts from the newest one. Every
  // window C emits must be exactly as in an uninterrupted run (no state lost or counted
  // twice), and B and C together must cover that run's output (B may also have emitted
  // windows after the checkpoint: a plain file sink is not transactional).
  const char* yaml = R"(
name: restored
max_parallelism: 32
checkpoints: {interval_ms: 30, retain: 3}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: 40000, keys: 20, seed: 3, interval: 10ms, out_of_orderness: 50ms, rate: 40000}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 2
    config:
      size: 5s
      aggregates: [{name: n, fn: count}, {name: seq_sum, fn: sum, field: seq}]
  - {id: out, operator: jsonl_file, parallelism: 2, config: {path: "{DIR}/win-{subtask}.jsonl"}}
edges:
  - {from: gen, to: keyed}
  - {from: keyed, to: win}
  - {from: win, to: out}
)";
  static const operator_registry registry = make_builtin_registry();
  auto run = [&](const std::string& out_dir, const std::string& storage, int64_t restore_id,
                 const std::atomic<bool>* cancel) {
    auto graph = parse_graph_yaml(std::regex_replace(yaml, std::regex("\\{DIR\\}"), out_dir));
    EXPECT_TRUE(graph.ok());
    auto plan = plan_job(*graph, registry);
    EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.err().message);
    run_options opts;
    opts.state_dir = out_dir + "/state";
    opts.checkpoint_dir = storage;
    opts.cancel = cancel;
    if (restore_id > 0) {
      opts.restore_dir = storage;
      opts.restore_id = restore_id;
    }
    return run_local(*plan, opts);
  };
  std::string dir = testing::make_temp_dir("vigil-restore");
  ASSERT_TRUE(run(dir + "/a", dir + "/chk-a", 0, nullptr).ok());
  auto reference = testing::read_sorted_lines(dir + "/a", "win-");
  ASSERT_GT(reference.size(), 100u);

  checkpoint_storage storage(dir + "/chk-b");
  // Cancels run B once it has two complete checkpoints (or gives up after 30 s).
  auto b = testing::run_until_checkpoints(storage, 2, [&](std::atomic<bool>* cancel) {
    return run(dir + "/b", dir + "/chk-b", 0, cancel);
  });
  ASSERT_FALSE(b.ok()) << "run B ended before two checkpoints completed";
  auto done = storage.completed();
  ASSERT_GE(done.size(), 2u);

  auto c = run(dir + "/c", dir + "/chk-b", done.back(), nullptr);
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_LT(c->nodes[0].rows_out[0].second, 40000u) << "the sources resumed from their position";
  auto from_b = testing::read_sorted_lines(dir + "/b", "win-");
  auto from_c = testing::read_sorted_lines(dir + "/c", "win-");
  ASSERT_FALSE(from_c.empty());
  std::set<std::string> expected(reference.begin(), reference.end());
  for (const auto& line : from_c)
    EXPECT_EQ(expected.count(line), 1u) << "not in the reference: " << line;
  std::set<std::string> got(from_b.begin(), from_b.end());
  got.insert(from_c.begin(), from_c.end());
  for (const auto& line : reference) EXPECT_EQ(got.count(line), 1u) << "lost: " << line;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil
