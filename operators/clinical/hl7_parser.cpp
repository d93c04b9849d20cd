#include "operators/clinical/hl7_parser.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace vigil::clinical {
namespace {

constexpr int64_t us_per_second = 1'000'000;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Reads `n` digits at `p`; false if any is not a digit.
bool read_digits(std::string_view s, size_t p, size_t n, int& out) {
  if (p + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[p + i])) return false;
    v = v * 10 + (s[p + i] - '0');
  }
  out = v;
  return true;
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int days_in_month(int y, int m) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Calls fn(segment) for each non-empty segment; segments end in CR, LF or CRLF.
template <class Fn>
void for_each_segment(std::string_view msg, Fn&& fn) {
  size_t start = 0;
  while (start < msg.size()) {
    size_t end = msg.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = msg.size();
    if (end > start && !fn(msg.substr(start, end - start))) return;
    start = end + 1;
  }
}

bool segment_is(std::string_view seg, std::string_view id, char field_sep) {
  return seg.size() >= 3 && seg.substr(0, 3) == id && (seg.size() == 3 || seg[3] == field_sep);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

/// The FHIR status of an OBX-11 result status (HL7 table 0085), or empty.
std::string_view status_of(std::string_view s) {
  if (s.size() != 1) return {};
  switch (s[0]) {
    case 'F':
    case 'U':
      return "final";
    case 'C':
      return "corrected";
    case 'P':
    case 'R':
    case 'S':
      return "preliminary";
    case 'I':
    case 'O':
      return "registered";
    case 'D':
    case 'W':
      return "entered-in-error";
    case 'X':
    case 'N':
      return "cancelled";
    default:
      return {};
  }
}

}  // namespace

std::optional<int64_t> parse_hl7_timestamp(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_digits(s, 0, 4, y) || !read_digits(s, 4, 2, mo) || !read_digits(s, 6, 2, d) ||
      !read_digits(s, 8, 2, h) || !read_digits(s, 10, 2, mi)) {
    return std::nullopt;
  }
  size_t p = 12;
  int64_t frac_us = 0;
  if (p < s.size() && is_digit(s[p])) {
    if (!read_digits(s, p, 2, sec)) return std::nullopt;
    p += 2;
    if (p < s.size() && s[p] == '.') {
      ++p;
      size_t digits = 0;
      int64_t scale = 100000;
      while (p < s.size() && is_digit(s[p])) {
        if (++digits > 6) return std::nullopt;
        frac_us += (s[p] - '0') * scale;
        scale /= 10;
        ++p;
      }
      if (digits == 0) return std::nullopt;
    }
  }
  int64_t offset_s = 0;
  if (p < s.size()) {
    const char sign = s[p];
    int oh = 0, om = 0;
    if ((sign != '+' && sign != '-') || s.size() != p + 5 || !read_digits(s, p + 1, 2, oh) ||
        !read_digits(s, p + 3, 2, om) || oh > 14 || om > 59 || (oh == 14 && om != 0)) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59) {
    return std::nullopt;
  }
  const int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * us_per_second + frac_us;
}

bool hl7_parser::read_delimiters(std::string_view m) {
  d_.field = m[3];
  const size_t end = m.find_first_of("\r\n", 4);
  const std::string_view rest = m.substr(4, end == std::string_view::npos ? m.size() - 4 : end - 4);
  const size_t n = rest.find(d_.field);
  if (n != 4 && n != 5) return false;
  d_.component = rest[0];
  d_.repetition = rest[1];
  d_.escape = rest[2];
  d_.subcomponent = rest[3];
  const char all[6] = {d_.field, rest[0], rest[1], rest[2], rest[3], n == 5 ? rest[4] : d_.field};
  for (size_t i = 0; i < 6; ++i) {
    const auto c = static_cast<unsigned char>(all[i]);
    if (std::isalnum(c) || c < 0x20 || c == 0x7f) return false;
    for (size_t j = i + 1; j < (n == 5 ? 6u : 5u); ++j) {
      if (all[i] == all[j]) return false;
    }
  }
  return true;
}

std::string_view hl7_parser::field(std::string_view seg, int n) const {
  // MSH-1 is the field separator itself: MSH-n is the (n-1)th field after the segment id.
  const int skip = segment_is(seg, "MSH", d_.field) ? n - 1 : n;
  size_t start = 3;
  for (int i = 0; i < skip; ++i) {
    if (start >= seg.size()) return {};
    const size_t next = seg.find(d_.field, start + 1);
    if (i + 1 == skip) {
      const size_t b = start + 1;
      return seg.substr(b, (next == std::string_view::npos ? seg.size() : next) - b);
    }
    if (next == std::string_view::npos) return {};
    start = next;
  }
  return {};
}

