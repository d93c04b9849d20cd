#include "operators/core/window_operator.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "common/int_math.hpp"
#include "runtime/state_backend.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {

namespace {

constexpr uint32_t no_row = std::numeric_limits<uint32_t>::max();

/// Groups the rows of one batch by (encoded key, namespace), so that every (key, window) touches
/// the state backend once per batch however many of its rows the batch holds. Open addressing
/// over a vector of groups; clear() keeps all memory, so steady-state batches do not allocate.
class group_table {
 public:
  struct group {
    uint64_t key_hash = 0;
    int64_t ns = 0;
    uint32_t key_offset = 0;
    uint32_t key_size = 0;
  };

  /// Empties the table, sized for about `rows` groups.
  void clear(size_t rows) {
    groups_.clear();
    keys_.clear();
    size_t want = 16;
    while (want < rows * 2) want <<= 1;
    if (slots_.size() == want) {
      std::fill(slots_.begin(), slots_.end(), 0);
    } else {
      slots_.assign(want, 0);
    }
  }

  /// The index of group (key, ns), added if new (then `added` is set).
  uint32_t find_or_add(uint64_t key_hash, std::string_view key, int64_t ns, bool& added) {
    if ((groups_.size() + 1) * 2 > slots_.size()) grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = mix(key_hash, ns) & mask;; i = (i + 1) & mask) {
      const uint32_t s = slots_[i];
      if (s == 0) {
        groups_.push_back(
            {key_hash, ns, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size())});
        keys_.append(key);
        slots_[i] = static_cast<uint32_t>(groups_.size());
        added = true;
        return static_cast<uint32_t>(groups_.size() - 1);
      }
      const group& g = groups_[s - 1];
      if (g.key_hash == key_hash && g.ns == ns && key_of(g) == key) {
        added = false;
        return s - 1;
      }
    }
  }

  size_t size() const { return groups_.size(); }
  const group& at(size_t i) const { return groups_[i]; }
  std::string_view key_of(const group& g) const {
    return std::string_view(keys_).substr(g.key_offset, g.key_size);
  }

 private:
  static uint64_t mix(uint64_t h, int64_t ns) {
    uint64_t x = h ^ (static_cast<uint64_t>(ns) * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
  }

  void grow() {
    slots_.assign(slots_.size() * 2, 0);
    const size_t mask = slots_.size() - 1;
    for (size_t g = 0; g < groups_.size(); ++g) {
      size_t i = mix(groups_[g].key_hash, groups_[g].ns) & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = static_cast<uint32_t>(g + 1);
    }
  }

  std::vector<group> groups_;
  std::string keys_;             ///< The encoded keys of all groups, back to back.
  std::vector<uint32_t> slots_;  ///< Group index + 1; 0 = empty.
};

/// What tumbling, sliding and session windows share: state and timer bookkeeping, lateness,
/// and the output and late-record builders.
///
/// Timers: a window [start, end) fires at end - 1 and is cleaned up at
/// end - 1 + allowed_lateness (one timer when the lateness is 0); both carry the window's state
/// namespace. A window is expired once its clean-up time is <= the watermark.
class window_operator : public operator_base {
 public:
  explicit window_operator(std::shared_ptr<const window_settings> s)
      : s_(std::move(s)), aggs_(s_->aggregates), width_(aggs_.size()) {}

  status open(operator_context& ctx) override {
    if (ctx.state == nullptr || ctx.timers == nullptr) {
      return make_error(errc::internal, "window operator opened without state backend or timers");
    }
    ctx_ = &ctx;
    auto acc = ctx.state->declare("window_acc", state_backend::kind::value);
    if (!acc) return acc.err();
    acc_id_ = *acc;
    out_ = batch_builder(s_->output, ctx.batch_size);
    late_ = batch_builder(s_->input.schema, ctx.batch_size);
    key_cols_.resize(s_->key_types.size());
    loaded_.resize(width_);
    return open_state();
  }

