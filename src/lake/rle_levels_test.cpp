#include "lake/rle_levels.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lake/testing/parquet_reader.hpp"

namespace vigil::lake {
namespace {

std::string encode(const std::vector<uint8_t>& levels) {
  std::string out;
  encode_levels_rle(levels.data(), levels.size(), out);
  return out;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out.push_back(static_cast<char>(v));
  }
  return out;
}

TEST(rle_levels, empty_input_writes_nothing) {
  EXPECT_EQ(encode({}), "");
}

TEST(rle_levels, a_long_run_is_one_rle_run) {
  // Header: count 10 << 1 = 20; then the value in one byte.
  EXPECT_EQ(encode(std::vector<uint8_t>(10, 1)), bytes({0x14, 0x01}));
  EXPECT_EQ(encode(std::vector<uint8_t>(1000, 0)), bytes({0xd0, 0x0f, 0x00}));
}

TEST(rle_levels, short_input_is_one_padded_bit_packed_group) {
  // Header: 1 group << 1 | 1 = 3; values LSB first: 1, 0, 1 -> 0b101.
  EXPECT_EQ(encode({1, 0, 1}), bytes({0x03, 0x05}));
}

TEST(rle_levels, literal_values_fill_a_whole_group_before_an_rle_run) {
  std::vector<uint8_t> levels(4, 0);
  levels.insert(levels.end(), 16, 1);
  // 4 zeros and 4 ones bit-packed (0xf0), then an RLE run of the other 12 ones.
  EXPECT_EQ(encode(levels), bytes({0x03, 0xf0, 0x18, 0x01}));
}

TEST(rle_levels, bit_packed_runs_hold_at_most_63_groups) {
  std::vector<uint8_t> levels;
  for (int k = 0; k < 1000; ++k) {
    levels.push_back(k % 2);
  }
  const std::string out = encode(levels);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), (63 << 1) | 1);
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 0xaa);
  EXPECT_EQ(testing::decode_levels_rle(out, levels.size()), levels);
}

TEST(rle_levels, random_sequences_round_trip) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    const size_t n = rng() % 700;
    const int run_bias = 1 + static_cast<int>(rng() % 40);
    std::vector<uint8_t> levels;
    uint8_t v = rng() % 2;
    while (levels.size() < n) {
      const size_t run = 1 + rng() % run_bias;
      for (size_t k = 0; k < run && levels.size() < n; ++k) {
        levels.push_back(v);
      }
      v ^= 1;
    }
    EXPECT_EQ(testing::decode_levels_rle(encode(levels), n), levels) << "round " << round;
  }
}

}  // namespace
}  // namespace vigil::lake
