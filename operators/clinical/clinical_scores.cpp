#include "operators/clinical/clinical_scores.hpp"

#include <array>
#include <cassert>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "common/int_math.hpp"
#include "metrics/registry.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "operators/clinical/normalize.hpp"
#include "operators/clinical/scores.hpp"
#include "operators/connectors/json_format.hpp"
#include "runtime/timer_service.hpp"

namespace vigil::clinical {
namespace {

constexpr int64_t us_per_hour = int64_t{3600} * 1'000'000;

/// State slots: one per parameter, then the two flags.
constexpr size_t scale2_slot = parameter_count;
constexpr size_t o2_slot = parameter_count + 1;
constexpr size_t slot_count = parameter_count + 2;

/// Timer namespaces.
constexpr int64_t apply_ns = 0;
constexpr int64_t cleanup_ns = 1;

struct scores_settings {
  int patient = 0;
  int code = 0;
  int value = 0;
  int status = 0;
  int message_id = 0;
  int64_t vitals_validity_us = 4 * us_per_hour;
  int64_t labs_validity_us = 24 * us_per_hour;
  std::string scale2_code;
  std::string o2_code;
  schema_ptr in_schema;
  schema_ptr out_schema;
};

/// Status precedence: a higher one replaces a lower one at the same time; 0 = not scored.
uint8_t precedence(std::string_view status) {
  if (status == "corrected" || status == "amended") return 3;
  if (status == "final") return 2;
  if (status == "preliminary") return 1;
  return 0;
}

/// The buffered observations of one (patient, event time): value state
/// "clinical_scores_pending_by_time" with namespace = the event time holds them as one blob of
/// entries [code length u32 BE][message id length u32 BE][code][message id][status precedence
/// u8][value: 8 bytes, a double], ordered by code, then message id (bytes compared unsigned),
/// with at most one entry per (code, message id).
struct pending_entry {
  std::string_view code;
  std::string_view message_id;
  uint8_t prec = 0;
  double value = 0;
  size_t prec_offset = 0;  ///< Where the precedence byte is in the blob.
  size_t end = 0;          ///< Where the next entry starts.
};

constexpr size_t entry_header_bytes = 8;
constexpr size_t entry_trailer_bytes = 9;

uint32_t get_u32_be(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void put_u32_be(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

/// Reads the entry of `blob` at `pos` into `e`; false when none is there (end or malformed).
bool parse_entry(std::string_view blob, size_t pos, pending_entry& e) {
  if (blob.size() - pos < entry_header_bytes + entry_trailer_bytes) return false;
  const size_t code_len = get_u32_be(blob.data() + pos);
  const size_t id_len = get_u32_be(blob.data() + pos + 4);
  const size_t body = blob.size() - pos - entry_header_bytes - entry_trailer_bytes;
  if (code_len > body || id_len > body - code_len) return false;
  const size_t p = pos + entry_header_bytes;
  e.code = blob.substr(p, code_len);
  e.message_id = blob.substr(p + code_len, id_len);
  e.prec_offset = p + code_len + id_len;
  e.prec = static_cast<uint8_t>(blob[e.prec_offset]);
  std::memcpy(&e.value, blob.data() + e.prec_offset + 1, 8);
  e.end = e.prec_offset + entry_trailer_bytes;
  return true;
}

/// Appends the encoded entry to `out`.
void encode_entry(std::string& out, std::string_view code, std::string_view message_id,
                  uint8_t prec, double value) {
  put_u32_be(out, static_cast<uint32_t>(code.size()));
  put_u32_be(out, static_cast<uint32_t>(message_id.size()));
  out.append(code);
  out.append(message_id);
  out.push_back(static_cast<char>(prec));
  char d[8];
  std::memcpy(d, &value, 8);
  out.append(d, 8);
}

/// What add_pending() did.
enum class add_result : uint8_t { added, replaced, duplicate };

/// Adds an observation to the blob of its time, keeping the order and the duplicate rule: for
/// the same (code, message id), the higher precedence wins, then the greater value. `scratch`
/// is a reusable buffer.
add_result add_pending(std::string& blob, std::string_view code, std::string_view message_id,
                       uint8_t prec, double value, std::string& scratch) {
  pending_entry e;
  size_t pos = 0;
  for (;; pos = e.end) {
    if (!parse_entry(blob, pos, e)) {
      blob.resize(pos);  // Drops a malformed tail, if any (pos is the end when there is none).
      break;
    }
    const int c = e.code.compare(code);
    const int order = c != 0 ? c : e.message_id.compare(message_id);
    if (order > 0) break;
    if (order == 0) {
      if (e.prec > prec || (e.prec == prec && e.value >= value)) return add_result::duplicate;
      blob[e.prec_offset] = static_cast<char>(prec);
      std::memcpy(blob.data() + e.prec_offset + 1, &value, 8);
      return add_result::replaced;
    }
  }
  scratch.clear();
  encode_entry(scratch, code, message_id, prec, value);
  blob.insert(pos, scratch);
  return add_result::added;
}

schema_ptr score_schema() {
  std::vector<field> f = {
      {"patient", type_id::string, false},    {"event_time", type_id::timestamp, false},
      {"news2", type_id::int64, false},       {"news2_scale", type_id::int64, false},
      {"news2_band", type_id::string, false}, {"news2_red", type_id::boolean, false},
      {"qsofa", type_id::int64, false},       {"sirs", type_id::int64, false},
      {"sofa", type_id::int64, false}};
  for (size_t i = 0; i < news2_item_count; ++i) {
    f.push_back(
        {"news2_" + std::string(to_string(static_cast<news2_item>(i))), type_id::int64, false});
  }
  for (size_t i = 0; i < qsofa_item_count; ++i) {
    f.push_back(
        {"qsofa_" + std::string(to_string(static_cast<qsofa_item>(i))), type_id::int64, false});
  }
  for (size_t i = 0; i < sirs_item_count; ++i) {
    f.push_back(
        {"sirs_" + std::string(to_string(static_cast<sirs_item>(i))), type_id::int64, false});
  }
  for (size_t i = 0; i < sofa_item_count; ++i) {
    f.push_back(
        {"sofa_" + std::string(to_string(static_cast<sofa_item>(i))), type_id::int64, false});
  }
  f.push_back({"lactate", type_id::float64, true});
  f.push_back({"missing", type_id::string, false});
  f.push_back({"inputs", type_id::string, false});
  return make_schema(std::move(f));
}

/// The latest value of each slot and when it was observed.
struct latest_values {
  struct slot {
    bool present = false;
    int64_t time = 0;
    double value = 0;
  };
  int64_t newest = min_watermark;  ///< Newest time applied; min_watermark when empty.
  std::array<slot, slot_count> slots{};

  void encode(std::string& out) const {
    out.clear();
    put_i64_ordered(out, newest);
    for (size_t i = 0; i < slot_count; ++i) {
      if (!slots[i].present) continue;
      out.push_back(static_cast<char>(i));
      put_i64_ordered(out, slots[i].time);
      char d[8];
      std::memcpy(d, &slots[i].value, 8);
      out.append(d, 8);
    }
  }

  bool decode(std::string_view in) {
    *this = {};
    if (in.size() < 8 || (in.size() - 8) % 17 != 0) return false;
    newest = get_i64_ordered(in.data());
    for (size_t p = 8; p < in.size(); p += 17) {
      const auto i = static_cast<size_t>(static_cast<unsigned char>(in[p]));
      if (i >= slot_count) return false;
      slots[i].present = true;
      slots[i].time = get_i64_ordered(in.data() + p + 1);
      std::memcpy(&slots[i].value, in.data() + p + 9, 8);
    }
    return true;
  }
};

class scores_operator final : public operator_base {
 public:
  explicit scores_operator(std::shared_ptr<const scores_settings> s) : s_(std::move(s)) {}

  status open(operator_context& ctx) override {
    if (ctx.state == nullptr || ctx.timers == nullptr) {
      return make_error(errc::internal, "clinical_scores opened without state or timers");
    }
    ctx_ = &ctx;
    auto pending =
        ctx.state->declare("clinical_scores_pending_by_time", state_backend::kind::value);
    if (!pending) return pending.err();
    pending_id_ = *pending;
    auto latest = ctx.state->declare("clinical_scores_latest", state_backend::kind::value);
    if (!latest) return latest.err();
    latest_id_ = *latest;
    out_ = batch_builder(s_->out_schema, ctx.batch_size);
    late_ = batch_builder(s_->in_schema, ctx.batch_size);
    max_validity_us_ = std::max(s_->vitals_validity_us, s_->labs_validity_us);
    duplicates_ =
        metrics::series(metrics::family().clinical_duplicates_dropped, {{"job", ctx.job_name}});
    return {};
  }

  void process(size_t, const record_batch& batch, output& out) override {
    state_backend& state = *ctx_->state;
    const column& code_col = batch.columns[static_cast<size_t>(s_->code)];
    const column& value_col = batch.columns[static_cast<size_t>(s_->value)];
    const column& status_col = batch.columns[static_cast<size_t>(s_->status)];
    const column& id_col = batch.columns[static_cast<size_t>(s_->message_id)];
    uint64_t duplicates = 0;
    // Consecutive rows of one patient and time (a measurement's observations arrive together)
    // share one read and one write of their pending blob: the group of group_key_ at group_time.
    bool group_open = false;
    bool group_changed = false;
    bool had_time = false;  // The group's blob was in the state when the group began.
    int64_t group_time = 0;
    const auto close_group = [&] {
      if (group_open && group_changed) {
        state.put(pending_id_, group_time, blob_);
        // A blob and the timer of its time are created together and erased together (apply()).
        if (!had_time) ctx_->timers->register_event_timer(group_time, apply_ns);
      }
      group_open = group_changed = false;
    };
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      const int64_t t = batch.event_time[r];
      if (t <= ctx_->watermark) {
        late_.append_row(batch, r);
        ++ctx_->late_records;
        if (late_.size() >= ctx_->batch_size) out.emit(1, late_.finish());
        continue;
      }
      const uint8_t prec = status_col.is_null(r) ? 0 : precedence(status_col.string_at(r));
      if (prec == 0 || code_col.is_null(r) || value_col.is_null(r) ||
          slot_of(code_col.string_at(r)) < 0) {
        ++ctx_->dropped_records;
        continue;
      }
      key_.clear();
      encode_key(batch, key_fields_, r, key_);
      if (!group_open || t != group_time || key_ != group_key_) {
        close_group();
        const uint64_t hash = batch.keyed() ? batch.key_hash[r] : hash_encoded_key(key_);
        state.set_current_key(key_group_of(hash, ctx_->max_parallelism), key_);
        had_time = state.get(pending_id_, t, blob_);
        if (!had_time) blob_.clear();
        group_key_.swap(key_);
        group_time = t;
        group_open = true;
      }
      // The same observation twice (a duplicate or a correction under the same message id):
      // keep the higher status, then the greater value, so arrival order does not matter.
      const std::string_view id = id_col.is_null(r) ? std::string_view() : id_col.string_at(r);
      if (add_pending(blob_, code_col.string_at(r), id, prec, value_col.doubles[r], value_) ==
          add_result::duplicate) {
        ++duplicates;
        continue;
      }
      group_changed = true;
    }
    close_group();
    if (duplicates != 0) duplicates_->Increment(static_cast<double>(duplicates));
    if (!late_.empty()) out.emit(1, late_.finish());
  }

  void on_timer(const timer& t, output& out) override {
    if (t.ns == cleanup_ns) {
      if (ctx_->state->get(latest_id_, 0, value_) && latest_.decode(value_) &&
          cleanup_time(latest_.newest) == t.time) {
        ctx_->state->erase(latest_id_, 0);
      }
      return;
    }
    apply(t, out);
  }

  void on_watermark(int64_t, output& out) override { flush(out); }

  status close(output& out) override {
    flush(out);
    return {};
  }

 private:
  int64_t cleanup_time(int64_t newest) const {
    return saturating_add(saturating_add(newest, max_validity_us_), 1);
  }

  /// The state slot of `code`, or -1 when the scores do not use it.
  int slot_of(std::string_view code) const {
    if (!s_->scale2_code.empty() && code == s_->scale2_code) return static_cast<int>(scale2_slot);
    if (!s_->o2_code.empty() && code == s_->o2_code) return static_cast<int>(o2_slot);
    const std::optional<parameter> p = parameter_of_code(code);
    if (!p || info(*p).loinc != code) return -1;
    return static_cast<int>(*p);
  }

  /// Applies the observations buffered for t.time and emits their score record. Timers fire in
  /// event-time order and an observation at or behind the watermark is late, so every
  /// observation of an earlier time was applied by that time's timer.
  void apply(const timer& t, output& out) {
    state_backend& state = *ctx_->state;
    if (!state.get(pending_id_, t.time, blob_)) return;
    state.erase(pending_id_, t.time);
    size_t n = 0;
    for (size_t pos = 0;; pos = entries_[n++].end) {
      if (n == entries_.size()) entries_.emplace_back();
      if (!parse_entry(blob_, pos, entries_[n])) break;
    }
    if (n == 0) return;
    if (!(state.get(latest_id_, 0, value_) && latest_.decode(value_))) latest_ = {};
    const int64_t old_newest = latest_.newest;
    // Entries are ordered by (code, message id): pick per code the highest status, ties to the
    // greatest message id (the later entry).
    for (size_t j = 0; j < n;) {
      size_t best = j;
      size_t k = j + 1;
      while (k < n && entries_[k].code == entries_[j].code) {
        if (entries_[k].prec >= entries_[best].prec) best = k;
        ++k;
      }
      const int slot = slot_of(entries_[best].code);
      if (slot >= 0) {
        latest_values::slot& s = latest_.slots[static_cast<size_t>(slot)];
        s.present = true;
        s.time = t.time;
        s.value = entries_[best].value;
      }
      j = k;
    }
    latest_.newest = std::max(latest_.newest, t.time);
    emit(t.key, t.time, out);
    latest_.encode(value_);
    state.put(latest_id_, 0, value_);
    if (latest_.newest != old_newest) {
      if (old_newest != min_watermark) {
        ctx_->timers->delete_event_timer(cleanup_time(old_newest), cleanup_ns);
      }
      ctx_->timers->register_event_timer(cleanup_time(latest_.newest), cleanup_ns);
    }
  }

  bool valid(size_t slot, int64_t at, int64_t validity) const {
    const latest_values::slot& s = latest_.slots[slot];
    return s.present && s.time <= at && at - s.time <= validity;
  }

  void emit(std::string_view key, int64_t at, output& out) {
    score_inputs in;
    for (size_t i = 0; i < parameter_count; ++i) {
      const parameter_info& pi = info(static_cast<parameter>(i));
      const int64_t validity =
          pi.kind == parameter_kind::vital ? s_->vitals_validity_us : s_->labs_validity_us;
      if (valid(i, at, validity)) in.values[i] = latest_.slots[i].value;
    }
    in.hypercapnic = latest_.slots[scale2_slot].present && latest_.slots[scale2_slot].time <= at &&
                     latest_.slots[scale2_slot].value >= 1;
    if (valid(o2_slot, at, s_->vitals_validity_us)) {
      in.supplemental_o2 = latest_.slots[o2_slot].value >= 1;
    }
    const news2_result n2 = news2(in);
    const qsofa_result q = qsofa(in);
    const sirs_result si = sirs(in);
    const sofa_result so = sofa(in);

    column* patient_col = &out_.col(0);
    [[maybe_unused]] const bool ok = decode_key(key, key_types_, &patient_col);
    assert(ok);  // Keys are encode_key() bytes of the input's patient field (a string).
    size_t c = 1;
    out_.col(c++).push_int64(at);
    out_.col(c++).push_int64(n2.total);
    out_.col(c++).push_int64(n2.spo2_scale);
    out_.col(c++).push_string(to_string(n2.band));
    out_.col(c++).push_bool(n2.red);
    out_.col(c++).push_int64(q.total);
    out_.col(c++).push_int64(si.total);
    out_.col(c++).push_int64(so.total);
    for (int p : n2.points) out_.col(c++).push_int64(p);
    for (int p : q.points) out_.col(c++).push_int64(p);
    for (int p : si.points) out_.col(c++).push_int64(p);
    for (int p : so.points) out_.col(c++).push_int64(p);
    if (const auto& l = in[parameter::lactate]) {
      out_.col(c++).push_float64(*l);
    } else {
      out_.col(c++).push_null();
    }
    uint32_t missing = n2.missing | q.missing | si.missing | so.missing;
    if (!in[parameter::lactate]) missing |= bit(parameter::lactate);
    text_.clear();
    append_parameter_names(text_, missing);
    out_.col(c++).push_string(text_);
    text_.clear();
    for (size_t i = 0; i < parameter_count; ++i) {
      if (in.values[i]) append_input(info(static_cast<parameter>(i)).name, i);
    }
    if (in.hypercapnic) append_input("spo2_scale2", scale2_slot);
    if (in.supplemental_o2) append_input("supplemental_o2", o2_slot);
    out_.col(c++).push_string(text_);
    out_.end_row(at, hash_encoded_key(key));
    if (out_.size() >= ctx_->batch_size) out.emit(0, out_.finish());
  }

  /// Appends "name=value@time" to text_.
  void append_input(std::string_view name, size_t slot) {
    if (!text_.empty()) text_.append(", ");
    text_.append(name);
    // "%g" without snprintf's cost: to_chars with general format and precision 6 is defined as
    // printf's "%.6g" in the C locale.
    char buf[32];
    buf[0] = '=';
    const auto r = std::to_chars(buf + 1, buf + sizeof buf - 1, latest_.slots[slot].value,
                                 std::chars_format::general, 6);
    *r.ptr = '@';
    text_.append(buf, r.ptr + 1);
    append_timestamp_iso(text_, latest_.slots[slot].time);
  }

  void flush(output& out) {
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!late_.empty()) out.emit(1, late_.finish());
  }

  std::shared_ptr<const scores_settings> s_;
  operator_context* ctx_ = nullptr;
  /// vigil_clinical_duplicates_dropped_total{job}: the same observation received again.
  metrics::series<prometheus::Counter> duplicates_;
  state_backend::state_id pending_id_ = 0;
  state_backend::state_id latest_id_ = 0;
  int64_t max_validity_us_ = 0;
  const std::vector<type_id> key_types_{type_id::string};
  const std::vector<int> key_fields_{s_->patient};
  batch_builder out_;
  batch_builder late_;
  latest_values latest_;
  std::vector<pending_entry> entries_;  ///< Reused by apply(); views into blob_.
  std::string key_;
  std::string group_key_;  ///< process(): the key of the rows whose blob is in blob_.
  std::string blob_;       ///< The pending blob of one time (see pending_entry).
  std::string value_;
  std::string text_;
};

class scores_plan final : public operator_plan {
 public:
  explicit scores_plan(std::shared_ptr<const scores_settings> s) : s_(std::move(s)) {}
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<scores_operator>(s_);
  }

