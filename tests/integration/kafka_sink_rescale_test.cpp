// The exactly-once kafka_sink end to end on librdkafka's mock cluster, restored with another
// parallelism: a generator -> key_by -> kafka_sink job is stopped after two complete
// checkpoints, with epochs pending in the sink's state, and run from its newest checkpoint to
// the end with the sink at another parallelism. The committed view (rebuilt from the markers,
// as the mock does not isolate transactions) holds every generated record exactly once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "committed_seq.hpp"
#include "common/host_port.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "operators/kafka/sink/committed_view.hpp"
#include "process.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil {
namespace {

constexpr int64_t records = 20000;

/// The job with the sink at parallelism `sink_parallelism`; `rate` 0 runs at full speed.
std::string graph_yaml(const std::string& bootstrap, int sink_parallelism, int rate,
                       const std::string& transaction_timeout) {
  std::string g = R"(
name: kafka-rescale
checkpoints: {interval_ms: 40}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: {COUNT}, keys: 50, rate: {RATE}, seed: 7}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - {id: out, operator: kafka_sink, parallelism: {P},
     config: {bootstrap: "{BOOTSTRAP}", topic: out, key_field: key, transaction_timeout: {TIMEOUT}}}
edges:
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: out, partitioning: hash}
)";
  g = std::regex_replace(g, std::regex("\\{COUNT\\}"), std::to_string(records));
  g = std::regex_replace(g, std::regex("\\{RATE\\}"), std::to_string(rate));
  g = std::regex_replace(g, std::regex("\\{BOOTSTRAP\\}"), bootstrap);
  g = std::regex_replace(g, std::regex("\\{TIMEOUT\\}"), transaction_timeout);
  return std::regex_replace(g, std::regex("\\{P\\}"), std::to_string(sink_parallelism));
}

void expect_rescaled_restore_exactly_once(int from, int to) {
  auto cluster = tools::mock_kafka_cluster::start(1, {{"out", 3, 1}, {"out.progress", 1, 1}});
  ASSERT_TRUE(cluster.ok()) << cluster.err().message;
  const std::string bootstrap = (*cluster)->bootstrap();
  std::string dir = testing::make_temp_dir("vigil-kafka-rescale");
  static const operator_registry registry = make_builtin_registry();
  auto run = [&](const std::string& yaml, const run_options& opts) -> result<job_summary> {
    auto graph = parse_graph_yaml(yaml);
    if (!graph) return graph.err();
    auto plan = plan_job(*graph, registry);
    if (!plan) return plan.err();
    return run_local(*plan, opts);
  };
  run_options opts;
  opts.state_dir = dir + "/state";
  opts.checkpoint_dir = dir + "/checkpoints";
  std::atomic<bool> cancel{false};
  std::atomic<bool> ended{false};
  checkpoint_storage storage(opts.checkpoint_dir);
  std::thread watcher([&] {
    testing::wait_until([&] { return ended || storage.completed().size() >= 2; },
                        std::chrono::seconds(60));
    cancel = true;
  });
  opts.cancel = &cancel;
  // Run 1 cannot reach Kafka (every commit fails and is retried later, 1 s per try): every
  // epoch stays pending in the sink's state, so the restore must commit them all, each under
  // the sink id of the old subtask that wrote it.
  const std::string dead = "127.0.0.1:" + std::to_string(unused_loopback_port());
  auto first = run(graph_yaml(dead, from, 4000, "1s"), opts);
  ended = true;
  watcher.join();
  ASSERT_FALSE(first.ok()) << "the job ended before two checkpoints completed";
  ASSERT_FALSE(storage.completed().empty());

  opts.cancel = nullptr;
  opts.restore_dir = opts.checkpoint_dir;
  opts.restore_id = storage.completed().back();
  auto second = run(graph_yaml(bootstrap, to, 0, "20s"), opts);
  ASSERT_TRUE(second.ok()) << second.err().message;

  auto view = kafka::read_committed_view({bootstrap, "out", "", 30'000'000, {}});
  ASSERT_TRUE(view.ok()) << view.err().message;
  EXPECT_EQ(view->duplicate_epochs, 0u);
  EXPECT_EQ(view->incomplete_epochs, 0u);
  const seq_coverage c = committed_seq_coverage(*view, records);
  EXPECT_EQ(c.missing, 0) << from << " -> " << to;
  EXPECT_EQ(c.twice, 0) << from << " -> " << to;
  EXPECT_EQ(view->records.size(), static_cast<size_t>(records));

  // Markers of the old subtasks' sink ids (the restored epochs: the old ids beyond the new
  // parallelism have nothing else) and of the new ones.
  std::set<std::string> sinks;
  std::map<std::string, int64_t> first_epoch;
  for (const auto& m : view->markers) {
    sinks.insert(m.sink);
    first_epoch.emplace(m.sink, m.epoch);
  }
  for (int k = 0; k < from; ++k) {
    EXPECT_LE(first_epoch["kafka-rescale/out/" + std::to_string(k)], opts.restore_id)
        << "old subtask " << k << "'s restored epochs are committed under its id";
  }
  for (int k = 0; k < std::max(from, to); ++k) {
    EXPECT_EQ(sinks.count("kafka-rescale/out/" + std::to_string(k)), 1u) << k;
  }
  EXPECT_EQ(sinks.size(), static_cast<size_t>(std::max(from, to)));
  std::filesystem::remove_all(dir);
}

TEST(KafkaSinkRescale, ScaleUpFromTwoToFourIsExactlyOnce) {
  expect_rescaled_restore_exactly_once(2, 4);
}

TEST(KafkaSinkRescale, ScaleDownFromFourToTwoIsExactlyOnce) {
  expect_rescaled_restore_exactly_once(4, 2);
}

TEST(KafkaSinkRescale, ScaleDownToOneIsExactlyOnce) {
  expect_rescaled_restore_exactly_once(3, 1);
}

}  // namespace
}  // namespace vigil
