#pragma once

#include <string>
#include <vector>

namespace vigil {

/// An aligned text table for command-line tools: columns separated by two spaces, each as wide
/// as its widest cell, no trailing spaces. `rows` must have as many cells as `header`.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace vigil
