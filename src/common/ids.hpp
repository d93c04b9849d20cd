#pragma once

#include <algorithm>
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

}  // namespace vigil
