#include "graph/planner.hpp"

#include <gtest/gtest.h>

#include "graph/yaml_loader.hpp"

namespace vigil {
namespace {

/// A fake operator family, enough to exercise every validation rule without real operators.
class fake_plan : public operator_plan {
 public:
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<operator_base>();
  }
};

class fake_factory : public operator_factory {
 public:
  explicit fake_factory(operator_traits t) : traits_(std::move(t)) {}
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader cfg(*ctx.config);
    auto p = std::make_shared<fake_plan>();
    stream_info out;
    if (traits_.input_ports.empty()) {
      auto rows = cfg.int_or("rows", 10);
      if (!rows) return rows.err();
      out.schema = make_schema({{"k", type_id::string, false}, {"v", type_id::float64, true}});
    } else {
      out = ctx.inputs[0];
    }
    if (traits_.name == "keyer") {
      auto key = cfg.required_string("key");
      if (!key) return key.err();
      int idx = out.schema->index_of(*key);
      if (idx < 0) return config_reader::key_error("key", "unknown field '" + *key + "'");
      out.key_fields = {idx};
    }
    if (traits_.name == "needs_v") {
      int idx = out.schema->index_of("v");
      if (idx < 0 || out.schema->at(idx).type != type_id::int64) {
        return make_error(errc::invalid_argument, "input 'in': field 'v' must be int64");
      }
    }
    VIGIL_TRY(cfg.finish());
    for (size_t i = 0; i < traits_.output_ports.size(); ++i) p->outputs.push_back(out);
    return plan_ptr(p);
  }

 private:
  operator_traits traits_;
};

operator_registry fake_registry() {
  operator_registry r;
  r.add(
      std::make_unique<fake_factory>(operator_traits{"src", {}, false, {"out"}, false, false, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"pass", {"in"}, false, {"out"}, false, false, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"keyer", {"in"}, false, {"out"}, false, false, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"window", {"in"}, false, {"out", "late"}, true, true, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"join", {"left", "right"}, false, {"out"}, true, true, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"merge", {"in"}, true, {"out"}, false, false, ""}));
  r.add(std::make_unique<fake_factory>(
      operator_traits{"needs_v", {"in"}, false, {"out"}, false, false, ""}));
  r.add(
      std::make_unique<fake_factory>(operator_traits{"sink", {"in"}, false, {}, false, false, ""}));
  return r;
}

result<job_plan> plan_yaml(const std::string& yaml) {
  auto g = parse_graph_yaml(yaml);
  if (!g) return g.err();
  static const operator_registry registry = fake_registry();
  return plan_job(*g, registry);
}

/// Expects planning to fail with a message containing every one of `parts`.
void expect_refused(const std::string& yaml, std::initializer_list<std::string> parts) {
  auto p = plan_yaml(yaml);
  ASSERT_FALSE(p.ok()) << "graph was accepted:\n" << yaml;
  for (const auto& part : parts) {
    EXPECT_NE(p.err().message.find(part), std::string::npos)
        << "message \"" << p.err().message << "\" lacks \"" << part << "\"";
  }
}

const char* valid_graph = R"(
name: ok
max_parallelism: 16
nodes:
  - {id: s, operator: src, config: {rows: 5}}
  - {id: k, operator: keyer, config: {key: k}}
  - {id: w, operator: window, parallelism: 4}
  - {id: out, operator: sink}
  - {id: late, operator: sink}
edges:
  - {from: s, to: k}
  - {from: k, to: w}
  - {from: w, to: out}
  - {from: w, from_port: late, to: late}
)";

TEST(Planner, PlansAValidGraph) {
  auto p = plan_yaml(valid_graph);
  ASSERT_TRUE(p.ok()) << p.err().message;
  ASSERT_EQ(p->nodes.size(), 5u);
  EXPECT_EQ(p->nodes[0].id, "s");
  EXPECT_EQ(p->max_parallelism, 16u);
  ASSERT_EQ(p->edges.size(), 4u);
  // Defaults: forward between equal parallelism, hash into a keyed operator, rebalance else.
  EXPECT_EQ(p->edges[0].part, partitioning::forward);
  EXPECT_EQ(p->edges[1].part, partitioning::hash);
  EXPECT_EQ(p->edges[2].part, partitioning::rebalance);
  EXPECT_EQ(p->edges[3].from_port, 1u);
}

