#include "tools/replay/psv_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

namespace vigil::replay {
namespace {

namespace fs = std::filesystem;

/// A column index that the header does not have.
constexpr size_t absent = static_cast<size_t>(-1);

/// Splits `text` at the first '\n' into the line (without "\r\n" / "\n") and the rest.
std::string_view next_line(std::string_view& text) {
  const size_t nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

/// Calls `f(index, field)` for each '|'-separated field of `line`; returns the field count.
template <class F>
size_t for_each_field(std::string_view line, F&& f) {
  size_t index = 0;
  while (true) {
    const size_t bar = line.find('|');
    f(index++, line.substr(0, bar));
    if (bar == std::string_view::npos) return index;
    line.remove_prefix(bar + 1);
  }
}

std::optional<double> parse_number(std::string_view field) {
  if (field == "NaN") return std::nan("");
  double v = 0;
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec != std::errc{} || ptr != field.data() + field.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

error at(std::string_view file_name, size_t line_no, std::string_view what) {
  std::string msg(file_name);
  msg += ":" + std::to_string(line_no) + ": ";
  msg += what;
  return make_error(errc::parse_error, std::move(msg));
}

}  // namespace

bool valid_patient_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
}

result<patient_stay> parse_psv(std::string_view text, std::string_view file_name,
                               std::string patient) {
  patient_stay stay;
  stay.patient = std::move(patient);
  if (text.empty()) return at(file_name, 1, "empty file, expected a header row");

  // Header: where ICULOS and each replayed column are.
  std::vector<size_t> slot_of_field;  // Field index -> replayed column index or `absent`.
  size_t iculos_field = absent;
  const size_t header_fields = for_each_field(next_line(text), [&](size_t i, std::string_view n) {
    slot_of_field.push_back(absent);
    if (n == "ICULOS") iculos_field = i;
    for (size_t c = 0; c < replay_columns.size(); ++c) {
      if (replay_columns[c].psv_name == n) slot_of_field[i] = c;
    }
  });
  if (iculos_field == absent) {
    return at(file_name, 1, "the header has no ICULOS column (is this a PhysioNet .psv file?)");
  }

  size_t line_no = 1;
  std::string problem;
  while (!text.empty()) {
    const std::string_view line = next_line(text);
    ++line_no;
    if (line.empty() && text.empty()) break;  // The final newline.
    psv_row row;
    row.values.fill(std::nan(""));
    const size_t fields = for_each_field(line, [&](size_t i, std::string_view field) {
      if (!problem.empty() || i >= header_fields) return;
      if (i == iculos_field) {
        const std::optional<double> h = parse_number(field);
        if (!h || std::isnan(*h) || *h != std::floor(*h) || std::fabs(*h) > 1e9) {
          problem = "ICULOS '" + std::string(field) + "' is not a whole number of hours";
          return;
        }
        row.iculos = static_cast<int64_t>(*h);
      } else if (slot_of_field[i] != absent) {
        const std::optional<double> v = parse_number(field);
        if (!v) {
          problem = "column " + std::string(replay_columns[slot_of_field[i]].psv_name) + ": '" +
                    std::string(field) + "' is neither a number nor NaN";
          return;
        }
        row.values[slot_of_field[i]] = *v;
      }
    });
    if (fields != header_fields) {
      return at(
          file_name, line_no,
          std::to_string(fields) + " columns, but the header has " + std::to_string(header_fields));
    }
    if (!problem.empty()) return at(file_name, line_no, problem);
    stay.rows.push_back(row);
  }
  return stay;
}

result<patient_stay> read_psv(const fs::path& path) {
  const std::string patient = path.stem().string();
  if (!valid_patient_id(patient)) {
    return make_error(errc::invalid_argument,
                      path.string() + ": the file name '" + patient +
                          "' is no patient id (1..64 letters, digits, '-' or '.')");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::io_error, path.string() + ": cannot open");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return make_error(errc::io_error, path.string() + ": read failed");
  return parse_psv(buf.str(), path.string(), patient);
}

result<std::vector<fs::path>> list_psv_files(const std::vector<std::string>& inputs) {
  std::set<fs::path> files;
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::path p(input);
    if (fs::is_directory(p, ec)) {
      for (const fs::directory_entry& e : fs::directory_iterator(p, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".psv") files.insert(e.path());
      }
      if (ec) return make_error(errc::io_error, input + ": " + ec.message());
    } else if (fs::exists(p, ec)) {
      files.insert(p);
    } else {
      return make_error(errc::not_found, input + ": no such file or directory");
    }
  }
  if (files.empty()) return make_error(errc::invalid_argument, "no .psv files in the input");
  std::set<std::string> patients;
  for (const fs::path& f : files) {
    if (!patients.insert(f.stem().string()).second) {
      return make_error(errc::invalid_argument,
                        f.string() + ": patient id '" + f.stem().string() + "' appears twice");
    }
  }
  return std::vector<fs::path>(files.begin(), files.end());
}

}  // namespace vigil::replay
