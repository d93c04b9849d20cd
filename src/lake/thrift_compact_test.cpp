#include "lake/thrift_compact.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "lake/testing/parquet_reader.hpp"

namespace vigil::lake {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

TEST(thrift_compact, varint_and_zigzag) {
  std::string out;
  append_varint(out, 0);
  append_varint(out, 127);
  append_varint(out, 128);
  append_varint(out, 300);
  EXPECT_EQ(out, bytes({0x00, 0x7f, 0x80, 0x01, 0xac, 0x02}));
  EXPECT_EQ(zigzag32(0), 0u);
  EXPECT_EQ(zigzag32(-1), 1u);
  EXPECT_EQ(zigzag32(1), 2u);
  EXPECT_EQ(zigzag32(std::numeric_limits<int32_t>::min()), 0xffffffffu);
  EXPECT_EQ(zigzag64(std::numeric_limits<int64_t>::max()), 0xfffffffffffffffeull);
  EXPECT_EQ(zigzag64(std::numeric_limits<int64_t>::min()), 0xffffffffffffffffull);
}

TEST(thrift_compact, short_field_headers_carry_id_deltas) {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_i32(1, 1);        // delta 1, i32: 0x15, zigzag(1) = 2
  e.field_i64(3, -1);       // delta 2, i64: 0x26, zigzag(-1) = 1
  e.field_bool(4, true);    // delta 1, BOOLEAN_TRUE: 0x11, no value byte
  e.field_bool(5, false);   // delta 1, BOOLEAN_FALSE: 0x12
  e.field_binary(6, "ab");  // delta 1, binary: 0x18, length 2
  e.field_i16(7, -2);       // delta 1, i16: 0x14, zigzag(-2) = 3
  e.struct_end();
  EXPECT_EQ(out,
            bytes({0x15, 0x02, 0x26, 0x01, 0x11, 0x12, 0x18, 0x02, 'a', 'b', 0x14, 0x03, 0x00}));
}

TEST(thrift_compact, long_field_header_when_delta_is_out_of_range) {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_i32(1, 0);     // 0x15 0x00
  e.field_i32(30, 150);  // delta 29: type byte 0x05, zigzag(30) = 60, zigzag(150) = 300
  e.field_i32(2, 1);     // going back: long form again, zigzag(2) = 4
  e.struct_end();
  EXPECT_EQ(out, bytes({0x15, 0x00, 0x05, 0x3c, 0xac, 0x02, 0x05, 0x04, 0x02, 0x00}));
}

TEST(thrift_compact, lists_short_and_long_headers) {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_list_begin(1, thrift_type::i32, 3);  // 0x19, size 3 << 4 | i32 = 0x35
  e.element_i32(1);
  e.element_i32(2);
  e.element_i32(-3);
  e.field_list_begin(2, thrift_type::binary, 15);  // 0x19, 0xf8, varint 15
  for (int k = 0; k < 15; ++k) {
    e.element_binary("");
  }
  e.struct_end();
  std::string expected = bytes({0x19, 0x35, 0x02, 0x04, 0x05, 0x19, 0xf8, 0x0f});
  expected.append(15, '\0');
  expected.push_back('\0');
  EXPECT_EQ(out, expected);
}

TEST(thrift_compact, nested_structs_restore_the_outer_field_id) {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_i32(1, 7);
  e.field_struct_begin(2);                           // 0x1c
  e.field_i32(5, 1);                                 // inner ids start from 0: 0x55 0x02
  e.struct_end();                                    // 0x00
  e.field_i32(3, 2);                                 // delta 1 from the outer field 2: 0x15 0x04
  e.field_list_begin(4, thrift_type::structure, 1);  // 0x19 0x1c
  e.element_struct_begin();
  e.field_i32(1, 3);  // 0x15 0x06
  e.struct_end();
  e.struct_end();
  EXPECT_EQ(out, bytes({0x15, 0x0e, 0x1c, 0x55, 0x02, 0x00, 0x15, 0x04, 0x19, 0x1c, 0x15, 0x06,
                        0x00, 0x00}));
}

TEST(thrift_compact, extreme_i64_values_round_trip) {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_i64(1, std::numeric_limits<int64_t>::min());
  e.field_i64(2, std::numeric_limits<int64_t>::max());
  e.field_i64(3, 0);
  e.field_i32(4, std::numeric_limits<int32_t>::min());
  e.struct_end();
  EXPECT_EQ(out.substr(0, 11),
            bytes({0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  testing::compact_decoder d(out);
  const testing::thrift_value v = d.read_struct();
  EXPECT_EQ(d.position(), out.size());
  EXPECT_EQ(v[1].i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v[2].i, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v[3].i, 0);
  EXPECT_EQ(v[4].i, std::numeric_limits<int32_t>::min());
}

}  // namespace
}  // namespace vigil::lake