std::string_view hl7_parser::component(std::string_view f, int n) const {
  const size_t rep = f.find(d_.repetition);
  if (rep != std::string_view::npos) f = f.substr(0, rep);
  for (int i = 1; i < n; ++i) {
    const size_t c = f.find(d_.component);
    if (c == std::string_view::npos) return {};
    f.remove_prefix(c + 1);
  }
  const size_t c = f.find(d_.component);
  return c == std::string_view::npos ? f : f.substr(0, c);
}

std::optional<std::string_view> hl7_parser::unescape(std::string_view in,
                                                     std::string& scratch) const {
  size_t p = in.find(d_.escape);
  if (p == std::string_view::npos) return in;
  scratch.assign(in.data(), p);
  while (p < in.size()) {
    const char c = in[p];
    if (c != d_.escape) {
      scratch.push_back(c);
      ++p;
      continue;
    }
    const size_t end = in.find(d_.escape, p + 1);
    if (end == std::string_view::npos || end == p + 1) return std::nullopt;
    const std::string_view seq = in.substr(p + 1, end - p - 1);
    if (seq.size() == 1) {
      switch (seq[0]) {
        case 'F':
          scratch.push_back(d_.field);
          break;
        case 'S':
          scratch.push_back(d_.component);
          break;
        case 'T':
          scratch.push_back(d_.subcomponent);
          break;
        case 'R':
          scratch.push_back(d_.repetition);
          break;
        case 'E':
          scratch.push_back(d_.escape);
          break;
        default:
          return std::nullopt;
      }
    } else if (seq[0] == 'X' && seq.size() % 2 == 1) {
      for (size_t i = 1; i < seq.size(); i += 2) {
        const int hi = hex_value(seq[i]);
        const int lo = hex_value(seq[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        scratch.push_back(static_cast<char>(hi * 16 + lo));
      }
    } else {
      return std::nullopt;
    }
    p = end + 1;
  }
  return std::string_view(scratch);
}

void hl7_parser::refuse(observation_sink& obs, int index, ingest_errc code, std::string_view what) {
  detail_.assign("OBX #");
  detail_.append(std::to_string(index));
  detail_.append(": ");
  detail_.append(what);
  obs.refused(index, header_.patient, code, detail_);
}

std::optional<ingest_errc> hl7_parser::parse(std::string_view m, observation_sink& obs,
                                             std::string& detail) {
  header_ = {};
  if (m.empty()) {
    detail = "empty message";
    return ingest_errc::truncated;
  }
  if (m.substr(0, 3) != std::string_view("MSH").substr(0, std::min<size_t>(3, m.size()))) {
    detail = "the message does not start with an MSH segment";
    return ingest_errc::not_hl7;
  }
  if (m.size() < 9) {
    detail = "the message ends inside MSH-2";
    return ingest_errc::truncated;
  }
  if (!read_delimiters(m)) {
    detail =
        "MSH-1/MSH-2 must be a field separator followed by 4 or 5 distinct encoding characters "
        "(e.g. |^~\\&), none a letter, digit or control character";
    return ingest_errc::bad_delimiters;
  }
  std::string_view msh, pid, pv1;
  size_t segments = 0;
  for_each_segment(m, [&](std::string_view seg) {
    ++segments;
    if (msh.empty() && segment_is(seg, "MSH", d_.field)) msh = seg;
    if (pid.empty() && segment_is(seg, "PID", d_.field)) pid = seg;
    if (pv1.empty() && segment_is(seg, "PV1", d_.field)) pv1 = seg;
    return true;
  });
  const std::string_view type = field(msh, 9);
  if (segments == 1 && field(msh, 12).empty()) {
    detail = "the message ends inside the MSH segment";
    return ingest_errc::truncated;
  }
  if (component(type, 1) != "ORU" || component(type, 2) != "R01") {
    detail = "MSH-9 message type is '";
    detail.append(type);
    detail.append("', expected ORU^R01");
    return ingest_errc::unsupported_message;
  }
  if (pid.empty()) {
    detail = "no PID segment";
    return ingest_errc::missing_patient;
  }
  auto mrn = unescape(component(field(pid, 3), 1), patient_scratch_);
  if (!mrn) {
    detail = "bad escape sequence in PID-3";
    return ingest_errc::bad_escape;
  }
  header_.patient = trim(*mrn);
  if (header_.patient.empty()) {
    detail = "PID-3 (patient identifier) is empty";
    return ingest_errc::missing_patient;
  }
  auto id = unescape(field(msh, 10), id_scratch_);
  if (!id) {
    detail = "bad escape sequence in MSH-10";
    return ingest_errc::bad_escape;
  }
  header_.message_id = trim(*id);
  if (header_.message_id.empty()) {
    detail = "MSH-10 (message control id) is empty";
    return ingest_errc::missing_message_id;
  }
  if (!pv1.empty()) {
    auto enc = unescape(component(field(pv1, 19), 1), encounter_scratch_);
    if (!enc) {
      detail = "bad escape sequence in PV1-19";
      return ingest_errc::bad_escape;
    }
    header_.encounter = trim(*enc);
  }
  int index = 0;
  std::string_view obr_time;
  for_each_segment(m, [&](std::string_view seg) {
    if (segment_is(seg, "OBR", d_.field)) {
      obr_time = component(field(seg, 7), 1);
    } else if (segment_is(seg, "OBX", d_.field)) {
      parse_obx(seg, ++index, obr_time, obs);
    }
    return true;
  });
  if (index == 0) {
    detail = "the message has no OBX segment";
    return ingest_errc::no_observations;
  }
  return std::nullopt;
}

void hl7_parser::parse_obx(std::string_view seg, int index, std::string_view obr_time,
                           observation_sink& obs) {
  const std::string_view value_type = field(seg, 2);
  if (value_type != "NM") {
    what_.assign("OBX-2 value type '");
    what_.append(value_type);
    what_.append("' is not NM");
    return refuse(obs, index, ingest_errc::non_numeric_value, what_);
  }
  const std::string_view f3 = field(seg, 3);
  std::string_view code_raw;
  const std::string_view id1 = component(f3, 1);
  const std::string_view sys1 = component(f3, 3);
  const std::string_view id2 = component(f3, 4);
  const std::string_view sys2 = component(f3, 6);
  if (!id1.empty() && (sys1.empty() || sys1 == "LN")) {
    code_raw = id1;
  } else if (!id2.empty() && sys2 == "LN") {
    code_raw = id2;
  } else if (id1.empty() && id2.empty()) {
    return refuse(obs, index, ingest_errc::missing_code, "OBX-3 has no code");
  } else {
    what_.assign("OBX-3 code system '");
    what_.append(sys1);
    what_.append("' is not LN (LOINC)");
    return refuse(obs, index, ingest_errc::not_loinc, what_);
  }
  auto code = unescape(code_raw, code_scratch_);
  if (!code) return refuse(obs, index, ingest_errc::bad_escape, "bad escape sequence in OBX-3");
  // Blanks (also escaped, \X20\) are no code: trimmed, they would leave an empty one.
  if (trim(*code).empty()) {
    return refuse(obs, index, ingest_errc::missing_code, "OBX-3 has no code");
  }

  const std::string_view f5 = trim(field(seg, 5));
  if (f5.empty()) return refuse(obs, index, ingest_errc::missing_value, "OBX-5 is empty");
  std::string_view num = f5;
  if (!num.empty() && num.front() == '+') num.remove_prefix(1);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  // from_chars also reads "inf", "infinity" and "nan": no measurement, so not a number here.
  if (ec != std::errc() || ptr != num.data() + num.size() || num.empty() || !std::isfinite(value)) {
    what_.assign("OBX-5 '");
    what_.append(f5.substr(0, 64));
    what_.append("' is not a number");
    return refuse(obs, index, ingest_errc::non_numeric_value, what_);
  }
  auto unit = unescape(component(field(seg, 6), 1), unit_scratch_);
  if (!unit) return refuse(obs, index, ingest_errc::bad_escape, "bad escape sequence in OBX-6");

  const std::string_view f11 = trim(field(seg, 11));
  if (f11.empty()) return refuse(obs, index, ingest_errc::missing_status, "OBX-11 is empty");
  const std::string_view status = status_of(f11);
  if (status.empty()) {
    what_.assign("OBX-11 '");
    what_.append(f11.substr(0, 16));
    what_.append("' is not a result status of HL7 table 0085");
    return refuse(obs, index, ingest_errc::unknown_status, what_);
  }

  std::string_view ts = component(field(seg, 14), 1);
  const char* ts_name = "OBX-14";
  if (ts.empty()) {
    ts = obr_time;
    ts_name = "OBR-7";
  }
  if (ts.empty()) {
    return refuse(obs, index, ingest_errc::missing_effective_time,
                  "neither OBX-14 nor OBR-7 gives the observation time");
  }
  const std::optional<int64_t> t = parse_hl7_timestamp(ts);
  if (!t) {
    what_.assign(ts_name);
    what_.append(" '");
    what_.append(ts.substr(0, 32));
    what_.append("' is not YYYYMMDDHHMM[SS[.S+]][+/-ZZZZ]");
    return refuse(obs, index, ingest_errc::bad_timestamp, what_);
  }

  observation_ref o;
  o.patient = header_.patient;
  o.encounter = header_.encounter;
  o.code = trim(*code);
  o.value = value;
  o.unit = trim(*unit);
  o.status = status;
  o.event_time = *t;
  o.message_id = header_.message_id;
  o.index = index;
  obs.observation(o);
}

}  // namespace vigil::clinical
