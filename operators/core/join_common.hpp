#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/int_math.hpp"
#include "common/key.hpp"
#include "common/record_batch.hpp"
#include "common/result.hpp"
#include "runtime/operator.hpp"

/// Helpers shared by the join operators (interval_join, temporal_join).

namespace vigil::join {

/// Parses a duration that may be negative: an integer count of milliseconds, or a string as
/// parse_duration_us() accepts with an optional leading '-' ("-5m", "-250ms"). Microseconds.
result<int64_t> parse_signed_duration_us(const config_value& v);

/// Reads the required signed duration `key` (errors "config.<key>: ...").
result<int64_t> required_signed_duration_us(config_reader& cfg, std::string_view key);

/// Checks that the two inputs of a join are keyed with the same number and types of key
/// fields. Errors name the input and the field.
status check_join_keys(const stream_info& left, const stream_info& right);

/// The output fields of a join: every left field, then the right fields `right_columns` (indices
/// into the right schema) under their own names, or `right_prefix` + name when the name is
/// taken by a left field. With `right_nullable`, the right fields become nullable. Refuses
/// (naming config.right_prefix) a prefixed name that is still taken.
result<std::vector<field>> joined_fields(const schema& left, const schema& right,
                                         const std::vector<int>& right_columns,
                                         const std::string& right_prefix, bool right_nullable);

/// True if any key field of `row` is null. Such rows never match in a join (SQL semantics).
inline bool has_null_key(const record_batch& b, const std::vector<int>& key_fields, size_t row) {
  for (int f : key_fields) {
    if (b.columns[f].is_null(row)) return true;
  }
  return false;
}

/// Joins release state in steps of this much event time (µs), so that the rows of a key
/// share state entries and timers (each costs a RocksDB write and a delete).
inline constexpr int64_t release_granularity_us = 10'000'000;

/// The last µs of the release_granularity_us period that contains t (saturating).
inline int64_t release_period_end(int64_t t) {
  constexpr int64_t g = release_granularity_us;
  int64_t start;
  if (__builtin_mul_overflow(floor_div(t, g), g, &start)) return t;
  return std::max(t, saturating_add(start, g - 1));
}

/// Buffered rows are stored as a sequence of entries [event time: 8 bytes, order-preserving]
/// [row length: varint32][row: row_codec encoding], in the order they were appended.
void append_entry(std::string& buf, int64_t event_time, std::string_view row);

/// Calls fn(event_time, row) for each entry of `buf` in order. Returns false if `buf` is
/// malformed (it then stops at the malformed entry).
template <class Fn>
bool for_each_entry(std::string_view buf, Fn&& fn) {
  size_t pos = 0;
  while (pos < buf.size()) {
    if (buf.size() - pos < 9) return false;
    int64_t t = get_i64_ordered(buf.data() + pos);
    pos += 8;
    uint32_t len = 0;
    int shift = 0;
    for (;;) {
      if (pos >= buf.size() || shift > 28) return false;
      auto byte = static_cast<uint8_t>(buf[pos++]);
      len |= static_cast<uint32_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
      shift += 7;
    }
    if (buf.size() - pos < len) return false;
    fn(t, buf.substr(pos, len));
    pos += len;
  }
  return true;
}

/// The number of entries in `buf` (for tests and diagnostics).
size_t count_entries(std::string_view buf);

/// Accumulates output rows of one port and emits them in batches of at most `batch_size` rows.
/// Exposes the current batch's columns as a pointer array for row_codec::decode().
class output_buffer {
 public:
  output_buffer() = default;
  output_buffer(schema_ptr s, size_t port, size_t batch_size);

  column& col(size_t i) { return *cols_[i]; }
  /// Columns [first, first + n) of the current batch, for row_codec::decode().
  column* const* cols(size_t first) const { return cols_.data() + first; }
  size_t size() const { return batch_->event_time.size(); }

  /// Completes a row whose values were pushed to every column; emits the batch when full.
  void end_row(int64_t event_time, uint64_t key_hash, output& out) {
    batch_->event_time.push_back(event_time);
    batch_->key_hash.push_back(key_hash);
    if (batch_->event_time.size() >= batch_size_) flush(out);
  }
  /// Copies row `row` of `src` (same schema, keyed); emits the batch when full.
  void append_row(const record_batch& src, size_t row, output& out);
  /// Emits the rows collected so far, if any.
  void flush(output& out);

 private:
  void reset();

  schema_ptr schema_;
  size_t port_ = 0;
  size_t batch_size_ = 1024;
  std::shared_ptr<record_batch> batch_;
  std::vector<column*> cols_;
};

}  // namespace vigil::join
