#include "operators/connectors/client_properties.hpp"

#include <optional>

#include "operators/connectors/json_format.hpp"

namespace vigil {
namespace {

std::optional<std::string> scalar_text(const config_value& x) {
  switch (x.k) {
    case config_value::kind::string:
      return x.s;
    case config_value::kind::integer:
      return std::to_string(x.i);
    case config_value::kind::boolean:
      return std::string(x.b ? "true" : "false");
    case config_value::kind::number: {
      std::string s;
      append_json_double(s, x.d);
      return s;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

result<client_properties> read_client_properties(config_reader& r, std::string_view key) {
  client_properties out;
  const config_value* v = r.get(key);
  if (v == nullptr) return out;
  const std::string name_prefix = std::string(key) + ".";
  if (v->k == config_value::kind::map) {
    for (const auto& [name, value] : v->map) {
      auto text = scalar_text(value);
      if (!text) {
        return config_reader::key_error(
            name_prefix + name,
            std::string("expected a string, number or bool, got ") + to_string(value.k));
      }
      out.emplace_back(name, std::move(*text));
    }
  } else if (v->k == config_value::kind::list) {
    for (const auto& item : v->list) {
      auto eq = item.s.find('=');
      if (item.k != config_value::kind::string || eq == std::string::npos || eq == 0) {
        return config_reader::key_error(key, "expected \"name=value\" items");
      }
      out.emplace_back(item.s.substr(0, eq), item.s.substr(eq + 1));
    }
  } else {
    return config_reader::key_error(
        key, std::string("expected a map of client properties, got ") + to_string(v->k));
  }
  return out;
}

status refuse_unsafe_kafka_properties(const client_properties& props, std::string_view key) {
  static constexpr std::string_view unsafe[] = {"plugin.library.paths", "sasl.kerberos.kinit.cmd"};
  for (const auto& [name, value] : props) {
    for (std::string_view u : unsafe) {
      if (name == u) {
        return config_reader::key_error(
            std::string(key) + "." + name,
            "is refused: it would run code or commands on Vigil's hosts");
      }
    }
  }
  return {};
}

}  // namespace vigil
