#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// One cell of a CSV record: its unescaped text is text.substr(offset, length).
struct csv_cell {
  uint32_t offset = 0;
  uint32_t length = 0;
  bool quoted = false;  ///< Written in quotes (so an empty quoted cell is "", not null).
};

enum class csv_split_result {
  ok,          ///< `cells` holds the record's cells.
  open_quote,  ///< The record ends inside a quoted cell: append the next line and split again.
  error,       ///< Malformed; `reason` says why.
};

/// Splits one CSV record (RFC 4180: ',' separates cells; a cell starting with '"' is quoted, may
/// contain ',', '"' written as '""' and line breaks, and must be followed by ',' or the end).
/// A '"' inside an unquoted cell or text after a closing quote is an error. Unescaped cell
/// texts are appended to `text` (cleared first) and described by `cells` (cleared first).
csv_split_result split_csv_record(std::string_view record, std::vector<csv_cell>& cells,
                                  std::string& text, std::string& reason);

}  // namespace vigil
