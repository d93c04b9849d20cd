#include "operators/core/join_temporal.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <string>
#include <vector>

#include "operators/core/join_common.hpp"
#include "operators/core/row_codec.hpp"
#include "runtime/state_backend.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {
namespace {

using join::output_buffer;

constexpr int64_t emit_timer = 0;
constexpr int64_t cleanup_timer = 1;

/// Everything an instance needs, fixed at planning.
struct temporal_join_spec {
  bool left_outer = false;
  std::optional<int64_t> max_age;
  int64_t lateness = 0;
  std::vector<int> left_keys;
  std::vector<int> right_keys;
  row_codec left_codec;   ///< Every left field.
  row_codec right_codec;  ///< The right fields that are not key fields.
  size_t left_width = 0;
};

/// One version of a key, pointing into a buffer of entries.
struct version_ref {
  int64_t time;
  std::string_view row;
};

class temporal_join_operator final : public operator_base {
 public:
  temporal_join_operator(temporal_join_spec spec, std::vector<stream_info> outputs)
      : spec_(std::move(spec)), outputs_(std::move(outputs)) {}

  const temporal_join_stats& stats() const { return stats_; }

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    state_ = ctx.state;
    timers_ = ctx.timers;
    auto left = state_->declare("temporal_join.left", state_backend::kind::value);
    if (!left) return left.err();
    left_id_ = *left;
    auto right = state_->declare("temporal_join.right", state_backend::kind::value);
    if (!right) return right.err();
    right_id_ = *right;
    out_ = output_buffer(outputs_[0].schema, 0, ctx.batch_size);
    late_ = output_buffer(outputs_[1].schema, 1, ctx.batch_size);
    return {};
  }

  void process(size_t port, const record_batch& in, output& out) override {
    if (port == 0) {
      process_left(in, out);
    } else {
      process_right(in);
    }
  }

  void on_timer(const timer& t, output& out) override {
    if (t.ns == emit_timer) {
      // The key's buffered left rows at t.time, in arrival order.
      if (!state_->get(left_id_, t.time, left_rows_)) return;
      state_->erase(left_id_, t.time);
      load_versions();
      const version_ref* v = version_at(t.time);
      const uint64_t key_hash = hash_encoded_key(t.key);
      bool ok = join::for_each_entry(left_rows_, [&](int64_t time, std::string_view row) {
        emit(
            time, key_hash, v,
            [&](column* const* cols) {
              bool decoded = spec_.left_codec.decode(row, cols);
              assert(decoded && "buffered rows are written by row_codec::encode()");
              (void)decoded;
            },
            out);
      });
      assert(ok && "buffers are written by append_entry()");
      (void)ok;
      return;
    }
    load_versions();
    if (prune_versions(saturating_sub(t.time, spec_.lateness))) store_versions();
  }

  void on_watermark(int64_t wm, output& out) override { out_.flush(out); }

  status close(output& out) override {
    out_.flush(out);
    late_.flush(out);
    return {};
  }

 private:
  void process_left(const record_batch& in, output& out) {
    const int64_t wm = ctx_->watermark;
    for (size_t r = 0; r < in.num_rows(); ++r) {
      const int64_t t = in.event_time[r];
      if (saturating_add(t, spec_.lateness) <= wm) {
        late_.append_row(in, r, out);
        ++ctx_->late_records;
        continue;
      }
      key_.clear();
      encode_key(in, spec_.left_keys, r, key_);
      state_->set_current_key(key_group_of(in.key_hash[r], ctx_->max_parallelism), key_);
      if (t <= wm) {
        // Within the allowed lateness: the versions up to t that are not late are here; join now.
        load_versions();
        emit(
            t, in.key_hash[r], version_at(t),
            [&](column* const* cols) {
              for (size_t c = 0; c < spec_.left_width; ++c) cols[c]->push_from(in.columns[c], r);
            },
            out);
        continue;
      }
      if (!state_->get(left_id_, t, left_rows_)) left_rows_.clear();
      row_.clear();
      spec_.left_codec.encode(in, r, row_);
      join::append_entry(left_rows_, t, row_);
      state_->put(left_id_, t, left_rows_);
      timers_->register_event_timer(t, emit_timer);
    }
    out_.flush(out);
    late_.flush(out);
  }

