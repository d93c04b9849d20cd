// The exactly-once kafka_sink through the cluster's savepoints: a generator -> key_by ->
// kafka_sink job on a coordinator and two workers is stopped with a savepoint and submitted
// again from it with the sink at another parallelism. The committed view of the output topic
// (rebuilt from the markers: librdkafka's mock cluster does not isolate transactions) holds
// every generated record exactly once, under the sink ids of both parallelisms.
#include <map>
#include <regex>
#include <set>

#include "cluster_fixture.hpp"
#include "committed_seq.hpp"
#include "operators/kafka/sink/committed_view.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace vigil::testing;

constexpr int64_t records = 20000;

/// Generator (2) -> key_by (2) -> kafka_sink (P, exactly_once).
std::string kafka_graph(const std::string& bootstrap, int parallelism, int rate) {
  std::string g = R"(
name: kafka-savepoint
checkpoints: {interval_ms: 100}
nodes:
  - {id: gen, operator: generator, parallelism: 2,
     config: {count: {COUNT}, keys: 40, rate: {RATE}, seed: 11}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - {id: out, operator: kafka_sink, parallelism: {P},
     config: {bootstrap: "{BOOTSTRAP}", topic: out, key_field: key, transaction_timeout: 20s}}
edges:
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: out, partitioning: hash}
)";
  g = std::regex_replace(g, std::regex("\\{COUNT\\}"), std::to_string(records));
  g = std::regex_replace(g, std::regex("\\{RATE\\}"), std::to_string(rate));
  g = std::regex_replace(g, std::regex("\\{BOOTSTRAP\\}"), bootstrap);
  return std::regex_replace(g, std::regex("\\{P\\}"), std::to_string(parallelism));
}

using KafkaSinkSavepoint = cluster_fixture;

// Stop with a savepoint at sink parallelism 4, resume at 2: old subtasks 2 and 3 are taken
// over (fenced, their pending epochs committed under their ids) by new subtasks 0 and 1.
TEST_F(KafkaSinkSavepoint, StopWithASavepointAndResumeTheSinkAtAnotherParallelism) {
  auto kafka = tools::mock_kafka_cluster::start(1, {{"out", 3, 1}, {"out.progress", 1, 1}});
  ASSERT_TRUE(kafka.ok()) << kafka.err().message;
  const std::string bootstrap = (*kafka)->bootstrap();
  checkpoint_dir_ = dir_ + "/checkpoints";
  ASSERT_NO_FATAL_FAILURE(start_cluster(2, 8));
  write_file(dir_ + "/p4.yaml", kafka_graph(bootstrap, 4, 4000));
  std::string id = submit(dir_ + "/p4.yaml");
  ASSERT_FALSE(id.empty());
  json job;
  ASSERT_TRUE(wait_until(
      [&] {
        job = job_status(id);
        return text(job, "state") == "running" && job.value("last_checkpoint", 0) >= 2;
      },
      job_timeout))
      << job.dump(2);
  auto stopped = ctl_json({"stop", "--savepoint", id});
  std::string path = text(stopped, "path");
  ASSERT_FALSE(path.empty()) << stopped.dump(2);
  job = wait_for_state(id, "cancelled", job_timeout);
  ASSERT_EQ(text(job, "state"), "cancelled") << job.dump(2);

  write_file(dir_ + "/p2.yaml", kafka_graph(bootstrap, 2, 0));
  auto resumed = ctl_json({"submit", "--from-savepoint", path, dir_ + "/p2.yaml"});
  std::string id2 = text(resumed, "id");
  ASSERT_FALSE(id2.empty()) << resumed.dump(2);
  job = wait_for_state(id2, "finished", 60s);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);

  auto view = kafka::read_committed_view({bootstrap, "out", "", 30'000'000, {}});
  ASSERT_TRUE(view.ok()) << view.err().message;
  EXPECT_EQ(view->duplicate_epochs, 0u);
  EXPECT_EQ(view->incomplete_epochs, 0u);
  const seq_coverage c = committed_seq_coverage(*view, records);
  EXPECT_EQ(c.missing, 0);
  EXPECT_EQ(c.twice, 0);
  EXPECT_EQ(view->records.size(), static_cast<size_t>(records));
  std::set<std::string> sinks;
  for (const auto& m : view->markers) sinks.insert(m.sink);
  EXPECT_EQ(sinks, (std::set<std::string>{"kafka-savepoint/out/0", "kafka-savepoint/out/1",
                                          "kafka-savepoint/out/2", "kafka-savepoint/out/3"}));
}

}  // namespace
}  // namespace vigil
