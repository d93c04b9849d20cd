#include "common/types.hpp"

#include "common/result.hpp"

namespace vigil {

const char* to_string(errc code) {
  switch (code) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::invalid_graph:
      return "invalid graph";
    case errc::parse_error:
      return "parse error";
    case errc::not_found:
      return "not found";
    case errc::resource_exhausted:
      return "resource exhausted";
    case errc::failed_precondition:
      return "failed precondition";
    case errc::io_error:
      return "I/O error";
    case errc::state_error:
      return "state error";
    case errc::internal:
      return "internal error";
  }
  return "unknown error";
}

std::string_view to_string(type_id type) {
  switch (type) {
    case type_id::boolean:
      return "bool";
    case type_id::int64:
      return "int64";
    case type_id::float64:
      return "double";
    case type_id::string:
      return "string";
    case type_id::timestamp:
      return "timestamp";
  }
  return "unknown";
}

std::optional<type_id> parse_type(std::string_view name) {
  if (name == "bool" || name == "boolean") return type_id::boolean;
  if (name == "int64" || name == "int" || name == "long") return type_id::int64;
  if (name == "double" || name == "float64") return type_id::float64;
  if (name == "string") return type_id::string;
  if (name == "timestamp") return type_id::timestamp;
  return std::nullopt;
}

int schema::index_of(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string schema::to_string() const {
  std::string out;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ", ";
    out += fields_[i].name;
    out += ':';
    out += vigil::to_string(fields_[i].type);
    if (fields_[i].nullable) out += '?';
  }
  return out;
}

}  // namespace vigil
