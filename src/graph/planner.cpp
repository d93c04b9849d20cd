#include "graph/planner.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <xxhash.h>

#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "common/ids.hpp"

namespace vigil {
namespace {

constexpr uint32_t max_key_groups = 32768;

config_value to_config_value(const v1::Value& v) {
  config_value out;
  switch (v.kind_case()) {
    case v1::Value::kBoolValue:
      return config_value::of_bool(v.bool_value());
    case v1::Value::kIntValue:
      return config_value::of_int(v.int_value());
    case v1::Value::kDoubleValue:
      return config_value::of_double(v.double_value());
    case v1::Value::kStringValue:
      return config_value::of_string(v.string_value());
    case v1::Value::kListValue:
      out.k = config_value::kind::list;
      for (const auto& item : v.list_value().values()) out.list.push_back(to_config_value(item));
      return out;
    case v1::Value::kMapValue:
      out.k = config_value::kind::map;
      out.map = to_config_map(v.map_value());
      return out;
    case v1::Value::kNullValue:
    case v1::Value::KIND_NOT_SET:
      return out;
  }
  return out;
}

error node_error(const std::string& id, const std::string& what) {
  return make_error(errc::invalid_graph, "node '" + id + "': " + what);
}

std::string edge_name(const v1::Edge& e) {
  std::string s = e.from();
  if (!e.from_port().empty()) s += "." + e.from_port();
  s += " -> " + e.to();
  if (!e.to_port().empty()) s += "." + e.to_port();
  return "edge " + s;
}

int index_of(const std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

config_map to_config_map(const v1::ValueMap& map) {
  config_map out;
  for (const auto& e : map.entries()) out.emplace_back(e.key(), to_config_value(e.value()));
  return out;
}

result<schema_ptr> to_schema(const v1::Schema& s, const std::string& path) {
  std::vector<field> fields;
  std::set<std::string> names;
  for (int i = 0; i < s.fields_size(); ++i) {
    const auto& f = s.fields(i);
    std::string fp = path + ".fields[" + std::to_string(i) + "]";
    if (f.name().empty()) return make_error(errc::invalid_graph, fp + ".name: required");
    if (!names.insert(f.name()).second) {
      return make_error(errc::invalid_graph, fp + ".name: duplicate field '" + f.name() + "'");
    }
    type_id t;
    switch (f.type()) {
      case v1::FIELD_TYPE_BOOL:
        t = type_id::boolean;
        break;
      case v1::FIELD_TYPE_INT64:
        t = type_id::int64;
        break;
      case v1::FIELD_TYPE_DOUBLE:
        t = type_id::float64;
        break;
      case v1::FIELD_TYPE_STRING:
        t = type_id::string;
        break;
      case v1::FIELD_TYPE_TIMESTAMP:
        t = type_id::timestamp;
        break;
      default:
        return make_error(errc::invalid_graph,
                          fp + ".type: required (bool, int64, double, string, timestamp)");
    }
    fields.push_back(field{f.name(), t, !f.required()});
  }
  return make_schema(std::move(fields));
}

std::string graph_version(const v1::JobGraph& g) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    g.SerializeToCodedStream(&coded);
  }
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.high64));
  return hex;
}

