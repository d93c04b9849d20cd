#include "common/key.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "common/record_batch.hpp"

namespace vigil {
namespace {

TEST(KeyGroups, RangesPartitionAllGroupsContiguously) {
  for (uint32_t max_p : {1u, 7u, 128u, 32768u}) {
    for (uint32_t p : {1u, 2u, 3u, 4u, 7u}) {
      if (p > max_p) continue;
      uint32_t next = 0;
      for (uint32_t i = 0; i < p; ++i) {
        auto r = key_group_range_of(i, p, max_p);
        EXPECT_EQ(r.begin, next);
        EXPECT_GT(r.end, r.begin) << "subtask " << i << " of " << p << " owns nothing";
        for (uint32_t kg = r.begin; kg < r.end; ++kg) {
          EXPECT_EQ(subtask_of_key_group(kg, p, max_p), i);
        }
        next = r.end;
      }
      EXPECT_EQ(next, max_p);
    }
  }
}

TEST(KeyEncoding, RoundTripsEveryTypeAndNull) {
  auto s = make_schema({{"i", type_id::int64, true},
                        {"d", type_id::float64, true},
                        {"b", type_id::boolean, true},
                        {"s", type_id::string, true},
                        {"t", type_id::timestamp, true}});
  batch_builder b(s);
  b.col(0).push_int64(-42);
  b.col(1).push_float64(-0.5);
  b.col(2).push_bool(true);
  b.col(3).push_string(std::string("a\0b", 3));
  b.col(4).push_int64(1700000000000000);
  b.end_row(0);
  b.col(0).push_null();
  b.col(1).push_null();
  b.col(2).push_null();
  b.col(3).push_string("");
  b.col(4).push_null();
  b.end_row(0);
  auto batch = b.finish();
  std::vector<int> fields{0, 1, 2, 3, 4};
  std::vector<type_id> types{type_id::int64, type_id::float64, type_id::boolean, type_id::string,
                             type_id::timestamp};
  batch_builder out(s);
  column* cols[] = {&out.col(0), &out.col(1), &out.col(2), &out.col(3), &out.col(4)};
  for (size_t r = 0; r < 2; ++r) {
    std::string key;
    encode_key(*batch, fields, r, key);
    ASSERT_TRUE(decode_key(key, types, cols));
    out.end_row(0);
  }
  auto decoded = out.finish();
  EXPECT_EQ(decoded->columns[0].ints[0], -42);
  EXPECT_EQ(decoded->columns[1].doubles[0], -0.5);
  EXPECT_EQ(decoded->columns[2].bools[0], 1);
  EXPECT_EQ(decoded->columns[3].string_at(0), std::string("a\0b", 3));
  EXPECT_EQ(decoded->columns[4].ints[0], 1700000000000000);
  EXPECT_TRUE(decoded->columns[0].is_null(1));
  EXPECT_TRUE(decoded->columns[1].is_null(1));
  EXPECT_FALSE(decoded->columns[3].is_null(1));
  EXPECT_EQ(decoded->columns[3].string_at(1), "");
  EXPECT_FALSE(decode_key("\x01", types, cols));  // Truncated.
}

TEST(KeyEncoding, PreservesOrderOfIntegersDoublesAndStrings) {
  auto s = make_schema({{"i", type_id::int64, false}});
  std::vector<int64_t> values{std::numeric_limits<int64_t>::min(), -5, -1, 0, 1, 7,
                              std::numeric_limits<int64_t>::max()};
  std::string prev;
  for (int64_t v : values) {
    batch_builder b(s);
    b.col(0).push_int64(v);
    b.end_row(0);
    std::string key;
    encode_key(*b.finish(), {0}, 0, key);
    if (!prev.empty()) {
      EXPECT_LT(prev, key) << v;
    }
    prev = key;
  }
  auto ds = make_schema({{"d", type_id::float64, false}});
  prev.clear();
  for (double v : {-1e300, -2.5, -0.0, 1e-9, 3.0, 1e300}) {
    batch_builder b(ds);
    b.col(0).push_float64(v);
    b.end_row(0);
    std::string key;
    encode_key(*b.finish(), {0}, 0, key);
    if (!prev.empty()) {
      EXPECT_LT(prev, key) << v;
    }
    prev = key;
  }
}

TEST(KeyEncoding, StringKeysAreNotPrefixesOfEachOther) {
  auto s = make_schema({{"a", type_id::string, false}, {"b", type_id::string, false}});
  auto key_of = [&](std::string a, std::string b) {
    batch_builder bb(s);
    bb.col(0).push_string(a);
    bb.col(1).push_string(b);
    bb.end_row(0);
    std::string key;
    encode_key(*bb.finish(), {0, 1}, 0, key);
    return key;
  };
  EXPECT_NE(key_of("ab", "c"), key_of("a", "bc"));
  EXPECT_NE(hash_encoded_key(key_of("ab", "c")), hash_encoded_key(key_of("a", "bc")));
}

}  // namespace
}  // namespace vigil