  void on_watermark(int64_t wm, output& out) override { flush(out); }

  status close(output& out) override {
    flush(out);
    return {};
  }

 protected:
  /// Declares further states of the subclass.
  virtual status open_state() { return {}; }

  int64_t fire_time(int64_t end) const { return end - 1; }
  int64_t cleanup_time(int64_t end) const {
    return saturating_add(end - 1, s_->allowed_lateness_us);
  }
  bool expired(int64_t end) const { return cleanup_time(end) <= ctx_->watermark; }
  bool fired(int64_t end) const { return fire_time(end) <= ctx_->watermark; }

  /// Registers the timers of a new window of the current key (the fire timer only if not due).
  void register_timers(int64_t end, int64_t ns) {
    if (!fired(end)) ctx_->timers->register_event_timer(fire_time(end), ns);
    if (cleanup_time(end) != fire_time(end)) {
      ctx_->timers->register_event_timer(cleanup_time(end), ns);
    }
  }

  void delete_timers(int64_t end, int64_t ns) {
    ctx_->timers->delete_event_timer(fire_time(end), ns);
    ctx_->timers->delete_event_timer(cleanup_time(end), ns);
  }

  /// Reads a stored window state into `acc`.
  void load(std::string_view value, accumulator* acc) const {
    // The state is written only by encode() of this aggregate list; a mismatch means state of a
    // job with other aggregates. The window then starts afresh instead of reading garbage.
    if (!aggs_.decode(value, acc)) aggs_.reset(acc);
  }

  void store(int64_t ns, const accumulator* acc) {
    value_.clear();
    aggs_.encode(acc, value_);
    ctx_->state->put(acc_id_, ns, value_);
  }

  /// Sends row `row` of `batch` to the "late" port and counts it.
  void divert_late(const record_batch& batch, size_t row, output& out) {
    late_.append_row(batch, row);
    ++ctx_->late_records;
    if (late_.size() >= ctx_->batch_size) out.emit(1, late_.finish());
  }

  /// Adds the result row of window [start, end) of `key` (an encoded key).
  void emit_window(std::string_view key, int64_t start, int64_t end, const accumulator* acc,
                   output& out) {
    const size_t nkeys = key_cols_.size();
    for (size_t i = 0; i < nkeys; ++i) key_cols_[i] = &out_.col(i);
    [[maybe_unused]] const bool ok = decode_key(key, s_->key_types, key_cols_.data());
    assert(ok);  // Keys are encode_key() bytes of input rows with exactly these field types.
    out_.col(nkeys).push_int64(start);
    out_.col(nkeys + 1).push_int64(end);
    aggs_.append_to(acc, out_, nkeys + 2);
    out_.end_row(end - 1, hash_encoded_key(key));
    if (out_.size() >= ctx_->batch_size) out.emit(0, out_.finish());
  }

  void flush(output& out) {
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!late_.empty()) out.emit(1, late_.finish());
  }

  std::shared_ptr<const window_settings> s_;
  const aggregate_set& aggs_;
  const size_t width_;
  operator_context* ctx_ = nullptr;
  state_backend::state_id acc_id_ = 0;
  group_table table_;
  std::string key_;                  ///< Encoded key of the current row.
  std::string value_;                ///< Encoded window state.
  std::vector<accumulator> loaded_;  ///< A window state read from the backend.

 private:
  batch_builder out_;
  batch_builder late_;
  std::vector<column*> key_cols_;
};

/// Tumbling (slide = size) and sliding windows. State: one value per (key, window) with the
/// window end as namespace. A batch is first grouped by (key, window) in table_, so each touched
/// window costs one state read and one write per batch, and timers are registered only when the
/// read misses (a new window). A record goes to every window containing it that has not expired;
/// it is late only if all of them expired.
class fixed_window_operator final : public window_operator {
 public:
  using window_operator::window_operator;

  void process(size_t port, const record_batch& batch, output& out) override;
  void on_timer(const timer& t, output& out) override;

