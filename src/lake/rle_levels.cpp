#include "lake/rle_levels.hpp"

#include <algorithm>

#include "lake/thrift_compact.hpp"

namespace vigil::lake {
namespace {

/// The most groups of 8 values in one bit-packed run: keeps its header to one byte, as the
/// reference writers do.
constexpr size_t max_groups_per_run = 63;

/// Writes levels[start, start + count) as bit-packed runs; count is a multiple of 8 unless
/// these are the last values of the output.
void write_bit_packed(const uint8_t* levels, size_t start, size_t count, std::string& out) {
  while (count > 0) {
    const size_t groups = std::min((count + 7) / 8, max_groups_per_run);
    const size_t values = std::min(count, groups * 8);
    append_varint(out, (groups << 1) | 1);
    for (size_t g = 0; g < groups; ++g) {
      uint8_t byte = 0;
      for (size_t k = 0; k < 8; ++k) {
        const size_t i = g * 8 + k;
        if (i < values) {
          byte |= static_cast<uint8_t>((levels[start + i] & 1) << k);
        }
      }
      out.push_back(static_cast<char>(byte));
    }
    start += values;
    count -= values;
  }
}

}  // namespace

void encode_levels_rle(const uint8_t* levels, size_t n, std::string& out) {
  size_t literal_start = 0;  // Pending bit-packed values: [literal_start, i).
  size_t i = 0;
  while (i < n) {
    const uint8_t v = levels[i];
    size_t end = i + 1;
    while (end < n && levels[end] == v) {
      ++end;
    }
    size_t run = end - i;
    const size_t pending = i - literal_start;
    if (pending % 8 != 0) {
      // Complete the pending group first: an RLE run may only follow whole groups.
      const size_t take = std::min(run, 8 - pending % 8);
      i += take;
      run -= take;
      if (run == 0) {
        continue;
      }
    }
    if (run >= 8) {
      write_bit_packed(levels, literal_start, i - literal_start, out);
      append_varint(out, run << 1);
      out.push_back(static_cast<char>(v));
      i += run;
      literal_start = i;
    } else {
      i += run;
    }
  }
  write_bit_packed(levels, literal_start, n - literal_start, out);
}

}  // namespace vigil::lake
