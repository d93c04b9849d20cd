// A coordinator, workers and vigilctl as separate processes on 127.0.0.1, driven the way an
// operator drives them: a distributed job gives the same result as a local run, slots come
// back when a job ends or is cancelled, bad submissions are refused with a clear message, a
// killed or frozen worker fails its job within seconds, a slow remote sink keeps the sending
// worker's memory bounded, and the job store survives a coordinator restart.
#include <regex>
#include <set>
#include <thread>

#include "cluster_fixture.hpp"
#include "delta_files.hpp"
#include "lake/delta_log.hpp"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace vigil::testing;

/// A graph whose generator never ends (rate limited) feeding `sinks` null sinks through a
/// rebalance edge, so the sinks are spread over the workers.
std::string endless_graph(const std::string& name, int sinks) {
  return "name: " + name +
         "\n"
         "nodes:\n"
         "  - {id: gen, operator: generator, config: {keys: 8, rate: 2000, seed: 3}}\n"
         "  - {id: sink, operator: \"null\", parallelism: " +
         std::to_string(sinks) +
         "}\n"
         "edges:\n"
         "  - {from: gen, to: sink, partitioning: rebalance}\n";
}

using Cluster = cluster_fixture;

// Keyed windows computed on three workers equal those of `vigil run`; the window's subtasks are
// spread over the workers, and every slot is free again once the job finished.
TEST_F(Cluster, KeyedWindowsMatchALocalRun) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(3, 4));
  auto graph_writing_to = [](const std::string& out_dir) {
    return "name: cluster-windows\n"
           "nodes:\n"
           "  - id: gen\n"
           "    operator: generator\n"
           "    config: {count: 200000, keys: 12, interval: 10ms, out_of_orderness: 1s, seed: 7}\n"
           "  - {id: by_key, operator: key_by, parallelism: 3, config: {key: key}}\n"
           "  - id: w\n"
           "    operator: tumbling_window\n"
           "    parallelism: 3\n"
           "    config:\n"
           "      size: 10s\n"
           "      aggregates:\n"
           "        - {name: n, fn: count}\n"
           "        - {name: lo, fn: min, field: value}\n"
           "        - {name: hi, fn: max, field: value}\n"
           "        - {name: last_seq, fn: max, field: seq}\n"
           "  - id: out\n"
           "    operator: jsonl_file\n"
           "    parallelism: 3\n"
           "    config: {path: \"" +
           out_dir +
           "/part-{subtask}.jsonl\"}\n"
           "edges:\n"
           "  - {from: gen, to: by_key, partitioning: rebalance}\n"
           "  - {from: by_key, to: w}\n"
           "  - {from: w, to: out}\n";
  };
  std::string cluster_out = dir_ + "/cluster-out";
  std::string local_out = dir_ + "/local-out";
  std::filesystem::create_directories(cluster_out);
  std::filesystem::create_directories(local_out);
  write_file(dir_ + "/cluster.yaml", graph_writing_to(cluster_out));
  write_file(dir_ + "/local.yaml", graph_writing_to(local_out));

  auto started = std::chrono::steady_clock::now();
  std::string id = submit(dir_ + "/cluster.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "finished", job_timeout);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  std::printf("[ info     ] job %s finished on the cluster in %lld ms\n", id.c_str(),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));

  auto local = run_process(
      {vigil_bin, "run", dir_ + "/local.yaml", "--state-dir", dir_ + "/local-state", "-q"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  auto expected = read_sorted_lines(local_out, "part-");
  auto actual = read_sorted_lines(cluster_out, "part-");
  // 2000 s of event time in 10 s windows for 12 keys, plus the window before the first one
  // that records moved back by out_of_orderness land in.
  EXPECT_GE(expected.size(), 200u * 12u);
  EXPECT_EQ(actual, expected);

  auto window_workers = workers_of(job, "w");
  EXPECT_EQ(window_workers.size(), 3u) << job.dump(2);
  EXPECT_EQ(std::set<std::string>(window_workers.begin(), window_workers.end()).size(), 3u)
      << "the window's subtasks share a worker: " << job.dump(2);
  EXPECT_TRUE(wait_until([&] { return all_slots_free(); }, job_timeout)) << list_workers().dump(2);
}

// Cancelling a running job stops it on every worker and gives its slots back.
TEST_F(Cluster, CancelFreesEverySlot) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 2));
  write_file(dir_ + "/endless.yaml", endless_graph("endless", 3));
  std::string id = submit(dir_ + "/endless.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "running", job_timeout);
  ASSERT_EQ(text(job, "state"), "running") << job.dump(2);
  ASSERT_FALSE(all_slots_free()) << "a running job holds no slots: " << list_workers().dump(2);

  auto started = std::chrono::steady_clock::now();
  auto r = ctl({"cancel", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  job = wait_for_state(id, "cancelled", job_timeout);
  EXPECT_EQ(text(job, "state"), "cancelled") << job.dump(2);
  EXPECT_TRUE(wait_until([&] { return all_slots_free(); }, job_timeout)) << list_workers().dump(2);
  std::printf("[ info     ] cancelled and every slot free after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
}

// An invalid graph, a job too large for the cluster and an absent coordinator each get their
// own exit code and a message that says what is wrong; nothing is stored for a refused job.
TEST_F(Cluster, RefusalsAreClear) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 2));

  write_file(dir_ + "/unknown_key.yaml",
             "name: bad-key\n"
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {count: 100}}\n"
             "  - {id: k, operator: key_by, config: {key: key}}\n"
             "  - id: w\n"
             "    operator: tumbling_window\n"
             "    config: {size: 10s, sise: 1s, aggregates: [{name: n, fn: count}]}\n"
             "  - {id: out, operator: \"null\"}\n"
             "edges:\n"
             "  - {from: gen, to: k}\n"
             "  - {from: k, to: w}\n"
             "  - {from: w, to: out}\n");
  auto r = ctl({"submit", dir_ + "/unknown_key.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("node 'w'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sise"), std::string::npos) << r.err;

  write_file(dir_ + "/too_big.yaml", endless_graph("too-big", 8));
  r = ctl({"submit", dir_ + "/too_big.yaml"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("task slots"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs 9"), std::string::npos) << r.err;

  auto jobs = ctl_json({"list"});
  EXPECT_EQ(jobs["jobs"], json::array()) << jobs.dump(2);

  for (const char* command : {"status", "cancel"}) {
    r = ctl({command, "no-such-job"});
    EXPECT_EQ(r.exit_code, 4) << command << ": " << r.err;
    EXPECT_NE(r.err.find("no-such-job"), std::string::npos) << r.err;
  }

  // A coordinator that was there and is gone: its port is known to be free of it. (SIGKILL:
  // how the coordinator ends does not matter here, and the restart test covers SIGTERM.)
  std::string gone = api_;
  coordinator_->kill(SIGKILL);
  ASSERT_TRUE(coordinator_->wait(startup_timeout).has_value());
  r = ctl_at(gone, {"list"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(gone), std::string::npos) << r.err;
}

// A worker killed with SIGKILL is declared lost within seconds and the job whose subtasks it
// ran fails, naming it.
TEST_F(Cluster, KilledWorkerFailsItsJobQuickly) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(3, 2));
  write_file(dir_ + "/endless.yaml", endless_graph("endless", 3));
  std::string id = submit(dir_ + "/endless.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "running", job_timeout);
  ASSERT_EQ(text(job, "state"), "running") << job.dump(2);
  auto sink_workers = workers_of(job, "sink");
  ASSERT_EQ(std::set<std::string>(sink_workers.begin(), sink_workers.end()).size(), 3u)
      << "the sinks are not spread over the 3 workers: " << job.dump(2);
  // A worker that runs a sink but not the generator: the job spans it and another worker.
  std::string gen_worker = workers_of(job, "gen").at(0);
  std::string victim = sink_workers[0] != gen_worker ? sink_workers[0] : sink_workers[1];

  auto killed_at = std::chrono::steady_clock::now();
  workers_.at(victim)->kill(SIGKILL);
  json workers;
  bool detected = wait_for_lost(victim, id, 3s, workers, job);
  auto detection_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - killed_at)
                          .count();
  std::printf("[ info     ] worker %s lost and job failed %lld ms after SIGKILL\n", victim.c_str(),
              static_cast<long long>(detection_ms));
  ASSERT_TRUE(detected) << "after " << detection_ms << " ms:\n"
                        << workers.dump(2) << "\n"
                        << job.dump(2);
  EXPECT_NE(text(job, "error").find("worker '" + victim + "'"), std::string::npos) << job.dump(2);
  for (const auto& s : job["subtasks"]) {
    if (text(s, "worker_id") == victim) {
      EXPECT_EQ(text(s, "state"), "lost") << s.dump();
    }
  }
  // The survivors stop their subtasks of the failed job and get their slots back.
  EXPECT_TRUE(wait_until(
      [&] {
        auto ws = list_workers();
        return std::all_of(ws.begin(), ws.end(), [&](const json& w) {
          return text(w, "id") == victim || w.value("free_slots", -1) == w.value("slots", -2);
        });
      },
      job_timeout))
      << list_workers().dump(2);
}

// An unthrottled generator feeding a slow sink on another worker: credit-based flow control
// must hold the generator back, so the sending worker's memory stays bounded instead of
// queueing what the sink cannot take.
TEST_F(Cluster, SlowRemoteSinkKeepsSenderMemoryBounded) {
  constexpr long ceiling_bytes = 300L * 1024 * 1024;
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 1));
  write_file(dir_ + "/slow.yaml",
             "name: slow-remote-sink\n"
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {keys: 100000, key_type: string}}\n"
             "  - {id: slow, operator: \"null\", config: {delay_per_batch: 20ms}}\n"
             "edges:\n"
             "  - {from: gen, to: slow, partitioning: rebalance}\n");
  std::string id = submit(dir_ + "/slow.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "running", job_timeout);
  ASSERT_EQ(text(job, "state"), "running") << job.dump(2);
  std::string sender = workers_of(job, "gen").at(0);
  std::string receiver = workers_of(job, "slow").at(0);
  ASSERT_NE(sender, receiver) << job.dump(2);

  // Memory is sampled over a fixed window of wall time: the duration is the measurement.
  long peak_rss = 0;
  int samples = 0;
  auto end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < end) {
    auto usage = read_memory_usage(workers_.at(sender)->pid());
    ASSERT_TRUE(usage.has_value()) << "worker " << sender << " is gone";
    peak_rss = std::max(peak_rss, usage->rss_bytes);
    ++samples;
    std::this_thread::sleep_for(250ms);
  }
  auto sender_usage = read_memory_usage(workers_.at(sender)->pid());
  auto receiver_usage = read_memory_usage(workers_.at(receiver)->pid());
  ASSERT_TRUE(sender_usage && receiver_usage);
  std::printf(
      "[ info     ] sender %s: peak sampled RSS %.1f MB over %d samples, VmHWM %.1f MB; "
      "receiver %s: VmHWM %.1f MB\n",
      sender.c_str(), peak_rss / 1048576.0, samples, sender_usage->hwm_bytes / 1048576.0,
      receiver.c_str(), receiver_usage->hwm_bytes / 1048576.0);
  EXPECT_LT(sender_usage->hwm_bytes, ceiling_bytes);
  EXPECT_LT(receiver_usage->hwm_bytes, ceiling_bytes);

  job = job_status(id);
  EXPECT_EQ(text(job, "state"), "running") << job.dump(2);
  ASSERT_EQ(ctl({"cancel", id}).exit_code, 0);
  job = wait_for_state(id, "cancelled", job_timeout);
  EXPECT_EQ(text(job, "state"), "cancelled") << job.dump(2);
  EXPECT_TRUE(wait_until([&] { return all_slots_free(); }, job_timeout)) << list_workers().dump(2);
}

