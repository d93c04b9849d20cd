#include "operators/core/row_codec.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::make_rows;
using testing::row_text;

schema_ptr all_types() {
  return make_schema({{"b", type_id::boolean, true},
                      {"i", type_id::int64, true},
                      {"d", type_id::float64, true},
                      {"s", type_id::string, true},
                      {"t", type_id::timestamp, true},
                      {"i2", type_id::int64, true},
                      {"s2", type_id::string, true},
                      {"b2", type_id::boolean, true},
                      {"d2", type_id::float64, true}});
}

/// Decodes `encoded` into a fresh batch of `s` (one row at time 0).
std::string decoded_text(const row_codec& codec, const schema_ptr& s, std::string_view encoded,
                         bool* ok = nullptr) {
  auto b = make_batch(s, 1);
  std::vector<column*> cols;
  for (auto& c : b->columns) cols.push_back(&c);
  bool r = codec.decode(encoded, cols.data());
  if (ok != nullptr) *ok = r;
  b->event_time.push_back(0);
  return row_text(*b, 0);
}

TEST(RowCodec, RoundTripsEveryTypeAndNull) {
  auto s = all_types();
  std::string big(300, 'x');  // A length that needs a two-byte varint.
  auto in = make_rows(
      s,
      {{true, int64_t{-5}, 2.5, std::string("h\0i", 3), int64_t{1700000000000000},
        int64_t{INT64_MIN}, big, false, -0.25},
       {std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{},
        std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{}},
       {false, int64_t{0}, 0.0, std::string(), int64_t{0}, int64_t{INT64_MAX}, std::monostate{},
        true, std::monostate{}}},
      {0, 0, 0});
  row_codec codec = row_codec::all(*s);
  EXPECT_EQ(codec.num_columns(), 9u);
  for (size_t r = 0; r < in->num_rows(); ++r) {
    std::string enc;
    codec.encode(*in, r, enc);
    bool ok = false;
    EXPECT_EQ(decoded_text(codec, s, enc, &ok), row_text(*in, r)) << r;
    EXPECT_TRUE(ok);
  }
  std::string nulls;
  codec.encode(*in, 1, nulls);
  EXPECT_EQ(nulls.size(), 2u);  // Only the bitmap.
}

TEST(RowCodec, SelectedColumnsAndAppend) {
  auto s = make_schema(
      {{"k", type_id::string, false}, {"v", type_id::int64, true}, {"w", type_id::string, true}});
  auto in = make_rows(s, {{std::string("key"), int64_t{7}, std::string("w")}}, {0});
  row_codec codec(*s, {2, 1});
  std::string enc = "prefix";
  codec.encode(*in, 0, enc);
  auto out_schema = make_schema({{"w", type_id::string, true}, {"v", type_id::int64, true}});
  EXPECT_EQ(decoded_text(codec, out_schema, std::string_view(enc).substr(6)), "w|7@0");
}

TEST(RowCodec, MalformedInputKeepsColumnsAligned) {
  auto s = make_schema({{"v", type_id::int64, true}, {"w", type_id::string, true}});
  auto in = make_rows(s, {{int64_t{7}, std::string("abc")}}, {0});
  row_codec codec = row_codec::all(*s);
  std::string enc;
  codec.encode(*in, 0, enc);
  bool ok = true;
  EXPECT_EQ(decoded_text(codec, s, std::string_view(enc).substr(0, enc.size() - 1), &ok),
            "7|null@0");
  EXPECT_FALSE(ok);
  EXPECT_EQ(decoded_text(codec, s, "", &ok), "null|null@0");
  EXPECT_FALSE(ok);
  EXPECT_EQ(decoded_text(codec, s, enc + "x", &ok), "7|abc@0");
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace vigil