result<job_plan> plan_job(const v1::JobGraph& g, const operator_registry& registry) {
  job_plan out;
  out.name = g.name().empty() ? "job" : g.name();
  out.graph_version = graph_version(g);
  out.max_parallelism = g.max_parallelism() == 0 ? 128 : g.max_parallelism();
  if (out.max_parallelism > max_key_groups) {
    return make_error(errc::invalid_graph,
                      "max_parallelism: " + std::to_string(out.max_parallelism) +
                          " is above the limit of 32768 key groups");
  }
  constexpr int64_t max_ms = std::numeric_limits<int64_t>::max() / 1000;
  if (g.watermarks().allowed_lateness_ms() < 0 || g.watermarks().allowed_lateness_ms() > max_ms) {
    return make_error(
        errc::invalid_graph,
        "watermarks.allowed_lateness_ms: must be between 0 and " + std::to_string(max_ms));
  }
  if (g.watermarks().idle_timeout_ms() < 0 || g.watermarks().idle_timeout_ms() > max_ms) {
    return make_error(errc::invalid_graph, "watermarks.idle_timeout_ms: must be between 0 and " +
                                               std::to_string(max_ms));
  }
  out.allowed_lateness_us = g.watermarks().allowed_lateness_ms() * 1000;
  out.idle_timeout_us = g.watermarks().idle_timeout_ms() * 1000;
  const auto& ex = g.execution();
  out.batch_size = ex.batch_size() == 0 ? 1024 : ex.batch_size();
  if (out.batch_size > (1u << 20)) {
    return make_error(errc::invalid_graph, "execution.batch_size: at most 1048576 rows");
  }
  out.linger_us = (ex.linger_ms() == 0 ? 5 : ex.linger_ms()) * int64_t{1000};
  out.channel_credits = ex.channel_credits() == 0 ? 4 : ex.channel_credits();
  uint32_t default_parallelism = ex.default_parallelism() == 0 ? 1 : ex.default_parallelism();
  const auto& cp = g.checkpoints();
  if (cp.interval_ms() < 0 || cp.interval_ms() > max_ms) {
    return make_error(errc::invalid_graph,
                      "checkpoints.interval_ms: must be between 0 and " + std::to_string(max_ms));
  }
  if (cp.timeout_ms() < 0 || cp.timeout_ms() > max_ms) {
    return make_error(errc::invalid_graph,
                      "checkpoints.timeout_ms: must be between 0 and " + std::to_string(max_ms));
  }
  out.checkpoint_interval_us = cp.interval_ms() * 1000;
  out.checkpoint_timeout_us = (cp.timeout_ms() == 0 ? 60000 : cp.timeout_ms()) * 1000;
  out.checkpoint_retain = cp.retain() == 0 ? 3 : cp.retain();
  out.tolerable_checkpoint_failures = cp.tolerable_failures() == 0 ? 3 : cp.tolerable_failures();
  const auto& rs = g.restart();
  if (rs.backoff_ms() < 0 || rs.backoff_ms() > max_ms) {
    return make_error(errc::invalid_graph,
                      "restart.backoff_ms: must be between 0 and " + std::to_string(max_ms));
  }
  if (rs.max_backoff_ms() < 0 || rs.max_backoff_ms() > max_ms) {
    return make_error(errc::invalid_graph,
                      "restart.max_backoff_ms: must be between 0 and " + std::to_string(max_ms));
  }
  out.restart_max_attempts = rs.max_attempts() == 0 ? 10 : rs.max_attempts();
  out.restart_backoff_us = (rs.backoff_ms() == 0 ? 100 : rs.backoff_ms()) * 1000;
  out.restart_max_backoff_us = (rs.max_backoff_ms() == 0 ? 10000 : rs.max_backoff_ms()) * 1000;
  if (out.restart_max_backoff_us < out.restart_backoff_us) {
    return make_error(errc::invalid_graph, "restart.max_backoff_ms: must be at least backoff_ms");
  }

  // Nodes: ids, operators, parallelism.
  if (g.nodes_size() == 0) return make_error(errc::invalid_graph, "nodes: the graph has no nodes");
  std::map<std::string, int> by_id;
  std::vector<const operator_factory*> factories;
  std::vector<uint32_t> parallelism(g.nodes_size());
  for (int i = 0; i < g.nodes_size(); ++i) {
    const auto& n = g.nodes(i);
    if (n.id().empty()) {
      return make_error(errc::invalid_graph, "nodes[" + std::to_string(i) + "].id: required");
    }
    if (!is_path_safe_id(n.id())) {
      return node_error(n.id(), "id: use letters, digits, '_', '-' and '.' (at most 128)");
    }
    if (auto [it, fresh] = by_id.emplace(n.id(), i); !fresh) {
      return node_error(n.id(), "duplicate node id (nodes[" + std::to_string(it->second) +
                                    "] and nodes[" + std::to_string(i) + "])");
    }
    const operator_factory* f = registry.find(n.operator_());
    if (f == nullptr) {
      std::vector<std::string> known;
      for (const auto& k : registry.all()) known.push_back(k->traits().name);
      return node_error(n.id(), "operator: unknown operator '" + n.operator_() +
                                    "' (known: " + join_names(known) + ")");
    }
    factories.push_back(f);
    uint32_t p = n.parallelism() == 0 ? default_parallelism : n.parallelism();
    parallelism[i] = p;
    if (p > out.max_parallelism) {
      return node_error(n.id(), "parallelism: " + std::to_string(p) + " exceeds max_parallelism " +
                                    std::to_string(out.max_parallelism));
    }
  }

  // Edges: endpoints and ports.
  struct resolved_edge {
    int from, to;
    size_t from_port, to_port;
    const v1::Edge* e;
  };
  std::vector<resolved_edge> edges;
  std::vector<std::vector<int>> outgoing(g.nodes_size()), incoming(g.nodes_size());
  for (int i = 0; i < g.edges_size(); ++i) {
    const auto& e = g.edges(i);
    auto from = by_id.find(e.from());
    if (from == by_id.end()) {
      return make_error(errc::invalid_graph,
                        edge_name(e) + ": from: unknown node '" + e.from() + "'");
    }
    auto to = by_id.find(e.to());
    if (to == by_id.end()) {
      return make_error(errc::invalid_graph, edge_name(e) + ": to: unknown node '" + e.to() + "'");
    }
    const auto& ft = factories[from->second]->traits();
    const auto& tt = factories[to->second]->traits();
    std::string from_port = e.from_port().empty() ? "out" : e.from_port();
    int fp = index_of(ft.output_ports, from_port);
    if (fp < 0) {
      return make_error(errc::invalid_graph, edge_name(e) + ": from_port: node '" + e.from() +
                                                 "' (" + ft.name + ") has no output port '" +
                                                 from_port +
                                                 "' (ports: " + join_names(ft.output_ports) + ")");
    }
    if (tt.input_ports.empty()) {
      return make_error(errc::invalid_graph, edge_name(e) + ": to: node '" + e.to() + "' (" +
                                                 tt.name + ") is a source and takes no inputs");
    }
    int tp = 0;
    if (e.to_port().empty()) {
      if (tt.input_ports.size() > 1) {
        return make_error(errc::invalid_graph, edge_name(e) + ": to_port: required, node '" +
                                                   e.to() + "' (" + tt.name + ") has ports " +
                                                   join_names(tt.input_ports));
      }
    } else {
      tp = index_of(tt.input_ports, e.to_port());
      if (tp < 0) {
        return make_error(errc::invalid_graph, edge_name(e) + ": to_port: node '" + e.to() + "' (" +
                                                   tt.name + ") has no input port '" + e.to_port() +
                                                   "' (ports: " + join_names(tt.input_ports) + ")");
      }
    }
    edges.push_back(
        {from->second, to->second, static_cast<size_t>(fp), static_cast<size_t>(tp), &e});
    outgoing[from->second].push_back(i);
    incoming[to->second].push_back(i);
  }

  // Topological order (Kahn); what is left over lies on a cycle.
  std::vector<int> order, indegree(g.nodes_size());
  for (const auto& e : edges) ++indegree[e.to];
  for (int i = 0; i < g.nodes_size(); ++i) {
    if (indegree[i] == 0) order.push_back(i);
  }
  for (size_t k = 0; k < order.size(); ++k) {
    for (int ei : outgoing[order[k]]) {
      if (--indegree[edges[ei].to] == 0) order.push_back(edges[ei].to);
    }
  }
  if (order.size() != static_cast<size_t>(g.nodes_size())) {
    std::string members;
    for (int i = 0; i < g.nodes_size(); ++i) {
      if (indegree[i] > 0) members += (members.empty() ? "'" : ", '") + g.nodes(i).id() + "'";
    }
    return make_error(errc::invalid_graph, "edges: the graph has a cycle through nodes " + members);
  }
  std::vector<size_t> position(g.nodes_size());
  for (size_t k = 0; k < order.size(); ++k) position[order[k]] = k;

  // Plan nodes in topological order; each sees its planned inputs.
  std::vector<plan_ptr> plans(g.nodes_size());
  std::vector<config_map> configs(g.nodes_size());
  for (int i : order) {
    const auto& n = g.nodes(i);
    const operator_factory* f = factories[i];
    const auto& traits = f->traits();

    plan_context ctx;
    ctx.node_id = n.id();
    configs[i] = to_config_map(n.config());
    ctx.config = &configs[i];
    ctx.parallelism = parallelism[i];
    ctx.max_parallelism = out.max_parallelism;
    ctx.allowed_lateness_us = out.allowed_lateness_us;
    if (n.has_output_schema()) {
      auto s = to_schema(n.output_schema(), "output_schema");
      if (!s) return with_context("node '" + n.id() + "': ", s.err());
      ctx.declared_output = *s;
    }

    // Inputs, port by port; a variadic port takes its edges in graph order.
    std::vector<std::vector<int>> per_port(traits.input_ports.size());
    for (int ei : incoming[i]) per_port[edges[ei].to_port].push_back(ei);
    for (size_t p = 0; p < per_port.size(); ++p) {
      const std::string& port = traits.input_ports[p];
      if (per_port[p].empty()) {
        return node_error(n.id(), "input port '" + port + "' has no edge");
      }
      if (per_port[p].size() > 1 && !traits.variadic_input) {
        return node_error(n.id(), "input port '" + port + "' has " +
                                      std::to_string(per_port[p].size()) +
                                      " edges; only one is allowed (use a union node)");
      }
      for (int ei : per_port[p]) {
        const auto& e = edges[ei];
        const stream_info& in = plans[e.from]->outputs[e.from_port];
        std::string from_desc = "input '" + port + "' from '" + g.nodes(e.from).id() + "'";
        if (traits.keyed && !in.keyed()) {
          return node_error(n.id(), from_desc + " is not keyed; operator '" + traits.name +
                                        "' needs a key: add a key_by node before it");
        }
        ctx.inputs.push_back(in);
      }
    }

    auto plan = f->plan(ctx);
    if (!plan) {
      auto err = plan.err();
      err.code = errc::invalid_graph;
      return with_context("node '" + n.id() + "': ", std::move(err));
    }
    if ((*plan)->outputs.size() != traits.output_ports.size()) {
      return node_error(n.id(), "internal: operator '" + traits.name + "' planned " +
                                    std::to_string((*plan)->outputs.size()) + " outputs for " +
                                    std::to_string(traits.output_ports.size()) + " ports");
    }
    if (ctx.declared_output) {
      if (traits.output_ports.empty()) {
        return node_error(
            n.id(), "output_schema: operator '" + traits.name + "' is a sink and has no output");
      }
      const schema& produced = *(*plan)->outputs[0].schema;
      if (!(produced == *ctx.declared_output)) {
        return node_error(n.id(), "output_schema: declared (" + ctx.declared_output->to_string() +
                                      ") but the operator produces (" + produced.to_string() + ")");
      }
    }
    plans[i] = *plan;
  }

  // Partitioning of every edge.
  for (const auto& e : edges) {
    const auto& to_traits = factories[e.to]->traits();
    const stream_info& in = plans[e.from]->outputs[e.from_port];
    uint32_t pf = parallelism[e.from], pt = parallelism[e.to];
    partitioning part;
    switch (e.e->partitioning()) {
      case v1::PARTITIONING_FORWARD:
        part = partitioning::forward;
        break;
      case v1::PARTITIONING_HASH:
        part = partitioning::hash;
        break;
      case v1::PARTITIONING_BROADCAST:
        part = partitioning::broadcast;
        break;
      case v1::PARTITIONING_REBALANCE:
        part = partitioning::rebalance;
        break;
      default:
        part = to_traits.keyed ? partitioning::hash
               : pf == pt      ? partitioning::forward
                               : partitioning::rebalance;
        break;
    }
    std::string name = edge_name(*e.e);
    if (to_traits.keyed && part != partitioning::hash) {
      return make_error(errc::invalid_graph,
                        name + ": partitioning: '" + g.nodes(e.to).id() + "' (" + to_traits.name +
                            ") is keyed and needs hash partitioning, not " + to_string(part));
    }
    if (part == partitioning::hash && !in.keyed()) {
      return make_error(errc::invalid_graph,
                        name + ": partitioning: hash needs a keyed stream; add a key_by node");
    }
    if (part == partitioning::forward && pf != pt) {
      return make_error(errc::invalid_graph,
                        name + ": partitioning: forward needs equal parallelism (" +
                            std::to_string(pf) + " != " + std::to_string(pt) +
                            "); use rebalance or hash");
    }
    out.edges.push_back({position[e.from], e.from_port, position[e.to], e.to_port, part});
  }

  for (int i : order) {
    out.nodes.push_back({g.nodes(i).id(), factories[i], plans[i], parallelism[i]});
  }
  return out;
}

}  // namespace vigil
