#include "lake/delta_types.hpp"

#include <cmath>
#include <cstdio>
#include <random>
#include <variant>

namespace vigil::lake {

namespace {

/// Floor division: rounds toward negative infinity (b > 0).
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b) != 0 && a < 0) {
    --q;
  }
  return q;
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
void civil_from_days(int64_t days, int64_t& year, int& month, int& day) {
  const int64_t z = days + 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  year = yoe + era * 400 + (month <= 2 ? 1 : 0);
}

/// True if `s` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

/// The first `max_code_points` code points of valid UTF-8 `s`, and whether it was cut.
std::string_view utf8_prefix(std::string_view s, size_t max_code_points, bool& cut) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (count == max_code_points) {
        cut = true;
        return s.substr(0, i);
      }
      ++count;
    }
  }
  cut = false;
  return s;
}

std::optional<type_id> vigil_type_of(const std::string& delta_type) {
  if (delta_type == "boolean") return type_id::boolean;
  if (delta_type == "long") return type_id::int64;
  if (delta_type == "double") return type_id::float64;
  if (delta_type == "string") return type_id::string;
  if (delta_type == "timestamp") return type_id::timestamp;
  return std::nullopt;
}

constexpr size_t stats_string_prefix = 32;

}  // namespace

const char* delta_type_name(type_id type) {
  switch (type) {
    case type_id::boolean:
      return "boolean";
    case type_id::int64:
      return "long";
    case type_id::float64:
      return "double";
    case type_id::string:
      return "string";
    case type_id::timestamp:
      return "timestamp";
  }
  return "string";
}

std::string delta_schema_string(const schema& s) {
  nlohmann::ordered_json fields = nlohmann::ordered_json::array();
  for (const field& f : s.fields()) {
    fields.push_back({{"name", f.name},
                      {"type", delta_type_name(f.type)},
                      {"nullable", f.nullable},
                      {"metadata", nlohmann::ordered_json::object()}});
  }
  nlohmann::ordered_json root = {{"type", "struct"}, {"fields", std::move(fields)}};
  return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

status parse_delta_schema(const std::string& schema_string, std::vector<delta_column>& columns,
                          schema_ptr& schema_out) {
  const auto root = nlohmann::json::parse(schema_string, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return make_error(errc::parse_error, "schemaString is not a JSON object");
  }
  const auto type = root.find("type");
  const auto fields = root.find("fields");
  if (type == root.end() || *type != "struct" || fields == root.end() || !fields->is_array()) {
    return make_error(errc::parse_error, "schemaString is not a struct with a \"fields\" array");
  }
  columns.clear();
  std::vector<field> vigil_fields;
  bool representable = true;
  for (const auto& f : *fields) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("type")) {
      return make_error(errc::parse_error,
                        "schemaString: every field needs a string \"name\" and a \"type\"");
    }
    delta_column c;
    c.name = f["name"].get<std::string>();
    const auto& t = f["type"];
    c.type = t.is_string() ? t.get<std::string>()
                           : t.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (const auto n = f.find("nullable"); n != f.end()) {
      if (!n->is_boolean()) {
        return make_error(errc::parse_error,
                          "schemaString: field '" + c.name + "': \"nullable\" is not a boolean");
      }
      c.nullable = n->get<bool>();
    }
    if (const auto m = f.find("metadata"); m != f.end() && m->is_object()) {
      c.has_invariants = m->contains("delta.invariants");
    }
    const auto vt = t.is_string() ? vigil_type_of(c.type) : std::nullopt;
    if (vt) {
      vigil_fields.push_back(field{c.name, *vt, c.nullable});
    } else {
      representable = false;
    }
    columns.push_back(std::move(c));
  }
  schema_out = representable ? make_schema(std::move(vigil_fields)) : nullptr;
  return {};
}

std::optional<std::string> delta_stats_timestamp(int64_t us) {
  constexpr int64_t min_us = -62'135'596'800'000'000;  // 0001-01-01T00:00:00Z
  constexpr int64_t max_us = 253'402'300'799'999'999;  // 9999-12-31T23:59:59.999999Z
  if (us < min_us || us > max_us) {
    return std::nullopt;
  }
  const int64_t ms = floor_div(us, 1000);
  const int64_t secs = floor_div(ms, 1000);
  const int64_t days = floor_div(secs, 86400);
  const int64_t sod = secs - days * 86400;
  int64_t year = 0;
  int month = 0, day = 0;
  civil_from_days(days, year, month, day);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", static_cast<int>(year),
                month, day, static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60),
                static_cast<int>(sod % 60), static_cast<int>(ms - secs * 1000));
  return std::string(buf);
}

