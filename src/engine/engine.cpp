#include "engine/engine.hpp"

#include <cstdio>

#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "operators/connectors/connectors.hpp"
#include "operators/core/dedup.hpp"
#include "operators/core/join_operators.hpp"
#include "operators/core/key_by.hpp"
#include "operators/core/relational.hpp"
#include "operators/core/union_op.hpp"
#include "operators/core/window_operators.hpp"
#include "operators/kafka/sink/kafka_sink.hpp"
#include "operators/kafka/source/kafka_source.hpp"
#include "operators/lake/lake_sink.hpp"

namespace vigil {

operator_registry make_builtin_registry() {
  operator_registry r;
  register_connectors(r);
  register_lake_operators(r);
  register_relational_operators(r);
  register_key_by_operator(r);
  register_union_operator(r);
  register_window_operators(r);
  register_join_operators(r);
  register_dedup_operator(r);
  r.add(make_kafka_source_factory());
  r.add(make_kafka_sink_factory());
  register_clinical_operators(r);
  return r;
}

result<job_plan> load_job(const std::string& path, const operator_registry& registry) {
  auto graph = load_graph_file(path);
  if (!graph) return graph.err();
  auto plan = plan_job(*graph, registry);
  if (!plan) return with_context(path + ": ", plan.err());
  return plan;
}

std::string describe_plan(const job_plan& plan) {
  std::string out = "job '" + plan.name + "': " + std::to_string(plan.nodes.size()) +
                    " nodes, max_parallelism " + std::to_string(plan.max_parallelism) +
                    ", batch_size " + std::to_string(plan.batch_size) + "\n";
  for (const auto& n : plan.nodes) {
    const auto& t = n.factory->traits();
    out += "  " + n.id + " (" + t.name + ", parallelism " + std::to_string(n.parallelism) + ")\n";
    for (size_t p = 0; p < t.output_ports.size(); ++p) {
      const auto& s = n.plan->outputs[p];
      out += "    " + t.output_ports[p] + ": " + s.schema->to_string();
      if (s.keyed()) {
        out += "  keyed by";
        for (int k : s.key_fields) out += " " + s.schema->at(k).name;
      }
      out += "\n";
    }
  }
  for (const auto& e : plan.edges) {
    const auto& from = plan.nodes[e.from];
    const auto& to = plan.nodes[e.to];
    out += "  " + from.id + "." + from.factory->traits().output_ports[e.from_port] + " -> " +
           to.id + "." + to.factory->traits().input_ports[e.to_port] + " [" + to_string(e.part) +
           "]\n";
  }
  return out;
}

std::string describe_summary(const job_summary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "job '%s' finished in %.3f s\n", s.name.c_str(), s.seconds);
  std::string out = buf;
  std::snprintf(buf, sizeof buf, "  %-20s %-16s %4s %12s %12s %8s %8s\n", "node", "operator", "par",
                "records in", "records out", "late", "dropped");
  out += buf;
  uint64_t source_rows = 0;
  for (const auto& n : s.nodes) {
    uint64_t rows_out = n.rows_out.empty() ? 0 : n.rows_out[0].second;
    if (n.records_in == 0) source_rows += rows_out;
    std::snprintf(buf, sizeof buf, "  %-20s %-16s %4u %12llu %12llu %8llu %8llu\n", n.id.c_str(),
                  n.op.c_str(), n.parallelism, static_cast<unsigned long long>(n.records_in),
                  static_cast<unsigned long long>(rows_out),
                  static_cast<unsigned long long>(n.late_records),
                  static_cast<unsigned long long>(n.dropped_records));
    out += buf;
    for (size_t p = 1; p < n.rows_out.size(); ++p) {
      if (n.rows_out[p].second == 0) continue;
      std::snprintf(buf, sizeof buf, "  %-20s   port '%s': %llu records\n", "",
                    n.rows_out[p].first.c_str(),
                    static_cast<unsigned long long>(n.rows_out[p].second));
      out += buf;
    }
  }
  if (s.seconds > 0) {
    std::snprintf(buf, sizeof buf, "  %llu source records, %.0f records/s\n",
                  static_cast<unsigned long long>(source_rows), source_rows / s.seconds);
    out += buf;
  }
  const auto& c = s.checkpoints;
  if (c.completed > 0 || c.failed > 0) {
    std::snprintf(
        buf, sizeof buf,
        "  checkpoints: %llu completed (last %lld, %llu bytes), %llu failed, %llu bytes "
        "copied to storage\n",
        static_cast<unsigned long long>(c.completed), static_cast<long long>(c.last_completed),
        static_cast<unsigned long long>(c.last_bytes), static_cast<unsigned long long>(c.failed),
        static_cast<unsigned long long>(c.bytes_copied));
    out += buf;
  }
  return out;
}

}  // namespace vigil
