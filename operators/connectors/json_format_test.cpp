#include "operators/connectors/json_format.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;

TEST(JsonFormat, FormatsTimestamps) {
  EXPECT_EQ(format_timestamp_iso(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_timestamp_iso(jan1_2026 + 10'000'000), "2026-01-01T00:00:10Z");
  EXPECT_EQ(format_timestamp_iso(jan1_2026 + 250'000), "2026-01-01T00:00:00.250Z");
  EXPECT_EQ(format_timestamp_iso(jan1_2026 + 1), "2026-01-01T00:00:00.000001Z");
  EXPECT_EQ(format_timestamp_iso(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_timestamp_iso(-86'400'000'000LL), "1969-12-31T00:00:00Z");
  // 2024-02-29T12:34:56.789Z
  EXPECT_EQ(format_timestamp_iso(1709210096789000), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(format_timestamp_iso(253402300800LL * 1'000'000), "+10000-01-01T00:00:00Z");
  // The extremes do not crash and keep their sign.
  EXPECT_EQ(format_timestamp_iso(std::numeric_limits<int64_t>::min()).front(), '-');
  EXPECT_EQ(format_timestamp_iso(std::numeric_limits<int64_t>::max()).front(), '+');
}

TEST(JsonFormat, ParsesTimestamps) {
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T00:00:00Z"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T00:00Z"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01 00:00:10z"), jan1_2026 + 10'000'000);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T01:00:00+01:00"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2025-12-31T23:30:00-00:30"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T05:30:00+0530"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T02:00:00+02"), jan1_2026);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T00:00:00.5Z"), jan1_2026 + 500'000);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T00:00:00,25Z"), jan1_2026 + 250'000);
  EXPECT_EQ(parse_timestamp_iso("2026-01-01T00:00:00.123456789Z"), jan1_2026 + 123'456);
  EXPECT_EQ(parse_timestamp_iso("1969-12-31T23:59:59.999999Z"), -1);
  EXPECT_EQ(parse_timestamp_iso("2024-02-29T00:00:00Z"), 1709164800LL * 1'000'000);
}

TEST(JsonFormat, RefusesInvalidTimestamps) {
  for (const char* bad : {"",
                          "2026",
                          "2026-01-01T00:00:00",
                          "2026-01-01T00:00",
                          "2026-13-01T00:00:00Z",
                          "2025-02-29T00:00:00Z",
                          "2026-04-31",
                          "2026-01-01T24:00:00Z",
                          "2026-01-01T00:60:00Z",
                          "2026-01-01T00:00:60Z",
                          "2026-01-01T00:00:00+24:00",
                          "2026-01-01T00:00:00+01:60",
                          "2026-01-01T00:00:00.Z",
                          "2026-01-01T00:00:00Zjunk",
                          "2026-01-01X00:00:00Z",
                          "26-01-01T00:00:00Z",
                          "2026-1-01T00:00:00Z",
                          "yesterday",
                          "1767225600000",
                          "2026-01-01T00:00:00+01:"}) {
    EXPECT_EQ(parse_timestamp_iso(bad), std::nullopt) << bad;
  }
}

TEST(JsonFormat, TimestampRoundTrip) {
  for (int64_t us : {int64_t{0}, jan1_2026, jan1_2026 + 1, jan1_2026 + 999'999, int64_t{-1},
                     int64_t{-62135596800LL * 1'000'000}, int64_t{253402300799999999LL}}) {
    EXPECT_EQ(parse_timestamp_iso(format_timestamp_iso(us)), us) << us;
  }
}

TEST(JsonFormat, EscapesStrings) {
  std::string out;
  append_json_string(out, "plain");
  EXPECT_EQ(out, "\"plain\"");
  out.clear();
  append_json_string(out, "a\"b\\c\nd\re\tf\x01g\x1f");
  EXPECT_EQ(out, R"("a\"b\\c\nd\re\tf\u0001g\u001f")");
  out.clear();
  append_json_string(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // é € 😀 stay as UTF-8.
  EXPECT_EQ(out, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  out.clear();
  // A stray continuation byte, a truncated sequence, an overlong form and a surrogate.
  append_json_string(out, std::string_view("x\x80y\xc3", 4));
  EXPECT_EQ(out, R"("x\ufffdy\ufffd")");
  out.clear();
  append_json_string(out, "\xc0\xaf|\xed\xa0\x80");
  EXPECT_EQ(out, R"("\ufffd\ufffd|\ufffd\ufffd\ufffd")");
  out.clear();
  append_json_string(out, std::string_view("\0", 1));
  EXPECT_EQ(out, R"("\u0000")");
}

TEST(JsonFormat, FormatsDoubles) {
  auto text = [](double v) {
    std::string s;
    append_json_double(s, v);
    return s;
  };
  EXPECT_EQ(text(0.1), "0.1");
  EXPECT_EQ(text(2.0), "2");
  EXPECT_EQ(text(-1.5), "-1.5");
  EXPECT_EQ(text(1e21), "1e+21");
  EXPECT_EQ(text(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(text(std::nan("")), "null");
  EXPECT_EQ(text(std::numeric_limits<double>::infinity()), "null");
}

TEST(JsonFormat, AppendsRows) {
  auto s = make_schema({{"id", type_id::int64, false},
                        {"name", type_id::string, true},
                        {"score", type_id::float64, true},
                        {"ok", type_id::boolean, true},
                        {"ts", type_id::timestamp, true}});
  auto b = testing::make_rows(
      s,
      {{int64_t{1}, std::string("a\"b"), 2.5, true, jan1_2026 + 10'000'000},
       {int64_t{-2}, std::monostate{}, std::monostate{}, false, std::monostate{}}},
      {jan1_2026, jan1_2026 + 1500});
  std::string out;
  append_json_row(out, *b, 0, false);
  EXPECT_EQ(out, R"({"id":1,"name":"a\"b","score":2.5,"ok":true,"ts":"2026-01-01T00:00:10Z"})");
  out.clear();
  append_json_row(out, *b, 1, true);
  EXPECT_EQ(out, R"({"id":-2,"name":null,"score":null,"ok":false,"ts":null,)"
                 R"("_event_time":"2026-01-01T00:00:00.001500Z"})");
}

}  // namespace
}  // namespace vigil
