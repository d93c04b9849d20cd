#include "graph/yaml_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "graph/graph_variables.hpp"

namespace vigil {
namespace {

/// Walks a YAML document, remembering the path of the current node for error messages.
class reader {
 public:
  error fail(const YAML::Node& n, const std::string& path, const std::string& what) const {
    std::string msg;
    if (n.IsDefined() && n.Mark().line >= 0) {
      msg = "line " + std::to_string(n.Mark().line + 1) + ", column " +
            std::to_string(n.Mark().column + 1) + ": ";
    }
    msg += path + ": " + what;
    return make_error(errc::parse_error, std::move(msg));
  }

  status check_keys(const YAML::Node& map, const std::string& path,
                    std::initializer_list<std::string_view> allowed) const {
    if (!map.IsMap()) return fail(map, path, "expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : map) {
      auto key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        return fail(kv.first, path.empty() ? key : path + "." + key, "duplicate key");
      }
      bool ok = false;
      for (auto a : allowed) ok = ok || key == a;
      if (!ok) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return fail(kv.first, path.empty() ? key : path + "." + key,
                    "unknown key (allowed: " + list + ")");
      }
    }
    return {};
  }

  result<std::string> string_of(const YAML::Node& n, const std::string& path) const {
    if (!n) return fail(n, path, "required");
    if (!n.IsScalar()) return fail(n, path, "expected a string");
    return n.Scalar();
  }