  void process_right(const record_batch& in) {
    const int64_t wm = ctx_->watermark;
    for (size_t r = 0; r < in.num_rows(); ++r) {
      if (join::has_null_key(in, spec_.right_keys, r)) continue;
      const int64_t t = in.event_time[r];
      key_.clear();
      encode_key(in, spec_.right_keys, r, key_);
      state_->set_current_key(key_group_of(in.key_hash[r], ctx_->max_parallelism), key_);
      row_.clear();
      spec_.right_codec.encode(in, r, row_);
      load_versions();
      // Every timer up to W has fired, so W - A is a safe floor now.
      const int64_t floor = saturating_sub(wm, spec_.lateness);
      if ((versions_.empty() || versions_.back().time < t) && !prunable(floor, t)) {
        // The common case, a newer version and nothing to drop: append in place.
        join::append_entry(versions_buf_, t, row_);
        state_->put(right_id_, 0, versions_buf_);
      } else {
        // Insert in time order; a version with the same time is replaced.
        auto pos = std::lower_bound(versions_.begin(), versions_.end(), t,
                                    [](const version_ref& v, int64_t x) { return v.time < x; });
        if (pos != versions_.end() && pos->time == t) {
          pos->row = row_;
        } else {
          versions_.insert(pos, version_ref{t, row_});
        }
        prune_versions(floor);
        store_versions();
      }
      // Later clean-ups (for keys that get no more right rows): when this version supersedes
      // older ones, and when it expires; at the end of their release periods, so that a key
      // has one pending clean-up per period.
      const int64_t superseding = saturating_add(t, spec_.lateness);
      if (superseding > wm) {
        timers_->register_event_timer(join::release_period_end(superseding), cleanup_timer);
      }
      if (spec_.max_age) {
        const int64_t expiry = saturating_add(superseding, *spec_.max_age);
        if (expiry > wm) {
          timers_->register_event_timer(join::release_period_end(expiry), cleanup_timer);
        }
      }
    }
  }

  /// Reads the current key's versions into versions_ (pointing into versions_buf_).
  void load_versions() {
    versions_.clear();
    if (!state_->get(right_id_, 0, versions_buf_)) {
      versions_buf_.clear();
      return;
    }
    bool ok = join::for_each_entry(versions_buf_, [&](int64_t time, std::string_view row) {
      versions_.push_back(version_ref{time, row});
    });
    assert(ok && "versions are written by append_entry()");
    (void)ok;
  }

  /// Writes versions_ back as the current key's versions (erases them if none).
  void store_versions() {
    if (versions_.empty()) {
      state_->erase(right_id_, 0);
      return;
    }
    scratch_.clear();
    for (const version_ref& v : versions_) join::append_entry(scratch_, v.time, v.row);
    state_->put(right_id_, 0, scratch_);
  }

  /// Drops from versions_ the versions older than the newest one at or before `floor`, and that
  /// one too if it is older than max_age at `floor`. Only left rows later than `floor` may still
  /// be joined. Returns whether anything was dropped.
  bool prune_versions(int64_t floor) {
    auto newest = std::upper_bound(versions_.begin(), versions_.end(), floor,
                                   [](int64_t x, const version_ref& v) { return x < v.time; });
    if (newest == versions_.begin()) return false;
    --newest;
    if (spec_.max_age && saturating_sub(floor, newest->time) >= *spec_.max_age) ++newest;
    if (newest == versions_.begin()) return false;
    versions_.erase(versions_.begin(), newest);
    return true;
  }

  /// Whether prune_versions(floor) would drop anything once a newest version at time t is
  /// appended to versions_.
  bool prunable(int64_t floor, int64_t t) const {
    if (versions_.empty())
      return spec_.max_age && t <= floor && saturating_sub(floor, t) >= *spec_.max_age;
    if (versions_.size() >= 2 && versions_[1].time <= floor) return true;
    if (t <= floor) return true;  // t supersedes every stored version.
    return spec_.max_age && versions_[0].time <= floor &&
           saturating_sub(floor, versions_[0].time) >= *spec_.max_age;
  }

  /// The version of versions_ that a left row at time t joins, or nullptr.
  const version_ref* version_at(int64_t t) const {
    auto it = std::upper_bound(versions_.begin(), versions_.end(), t,
                               [](int64_t x, const version_ref& v) { return x < v.time; });
    if (it == versions_.begin()) return nullptr;
    --it;
    if (spec_.max_age && saturating_sub(t, it->time) > *spec_.max_age) return nullptr;
    return &*it;
  }