// The job store outlives the coordinator process: a new coordinator on the same data directory
// lists a finished job as finished, and a job that was running when the old one stopped as
// failed, saying why.
TEST_F(Cluster, JobStoreSurvivesCoordinatorRestart) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(1, 2));
  write_file(dir_ + "/short.yaml",
             "name: short\n"
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {count: 1000, keys: 4}}\n"
             "  - {id: out, operator: \"null\"}\n"
             "edges:\n"
             "  - {from: gen, to: out}\n");
  std::string finished_id = submit(dir_ + "/short.yaml");
  ASSERT_FALSE(finished_id.empty());
  auto job = wait_for_state(finished_id, "finished", job_timeout);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  ASSERT_TRUE(wait_until([&] { return all_slots_free(); }, job_timeout)) << list_workers().dump(2);
  write_file(dir_ + "/endless.yaml", endless_graph("endless", 1));
  std::string running_id = submit(dir_ + "/endless.yaml");
  ASSERT_FALSE(running_id.empty());
  job = wait_for_state(running_id, "running", job_timeout);
  ASSERT_EQ(text(job, "state"), "running") << job.dump(2);

  ASSERT_NO_FATAL_FAILURE(stop_coordinator());
  ASSERT_NO_FATAL_FAILURE(start_coordinator(dir_ + "/coordinator-data"));
  auto jobs = ctl_json({"list"});
  ASSERT_TRUE(jobs.contains("jobs")) << jobs.dump(2);
  ASSERT_EQ(jobs["jobs"].size(), 2u) << jobs.dump(2);
  EXPECT_EQ(text(jobs["jobs"][0], "id"), finished_id) << jobs.dump(2);
  EXPECT_EQ(text(jobs["jobs"][0], "state"), "finished") << jobs.dump(2);
  EXPECT_EQ(text(jobs["jobs"][1], "id"), running_id) << jobs.dump(2);
  EXPECT_EQ(text(jobs["jobs"][1], "state"), "failed") << jobs.dump(2);
  EXPECT_NE(text(jobs["jobs"][1], "error").find("restarted"), std::string::npos) << jobs.dump(2);
}

