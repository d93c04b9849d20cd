#include "operators/connectors/csv_record.hpp"

namespace vigil {

csv_split_result split_csv_record(std::string_view record, std::vector<csv_cell>& cells,
                                  std::string& text, std::string& reason) {
  cells.clear();
  text.clear();
  const size_t n = record.size();
  size_t i = 0;
  for (;;) {
    csv_cell cell;
    cell.offset = static_cast<uint32_t>(text.size());
    if (i < n && record[i] == '"') {
      cell.quoted = true;
      ++i;
      for (;;) {
        if (i >= n) return csv_split_result::open_quote;
        if (record[i] == '"') {
          if (i + 1 < n && record[i + 1] == '"') {
            text.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        size_t quote = record.find('"', i);
        if (quote == std::string_view::npos) quote = n;
        text.append(record.data() + i, quote - i);
        i = quote;
      }
      if (i < n && record[i] != ',') {
        reason = "unexpected character after the closing quote of column " +
                 std::to_string(cells.size() + 1);
        return csv_split_result::error;
      }
    } else {
      size_t comma = record.find(',', i);
      if (comma == std::string_view::npos) comma = n;
      const std::string_view part = record.substr(i, comma - i);
      if (part.find('"') != std::string_view::npos) {
        reason = "quote inside unquoted column " + std::to_string(cells.size() + 1);
        return csv_split_result::error;
      }
      text.append(part);
      i = comma;
    }
    cell.length = static_cast<uint32_t>(text.size() - cell.offset);
    cells.push_back(cell);
    if (i >= n) return csv_split_result::ok;
    ++i;  // The ','; a trailing one yields a last, empty cell.
  }
}

}  // namespace vigil
