// The lake sink end to end: a checkpointed job writing a Delta table is cancelled, restarted
// from its newest checkpoint and run to the end; DuckDB then reads the table's live files
// and finds every source record exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "delta_files.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "lake/delta_log.hpp"
#include "lake/delta_verify.hpp"
#include "process.hpp"
#include "runtime/checkpoint_storage.hpp"

namespace vigil {
namespace {

/// Runs the scenario with `sink_config` added to the sink's config (e.g. partitioning).
void expect_exactly_once_across_a_restart(const std::string& sink_config) {
  const std::string node = testing::find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  const char* yaml = R"(
name: lake-exactly-once
checkpoints: {interval_ms: 30}
nodes:
  - {id: gen, operator: generator, parallelism: 2, config: {count: 30000, keys: 10, rate: 30000}}
  - {id: lake, operator: lake_sink, parallelism: 2,
     config: {path: "{DIR}/table", max_file_rows: 700 {EXTRA}}}
edges:
  - {from: gen, to: lake}
)";
  std::string dir = testing::make_temp_dir("vigil-lake-sink");
  static const operator_registry registry = make_builtin_registry();
  std::string text = std::regex_replace(yaml, std::regex("\\{DIR\\}"), dir);
  text = std::regex_replace(text, std::regex("\\{EXTRA\\}"), sink_config);
  auto graph = parse_graph_yaml(text);
  ASSERT_TRUE(graph.ok()) << graph.err().message;
  auto plan = plan_job(*graph, registry);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";

  // Run 1: cancelled once two checkpoints completed (their epochs are committed; whatever
  // it wrote after the newest one is left in files the log never references).
  checkpoint_storage storage(opts.checkpoint_dir);
  auto first = testing::run_until_checkpoints(storage, 2, [&](std::atomic<bool>* cancel) {
    opts.cancel = cancel;
    auto r = run_local(*plan, opts);
    opts.cancel = nullptr;  // `cancel` ends with the call.
    return r;
  });
  ASSERT_FALSE(first.ok()) << "the job ended before two checkpoints completed";

  // Run 2: from the newest checkpoint to the end.
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto second = run_local(*plan, opts);
  ASSERT_TRUE(second.ok()) << second.err().message;

