// Idle sources: a feed that pauses stops holding back the watermark after idle_timeout_ms.
// Two feeds go through one union into a window. Feed `steady` runs for about a second of wall
// time (rate limited); feed `bursty` sends 10 records and then pauses for 1.5 s. With an idle
// timeout the watermark follows `steady` during the pause, so the records `bursty` sends after
// it are behind the watermark and go to the late output. Without one, `bursty` holds the
// watermark back and nothing is late.
#include <gtest/gtest.h>

#include <regex>

#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "process.hpp"

namespace vigil {
namespace {

const char* graph_yaml = R"(
name: idle
watermarks: {idle_timeout_ms: {IDLE}}
nodes:
  - id: steady
    operator: generator
    config: {count: 2000, rate: 2000, keys: 4, seed: 1, interval: 1ms}
  - id: bursty
    operator: generator
    config: {count: 500, keys: 4, seed: 2, interval: 1ms, pause_after: 10, pause_for: 1500ms}
  - id: both
    operator: union
  - id: keyed
    operator: key_by
    config: {key: key}
  - id: per_100ms
    operator: tumbling_window
    config:
      size: 100ms
      aggregates: [{name: n, fn: count}]
  - id: out
    operator: "null"
  - id: late
    operator: "null"
edges:
  - {from: steady, to: both}
  - {from: bursty, to: both}
  - {from: both, to: keyed}
  - {from: keyed, to: per_100ms}
  - {from: per_100ms, to: out}
  - {from: per_100ms, from_port: late, to: late}
)";

job_summary run_with_idle_timeout(int idle_timeout_ms) {
  std::string yaml =
      std::regex_replace(graph_yaml, std::regex("\\{IDLE\\}"), std::to_string(idle_timeout_ms));
  auto graph = parse_graph_yaml(yaml);
  EXPECT_TRUE(graph.ok()) << (graph.ok() ? "" : graph.err().message);
  static const operator_registry registry = make_builtin_registry();
  auto plan = plan_job(*graph, registry);
  EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.err().message);
  run_options opts;
  opts.state_dir = testing::make_temp_dir("vigil-idle");
  auto summary = run_local(*plan, opts);
  EXPECT_TRUE(summary.ok()) << (summary.ok() ? "" : summary.err().message);
  return summary.ok() ? *summary : job_summary{};
}

const node_summary& node_named(const job_summary& s, const std::string& id) {
  for (const auto& n : s.nodes) {
    if (n.id == id) return n;
  }
  static const node_summary none;
  ADD_FAILURE() << "no node " << id;
  return none;
}

TEST(IdleSource, PausedSourceStopsHoldingTheWatermarkAfterTheTimeout) {
  auto s = run_with_idle_timeout(200);
  const auto& window = node_named(s, "per_100ms");
  EXPECT_EQ(window.records_in, 2500u);
  EXPECT_GT(window.late_records, 0u) << "the paused feed did not become idle";
  EXPECT_EQ(node_named(s, "late").records_in, window.late_records);
}

TEST(IdleSource, WithoutTimeoutAPausedSourceHoldsTheWatermark) {
  auto s = run_with_idle_timeout(0);
  const auto& window = node_named(s, "per_100ms");
  EXPECT_EQ(window.records_in, 2500u);
  EXPECT_EQ(window.late_records, 0u);
  EXPECT_EQ(node_named(s, "late").records_in, 0u);
}

}  // namespace
}  // namespace vigil