 private:
  /// Start of the last window that contains `t`.
  int64_t last_start(int64_t t) const { return t - floor_mod(t - s_->offset_us, s_->slide_us); }

  std::vector<uint32_t> pair_rows_;  ///< (row, group) pairs of the batch, in row order.
  std::vector<uint32_t> pair_groups_;
  std::vector<accumulator> accs_;  ///< width_ accumulators per group of the batch.
};

void fixed_window_operator::process(size_t port, const record_batch& batch, output& out) {
  const size_t n = batch.num_rows();
  if (n == 0) return;
  const int64_t size = s_->size_us;
  table_.clear(n);
  pair_rows_.clear();
  pair_groups_.clear();
  for (uint32_t r = 0; r < n; ++r) {
    const int64_t t = batch.event_time[r];
    const int64_t newest = last_start(t);
    // Windows containing t end at most at newest + size; if that one expired, all did.
    if (expired(saturating_add(newest, size))) {
      divert_late(batch, r, out);
      continue;
    }
    key_.clear();
    encode_key(batch, s_->input.key_fields, r, key_);
    const uint64_t hash = batch.keyed() ? batch.key_hash[r] : hash_encoded_key(key_);
    for (int64_t start = newest; t - start < size; start -= s_->slide_us) {
      const int64_t end = saturating_add(start, size);
      if (expired(end)) break;  // Earlier windows end earlier.
      bool added = false;
      const uint32_t g = table_.find_or_add(hash, key_, end, added);
      if (added) {
        if (accs_.size() < (g + 1) * width_) accs_.resize((g + 1) * width_);
        aggs_.reset(&accs_[g * width_]);
      }
      pair_rows_.push_back(r);
      pair_groups_.push_back(g);
    }
  }
  aggs_.add(batch, pair_rows_.data(), pair_groups_.data(), pair_rows_.size(), accs_.data());

  state_backend& state = *ctx_->state;
  for (size_t g = 0; g < table_.size(); ++g) {
    const group_table::group& grp = table_.at(g);
    const std::string_view key = table_.key_of(grp);
    const int64_t end = grp.ns;
    state.set_current_key(key_group_of(grp.key_hash, ctx_->max_parallelism), key);
    const accumulator* acc = &accs_[g * width_];
    if (state.get(acc_id_, end, value_)) {
      load(value_, loaded_.data());
      aggs_.merge(loaded_.data(), acc);
      acc = loaded_.data();
    } else {
      register_timers(end, end);
    }
    store(end, acc);
    // A window that already fired and is still within the allowed lateness fires again.
    if (fired(end)) emit_window(key, end - size, end, acc, out);
  }
  flush(out);
}

void fixed_window_operator::on_timer(const timer& t, output& out) {
  const int64_t end = t.ns;
  if (t.time == fire_time(end) && ctx_->state->get(acc_id_, end, value_)) {
    load(value_, loaded_.data());
    emit_window(t.key, end - s_->size_us, end, loaded_.data(), out);
  }
  if (t.time == cleanup_time(end)) ctx_->state->erase(acc_id_, end);
}

/// Session windows with Flink's merging semantics. Per key, a value state (namespace 0) lists the
/// live sessions as (start, end, id) triples; each session's accumulators are a value state with
/// namespace = its id. The id is the event time of the record that created the session; it stays
/// inside the session as the session grows and merges, so ids of live sessions never collide.
/// When sessions merge, the survivor keeps its id and the others' states and timers are removed.
/// Rows of one key in a batch are handled together: one read of the session list, one read and
/// one write per touched session, one write of the list if bounds changed.
///
/// Lateness: a record is late only if it overlaps no live session and its own [t, t + gap) is
/// expired; live sessions are never expired (their clean-up timer has not fired). A record that
/// lands in a session that already fired (within the allowed lateness) makes it fire again at
/// once if the session's end did not move past the watermark, else at its new end.
class session_window_operator final : public window_operator {
 public:
  using window_operator::window_operator;