// The graph version (lineage): 16 hex digits, the same for the same graph parsed again (and
// after a round trip through its protobuf encoding, as a cluster stores and deploys it),
// another for any change.
TEST(Planner, GraphVersionIsAStableContentHash) {
  auto p = plan_yaml(valid_graph);
  ASSERT_TRUE(p.ok()) << p.err().message;
  EXPECT_EQ(p->graph_version.size(), 16u);
  EXPECT_EQ(p->graph_version.find_first_not_of("0123456789abcdef"), std::string::npos)
      << p->graph_version;
  auto again = plan_yaml(valid_graph);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->graph_version, p->graph_version);
  auto g = parse_graph_yaml(valid_graph);
  ASSERT_TRUE(g.ok());
  v1::JobGraph copy;
  ASSERT_TRUE(copy.ParseFromString(g->SerializeAsString()));
  EXPECT_EQ(graph_version(copy), p->graph_version);
  std::string changed = valid_graph;
  changed.replace(changed.find("rows: 5"), 7, "rows: 6");
  auto other = plan_yaml(changed);
  ASSERT_TRUE(other.ok()) << other.err().message;
  EXPECT_NE(other->graph_version, p->graph_version);
}

TEST(Planner, RefusesUnknownOperator) {
  expect_refused("nodes: [{id: a, operator: nope}]", {"node 'a'", "operator", "'nope'"});
}

TEST(Planner, RefusesMissingConfig) {
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: k, operator: keyer}, {id: o, operator: sink}]
edges: [{from: s, to: k}, {from: k, to: o}]
)",
                 {"node 'k'", "config.key", "required"});
}

TEST(Planner, RefusesIllTypedConfig) {
  expect_refused("nodes: [{id: s, operator: src, config: {rows: \"many\"}}]",
                 {"node 's'", "config.rows", "expected integer, got string"});
}

TEST(Planner, RefusesUnknownConfigKey) {
  expect_refused("nodes: [{id: s, operator: src, config: {rowz: 3}}]",
                 {"node 's'", "config.rowz", "unknown key"});
}

TEST(Planner, RefusesSchemaMismatchOnEdge) {
  expect_refused(R"(
nodes:
  - {id: s, operator: src}
  - {id: n, operator: needs_v}
  - {id: o, operator: sink}
edges: [{from: s, to: n}, {from: n, to: o}]
)",
                 {"node 'n'", "input 'in'", "field 'v' must be int64"});
  // A declared output schema that differs from what the operator produces.
  expect_refused(R"(
nodes:
  - id: s
    operator: src
    output_schema: {fields: [{name: k, type: int64}]}
)",
                 {"node 's'", "output_schema", "k:int64?", "k:string"});
}

TEST(Planner, RefusesCycles) {
  expect_refused(R"(
nodes:
  - {id: s, operator: src}
  - {id: a, operator: merge}
  - {id: b, operator: pass}
edges: [{from: s, to: a}, {from: a, to: b}, {from: b, to: a}]
)",
                 {"cycle", "'a'", "'b'"});
}

TEST(Planner, RefusesKeyedOperatorWithoutKey) {
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: w, operator: window}]
edges: [{from: s, to: w}]
)",
                 {"node 'w'", "not keyed", "key_by"});
}

TEST(Planner, RefusesParallelismAboveMax) {
  expect_refused(R"(
max_parallelism: 4
nodes: [{id: s, operator: src, parallelism: 8}]
)",
                 {"node 's'", "parallelism", "exceeds max_parallelism 4"});
}

TEST(Planner, RefusesDuplicateNodeIds) {
  expect_refused("nodes: [{id: s, operator: src}, {id: s, operator: src}]",
                 {"node 's'", "duplicate"});
}

TEST(Planner, RefusesNodeIdsThatCouldEscapeTheStateDirectory) {
  expect_refused("nodes: [{id: ../../victim, operator: src}]", {"node '../../victim'", "id:"});
  expect_refused("nodes: [{id: /etc, operator: src}]", {"node '/etc'", "id:"});
  expect_refused("nodes: [{id: '..', operator: src}]", {"id:"});
}

TEST(Planner, RefusesOutOfRangeWatermarkSettings) {
  expect_refused(
      "watermarks: {allowed_lateness_ms: 9223372036854775807}\nnodes: [{id: s, operator: src}]",
      {"watermarks.allowed_lateness_ms"});
}

TEST(Planner, RefusesUnknownEdgeEndpointsAndPorts) {
  expect_refused("nodes: [{id: s, operator: src}]\nedges: [{from: s, to: x}]",
                 {"edge s -> x", "unknown node 'x'"});
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: o, operator: sink}]
edges: [{from: s, from_port: late, to: o}]
)",
                 {"from_port", "no output port 'late'"});
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: t, operator: src}]
edges: [{from: s, to: t}]
)",
                 {"'t'", "source"});
}

TEST(Planner, RefusesUnconnectedAndOverconnectedPorts) {
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: k, operator: keyer, config: {key: k}},
        {id: j, operator: join}]
