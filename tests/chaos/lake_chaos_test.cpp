// Chaos: a checkpointed job streams into two Delta tables on three worker processes while
// workers are killed with SIGKILL at random moments (fixed seed) and the coordinator once. The
// cluster restarts the job from its newest checkpoint each time; at the end both tables hold
// exactly what an undisturbed single-process run of the same graph writes: no row missing,
// none twice, every live file present, and the commit epochs of each sink subtask only grow.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <set>
#include <thread>

#include "cluster_fixture.hpp"
#include "delta_files.hpp"
#include "lake/delta_log.hpp"

namespace vigil {
namespace {

using namespace vigil::testing;

constexpr int64_t records = 40000;

/// Generator -> raw rows into one table, and generator -> key_by -> 1 s tumbling counts into
/// another: 10 subtasks. The rate stretches the job over about ten seconds; 0 runs at full
/// speed (the reference run).
std::string chaos_graph(const std::string& tables, int rate) {
  std::string g = R"(
name: lake-chaos
checkpoints: {interval_ms: 200}
restart: {backoff_ms: 100, max_backoff_ms: 1000, max_attempts: 30}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: {COUNT}, keys: 100, interval: 10ms, rate: {RATE}, seed: 11}}
  - {id: raw, operator: lake_sink, parallelism: 2, config: {path: "{DIR}/raw"}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 2
    config: {size: 1s, aggregates: [{name: n, fn: count}]}
  - {id: counts, operator: lake_sink, parallelism: 2, config: {path: "{DIR}/counts"}}
edges:
  - {from: gen, to: raw}
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: win}
  - {from: win, to: counts}
)";
  g = std::regex_replace(g, std::regex("\\{DIR\\}"), tables);
  g = std::regex_replace(g, std::regex("\\{COUNT\\}"), std::to_string(records));
  return std::regex_replace(g, std::regex("\\{RATE\\}"), std::to_string(rate));
}

/// Checks that each sink subtask's commits carry growing epochs (checkpoint ids) and the
/// lineage of job `job_id` with one graph version (across killed workers and a restarted
/// coordinator), and returns how many commits the table has.
size_t expect_growing_epochs(const std::string& table, const std::string& job_id) {
  auto snapshot = lake::read_delta_snapshot(table);
  if (!snapshot.ok()) return 0;
  std::map<int, int64_t> last;
  std::set<std::string> versions;
  for (const auto& c : snapshot->commits) {
    auto lineage = c.raw.find("lineage");
    if (lineage == c.raw.end() || !lineage->contains("epoch")) continue;
    EXPECT_EQ(lineage->value("job_id", ""), job_id) << table << " version " << c.version;
    versions.insert(lineage->value("graph_version", ""));
    if (lineage->contains("checkpoint")) {
      EXPECT_TRUE((*lineage)["source_offsets"].contains("gen")) << lineage->dump();
    }
    int subtask = (*lineage)["subtask"].get<int>();
    int64_t epoch = (*lineage)["epoch"].get<int64_t>();
    EXPECT_GT(epoch, last[subtask]) << table << " subtask " << subtask;
    last[subtask] = epoch;
  }
  EXPECT_EQ(versions.size(), 1u) << table;
  EXPECT_EQ(versions.count(""), 0u) << table;
  return snapshot->commits.size();
}

class LakeChaos : public cluster_fixture {};

