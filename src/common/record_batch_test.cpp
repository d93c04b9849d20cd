#include "common/record_batch.hpp"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(RecordBatch, BuilderCopiesSelectedRowsWithTimesAndKeys) {
  auto s = make_schema({{"n", type_id::int64, true}, {"s", type_id::string, true}});
  auto src = make_batch(s, 4);
  for (int i = 0; i < 4; ++i) {
    if (i == 2) {
      src->columns[0].push_null();
    } else {
      src->columns[0].push_int64(i * 10);
    }
    src->columns[1].push_string(std::string(i, 'x'));
    src->event_time.push_back(100 + i);
    src->key_hash.push_back(1000 + i);
  }
  batch_builder b(s);
  uint32_t sel[] = {3, 2, 0};
  b.append_rows(*src, sel, 3);
  b.append_row(*src, 1);
  auto out = b.finish();
  ASSERT_EQ(out->num_rows(), 4u);
  EXPECT_EQ(out->columns[0].ints[0], 30);
  EXPECT_TRUE(out->columns[0].is_null(1));
  EXPECT_EQ(out->columns[1].string_at(0), "xxx");
  EXPECT_EQ(out->columns[1].string_at(2), "");
  EXPECT_EQ(out->columns[1].string_at(3), "x");
  EXPECT_EQ(out->event_time, (std::vector<int64_t>{103, 102, 100, 101}));
  EXPECT_EQ(out->key_hash, (std::vector<uint64_t>{1003, 1002, 1000, 1001}));
  EXPECT_TRUE(b.empty());  // finish() starts a new batch.
}

TEST(RecordBatch, AppendAllConcatenatesStrings) {
  column a(type_id::string), b(type_id::string);
  a.push_string("ab");
  b.push_string("c");
  b.push_null();
  b.push_string("de");
  a.append_all(b);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a.string_at(0), "ab");
  EXPECT_EQ(a.string_at(1), "c");
  EXPECT_TRUE(a.is_null(2));
  EXPECT_EQ(a.string_at(3), "de");
}

}  // namespace
}  // namespace vigil