// A worker that stops answering without dropping its connection (frozen with SIGSTOP) is
// declared lost once it misses its heartbeats, failing its job; when it resumes it is alive
// again with every slot free, and takes part in the next job.
TEST_F(Cluster, FrozenWorkerIsLostByHeartbeatAndComesBack) {
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 2));
  write_file(dir_ + "/endless.yaml", endless_graph("endless", 2));
  std::string id = submit(dir_ + "/endless.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "running", job_timeout);
  ASSERT_EQ(text(job, "state"), "running") << job.dump(2);
  std::string victim = workers_of(job, "gen").at(0) == "w1" ? "w2" : "w1";

  auto frozen_at = std::chrono::steady_clock::now();
  workers_.at(victim)->kill(SIGSTOP);
  json workers;
  bool detected = wait_for_lost(victim, id, heartbeat_timeout + 2s, workers, job);
  auto detection_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - frozen_at)
                          .count();
  std::printf("[ info     ] frozen worker %s lost and job failed %lld ms after SIGSTOP\n",
              victim.c_str(), static_cast<long long>(detection_ms));
  workers_.at(victim)->kill(SIGCONT);
  ASSERT_TRUE(detected) << "after " << detection_ms << " ms:\n"
                        << workers.dump(2) << "\n"
                        << job.dump(2);
  EXPECT_NE(text(job, "error").find("worker '" + victim + "' lost"), std::string::npos)
      << job.dump(2);
  EXPECT_NE(text(job, "error").find("heartbeat"), std::string::npos) << job.dump(2);

  EXPECT_TRUE(wait_until(
      [&] {
        auto ws = list_workers();
        return std::all_of(ws.begin(), ws.end(), [](const json& w) {
          return w.value("alive", false) && w.value("free_slots", -1) == w.value("slots", -2);
        });
      },
      job_timeout))
      << list_workers().dump(2);
  // A job that needs every slot of both workers runs to its end.
  write_file(dir_ + "/all_slots.yaml",
             "name: all-slots\n"
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {count: 10000, keys: 4}}\n"
             "  - {id: out, operator: \"null\", parallelism: 3}\n"
             "edges:\n"
             "  - {from: gen, to: out, partitioning: rebalance}\n");
  std::string next = submit(dir_ + "/all_slots.yaml");
  ASSERT_FALSE(next.empty());
  job = wait_for_state(next, "finished", job_timeout);
  EXPECT_EQ(text(job, "state"), "finished") << job.dump(2);
}