std::string delta_stats_json(const parquet_file_info& info,
                             const std::vector<std::string>& partition_columns) {
  nlohmann::ordered_json min_values = nlohmann::ordered_json::object();
  nlohmann::ordered_json max_values = nlohmann::ordered_json::object();
  nlohmann::ordered_json null_count = nlohmann::ordered_json::object();
  for (const parquet_column_stats& c : info.columns) {
    bool partition = false;
    for (const auto& p : partition_columns) {
      partition = partition || p == c.name;
    }
    if (partition) {
      continue;
    }
    null_count[c.name] = c.null_count;
    if (std::holds_alternative<std::monostate>(c.min) ||
        std::holds_alternative<std::monostate>(c.max)) {
      continue;
    }
    switch (c.type) {
      case type_id::boolean:
        break;
      case type_id::int64:
        min_values[c.name] = std::get<int64_t>(c.min);
        max_values[c.name] = std::get<int64_t>(c.max);
        break;
      case type_id::float64: {
        const double lo = std::get<double>(c.min);
        const double hi = std::get<double>(c.max);
        if (c.nan_count == 0 && std::isfinite(lo) && std::isfinite(hi)) {
          min_values[c.name] = lo;
          max_values[c.name] = hi;
        }
        break;
      }
      case type_id::string: {
        const auto& lo = std::get<std::string>(c.min);
        const auto& hi = std::get<std::string>(c.max);
        if (!valid_utf8(lo) || !valid_utf8(hi)) {
          break;
        }
        bool cut = false;
        min_values[c.name] = std::string(utf8_prefix(lo, stats_string_prefix, cut));
        utf8_prefix(hi, stats_string_prefix, cut);
        if (!cut) {
          max_values[c.name] = hi;
        }
        break;
      }
      case type_id::timestamp: {
        const auto lo = delta_stats_timestamp(std::get<int64_t>(c.min));
        const auto hi = delta_stats_timestamp(std::get<int64_t>(c.max));
        if (lo && hi) {
          min_values[c.name] = *lo;
          max_values[c.name] = *hi;
        }
        break;
      }
    }
  }
  nlohmann::ordered_json stats = {{"numRecords", info.num_rows},
                                  {"minValues", std::move(min_values)},
                                  {"maxValues", std::move(max_values)},
                                  {"nullCount", std::move(null_count)}};
  return stats.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string delta_encode_path(std::string_view path) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '=';
    if (plain) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

result<std::string> delta_decode_path(std::string_view path) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    const int hi = i + 2 < path.size() ? digit(path[i + 1]) : -1;
    const int lo = hi >= 0 ? digit(path[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return make_error(errc::parse_error, "path '" + std::string(path) +
                                               "': bad %-escape at offset " + std::to_string(i));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string delta_partition_dir(const std::vector<std::string>& partition_columns,
                                const delta_partition_values& values) {
  auto escape = [](std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      const bool special = c < 0x20 || c == 0x7F ||
                           std::string_view("\"#%'*/:=?\\{[]^").find(ch) != std::string_view::npos;
      if (special) {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += ch;
      }
    }
    return out;
  };
  std::string dir;
  for (const auto& col : partition_columns) {
    const auto it = values.find(col);
    const bool null = it == values.end() || !it->second || it->second->empty();
    dir += escape(col) + "=" +
           (null ? std::string("__HIVE_DEFAULT_PARTITION__") : escape(*it->second)) + "/";
  }
  return dir;
}

std::string make_uuid() {
  std::random_device rd;
  uint8_t b[16];
  for (size_t i = 0; i < 16; i += 4) {
    const uint32_t r = rd();
    for (size_t k = 0; k < 4; ++k) {
      b[i + k] = static_cast<uint8_t>(r >> (8 * k));
    }
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return buf;
}

}  // namespace vigil::lake
