#include "graph/graph_variables.hpp"

#include <cstdlib>

namespace vigil {
namespace {

bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}

}  // namespace

result<std::string> expand_graph_variables(std::string_view text, const variable_lookup& lookup) {
  std::string out;
  out.reserve(text.size());
  size_t line = 1;
  bool line_start = true;  // Only blanks so far on this line.
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (line_start && c == '#') {  // A comment line is copied as it is.
      const size_t end = text.find('\n', i);
      const size_t stop = end == std::string_view::npos ? text.size() : end;
      out.append(text.substr(i, stop - i));
      i = stop - 1;
      continue;
    }
    line_start = c == '\n' || ((c == ' ' || c == '\t') && line_start);
    if (c != '$' || i + 1 == text.size()) {
      out.push_back(c);
      continue;
    }
    if (text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out.push_back(c);
      continue;
    }
    const size_t close = text.find('}', i + 2);
    const std::string_view body = text.substr(
        i + 2, close == std::string_view::npos ? std::string_view::npos : close - i - 2);
    const std::string where = "line " + std::to_string(line) + ": ";
    if (close == std::string_view::npos || body.find('\n') != std::string_view::npos) {
      return make_error(errc::parse_error, where + "'${' without a closing '}' on the same line");
    }
    size_t n = 0;
    while (n < body.size() && name_char(body[n])) ++n;
    const std::string_view name = body.substr(0, n);
    if (name.empty() || !name_start(name[0])) {
      return make_error(errc::parse_error,
                        where + "'${" + std::string(body) + "}': expected a variable name");
    }
    std::optional<std::string_view> fallback;
    if (n < body.size()) {
      if (body.substr(n, 2) != ":-") {
        return make_error(errc::parse_error, where + "'${" + std::string(body) +
                                                 "}': expected '}' or ':-default' after the name");
      }
      fallback = body.substr(n + 2);
      if (fallback->find('$') != std::string_view::npos) {
        return make_error(errc::parse_error, where + "'${" + std::string(body) +
                                                 "}': a default cannot hold variables or '$'");
      }
    }
    const std::optional<std::string> value = lookup(name);
    if (value && !(fallback && value->empty())) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else {
      return make_error(errc::invalid_argument, where + "variable " + std::string(name) +
                                                    " is not set (set it, or write ${" +
                                                    std::string(name) + ":-default})");
    }
    i = close;
  }
  return out;
}

std::optional<std::string> environment_variable(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace vigil
