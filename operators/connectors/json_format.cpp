#include "operators/connectors/json_format.hpp"

#include <charconv>
#include <cmath>

namespace vigil {

namespace {

constexpr int64_t us_per_second = 1'000'000;
constexpr int64_t seconds_per_day = 86'400;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct civil_date {
  int64_t year;
  unsigned month;
  unsigned day;
};

/// The inverse of days_from_civil().
civil_date civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/// Writes `v` as exactly `width` decimal digits (v < 10^width).
char* put_digits(char* p, uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + width;
}

/// Reads exactly `n` digits at text[pos], advancing pos.
bool read_digits(std::string_view text, size_t& pos, int n, unsigned& out) {
  if (pos + n > text.size()) return false;
  unsigned v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  out = v;
  return true;
}

bool expect_char(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

/// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not well formed.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

}  // namespace

void append_timestamp_iso(std::string& out, int64_t us) {
  // Floor division, so that times before 1970 get a non-negative fraction.
  int64_t secs = us / us_per_second;
  int64_t frac = us % us_per_second;
  if (frac < 0) {
    frac += us_per_second;
    secs -= 1;
  }
  int64_t days = secs / seconds_per_day;
  int64_t sod = secs % seconds_per_day;
  if (sod < 0) {
    sod += seconds_per_day;
    days -= 1;
  }
  const civil_date date = civil_from_days(days);
  char buf[48];
  char* p = buf;
  if (date.year >= 0 && date.year <= 9999) {
    p = put_digits(p, static_cast<uint64_t>(date.year), 4);
  } else {
    *p++ = date.year < 0 ? '-' : '+';
    const uint64_t mag =
        date.year < 0 ? static_cast<uint64_t>(-date.year) : static_cast<uint64_t>(date.year);
    p = std::to_chars(p, buf + sizeof buf, mag).ptr;
  }
  *p++ = '-';
  p = put_digits(p, date.month, 2);
  *p++ = '-';
  p = put_digits(p, date.day, 2);
  *p++ = 'T';
  p = put_digits(p, static_cast<uint64_t>(sod / 3600), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<uint64_t>(sod / 60 % 60), 2);
  *p++ = ':';
  p = put_digits(p, static_cast<uint64_t>(sod % 60), 2);
  if (frac != 0) {
    *p++ = '.';
    if (frac % 1000 == 0) {
      p = put_digits(p, static_cast<uint64_t>(frac / 1000), 3);
    } else {
      p = put_digits(p, static_cast<uint64_t>(frac), 6);
    }
  }
  *p++ = 'Z';
  out.append(buf, p);
}

std::string format_timestamp_iso(int64_t us) {
  std::string s;
  append_timestamp_iso(s, us);
  return s;
}

std::optional<int64_t> parse_timestamp_iso(std::string_view text) {
  size_t pos = 0;
  unsigned year = 0, month = 0, day = 0;
  if (!read_digits(text, pos, 4, year) || !expect_char(text, pos, '-') ||
      !read_digits(text, pos, 2, month) || !expect_char(text, pos, '-') ||
      !read_digits(text, pos, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  const int64_t days = days_from_civil(year, month, day);
  if (pos == text.size()) return days * seconds_per_day * us_per_second;

  const char sep = text[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  unsigned hour = 0, minute = 0, second = 0;
  if (!read_digits(text, pos, 2, hour) || !expect_char(text, pos, ':') ||
      !read_digits(text, pos, 2, minute)) {
    return std::nullopt;
  }
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!read_digits(text, pos, 2, second)) return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  int64_t frac_us = 0;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) frac_us = frac_us * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 6; ++i) frac_us *= 10;
  }
  if (pos >= text.size()) return std::nullopt;  // A time of day needs a zone.
  int64_t offset_s = 0;
  const char zone = text[pos++];
  if (zone == '+' || zone == '-') {
    unsigned oh = 0, om = 0;
    if (!read_digits(text, pos, 2, oh)) return std::nullopt;
    if (pos < text.size()) {
      expect_char(text, pos, ':');
      if (!read_digits(text, pos, 2, om)) return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_s = (zone == '+' ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
  } else if (zone != 'Z' && zone != 'z') {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  const int64_t secs = days * seconds_per_day + hour * 3600 + minute * 60 + second - offset_s;
  return secs * us_per_second + frac_us;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy the longest run that needs no escaping in one append.
    size_t run = i;
    while (run < s.size()) {
      const auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        out.append("\\ufffd");
        ++i;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
    ++i;
  }
  out.push_back('"');
}

void append_json_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

void append_json_value(std::string& out, const column& col, size_t row) {
  if (col.is_null(row)) {
    out.append("null");
    return;
  }
  switch (col.type) {
    case type_id::boolean:
      out.append(col.bools[row] ? "true" : "false");
      return;
    case type_id::int64: {
      char buf[24];
      const auto res = std::to_chars(buf, buf + sizeof buf, col.ints[row]);
      out.append(buf, res.ptr);
      return;
    }
    case type_id::float64:
      append_json_double(out, col.doubles[row]);
      return;
    case type_id::string:
      append_json_string(out, col.string_at(row));
      return;
    case type_id::timestamp:
      out.push_back('"');
      append_timestamp_iso(out, col.ints[row]);
      out.push_back('"');
      return;
  }
}

void append_json_row(std::string& out, const record_batch& batch, size_t row,
                     bool include_event_time) {
  out.push_back('{');
  const auto& fields = batch.schema->fields();
  for (size_t c = 0; c < fields.size(); ++c) {
    if (c > 0) out.push_back(',');
    append_json_string(out, fields[c].name);
    out.push_back(':');
    append_json_value(out, batch.columns[c], row);
  }
  if (include_event_time) {
    if (!fields.empty()) out.push_back(',');
    out.append("\"_event_time\":\"");
    append_timestamp_iso(out, batch.event_time[row]);
    out.push_back('"');
  }
  out.push_back('}');
}

}  // namespace vigil