  /// Emits a left row at time t (whose fields push_left pushes) joined with version v.
  template <class PushLeft>
  void emit(int64_t t, uint64_t key_hash, const version_ref* v, PushLeft&& push_left, output& out) {
    if (v == nullptr && !spec_.left_outer) {
      ++stats_.unmatched_left_rows;
      ++ctx_->dropped_records;
      return;
    }
    push_left(out_.cols(0));
    if (v != nullptr) {
      bool decoded = spec_.right_codec.decode(v->row, out_.cols(spec_.left_width));
      assert(decoded && "versions are written by row_codec::encode()");
      (void)decoded;
    } else {
      for (size_t c = 0; c < spec_.right_codec.num_columns(); ++c) {
        out_.col(spec_.left_width + c).push_null();
      }
    }
    out_.end_row(t, key_hash, out);
  }

  temporal_join_spec spec_;
  std::vector<stream_info> outputs_;
  operator_context* ctx_ = nullptr;
  state_backend* state_ = nullptr;
  timer_service* timers_ = nullptr;
  state_backend::state_id left_id_ = 0;
  state_backend::state_id right_id_ = 0;
  output_buffer out_;
  output_buffer late_;
  temporal_join_stats stats_;

  // Reused per row: no allocation per record once they have grown.
  std::string key_;
  std::string row_;
  std::string left_rows_;     ///< Buffered left rows of one (key, time).
  std::string versions_buf_;  ///< The current key's versions as stored.
  std::string scratch_;       ///< The versions being written back.
  std::vector<version_ref> versions_;
};

class temporal_join_plan final : public operator_plan {
 public:
  explicit temporal_join_plan(temporal_join_spec spec) : spec_(std::move(spec)) {}

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<temporal_join_operator>(spec_, outputs);
  }

 private:
  temporal_join_spec spec_;
};

class temporal_join_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader cfg(*ctx.config);
    auto mode = cfg.string_or("mode", "inner");
    if (!mode) return mode.err();
    if (*mode != "inner" && *mode != "left") {
      return config_reader::key_error("mode",
                                      "expected \"inner\" or \"left\", got \"" + *mode + "\"");
    }
    std::optional<int64_t> max_age;
    if (cfg.get("max_age") != nullptr) {
      auto v = cfg.required_duration_us("max_age");
      if (!v) return v.err();
      max_age = *v;
    }
    auto lateness = cfg.duration_us_or("allowed_lateness", ctx.allowed_lateness_us);
    if (!lateness) return lateness.err();
    auto prefix = cfg.string_or("right_prefix", "right_");
    if (!prefix) return prefix.err();
    VIGIL_TRY(cfg.finish());

    if (ctx.inputs.size() != 2) {
      return make_error(errc::invalid_graph, "temporal_join takes inputs 'left' and 'right'");
    }
    const stream_info& left = ctx.inputs[0];
    const stream_info& right = ctx.inputs[1];
    VIGIL_TRY(join::check_join_keys(left, right));

    std::vector<int> right_columns;
    for (size_t i = 0; i < right.schema->size(); ++i) {
      int c = static_cast<int>(i);
      if (std::find(right.key_fields.begin(), right.key_fields.end(), c) ==
          right.key_fields.end()) {
        right_columns.push_back(c);
      }
    }
    bool left_outer = *mode == "left";
    auto fields =
        join::joined_fields(*left.schema, *right.schema, right_columns, *prefix, left_outer);
    if (!fields) return fields.err();

    temporal_join_spec spec;
    spec.left_outer = left_outer;
    spec.max_age = max_age;
    spec.lateness = *lateness;
    spec.left_keys = left.key_fields;
    spec.right_keys = right.key_fields;
    spec.left_codec = row_codec::all(*left.schema);
    spec.right_codec = row_codec(*right.schema, std::move(right_columns));
    spec.left_width = left.schema->size();
    auto p = std::make_shared<temporal_join_plan>(std::move(spec));
    p->outputs.push_back(stream_info{make_schema(std::move(*fields)), left.key_fields});
    p->outputs.push_back(left);
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "temporal_join",
      .input_ports = {"left", "right"},
      .output_ports = {"out", "late"},
      .keyed = true,
      .stateful = true,
      .summary = "Joins each row with the version of a keyed table current at its event time.",
  };
};

}  // namespace

std::unique_ptr<operator_factory> make_temporal_join_factory() {
  return std::make_unique<temporal_join_factory>();
}

const temporal_join_stats* temporal_join_stats_of(const operator_base& op) {
  auto* tj = dynamic_cast<const temporal_join_operator*>(&op);
  return tj == nullptr ? nullptr : &tj->stats();
}

}  // namespace vigil