/// Generator (2) -> key_by (2) -> 1 s tumbling count and sum (P) -> lake_sink (P).
std::string windows_to_lake(const std::string& table, int parallelism, int rate) {
  std::string g = R"(
name: savepoint-rescale
checkpoints: {interval_ms: 100}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: 30000, keys: 40, interval: 10ms, rate: {RATE}, seed: 9}}
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

// A savepoint of a running job, then stop with a savepoint, then the same graph with its keyed
// window and sink at parallelism 4 submitted from that savepoint: the table ends up with
// exactly the rows of an undisturbed single-process run.
TEST_F(Cluster, StopWithASavepointAndResumeAtAnotherParallelism) {
  const std::string node = find_node();
  ASSERT_FALSE(node.empty()) << "node is not installed: run tools/bootstrap.sh";
  checkpoint_dir_ = dir_ + "/checkpoints";
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 8));
  write_file(dir_ + "/p2.yaml", windows_to_lake(dir_ + "/table", 2, 6000));
  std::string id = submit(dir_ + "/p2.yaml");
  ASSERT_FALSE(id.empty());
  json job;
  ASSERT_TRUE(wait_until(
      [&] {
        job = job_status(id);
        return text(job, "state") == "running" && job.value("last_checkpoint", 0) >= 1;
      },
      job_timeout))
      << job.dump(2);

  auto first = ctl({"savepoint", id});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out.rfind("savepoint " + dir_ + "/checkpoints/savepoints/" + id + "-", 0), 0u)
      << first.out;
  auto stopped = ctl_json({"stop", "--savepoint", id});
  std::string path = text(stopped, "path");
  ASSERT_FALSE(path.empty()) << stopped.dump(2);
  EXPECT_EQ(text(stopped["job"], "state"), "cancelling") << stopped.dump(2);
  job = wait_for_state(id, "cancelled", job_timeout);
  ASSERT_EQ(text(job, "state"), "cancelled") << job.dump(2);
  EXPECT_EQ(text(job, "last_savepoint"), path) << job.dump(2);

  // Refusals: a savepoint of a job that does not run; a savepoint directory that is not one.
  auto refused = ctl({"savepoint", id});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.err.find("is not running"), std::string::npos) << refused.err;
  write_file(dir_ + "/p4.yaml", windows_to_lake(dir_ + "/table", 4, 0));
  auto bad = ctl({"submit", "--from-savepoint", checkpoint_dir_, dir_ + "/p4.yaml"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.err.find("no complete savepoint"), std::string::npos) << bad.err;
  // Only directories under the coordinator's savepoint or checkpoint directory are read.
  auto outside = ctl({"submit", "--from-savepoint", dir_, dir_ + "/p4.yaml"});
  EXPECT_EQ(outside.exit_code, 2) << outside.out;
  EXPECT_NE(outside.err.find("is not under the coordinator's savepoint directory"),
            std::string::npos)
      << outside.err;

  auto resumed = ctl_json({"submit", "--from-savepoint", path, dir_ + "/p4.yaml"});
  std::string id2 = text(resumed, "id");
  ASSERT_FALSE(id2.empty()) << resumed.dump(2);
  job = wait_for_state(id2, "finished", 60s);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  EXPECT_EQ(text(job, "from_savepoint"), path);

  write_file(dir_ + "/reference.yaml", windows_to_lake(dir_ + "/reference", 2, 0));
  auto ref = run_process({vigil_bin, "run", "--quiet", "--checkpoint-dir",
                          dir_ + "/reference-checkpoints", dir_ + "/reference.yaml"});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const std::string cols = "SELECT key, window_start, window_end, n, total FROM read_parquet(";
  std::string got = delta_live_files(dir_ + "/table");
  std::string want = delta_live_files(dir_ + "/reference");
  auto r = run_process({node, VIGIL_DUCKDB_QUERY,
                        "SELECT (SELECT count(*) FROM (" + cols + got + ") EXCEPT ALL " + cols +
                            want + "))) AS extra, (SELECT count(*) FROM (" + cols + want +
                            ") EXCEPT ALL " + cols + got +
                            "))) AS missing, (SELECT sum(n) FROM read_parquet(" + got + ")) AS n"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"extra\":\"0\",\"missing\":\"0\",\"n\":\"30000\"}\n");
}

}  // namespace
}  // namespace vigil
