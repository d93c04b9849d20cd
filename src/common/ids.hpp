#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace vigil {

/// Ids that name files and directories (job ids, node ids): 1 to 128 characters of
/// [A-Za-z0-9_.-], and not "." or "..", so that they can never escape their parent directory.
inline bool is_path_safe_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

/// A path-safe id made from free text (e.g. a job name): characters outside [A-Za-z0-9_-]
/// become '-', at most `max_len` characters; "job" if nothing is left.
inline std::string to_path_safe_id(std::string_view text, size_t max_len = 48) {
  std::string out;
  for (char c : text.substr(0, max_len)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    out += ok ? c : '-';
  }
  return out.empty() ? std::string("job") : out;
}

}  // namespace vigil