  result<uint32_t> uint_of(const YAML::Node& n, const std::string& path) const {
    if (!n) return fail(n, path, "required");
    if (!n.IsScalar() || n.Tag() == "!") return fail(n, path, "expected a non-negative integer");
    const std::string& s = n.Scalar();
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return fail(n, path, "expected a non-negative integer, got \"" + s + "\"");
    }
    return v;
  }

  result<int64_t> int_of(const YAML::Node& n, const std::string& path) const {
    if (!n) return fail(n, path, "required");
    if (!n.IsScalar() || n.Tag() == "!") return fail(n, path, "expected an integer");
    const std::string& s = n.Scalar();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return fail(n, path, "expected an integer, got \"" + s + "\"");
    }
    return v;
  }

  /// A config value: plain scalars become null, bool, int or double when they look like one;
  /// quoted scalars stay strings.
  result<v1::Value> value_of(const YAML::Node& n, const std::string& path) const {
    // Aliases are expanded: a few lines of anchors can stand for billions of values.
    if (++values_ > max_values) {
      return fail(n, path,
                  "too many values (more than " + std::to_string(max_values) +
                      "; are YAML aliases nested?)");
    }
    v1::Value out;
    if (n.IsNull()) {
      out.set_null_value(true);
    } else if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") {
        out.set_string_value(s);
      } else if (s == "true" || s == "false") {
        out.set_bool_value(s == "true");
      } else if (int64_t i = 0; parse_int(s, i)) {
        out.set_int_value(i);
      } else if (double d = 0; parse_double(s, d)) {
        out.set_double_value(d);
      } else {
        out.set_string_value(s);
      }
    } else if (n.IsSequence()) {
      auto* list = out.mutable_list_value();
      for (size_t i = 0; i < n.size(); ++i) {
        auto v = value_of(n[i], path + "[" + std::to_string(i) + "]");
        if (!v) return v.err();
        *list->add_values() = std::move(*v);
      }
    } else if (n.IsMap()) {
      auto m = map_of(n, path);
      if (!m) return m.err();
      *out.mutable_map_value() = std::move(*m);
    } else {
      return fail(n, path, "unsupported YAML node");
    }
    return out;
  }

  result<v1::ValueMap> map_of(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap()) return fail(n, path, "expected a mapping");
    v1::ValueMap out;
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) return fail(kv.first, path + "." + key, "duplicate key");
      auto v = value_of(kv.second, path + "." + key);
      if (!v) return v.err();
      auto* e = out.add_entries();
      e->set_key(key);
      *e->mutable_value() = std::move(*v);
    }
    return out;
  }

  result<v1::Schema> schema_of(const YAML::Node& n, const std::string& path) const {
    VIGIL_TRY(check_keys(n, path, {"fields"}));
    const auto& fields = n["fields"];
    if (!fields || !fields.IsSequence())
      return fail(n, path + ".fields", "expected a list of fields");
    v1::Schema out;
    for (size_t i = 0; i < fields.size(); ++i) {
      std::string fp = path + ".fields[" + std::to_string(i) + "]";
      const auto& f = fields[i];
      VIGIL_TRY(check_keys(f, fp, {"name", "type", "required"}));
      auto* field = out.add_fields();
      auto name = string_of(f["name"], fp + ".name");
      if (!name) return name.err();
      field->set_name(*name);
      auto type = string_of(f["type"], fp + ".type");
      if (!type) return type.err();
      v1::FieldType t = v1::FIELD_TYPE_UNSPECIFIED;
      if (*type == "bool")
        t = v1::FIELD_TYPE_BOOL;
      else if (*type == "int64")
        t = v1::FIELD_TYPE_INT64;
      else if (*type == "double")
        t = v1::FIELD_TYPE_DOUBLE;
      else if (*type == "string")
        t = v1::FIELD_TYPE_STRING;
      else if (*type == "timestamp")
        t = v1::FIELD_TYPE_TIMESTAMP;
      else {
        return fail(f["type"], fp + ".type",
                    "unknown type \"" + *type + "\" (bool, int64, double, string, timestamp)");
      }
      field->set_type(t);
      if (f["required"]) {
        auto v = value_of(f["required"], fp + ".required");
        if (!v) return v.err();
        if (v->kind_case() != v1::Value::kBoolValue) {
          return fail(f["required"], fp + ".required", "expected true or false");
        }
        field->set_required(v->bool_value());
      }
    }
    return out;
  }

  result<v1::JobGraph> graph_of(const YAML::Node& root) const {
    if (!root.IsMap()) return fail(root, "graph", "expected a mapping at the top level");
    VIGIL_TRY(check_keys(root, "",
                         {"name", "nodes", "edges", "max_parallelism", "watermarks", "execution",
                          "checkpoints", "restart"}));
    v1::JobGraph g;
    if (root["name"]) {
      auto name = string_of(root["name"], "name");
      if (!name) return name.err();
      g.set_name(*name);
    }
    if (root["max_parallelism"]) {
      auto v = uint_of(root["max_parallelism"], "max_parallelism");
      if (!v) return v.err();
      g.set_max_parallelism(*v);
    }
    if (const auto& w = root["watermarks"]) {
      VIGIL_TRY(check_keys(w, "watermarks", {"allowed_lateness_ms", "idle_timeout_ms"}));
      if (w["allowed_lateness_ms"]) {
        auto v = int_of(w["allowed_lateness_ms"], "watermarks.allowed_lateness_ms");
        if (!v) return v.err();
        g.mutable_watermarks()->set_allowed_lateness_ms(*v);
      }
      if (w["idle_timeout_ms"]) {
        auto v = int_of(w["idle_timeout_ms"], "watermarks.idle_timeout_ms");
        if (!v) return v.err();
        g.mutable_watermarks()->set_idle_timeout_ms(*v);
      }
    }
    if (const auto& e = root["execution"]) {
      VIGIL_TRY(check_keys(e, "execution",
                           {"batch_size", "linger_ms", "channel_credits", "default_parallelism"}));
      auto* ex = g.mutable_execution();
      struct setting {
        const char* key;
        void (v1::ExecutionSettings::*set)(uint32_t);
      };
      for (auto s :
           {setting{"batch_size", &v1::ExecutionSettings::set_batch_size},
            setting{"linger_ms", &v1::ExecutionSettings::set_linger_ms},
            setting{"channel_credits", &v1::ExecutionSettings::set_channel_credits},
            setting{"default_parallelism", &v1::ExecutionSettings::set_default_parallelism}}) {
        if (!e[s.key]) continue;
        auto v = uint_of(e[s.key], std::string("execution.") + s.key);
        if (!v) return v.err();
        (ex->*s.set)(*v);
      }
    }
    if (const auto& c = root["checkpoints"]) {
      VIGIL_TRY(check_keys(c, "checkpoints",
                           {"interval_ms", "timeout_ms", "retain", "tolerable_failures"}));
      auto* cp = g.mutable_checkpoints();
      for (auto [key, set] : {std::pair{"interval_ms", &v1::CheckpointSettings::set_interval_ms},
                              std::pair{"timeout_ms", &v1::CheckpointSettings::set_timeout_ms}}) {
        if (!c[key]) continue;
        auto v = int_of(c[key], std::string("checkpoints.") + key);
        if (!v) return v.err();
        (cp->*set)(*v);
      }
      for (auto [key, set] :
           {std::pair{"retain", &v1::CheckpointSettings::set_retain},
            std::pair{"tolerable_failures", &v1::CheckpointSettings::set_tolerable_failures}}) {
        if (!c[key]) continue;
        auto v = uint_of(c[key], std::string("checkpoints.") + key);
        if (!v) return v.err();
        (cp->*set)(*v);
      }
    }
    if (const auto& r = root["restart"]) {
      VIGIL_TRY(check_keys(r, "restart", {"max_attempts", "backoff_ms", "max_backoff_ms"}));
      auto* rs = g.mutable_restart();
      if (r["max_attempts"]) {
        auto v = uint_of(r["max_attempts"], "restart.max_attempts");
        if (!v) return v.err();
        rs->set_max_attempts(*v);
      }
      for (auto [key, set] :
           {std::pair{"backoff_ms", &v1::RestartSettings::set_backoff_ms},
            std::pair{"max_backoff_ms", &v1::RestartSettings::set_max_backoff_ms}}) {
        if (!r[key]) continue;
        auto v = int_of(r[key], std::string("restart.") + key);
        if (!v) return v.err();
        (rs->*set)(*v);
      }
    }
    const auto& nodes = root["nodes"];
    if (!nodes || !nodes.IsSequence()) return fail(root, "nodes", "required: a list of nodes");
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::string np = "nodes[" + std::to_string(i) + "]";
      const auto& n = nodes[i];
      VIGIL_TRY(check_keys(n, np, {"id", "operator", "config", "parallelism", "output_schema"}));
      auto* node = g.add_nodes();
      if (!n["id"]) return fail(n, np + ".id", "required");
      auto id = string_of(n["id"], np + ".id");
      if (!id) return id.err();
      node->set_id(*id);
      if (!n["operator"]) return fail(n, np + ".operator", "required");
      auto op = string_of(n["operator"], np + ".operator");
      if (!op) return op.err();
      node->set_operator_(*op);
      if (n["config"] && !n["config"].IsNull()) {
        auto m = map_of(n["config"], np + ".config");
        if (!m) return m.err();
        *node->mutable_config() = std::move(*m);
      }
      if (n["parallelism"]) {
        auto v = uint_of(n["parallelism"], np + ".parallelism");
        if (!v) return v.err();
        node->set_parallelism(*v);
      }
      if (n["output_schema"]) {
        auto s = schema_of(n["output_schema"], np + ".output_schema");
        if (!s) return s.err();
        *node->mutable_output_schema() = std::move(*s);
      }
    }
    if (const auto& edges = root["edges"]) {
      if (!edges.IsSequence()) return fail(edges, "edges", "expected a list of edges");
      for (size_t i = 0; i < edges.size(); ++i) {
        std::string ep = "edges[" + std::to_string(i) + "]";
        const auto& e = edges[i];
        VIGIL_TRY(check_keys(e, ep, {"from", "from_port", "to", "to_port", "partitioning"}));
        auto* edge = g.add_edges();
        auto text = [&](const char* key, bool required) -> result<std::string> {
          if (!e[key]) {
            if (required) return fail(e, ep + "." + key, "required");
            return std::string();
          }
          return string_of(e[key], ep + "." + key);
        };
        auto from = text("from", true);
        if (!from) return from.err();
        auto from_port = text("from_port", false);
        if (!from_port) return from_port.err();
        auto to = text("to", true);
        if (!to) return to.err();
        auto to_port = text("to_port", false);
        if (!to_port) return to_port.err();
        edge->set_from(*from);
        edge->set_from_port(*from_port);
        edge->set_to(*to);
        edge->set_to_port(*to_port);
        if (e["partitioning"]) {
          auto p = string_of(e["partitioning"], ep + ".partitioning");
          if (!p) return p.err();
          if (*p == "forward")
            edge->set_partitioning(v1::PARTITIONING_FORWARD);
          else if (*p == "hash")
            edge->set_partitioning(v1::PARTITIONING_HASH);
          else if (*p == "broadcast")
            edge->set_partitioning(v1::PARTITIONING_BROADCAST);
          else if (*p == "rebalance")
            edge->set_partitioning(v1::PARTITIONING_REBALANCE);
          else {
            return fail(
                e["partitioning"], ep + ".partitioning",
                "unknown partitioning \"" + *p + "\" (forward, hash, broadcast, rebalance)");
          }
        }
      }
    }
    return g;
  }

 private:
  static constexpr size_t max_values = 100000;
  mutable size_t values_ = 0;

  static bool parse_int(const std::string& s, int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }
  static bool parse_double(const std::string& s, double& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }
};

}  // namespace

result<v1::JobGraph> parse_graph_yaml(std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports syntax errors by exception; it stops here.
    return make_error(errc::parse_error, "line " + std::to_string(e.mark.line + 1) + ", column " +
                                             std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  try {
    return reader{}.graph_of(root);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on access to malformed nodes; report it, never crash.
    std::string where = e.mark.is_null() ? "" : "line " + std::to_string(e.mark.line + 1) + ": ";
    return make_error(errc::parse_error, where + e.msg);
  } catch (const std::exception& e) {
    return make_error(errc::parse_error, std::string("cannot read the graph: ") + e.what());
  }
}

result<v1::JobGraph> load_graph_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(errc::io_error, path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto text = expand_graph_variables(ss.str(), environment_variable);
  if (!text) return with_context(path + ": ", text.err());
  auto g = parse_graph_yaml(*text);
  if (!g) return with_context(path + ": ", g.err());
  return g;
}

}  // namespace vigil