  void process(size_t port, const record_batch& batch, output& out) override;
  void on_timer(const timer& t, output& out) override;

 protected:
  status open_state() override {
    auto meta = ctx_->state->declare("window_sessions", state_backend::kind::value);
    if (!meta) return meta.err();
    meta_id_ = *meta;
    return {};
  }

 private:
  struct session {
    int64_t start = 0;
    int64_t end = 0;
    int64_t id = 0;
    int64_t stored_start = 0;  ///< Bounds in the state backend (timers exist for stored_end).
    int64_t stored_end = 0;
    bool stored = false;   ///< Exists in the state backend.
    bool loaded = false;   ///< Accumulators are in accs_ at index acc.
    bool dirty = false;    ///< Accumulators changed.
    bool removed = false;  ///< Merged into another session, or cleaned up.
    uint32_t acc = 0;
  };

  void load_sessions();
  void store_sessions();
  accumulator* acc_of(session& s);
  void add_row(const record_batch& batch, uint32_t row, output& out);
  void finish_key(std::string_view key, output& out);

  state_backend::state_id meta_id_ = 0;
  std::vector<session> sessions_;  ///< Sessions of the current key.
  std::vector<accumulator> accs_;  ///< width_ accumulators per loaded session.
  uint32_t accs_used_ = 0;
  std::string meta_;
  std::vector<uint32_t> first_row_;  ///< Per group of the batch: its rows as a linked list.
  std::vector<uint32_t> last_row_;
  std::vector<uint32_t> next_row_;
};

void session_window_operator::load_sessions() {
  sessions_.clear();
  accs_used_ = 0;
  if (!ctx_->state->get(meta_id_, 0, meta_)) return;
  constexpr size_t entry = 3 * sizeof(int64_t);
  // Written only by store_sessions(); a torn size cannot occur short of a corrupt store.
  const size_t count = meta_.size() / entry;
  for (size_t i = 0; i < count; ++i) {
    int64_t v[3];
    std::memcpy(v, meta_.data() + i * entry, entry);
    session s;
    s.start = s.stored_start = v[0];
    s.end = s.stored_end = v[1];
    s.id = v[2];
    s.stored = true;
    sessions_.push_back(s);
  }
}

void session_window_operator::store_sessions() {
  meta_.clear();
  for (const session& s : sessions_) {
    if (s.removed) continue;
    const int64_t v[3] = {s.start, s.end, s.id};
    meta_.append(reinterpret_cast<const char*>(v), sizeof v);
  }
  if (meta_.empty()) {
    ctx_->state->erase(meta_id_, 0);
  } else {
    ctx_->state->put(meta_id_, 0, meta_);
  }
}

accumulator* session_window_operator::acc_of(session& s) {
  if (!s.loaded) {
    s.acc = accs_used_++;
    if (accs_.size() < accs_used_ * width_) accs_.resize(accs_used_ * width_);
    accumulator* acc = &accs_[s.acc * width_];
    if (s.stored && ctx_->state->get(acc_id_, s.id, value_)) {
      load(value_, acc);
    } else {
      aggs_.reset(acc);
    }
    s.loaded = true;
  }
  return &accs_[s.acc * width_];
}

