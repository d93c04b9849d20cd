#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/types.hpp"

namespace vigil {

/// One column of a record batch: values of one type plus a validity byte per row (1 = valid).
/// Only the vectors of the column's type are used: int64 and timestamp use `ints`, float64 uses
/// `doubles`, boolean uses `bools` (0/1), string uses `offsets` (size()+1 entries) and `chars`.
/// A null row still occupies a slot (value 0 / empty string) so that vectorized code can run
/// over the value arrays without branching on validity.
struct column {
  explicit column(type_id t = type_id::int64);

  type_id type;
  std::vector<uint8_t> valid;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<uint8_t> bools;
  std::vector<uint32_t> offsets;
  std::vector<char> chars;

  size_t size() const { return valid.size(); }
  bool is_null(size_t row) const { return valid[row] == 0; }
  std::string_view string_at(size_t row) const {
    return {chars.data() + offsets[row], offsets[row + 1] - offsets[row]};
  }

  void reserve(size_t rows);
  void clear();

  void push_null();
  void push_int64(int64_t v);  ///< Also for timestamps.
  void push_float64(double v);
  void push_bool(bool v);
  void push_string(std::string_view v);
  /// Appends row `row` of `src`, which has the same type.
  void push_from(const column& src, size_t row);
  /// Appends rows sel[0..n) of `src`, which has the same type.
  void append_selected(const column& src, const uint32_t* sel, size_t n);
  /// Appends all rows of `src`, which has the same type.
  void append_all(const column& src);
};

/// A columnar batch of records: one column per schema field, an event-time column (µs UTC)
/// and, for keyed streams, a key-hash column. Batches are immutable once sent (batch_ptr).
struct record_batch {
  schema_ptr schema;
  std::vector<column> columns;
  std::vector<int64_t> event_time;
  std::vector<uint64_t> key_hash;  ///< Empty unless the stream is keyed.

  size_t num_rows() const { return event_time.size(); }
  bool keyed() const { return !key_hash.empty(); }
};

using batch_ptr = std::shared_ptr<const record_batch>;

/// Builds record batches row by row or by copying rows. A row is added by pushing one value to
/// every column and then calling end_row(), or at once with append_row()/append_rows().
class batch_builder {
 public:
  batch_builder() = default;
  explicit batch_builder(schema_ptr s, size_t capacity_hint = 1024);

  const schema_ptr& schema() const { return schema_; }
  column& col(size_t i) { return batch_->columns[i]; }
  size_t size() const { return batch_->event_time.size(); }
  bool empty() const { return size() == 0; }

  /// Completes a row whose column values were pushed with col(i).push_*().
  void end_row(int64_t event_time) { batch_->event_time.push_back(event_time); }
  void end_row(int64_t event_time, uint64_t key_hash) {
    batch_->event_time.push_back(event_time);
    batch_->key_hash.push_back(key_hash);
  }

  /// Copies row `row` of `src` (same schema), with its event time and key hash.
  void append_row(const record_batch& src, size_t row);
  /// Copies rows sel[0..n) of `src` (same schema).
  void append_rows(const record_batch& src, const uint32_t* sel, size_t n);

  /// Returns the built batch and starts a new one with the same schema.
  batch_ptr finish();

 private:
  void reset();

  schema_ptr schema_;
  size_t capacity_hint_ = 1024;
  std::shared_ptr<record_batch> batch_;
};

/// Makes an empty batch with the columns of `s` reserved for `rows` rows.
std::shared_ptr<record_batch> make_batch(schema_ptr s, size_t rows);

}  // namespace vigil