TEST_F(LakeChaos, KilledWorkersAndCoordinatorLoseAndDuplicateNothing) {
  const std::string node = find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  checkpoint_dir_ = dir_ + "/checkpoints";
  ASSERT_NO_FATAL_FAILURE(start_cluster(3, 4));
  write_file(dir_ + "/chaos.yaml", chaos_graph(dir_ + "/cluster", 4000));
  std::string id = submit(dir_ + "/chaos.yaml");
  ASSERT_FALSE(id.empty());

  // Three worker kills and one coordinator kill, in a seeded order, each at a random moment
  // once the job runs again and has completed a checkpoint since the last kill.
  std::mt19937 rng(20261122);
  std::vector<std::string> events = {"worker", "worker", "coordinator", "worker"};
  std::shuffle(events.begin(), events.end(), rng);
  int worker_kills = 0;
  int coordinator_kills = 0;
  int64_t checkpoint_at_last_kill = 0;
  for (const auto& event : events) {
    json job;
    bool ready = wait_until(
        [&] {
          job = job_status(id);
          return text(job, "state") == "running" &&
                 job.value("last_checkpoint", int64_t{0}) > checkpoint_at_last_kill;
        },
        60s, 20ms);
    ASSERT_TRUE(ready) << "the job did not run again after " << worker_kills << " worker and "
                       << coordinator_kills << " coordinator kills:\n"
                       << job.dump(2);
    checkpoint_at_last_kill = job.value("last_checkpoint", int64_t{0});
    // The moment of the kill: chaos, not synchronisation.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 700)(rng)));
    if (event == "coordinator") {
      coordinator_->kill(SIGKILL);
      ASSERT_TRUE(coordinator_->wait(startup_timeout).has_value());
      ASSERT_NO_FATAL_FAILURE(start_coordinator(dir_ + "/coordinator-data", cluster_));
      ++coordinator_kills;
    } else {
      int n = std::uniform_int_distribution<int>(1, 3)(rng);
      auto& victim = *workers_.at("w" + std::to_string(n));
      victim.kill(SIGKILL);
      ASSERT_TRUE(victim.wait(startup_timeout).has_value());
      ASSERT_NO_FATAL_FAILURE(start_worker(n, 4));  // As Kubernetes would restart its pod.
      ++worker_kills;
    }
  }
  auto job = wait_for_state(id, "finished", 120s);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  int restarts = job.value("restarts", 0);
  // Every kill stops subtasks of the job (each worker hosts some), so each one restarts it.
  EXPECT_GE(restarts, worker_kills + coordinator_kills) << job.dump(2);

  // The reference: the same graph, undisturbed, in one process.
  write_file(dir_ + "/reference.yaml", chaos_graph(dir_ + "/reference", 0));
  auto ref = run_process({vigil_bin, "run", "--quiet", "--checkpoint-dir",
                          dir_ + "/reference-checkpoints", dir_ + "/reference.yaml"});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;

  auto query = [&](const std::string& sql) {
    auto r = run_process({node, VIGIL_DUCKDB_QUERY, sql});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  std::string raw = delta_live_files(dir_ + "/cluster/raw");
  EXPECT_EQ(query("SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS "
                  "hi FROM read_parquet(" +
                  raw + ")"),
            "{\"n\":\"40000\",\"d\":\"40000\",\"lo\":\"0\",\"hi\":\"39999\"}\n");
  // Window counts: the cluster's rows and the reference's, compared as multisets.
  std::string counts = delta_live_files(dir_ + "/cluster/counts");
  std::string expected = delta_live_files(dir_ + "/reference/counts");
  const std::string cols = "SELECT key, window_start, window_end, n FROM read_parquet(";
  EXPECT_EQ(query("SELECT (SELECT count(*) FROM (" + cols + counts + ") EXCEPT ALL " + cols +
                  expected + "))) AS extra, (SELECT count(*) FROM (" + cols + expected +
                  ") EXCEPT ALL " + cols + counts + "))) AS missing, (SELECT sum(n) FROM " +
                  "read_parquet(" + counts + ")) AS total"),
            "{\"extra\":\"0\",\"missing\":\"0\",\"total\":\"40000\"}\n");
  size_t raw_commits = expect_growing_epochs(dir_ + "/cluster/raw", id);
  size_t count_commits = expect_growing_epochs(dir_ + "/cluster/counts", id);

  // How often recovery replayed: each restart restores a checkpoint; the log tells which.
  std::string log;
  for (const char* name : {"coordinator-1", "coordinator-2"}) {
    log += read_file(dir_ + "/" + name + ".stderr");
  }
  std::set<std::string> restored;
  std::regex restore_line("restoring from checkpoint ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), restore_line);
       it != std::sregex_iterator(); ++it) {
    restored.insert((*it)[1].str());
  }
  std::printf(
      "[ info     ] kills: %d workers, %d coordinator; restarts: %d; restores from %zu distinct "
      "checkpoints; checkpoints completed: %lld; commits: raw %zu, counts %zu\n",
      worker_kills, coordinator_kills, restarts, restored.size(),
      static_cast<long long>(job.value("checkpoints_completed", int64_t{0})), raw_commits,
      count_commits);
}

}  // namespace
}  // namespace vigil