 private:
  std::shared_ptr<const scores_settings> s_;
};

/// The index of field `name` of type `t` in `in`, or an error naming the field.

class scores_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || !ctx.inputs[0].schema) {
      return make_error(errc::invalid_graph, "clinical_scores takes exactly one input");
    }
    const stream_info& in = ctx.inputs[0];
    auto s = std::make_shared<scores_settings>();
    const std::pair<int*, std::pair<std::string_view, type_id>> fields[] = {
        {&s->patient, {"patient", type_id::string}},
        {&s->code, {"code", type_id::string}},
        {&s->value, {"value", type_id::float64}},
        {&s->status, {"status", type_id::string}},
        {&s->message_id, {"message_id", type_id::string}},
    };
    for (const auto& [dst, f] : fields) {
      auto i = require_input_field("clinical_scores", *in.schema, f.first, f.second);
      if (!i) return i.err();
      *dst = *i;
    }
    if (in.key_fields != std::vector<int>{s->patient}) {
      return make_error(errc::invalid_graph,
                        "clinical_scores needs its input keyed by 'patient': put a key_by "
                        "with key: patient before it");
    }
    config_reader cfg(*ctx.config);
    auto vitals = cfg.duration_us_or("vitals_validity", s->vitals_validity_us);
    if (!vitals) return vitals.err();
    if (*vitals <= 0) return config_reader::key_error("vitals_validity", "must be positive");
    auto labs = cfg.duration_us_or("labs_validity", s->labs_validity_us);
    if (!labs) return labs.err();
    if (*labs <= 0) return config_reader::key_error("labs_validity", "must be positive");
    auto scale2 = cfg.string_or("spo2_scale2_code", "");
    if (!scale2) return scale2.err();
    auto o2 = cfg.string_or("supplemental_o2_code", "");
    if (!o2) return o2.err();
    for (const auto& [k, code] :
         {std::pair<std::string_view, const std::string&>{"spo2_scale2_code", *scale2},
          {"supplemental_o2_code", *o2}}) {
      if (!code.empty() && parameter_of_code(code)) {
        return config_reader::key_error(k, "'" + code + "' is the code of a scored parameter");
      }
    }
    if (!scale2->empty() && *scale2 == *o2) {
      return config_reader::key_error("supplemental_o2_code", "must differ from spo2_scale2_code");
    }
    VIGIL_TRY(cfg.finish());
    s->vitals_validity_us = *vitals;
    s->labs_validity_us = *labs;
    s->scale2_code = *scale2;
    s->o2_code = *o2;
    s->in_schema = in.schema;
    s->out_schema = score_schema();
    auto p = std::make_shared<scores_plan>(s);
    p->outputs = {stream_info{s->out_schema, {0}}, in};
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "clinical_scores",
      .input_ports = {"in"},
      .output_ports = {"out", "late"},
      .keyed = true,
      .stateful = true,
      .summary =
          "Event-time NEWS2, qSOFA, SIRS and SOFA per patient from normalized "
          "observations.",
  };
};

}  // namespace

void register_clinical_scores_operator(operator_registry& r) {
  r.add(std::make_unique<scores_factory>());
}

}  // namespace vigil::clinical
