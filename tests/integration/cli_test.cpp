// The `vigil` binary as a user runs it: examples, bad input, backpressure.
#include <gtest/gtest.h>

#include <filesystem>

#include "process.hpp"

namespace vigil {
namespace {

using testing::make_temp_dir;
using testing::run_process;
using testing::write_file;

const std::string vigil_bin = VIGIL_BIN;
const std::string source_dir = VIGIL_SOURCE_DIR;

TEST(Cli, EveryExampleValidatesAndRuns) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir + "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++examples;
    if (testing::read_file(entry.path().string()).find("kafka_source") != std::string::npos) {
      // Needs a Kafka broker and a key: validated here, run end to end by sepsis_watch_test.
      auto v = run_process({"/usr/bin/env", "VIGIL_PSEUDONYM_KEY_FILE=key", vigil_bin, "validate",
                            entry.path().string()});
      EXPECT_EQ(v.exit_code, 0) << entry.path() << ": " << v.err;
      continue;
    }
    auto v = run_process({vigil_bin, "validate", entry.path().string()});
    EXPECT_EQ(v.exit_code, 0) << entry.path() << ": " << v.err;
    auto r = run_process({vigil_bin, "run", entry.path().string()});
    EXPECT_EQ(r.exit_code, 0) << entry.path() << ": " << r.err;
    EXPECT_FALSE(r.out.empty()) << entry.path() << " printed no results";
    EXPECT_NE(r.err.find("finished in"), std::string::npos) << r.err;
  }
  EXPECT_GT(examples, 0);
}

TEST(Cli, UnknownOperatorIsRefusedNamingTheNode) {
  std::string dir = make_temp_dir("vigil-cli");
  write_file(dir + "/g.yaml", "nodes: [{id: reader, operator: kafka_magic}]\n");
  auto r = run_process({vigil_bin, "run", dir + "/g.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("node 'reader'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kafka_magic"), std::string::npos) << r.err;
}

TEST(Cli, MalformedYamlIsRefusedWithALine) {
  std::string dir = make_temp_dir("vigil-cli");
  write_file(dir + "/g.yaml", "nodes:\n  - {id: a, operator: generator\n");
  auto r = run_process({vigil_bin, "run", dir + "/g.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("line"), std::string::npos) << r.err;
}

TEST(Cli, WrongConfigTypeIsRefusedNamingTheKey) {
  std::string dir = make_temp_dir("vigil-cli");
  write_file(dir + "/g.yaml",
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {count: \"lots\"}}\n"
             "  - {id: out, operator: stdout}\n"
             "edges: [{from: gen, to: out}]\n");
  auto r = run_process({vigil_bin, "run", dir + "/g.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("node 'gen'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("config.count"), std::string::npos) << r.err;
}

TEST(Cli, MissingGraphFileIsRefused) {
  auto r = run_process({vigil_bin, "run", "/nonexistent/graph.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
}

// A fast unbounded generator feeding a deliberately slow sink: without credit-based flow
// control the generator (millions of records per second) would queue gigabytes within the
// run; with it the source is throttled and memory stays bounded.
TEST(Cli, BackpressureKeepsMemoryBounded) {
  std::string dir = make_temp_dir("vigil-cli");
  write_file(dir + "/g.yaml",
             "execution: {batch_size: 1024, channel_credits: 4}\n"
             "nodes:\n"
             "  - {id: gen, operator: generator, config: {keys: 100000, key_type: string}}\n"
             "  - {id: keyed, operator: key_by, config: {key: key}, parallelism: 2}\n"
             "  - {id: slow, operator: \"null\", config: {delay_per_batch: 2ms}, parallelism: 2}\n"
             "edges:\n"
             "  - {from: gen, to: keyed, partitioning: rebalance}\n"
             "  - {from: keyed, to: slow, partitioning: hash}\n");
  auto r = run_process({vigil_bin, "run", dir + "/g.yaml", "--state-dir", dir + "/state"}, 4000);
  EXPECT_EQ(r.exit_code, 130) << r.err;  // Cancelled by SIGINT, cleanly.
  EXPECT_LT(r.peak_rss_bytes, 200L * 1024 * 1024) << "peak RSS " << r.peak_rss_bytes;
  EXPECT_GT(r.peak_rss_bytes, 0);
}

}  // namespace
}  // namespace vigil
