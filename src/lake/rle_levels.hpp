#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vigil::lake {

/// Appends `levels[0..n)` (each 0 or 1) in Parquet's RLE/bit-packed hybrid encoding with bit
/// width 1, without the length prefix. Runs of 8 or more equal values become RLE runs; the
/// values between them become bit-packed runs of whole groups of 8 (at most 63 groups a run),
/// and only the last run of the output is padded with zeros to a whole group.
void encode_levels_rle(const uint8_t* levels, size_t n, std::string& out);

}  // namespace vigil::lake