void session_window_operator::add_row(const record_batch& batch, uint32_t row, output& out) {
  const int64_t t = batch.event_time[row];
  const int64_t end = saturating_add(t, s_->gap_us);
  // Sessions that overlap the half-open [t, t + gap) merge with it. Unlike Flink's
  // TimeWindow::intersects, merely touching sessions (records exactly `gap` apart) stay apart: a
  // record behind no watermark (t > watermark) then never meets a session that already fired
  // (end - 1 <= watermark), so without late records the result does not depend on arrival order.
  size_t target = sessions_.size();
  for (size_t i = 0; i < sessions_.size(); ++i) {
    session& s = sessions_[i];
    if (s.removed || s.start >= end || t >= s.end) continue;
    if (target == sessions_.size()) {
      target = i;
      continue;
    }
    session& into = sessions_[target];
    // Load both before taking pointers: loading may grow accs_.
    acc_of(into);
    acc_of(s);
    aggs_.merge(acc_of(into), acc_of(s));
    into.start = std::min(into.start, s.start);
    into.end = std::max(into.end, s.end);
    into.dirty = true;
    s.removed = true;
  }
  if (target == sessions_.size()) {
    // Live sessions are never expired (their clean-up timers have not fired), so only a record
    // that merges with none can be late.
    if (expired(end)) {
      divert_late(batch, row, out);
      return;
    }
    session s;
    s.start = t;
    s.end = end;
    s.id = t;
    sessions_.push_back(s);
  }
  session& s = sessions_[target];
  s.start = std::min(s.start, t);
  s.end = std::max(s.end, end);
  s.dirty = true;
  const uint32_t group = 0;
  aggs_.add(batch, &row, &group, 1, acc_of(s));
}

void session_window_operator::finish_key(std::string_view key, output& out) {
  bool meta_changed = false;
  for (session& s : sessions_) {
    if (s.removed) {
      if (s.stored) {
        ctx_->state->erase(acc_id_, s.id);
        delete_timers(s.stored_end, s.id);
        meta_changed = true;
      }
      continue;
    }
    if (!s.dirty) continue;
    const accumulator* acc = acc_of(s);
    store(s.id, acc);
    if (!s.stored || s.end != s.stored_end) {
      if (s.stored) delete_timers(s.stored_end, s.id);
      register_timers(s.end, s.id);
      meta_changed = true;
    }
    if (s.start != s.stored_start) meta_changed = true;
    // A session that already fired and is still within the allowed lateness fires again.
    if (fired(s.end)) emit_window(key, s.start, s.end, acc, out);
  }
  if (meta_changed) store_sessions();
}

void session_window_operator::process(size_t port, const record_batch& batch, output& out) {
  const size_t n = batch.num_rows();
  if (n == 0) return;
  table_.clear(n);
  first_row_.clear();
  last_row_.clear();
  next_row_.assign(n, no_row);
  for (uint32_t r = 0; r < n; ++r) {
    key_.clear();
    encode_key(batch, s_->input.key_fields, r, key_);
    const uint64_t hash = batch.keyed() ? batch.key_hash[r] : hash_encoded_key(key_);
    bool added = false;
    const uint32_t g = table_.find_or_add(hash, key_, 0, added);
    if (added) {
      first_row_.push_back(r);
      last_row_.push_back(r);
    } else {
      next_row_[last_row_[g]] = r;
      last_row_[g] = r;
    }
  }
  for (size_t g = 0; g < table_.size(); ++g) {
    const group_table::group& grp = table_.at(g);
    const std::string_view key = table_.key_of(grp);
    ctx_->state->set_current_key(key_group_of(grp.key_hash, ctx_->max_parallelism), key);
    load_sessions();
    for (uint32_t r = first_row_[g]; r != no_row; r = next_row_[r]) add_row(batch, r, out);
    finish_key(key, out);
  }
  flush(out);
}

void session_window_operator::on_timer(const timer& t, output& out) {
  load_sessions();
  for (session& s : sessions_) {
    if (s.id != t.ns) continue;
    if (t.time == fire_time(s.end)) emit_window(t.key, s.start, s.end, acc_of(s), out);
    if (t.time == cleanup_time(s.end)) {
      ctx_->state->erase(acc_id_, s.id);
      s.removed = true;
      store_sessions();
    }
    return;
  }
}

}  // namespace

std::unique_ptr<operator_base> make_window_operator(std::shared_ptr<const window_settings> s) {
  if (s->kind == window_kind::session) {
    return std::make_unique<session_window_operator>(std::move(s));
  }
  return std::make_unique<fixed_window_operator>(std::move(s));
}

}  // namespace vigil