edges: [{from: s, to: k}, {from: k, to: j, to_port: left}]
)",
                 {"node 'j'", "input port 'right' has no edge"});
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: t, operator: src}, {id: o, operator: sink}]
edges: [{from: s, to: o}, {from: t, to: o}]
)",
                 {"node 'o'", "2 edges", "union"});
}

TEST(Planner, RefusesImpossiblePartitioning) {
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: k, operator: keyer, config: {key: k}},
        {id: w, operator: window}]
edges: [{from: s, to: k}, {from: k, to: w, partitioning: rebalance}]
)",
                 {"edge k -> w", "needs hash partitioning"});
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: o, operator: sink}]
edges: [{from: s, to: o, partitioning: hash}]
)",
                 {"edge s -> o", "keyed stream"});
  expect_refused(R"(
nodes: [{id: s, operator: src}, {id: o, operator: sink, parallelism: 2}]
edges: [{from: s, to: o, partitioning: forward}]
)",
                 {"edge s -> o", "equal parallelism"});
}

TEST(Planner, VariadicPortTakesSeveralEdges) {
  auto p = plan_yaml(R"(
nodes: [{id: a, operator: src}, {id: b, operator: src}, {id: m, operator: merge},
        {id: o, operator: sink}]
edges: [{from: a, to: m}, {from: b, to: m}, {from: m, to: o}]
)");
  ASSERT_TRUE(p.ok()) << p.err().message;
}

TEST(GraphYaml, RefusesMalformedYaml) {
  auto g = parse_graph_yaml("nodes: [{id: a, operator: src}\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("line"), std::string::npos) << g.err().message;
}

TEST(GraphYaml, RefusesUnknownKeysWithLine) {
  auto g = parse_graph_yaml("nodes:\n  - id: a\n    operater: src\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("line 3"), std::string::npos) << g.err().message;
  EXPECT_NE(g.err().message.find("nodes[0].operater: unknown key"), std::string::npos)
      << g.err().message;
}

TEST(GraphYaml, RefusesWrongTypes) {
  auto g = parse_graph_yaml("max_parallelism: lots\nnodes: [{id: a, operator: src}]\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("max_parallelism: expected a non-negative integer"),
            std::string::npos)
      << g.err().message;
  g = parse_graph_yaml("nodes: [{id: a, operator: src, parallelism: -1}]\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("nodes[0].parallelism"), std::string::npos) << g.err().message;
}

TEST(GraphYaml, RefusesDuplicateKeys) {
  auto g = parse_graph_yaml("nodes:\n  - id: a\n    id: b\n    operator: src\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("nodes[0].id: duplicate key"), std::string::npos)
      << g.err().message;
}

TEST(GraphYaml, NamesMissingRequiredFields) {
  auto g = parse_graph_yaml(
      "nodes:\n  - id: a\n    operator: src\n    output_schema: {fields: [{type: int64}]}\n");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("nodes[0].output_schema.fields[0].name: required"),
            std::string::npos)
      << g.err().message;
}

TEST(GraphYaml, RefusesAliasBombsWithoutExhaustingMemory) {
  std::string yaml = "nodes:\n  - id: a\n    operator: src\n    config:\n";
  yaml += "      l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i < 8; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "      l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) yaml += (k ? ", " : "") + prev;
    yaml += "]\n";
  }
  auto g = parse_graph_yaml(yaml);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.err().message.find("too many values"), std::string::npos) << g.err().message;
}

TEST(GraphYaml, TypesConfigScalars) {
  auto g = parse_graph_yaml(R"(
nodes:
  - id: a
    operator: src
    config: {i: 3, d: 2.5, b: true, s: hello, q: "7", n: null, l: [1, x], m: {k: v}}
)");
  ASSERT_TRUE(g.ok()) << g.err().message;
  auto cfg = to_config_map(g->nodes(0).config());
  ASSERT_EQ(cfg.size(), 8u);
  EXPECT_EQ(cfg[0].second.k, config_value::kind::integer);
  EXPECT_EQ(cfg[1].second.k, config_value::kind::number);
  EXPECT_EQ(cfg[2].second.k, config_value::kind::boolean);
  EXPECT_EQ(cfg[3].second.k, config_value::kind::string);
  EXPECT_EQ(cfg[4].second.k, config_value::kind::string);  // Quoted: stays a string.
  EXPECT_EQ(cfg[5].second.k, config_value::kind::null);
  ASSERT_EQ(cfg[6].second.list.size(), 2u);
  EXPECT_EQ(cfg[6].second.list[1].s, "x");
  EXPECT_EQ(cfg[7].second.map[0].first, "k");
}

}  // namespace
}  // namespace vigil