  auto snapshot = lake::read_delta_snapshot(dir + "/table");
  ASSERT_TRUE(snapshot.ok()) << snapshot.err().message;
  auto r = testing::run_process(
      {node, VIGIL_DUCKDB_QUERY,
       "SELECT count(*) AS n, count(DISTINCT seq) AS distinct_seq, min(seq) AS lo, "
       "max(seq) AS hi FROM read_parquet(" +
           testing::delta_live_files(dir + "/table") + ", hive_partitioning = true)"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"n\":\"30000\",\"distinct_seq\":\"30000\",\"lo\":\"0\",\"hi\":\"29999\"}\n");

  // The txn versions of each sink subtask only grow, and no live file is missing.
  for (const std::string app : {"lake-exactly-once/lake/0", "lake-exactly-once/lake/1"}) {
    int64_t last = 0;
    for (const auto& c : snapshot->commits) {
      auto lineage = c.raw.find("lineage");
      if (lineage == c.raw.end() || !lineage->contains("epoch")) continue;
      std::string who =
          "lake-exactly-once/lake/" + std::to_string((*lineage)["subtask"].get<int>());
      if (who != app) continue;
      int64_t epoch = (*lineage)["epoch"].get<int64_t>();
      EXPECT_GT(epoch, last) << app;
      last = epoch;
    }
    EXPECT_GT(last, 0) << app;
  }
  for (const auto& [path, add] : snapshot->files) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/table/" + path)) << path;
    if (!sink_config.empty()) {
      EXPECT_EQ(path.rfind("key=", 0), 0u) << path << " is not in a partition directory";
      EXPECT_EQ(add.partition_values.count("key"), 1u) << path;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(LakeSink, ARestartedJobCommitsEveryRecordExactlyOnce) {
  expect_exactly_once_across_a_restart("");
}

TEST(LakeSink, PartitionedByAColumnCommitsEveryRecordExactlyOnce) {
  expect_exactly_once_across_a_restart(", partition_by: key");
}

/// The rows the table holds at each version (numRecords of its live files), by version.
std::vector<int64_t> rows_by_version(const std::string& table, int64_t latest) {
  std::vector<int64_t> rows;
  for (int64_t v = 0; v <= latest; ++v) {
    auto snap = lake::read_delta_snapshot(table, v);
    EXPECT_TRUE(snap.ok()) << snap.err().message;
    int64_t n = 0;
    if (snap.ok()) {
      for (const auto& [path, add] : snap->files) n += lake::delta_num_records(add).value_or(0);
    }
    rows.push_back(n);
  }
  return rows;
}

std::string lineage_graph(const std::string& table, int64_t count, int64_t rate) {
  std::string g = R"(
name: lake-lineage
checkpoints: {interval_ms: 30}
nodes:
  - {id: gen, operator: generator, config: {count: {COUNT}, keys: 10, rate: {RATE}}}
  - {id: lake, operator: lake_sink, config: {path: "{TABLE}", max_file_rows: 500}}
edges:
  - {from: gen, to: lake}
)";
  g = std::regex_replace(g, std::regex("\\{TABLE\\}"), table);
  g = std::regex_replace(g, std::regex("\\{COUNT\\}"), std::to_string(count));
  return std::regex_replace(g, std::regex("\\{RATE\\}"), std::to_string(rate));
}

result<job_plan> plan_of(const std::string& yaml) {
  static const operator_registry registry = make_builtin_registry();
  auto graph = parse_graph_yaml(yaml);
  if (!graph) return graph.err();
  return plan_job(*graph, registry);
}

// Every streaming commit records its lineage: the job id and graph version (the same in every
// commit, also after a restore from a checkpoint, which plans the graph anew), the checkpoint
// whose completion committed it (its epoch) and that checkpoint's source positions; with a
// pass-through graph the generator's position is exactly the rows the table holds after it.
TEST(LakeSink, CommitsRecordTheJobGraphVersionCheckpointAndSourceOffsets) {
  const std::string dir = testing::make_temp_dir("vigil-lake-lineage");
  const std::string table = dir + "/table";
  const std::string yaml = lineage_graph(table, 20000, 20000);
  auto plan = plan_of(yaml);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  ASSERT_EQ(plan->graph_version.size(), 16u) << plan->graph_version;
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";
  checkpoint_storage storage(opts.checkpoint_dir);
  auto first = testing::run_until_checkpoints(storage, 3, [&](std::atomic<bool>* cancel) {
    opts.cancel = cancel;
    auto r = run_local(*plan, opts);
    opts.cancel = nullptr;  // `cancel` ends with the call.
    return r;
  });
  ASSERT_FALSE(first.ok()) << "the job ended before three checkpoints completed";

  // The restore plans the same graph text again: same version.
  auto again = plan_of(yaml);
  ASSERT_TRUE(again.ok()) << again.err().message;
  EXPECT_EQ(again->graph_version, plan->graph_version);
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto restored_sources = storage.source_positions(opts.restore_id);
  ASSERT_TRUE(restored_sources.ok()) << restored_sources.err().message;
  ASSERT_FALSE(restored_sources->empty()) << "the checkpoint recorded no source positions";
  auto second = run_local(*again, opts);
  ASSERT_TRUE(second.ok()) << second.err().message;

  auto snapshot = lake::read_delta_snapshot(table);
  ASSERT_TRUE(snapshot.ok()) << snapshot.err().message;
  const std::vector<int64_t> rows = rows_by_version(table, snapshot->version);
  EXPECT_EQ(rows.back(), 20000);
  int with_checkpoint = 0;
  int finals = 0;
  for (const auto& c : snapshot->commits) {
    auto it = c.raw.find("lineage");
    if (it == c.raw.end()) continue;  // CREATE TABLE.
    const nlohmann::json& lineage = *it;
    SCOPED_TRACE("version " + std::to_string(c.version) + ": " + lineage.dump());
    EXPECT_EQ(lineage.value("job", ""), "lake-lineage");
    EXPECT_EQ(lineage.value("job_id", ""), "lake-lineage") << "vigil run: the graph's name";
    EXPECT_EQ(lineage.value("graph_version", ""), plan->graph_version);
    EXPECT_EQ(lineage.value("node", ""), "lake");
    if (lineage.value("final", false)) {
      ++finals;
      EXPECT_FALSE(lineage.contains("checkpoint"));
      EXPECT_FALSE(lineage.contains("source_offsets"));
      continue;
    }
    if (!lineage.contains("checkpoint")) continue;  // Committed at the end of the input.
    ++with_checkpoint;
    EXPECT_EQ(lineage["checkpoint"], lineage["epoch"]);
    ASSERT_TRUE(lineage.contains("source_offsets"));
    const auto& gen = lineage["source_offsets"]["gen"];
    ASSERT_TRUE(gen.is_array() && gen.size() == 1u);
    EXPECT_EQ(gen[0]["emitted"].get<int64_t>(), rows[c.version])
        << "the rows committed up to this version are what the source had read";
    EXPECT_EQ(gen[0]["next_seq"].get<int64_t>(), rows[c.version]);
  }
  EXPECT_GE(with_checkpoint, 3);
  EXPECT_LE(finals, 1);
  std::filesystem::remove_all(dir);
}

// A commit that fails when a checkpoint completes (here: the table's _delta_log replaced by a
// regular file, which stops root too) fails the job at once with an error naming the table,
// not at the end of the input; a restore from the last checkpoint then commits what was
// pending, and nothing is lost or written twice.
TEST(LakeSink, AFailedCommitFailsTheJobAtOnceAndARestoreCommitsWhatWasPending) {
  const std::string dir = testing::make_temp_dir("vigil-lake-commit-failure");
  const std::string table = dir + "/table";
  const std::string log_dir = table + "/_delta_log";
  // About 100 s of input at this rate: the job can only end early by failing.
  auto plan = plan_of(lineage_graph(table, 500000, 5000));
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";
  std::atomic<bool> cancel{false};
  std::atomic<bool> ended{false};
  std::atomic<bool> sabotaged{false};
  std::thread watcher([&] {
    // After the first streaming commit, the log directory becomes a file.
    bool committed = testing::wait_until(
        [&] { return std::filesystem::exists(lake::delta_commit_path(table, 1)); },
        std::chrono::seconds(30));
    if (committed) {
      std::error_code ec;
      std::filesystem::rename(log_dir, log_dir + ".saved", ec);
      std::ofstream(log_dir) << "not a directory\n";
      sabotaged = !ec;
    }
    if (!testing::wait_until([&] { return ended.load(); }, std::chrono::seconds(20))) {
      cancel = true;  // Bounded: without the prompt failure the test fails instead of waiting.
    }
  });
  opts.cancel = &cancel;
  auto first = run_local(*plan, opts);
  ended = true;
  watcher.join();
  ASSERT_TRUE(sabotaged.load()) << "no streaming commit was made";
  ASSERT_FALSE(first.ok()) << "the job ended although its table could not be committed to";
  const std::string& message = first.err().message;
  EXPECT_EQ(message.find("cancelled"), std::string::npos) << message;
  EXPECT_NE(message.find("node 'lake' subtask 0: checkpoint "), std::string::npos) << message;
  EXPECT_NE(message.find("table '" + table + "'"), std::string::npos) << message;

  // Repaired, the job restores from its newest checkpoint, whose state holds the epochs the
  // failed commit left pending, and runs to the end (without the rate limit).
  std::filesystem::remove(log_dir);
  std::filesystem::rename(log_dir + ".saved", log_dir);
  checkpoint_storage storage(opts.checkpoint_dir);
  ASSERT_FALSE(storage.completed().empty());
  auto rest = plan_of(lineage_graph(table, 30000, 0));
  ASSERT_TRUE(rest.ok()) << rest.err().message;
  opts.cancel = nullptr;
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto second = run_local(*rest, opts);
  ASSERT_TRUE(second.ok()) << second.err().message;
  auto snapshot = lake::read_delta_snapshot(table);
  ASSERT_TRUE(snapshot.ok()) << snapshot.err().message;
  EXPECT_EQ(rows_by_version(table, snapshot->version).back(), 30000);
  std::filesystem::remove_all(dir);
}

// Partitioning by a derived value: a map computes each record's UTC date from its timestamp and
// the sink partitions by it; three days of hourly records land in three date directories.
TEST(LakeSink, PartitionsByTheDateOfATimestampComputedByAMap) {
  const std::string node = testing::find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  std::string dir = testing::make_temp_dir("vigil-lake-by-date");
  static const operator_registry registry = make_builtin_registry();
  auto graph = parse_graph_yaml(R"yaml(
name: lake-by-date
nodes:
  - {id: gen, operator: generator,
     config: {count: 72, keys: 3, interval: 1h, start_time: "2026-03-01T00:00:00Z"}}
  - {id: day, operator: map,
     config: {set: {event_date: "substr(to_string(date_trunc('day', ts)), 1, 10)"}}}
  - {id: lake, operator: lake_sink, config: {path: ")yaml" +
                                dir + R"yaml(/table", partition_by: event_date}}
edges:
  - {from: gen, to: day}
  - {from: day, to: lake}
)yaml");
  ASSERT_TRUE(graph.ok()) << graph.err().message;
  auto plan = plan_job(*graph, registry);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  run_options opts;
  opts.state_dir = dir + "/state";
  auto run = run_local(*plan, opts);
  ASSERT_TRUE(run.ok()) << run.err().message;
  auto snapshot = lake::read_delta_snapshot(dir + "/table");
  ASSERT_TRUE(snapshot.ok()) << snapshot.err().message;
  std::set<std::string> dirs;
  for (const auto& [path, add] : snapshot->files) dirs.insert(path.substr(0, path.find('/')));
  EXPECT_EQ(dirs, (std::set<std::string>{"event_date=2026-03-01", "event_date=2026-03-02",
                                         "event_date=2026-03-03"}));
  auto r = testing::run_process(
      {node, VIGIL_DUCKDB_QUERY,
       "SELECT event_date, count(*) AS n, min(strftime(ts, '%H')) AS first_hour FROM "
       "read_parquet(" +
           testing::delta_live_files(dir + "/table") +
           ", hive_partitioning = true) GROUP BY event_date ORDER BY event_date"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"event_date\":\"2026-03-01\",\"n\":\"24\",\"first_hour\":\"00\"}\n"
            "{\"event_date\":\"2026-03-02\",\"n\":\"24\",\"first_hour\":\"00\"}\n"
            "{\"event_date\":\"2026-03-03\",\"n\":\"24\",\"first_hour\":\"00\"}\n");
  std::filesystem::remove_all(dir);
}

/// Keyed windows into a table; the window and sink nodes have parallelism {P}.
std::string rescale_graph(const std::string& table, int parallelism, int rate) {
  std::string g = R"(
name: lake-rescale
checkpoints: {interval_ms: 40}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: 30000, keys: 50, interval: 10ms, rate: {RATE}, seed: 5}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: {P}
    config: {size: 1s, aggregates: [{name: n, fn: count}, {name: total, fn: sum, field: seq}]}
  - {id: lake, operator: lake_sink, parallelism: {P}, config: {path: "{TABLE}"}}
edges:
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: win}
  - {from: win, to: lake}
)";
  g = std::regex_replace(g, std::regex("\\{TABLE\\}"), table);
  g = std::regex_replace(g, std::regex("\\{RATE\\}"), std::to_string(rate));
  return std::regex_replace(g, std::regex("\\{P\\}"), std::to_string(parallelism));
}

// A job stopped after two checkpoints and restored with its keyed window and sink at twice the
// parallelism (key groups redistributed, pending lake commits kept under their writers' txn
// appIds) writes the same table as an undisturbed run.
TEST(LakeSink, ARescaledRestoreWritesWhatAnUndisturbedRunWrites) {
  const std::string node = testing::find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  std::string dir = testing::make_temp_dir("vigil-lake-rescale");
  static const operator_registry registry = make_builtin_registry();
  auto run = [&](const std::string& yaml, run_options opts) {
    auto graph = parse_graph_yaml(yaml);
    EXPECT_TRUE(graph.ok()) << graph.err().message;
    auto plan = plan_job(*graph, registry);
    EXPECT_TRUE(plan.ok()) << plan.err().message;
    return run_local(*plan, opts);
  };
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";
  checkpoint_storage storage(opts.checkpoint_dir);
  auto first = testing::run_until_checkpoints(storage, 2, [&](std::atomic<bool>* cancel) {
    opts.cancel = cancel;
    auto r = run(rescale_graph(dir + "/table", 2, 20000), opts);
    opts.cancel = nullptr;  // `cancel` ends with the call.
    return r;
  });
  ASSERT_FALSE(first.ok()) << "the job ended before two checkpoints completed";
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto second = run(rescale_graph(dir + "/table", 4, 0), opts);
  ASSERT_TRUE(second.ok()) << second.err().message;

  run_options ref;
  ref.state_dir = dir + "/ref-state";
  ref.checkpoint_dir = dir + "/ref-checkpoints";
  auto reference = run(rescale_graph(dir + "/reference", 2, 0), ref);
  ASSERT_TRUE(reference.ok()) << reference.err().message;

  const std::string cols = "SELECT key, window_start, window_end, n, total FROM read_parquet(";
  std::string got = testing::delta_live_files(dir + "/table");
  std::string want = testing::delta_live_files(dir + "/reference");
  auto r = testing::run_process(
      {node, VIGIL_DUCKDB_QUERY,
       "SELECT (SELECT count(*) FROM (" + cols + got + ") EXCEPT ALL " + cols + want +
           "))) AS extra, (SELECT count(*) FROM (" + cols + want + ") EXCEPT ALL " + cols + got +
           "))) AS missing, (SELECT sum(n) FROM read_parquet(" + got + ")) AS n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"extra\":\"0\",\"missing\":\"0\",\"n\":\"30000\"}\n");
  std::filesystem::remove_all(dir);
}

TEST(LakeSink, ARescaledRestoreOfAFinishedRunDiscardsTheReplayedInput) {
  const std::string node = testing::find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  std::string dir = testing::make_temp_dir("vigil-lake-finished-rescale");
  static const operator_registry registry = make_builtin_registry();
  auto run = [&](uint32_t sink_parallelism, run_options opts) {
    std::string yaml = R"(
name: lake-finished
checkpoints: {interval_ms: 30}
nodes:
  - {id: gen, operator: generator, parallelism: 2, config: {count: 30000, keys: 10, rate: 30000}}
  - {id: lake, operator: lake_sink, parallelism: )" +
                       std::to_string(sink_parallelism) + R"(,
     config: {path: ")" +
                       dir + R"(/table", max_file_rows: 700}}
edges:
  - {from: gen, to: lake}
)";
    auto graph = parse_graph_yaml(yaml);
    EXPECT_TRUE(graph.ok()) << graph.err().message;
    auto plan = plan_job(*graph, registry);
    EXPECT_TRUE(plan.ok()) << plan.err().message;
    return run_local(*plan, opts);
  };
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";
  // Run 1 reaches the end: every sink subtask commits its tail (the input after the newest
  // checkpoint) as its final files.
  auto first = run(2, opts);
  ASSERT_TRUE(first.ok()) << first.err().message;
  checkpoint_storage storage(opts.checkpoint_dir);
  ASSERT_FALSE(storage.completed().empty()) << "no checkpoint completed before the end";
  // Run 2 restores the newest checkpoint at another parallelism: the sources replay the tail,
  // which the table already holds.
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto second = run(3, opts);
  ASSERT_TRUE(second.ok()) << second.err().message;
  auto r = testing::run_process(
      {node, VIGIL_DUCKDB_QUERY,
       "SELECT count(*) AS n, count(DISTINCT seq) AS distinct_seq FROM read_parquet(" +
           testing::delta_live_files(dir + "/table") + ")"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"n\":\"30000\",\"distinct_seq\":\"30000\"}\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil
