#include "operators/core/join_interval.hpp"

#include <algorithm>
#include <cassert>
#include <string>
#include <vector>

#include "operators/core/join_common.hpp"
#include "operators/core/row_codec.hpp"
#include "runtime/state_backend.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {
namespace {

using join::output_buffer;

constexpr size_t left_side = 0;
constexpr size_t right_side = 1;

/// A chunk holds at most this many rows...
constexpr uint32_t chunk_rows = 32;
/// ...spanning at most this much event time (µs).
constexpr int64_t chunk_span_us = 30'000'000;

/// Everything an instance needs, fixed at planning.
struct interval_join_spec {
  int64_t lower = 0;
  int64_t upper = 0;
  int64_t lateness = 0;
  std::vector<int> key_fields[2];
  row_codec codecs[2];
  size_t left_width = 0;  ///< Number of left fields, i.e. the first right field's output index.
};

/// The buffered rows of one key and side: a directory of chunks. Stored as
///   [next chunk id][pending clean-up timer, min_watermark if none]
///   then per chunk [id][min time][max time][rows]
/// with every field an order-preserving 8-byte integer (put_i64_ordered).
struct chunk_directory {
  struct chunk {
    int64_t id;
    int64_t min_time;
    int64_t max_time;
    uint32_t rows;
  };
  static constexpr size_t header_bytes = 16;
  static constexpr size_t chunk_bytes = 32;

  int64_t next_id = 0;
  int64_t timer = min_watermark;
  std::vector<chunk> chunks;  ///< In creation order; the last one takes new rows.

  void clear() {
    next_id = 0;
    timer = min_watermark;
    chunks.clear();
  }

  /// Parses `buf`; false if malformed.
  bool parse(std::string_view buf) {
    chunks.clear();
    if (buf.size() < header_bytes || (buf.size() - header_bytes) % chunk_bytes != 0) return false;
    const char* p = buf.data();
    next_id = get_i64_ordered(p);
    timer = get_i64_ordered(p + 8);
    for (size_t pos = header_bytes; pos < buf.size(); pos += chunk_bytes) {
      int64_t rows = get_i64_ordered(p + pos + 24);
      if (rows <= 0 || rows > chunk_rows) return false;
      chunks.push_back({get_i64_ordered(p + pos), get_i64_ordered(p + pos + 8),
                        get_i64_ordered(p + pos + 16), static_cast<uint32_t>(rows)});
    }
    return true;
  }

  void serialize(std::string& buf) const {
    buf.clear();
    put_i64_ordered(buf, next_id);
    put_i64_ordered(buf, timer);
    for (const chunk& c : chunks) {
      put_i64_ordered(buf, c.id);
      put_i64_ordered(buf, c.min_time);
      put_i64_ordered(buf, c.max_time);
      put_i64_ordered(buf, c.rows);
    }
  }
};

class interval_join_operator final : public operator_base {
 public:
  interval_join_operator(interval_join_spec spec, std::vector<stream_info> outputs)
      : spec_(std::move(spec)), outputs_(std::move(outputs)) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    state_ = ctx.state;
    timers_ = ctx.timers;
    const char* rows[2] = {"interval_join.left", "interval_join.right"};
    const char* dirs[2] = {"interval_join.left_chunks", "interval_join.right_chunks"};
    for (size_t s = 0; s < 2; ++s) {
      auto id = state_->declare(rows[s], state_backend::kind::value);
      if (!id) return id.err();
      rows_ids_[s] = *id;
      auto dir = state_->declare(dirs[s], state_backend::kind::value);
      if (!dir) return dir.err();
      dir_ids_[s] = *dir;
    }
    out_ = output_buffer(outputs_[0].schema, 0, ctx.batch_size);
    late_[left_side] = output_buffer(outputs_[1].schema, 1, ctx.batch_size);
    late_[right_side] = output_buffer(outputs_[2].schema, 2, ctx.batch_size);
    return {};
  }

  void process(size_t port, const record_batch& in, output& out) override {
    const size_t side = port;
    const std::vector<int>& key_fields = spec_.key_fields[side];
    const int64_t wm = ctx_->watermark;
    for (size_t r = 0; r < in.num_rows(); ++r) {
      const int64_t t = in.event_time[r];
      if (saturating_add(t, spec_.lateness) <= wm) {
        late_[side].append_row(in, r, out);
        ++ctx_->late_records;
        continue;
      }
      if (join::has_null_key(in, key_fields, r)) continue;
      key_.clear();
      encode_key(in, key_fields, r, key_);
      state_->set_current_key(key_group_of(in.key_hash[r], ctx_->max_parallelism), key_);
      probe(side, in, r, out);
      // Buffer the row while a non-late row of the other side can still match it.
      if (cleanup_time(side, t) > wm) buffer(side, in, r);
    }
    out_.flush(out);
    late_[side].flush(out);
  }

  void on_timer(const timer& t, output& out) override {
    // Drop the chunks of side t.ns that are due; re-arm at the earliest release left.
    const auto side = static_cast<size_t>(t.ns);
    if (!load_directory(side)) return;
    int64_t next = max_watermark;
    auto& chunks = dir_.chunks;
    size_t kept = 0;
    for (const auto& c : chunks) {
      int64_t expiry = release_time(side, c);
      if (expiry <= t.time) {
        state_->erase(rows_ids_[side], c.id);
      } else {
        next = std::min(next, expiry);
        chunks[kept++] = c;
      }
    }
    chunks.resize(kept);
    if (chunks.empty()) {
      state_->erase(dir_ids_[side], 0);
      return;
    }
    if (dir_.timer <= t.time || dir_.timer > next) {
      timers_->register_event_timer(next, static_cast<int64_t>(side));
      dir_.timer = next;
    }
    dir_.serialize(dir_buf_);
    state_->put(dir_ids_[side], 0, dir_buf_);
  }

  status close(output& out) override {
    out_.flush(out);
    late_[left_side].flush(out);
    late_[right_side].flush(out);
    return {};
  }

 private:
  /// The watermark from which no non-late row of the other side can match a row of `side` at
  /// time t: a left row matches right rows up to t + upper, which are late once
  /// W >= t + upper + A; a right row matches left rows from t - lower on.
  int64_t cleanup_time(size_t side, int64_t t) const {
    int64_t bound =
        side == left_side ? saturating_add(t, spec_.upper) : saturating_sub(t, spec_.lower);
    return saturating_add(bound, spec_.lateness);
  }

  /// When chunk c of `side` goes: when all its rows may (see cleanup_time()); for a chunk that
  /// is not full, at the end of that release period, so that the rows of a key that arrive
  /// further apart than their bound still share chunks and timers.
  int64_t release_time(size_t side, const chunk_directory::chunk& c) const {
    int64_t t = cleanup_time(side, c.max_time);
    return c.rows >= chunk_rows ? t : join::release_period_end(t);
  }

  /// Reads the current key's directory of `side` into dir_; false if there is none.
  bool load_directory(size_t side) {
    if (!state_->get(dir_ids_[side], 0, dir_buf_)) return false;
    bool ok = dir_.parse(dir_buf_);
    assert(ok && "directories are written by chunk_directory::serialize()");
    return ok;
  }

  /// Joins row r of `in` (from `side`) with the buffered rows of the other side at [lo, hi].
  void probe(size_t side, const record_batch& in, size_t r, output& out) {
    const size_t other = 1 - side;
    if (!load_directory(other)) return;
    const int64_t t = in.event_time[r];
    const int64_t lo =
        side == left_side ? saturating_add(t, spec_.lower) : saturating_sub(t, spec_.upper);
    const int64_t hi =
        side == left_side ? saturating_add(t, spec_.upper) : saturating_sub(t, spec_.lower);
    for (const auto& c : dir_.chunks) {
      if (c.max_time < lo || c.min_time > hi) continue;
      if (!state_->get(rows_ids_[other], c.id, chunk_buf_)) continue;
      bool ok = join::for_each_entry(chunk_buf_, [&](int64_t other_time, std::string_view row) {
        if (other_time >= lo && other_time <= hi) emit_pair(side, in, r, other_time, row, out);
      });
      assert(ok && "chunks are written by append_entry()");
      (void)ok;
    }
  }

  /// Appends row r of `in` to the current key's last chunk of `side`, or to a new chunk.
  void buffer(size_t side, const record_batch& in, size_t r) {
    const int64_t t = in.event_time[r];
    if (!load_directory(side)) dir_.clear();
    row_.clear();
    spec_.codecs[side].encode(in, r, row_);
    auto* head = dir_.chunks.empty() ? nullptr : &dir_.chunks.back();
    if (head != nullptr && head->rows < chunk_rows &&
        saturating_sub(std::max(head->max_time, t), std::min(head->min_time, t)) < chunk_span_us &&
        state_->get(rows_ids_[side], head->id, chunk_buf_)) {
      head->min_time = std::min(head->min_time, t);
      head->max_time = std::max(head->max_time, t);
      ++head->rows;
    } else {
      dir_.chunks.push_back({dir_.next_id++, t, t, 1});
      head = &dir_.chunks.back();
      chunk_buf_.clear();
    }
    join::append_entry(chunk_buf_, t, row_);
    state_->put(rows_ids_[side], head->id, chunk_buf_);
    // The pending timer is at or before every chunk's expiry; only this chunk's may be earlier.
    const int64_t expiry = release_time(side, *head);
    if (dir_.timer == min_watermark || expiry < dir_.timer) {
      timers_->register_event_timer(expiry, static_cast<int64_t>(side));
      dir_.timer = expiry;
    }
    dir_.serialize(dir_buf_);
    state_->put(dir_ids_[side], 0, dir_buf_);
  }

  /// Emits the pair of row r of `in` (from `side`) and a buffered row of the other side.
  void emit_pair(size_t side, const record_batch& in, size_t r, int64_t other_time,
                 std::string_view other_row, output& out) {
    const size_t lw = spec_.left_width;
    bool decoded;
    if (side == left_side) {
      for (size_t c = 0; c < lw; ++c) out_.col(c).push_from(in.columns[c], r);
      decoded = spec_.codecs[right_side].decode(other_row, out_.cols(lw));
    } else {
      decoded = spec_.codecs[left_side].decode(other_row, out_.cols(0));
      for (size_t c = 0; c < in.columns.size(); ++c) out_.col(lw + c).push_from(in.columns[c], r);
    }
    assert(decoded && "buffered rows are written by row_codec::encode()");
    (void)decoded;
    out_.end_row(std::max(in.event_time[r], other_time), in.key_hash[r], out);
  }

  interval_join_spec spec_;
  std::vector<stream_info> outputs_;
  operator_context* ctx_ = nullptr;
  state_backend* state_ = nullptr;
  timer_service* timers_ = nullptr;
  state_backend::state_id rows_ids_[2] = {0, 0};
  state_backend::state_id dir_ids_[2] = {0, 0};
  output_buffer out_;
  output_buffer late_[2];

  // Reused per row: no allocation per record once they have grown.
  std::string key_;
  std::string row_;
  std::string dir_buf_;
  std::string chunk_buf_;
  chunk_directory dir_;
};

class interval_join_plan final : public operator_plan {
 public:
  explicit interval_join_plan(interval_join_spec spec) : spec_(std::move(spec)) {}

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<interval_join_operator>(spec_, outputs);
  }

 private:
  interval_join_spec spec_;
};

class interval_join_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader cfg(*ctx.config);
    auto lower = join::required_signed_duration_us(cfg, "lower");
    if (!lower) return lower.err();
    auto upper = join::required_signed_duration_us(cfg, "upper");
    if (!upper) return upper.err();
    if (*lower > *upper) {
      return config_reader::key_error("lower", "must not be greater than config.upper (" +
                                                   std::to_string(*lower) + "us > " +
                                                   std::to_string(*upper) + "us)");
    }
    auto lateness = cfg.duration_us_or("allowed_lateness", ctx.allowed_lateness_us);
    if (!lateness) return lateness.err();
    auto prefix = cfg.string_or("right_prefix", "right_");
    if (!prefix) return prefix.err();
    VIGIL_TRY(cfg.finish());

    if (ctx.inputs.size() != 2) {
      return make_error(errc::invalid_graph, "interval_join takes inputs 'left' and 'right'");
    }
    const stream_info& left = ctx.inputs[0];
    const stream_info& right = ctx.inputs[1];
    VIGIL_TRY(join::check_join_keys(left, right));

    std::vector<int> right_columns(right.schema->size());
    for (size_t i = 0; i < right_columns.size(); ++i) right_columns[i] = static_cast<int>(i);
    auto fields = join::joined_fields(*left.schema, *right.schema, right_columns, *prefix, false);
    if (!fields) return fields.err();

    interval_join_spec spec;
    spec.lower = *lower;
    spec.upper = *upper;
    spec.lateness = *lateness;
    spec.key_fields[left_side] = left.key_fields;
    spec.key_fields[right_side] = right.key_fields;
    spec.codecs[left_side] = row_codec::all(*left.schema);
    spec.codecs[right_side] = row_codec::all(*right.schema);
    spec.left_width = left.schema->size();
    auto p = std::make_shared<interval_join_plan>(std::move(spec));
    p->outputs.push_back(stream_info{make_schema(std::move(*fields)), left.key_fields});
    p->outputs.push_back(left);
    p->outputs.push_back(right);
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "interval_join",
      .input_ports = {"left", "right"},
      .output_ports = {"out", "late_left", "late_right"},
      .keyed = true,
      .stateful = true,
      .summary = "Joins rows of two keyed streams whose event times are within an interval.",
  };
};

}  // namespace

std::unique_ptr<operator_factory> make_interval_join_factory() {
  return std::make_unique<interval_join_factory>();
}

}  // namespace vigil
