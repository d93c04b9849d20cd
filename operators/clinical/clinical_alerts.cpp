#include "operators/clinical/clinical_alerts.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdio>
#include <cstring>

#include "common/int_math.hpp"
#include "metrics/registry.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "operators/connectors/json_format.hpp"
#include "runtime/timer_service.hpp"

namespace vigil::clinical {
namespace {

constexpr int64_t us_per_minute = 60'000'000;

enum class family : uint8_t { news2, sepsis_qsofa, sepsis_sirs_lactate };
constexpr size_t family_count = 3;

/// Timer namespaces: 0 applies buffered score records, 1 + family resolves, 10 cleans up.
constexpr int64_t apply_ns = 0;
constexpr int64_t resolve_ns = 1;
constexpr int64_t cleanup_ns = 10;

constexpr std::string_view rule_names[] = {"news2_urgent", "news2_emergency", "sepsis_qsofa",
                                           "sepsis_sirs_lactate"};

struct alerts_settings {
  int patient = 0;
  int news2 = 0;
  int news2_red = 0;
  int qsofa = 0;
  int sirs = 0;
  int lactate = 0;
  int inputs = -1;  ///< Optional.
  bool news2_urgent_on = true;
  bool news2_emergency_on = true;
  bool qsofa_on = true;
  bool sirs_lactate_on = true;
  int64_t news2_urgent = 5;
  int64_t news2_emergency = 7;
  bool news2_red_urgent = true;
  int64_t qsofa_threshold = 2;
  int64_t sirs_threshold = 2;
  double lactate_threshold = 2.0;
  int64_t refractory_us = 60 * us_per_minute;
  int64_t resolve_after_us = 120 * us_per_minute;
  schema_ptr in_schema;
  schema_ptr out_schema;
};

/// One buffered score record.
struct score_record {
  int64_t news2 = 0;
  bool red = false;
  int64_t qsofa = 0;
  int64_t sirs = 0;
  bool has_lactate = false;
  double lactate = 0;
  std::string inputs;

  void encode(std::string& out) const {
    out.clear();
    put_i64_ordered(out, news2);
    out.push_back(red ? 1 : 0);
    put_i64_ordered(out, qsofa);
    put_i64_ordered(out, sirs);
    out.push_back(has_lactate ? 1 : 0);
    char d[8];
    std::memcpy(d, &lactate, 8);
    out.append(d, 8);
    out.append(inputs);
  }

  bool decode(std::string_view in) {
    if (in.size() < 34) return false;
    news2 = get_i64_ordered(in.data());
    red = in[8] != 0;
    qsofa = get_i64_ordered(in.data() + 9);
    sirs = get_i64_ordered(in.data() + 17);
    has_lactate = in[25] != 0;
    std::memcpy(&lactate, in.data() + 26, 8);
    inputs.assign(in.substr(34));
    return true;
  }
};

/// The episode of one family.
struct episode {
  bool open = false;
  uint8_t level = 0;
  int64_t last_page = min_watermark;    ///< Time of the last open or escalate.
  int64_t below_since = min_watermark;  ///< Since when the level is 0 in an open episode.
  int64_t last_score = 0;
};

struct episodes {
  std::array<episode, family_count> f{};

  static constexpr size_t bytes_per_family = 26;

  void encode(std::string& out) const {
    out.clear();
    for (const episode& e : f) {
      out.push_back(e.open ? 1 : 0);
      out.push_back(static_cast<char>(e.level));
      put_i64_ordered(out, e.last_page);
      put_i64_ordered(out, e.below_since);
      put_i64_ordered(out, e.last_score);
    }
  }

  bool decode(std::string_view in) {
    if (in.size() != family_count * bytes_per_family) return false;
    for (size_t i = 0; i < family_count; ++i) {
      const char* p = in.data() + i * bytes_per_family;
      f[i].open = p[0] != 0;
      f[i].level = static_cast<uint8_t>(p[1]);
      f[i].last_page = get_i64_ordered(p + 2);
      f[i].below_since = get_i64_ordered(p + 10);
      f[i].last_score = get_i64_ordered(p + 18);
    }
    return true;
  }
};

schema_ptr alert_schema() {
  return make_schema({{"patient", type_id::string, false},
                      {"rule", type_id::string, false},
                      {"level", type_id::int64, false},
                      {"action", type_id::string, false},
                      {"event_time", type_id::timestamp, false},
                      {"score", type_id::int64, false},
                      {"reason", type_id::string, false}});
}

class alerts_operator final : public operator_base {
 public:
  explicit alerts_operator(std::shared_ptr<const alerts_settings> s) : s_(std::move(s)) {}

  status open(operator_context& ctx) override {
    if (ctx.state == nullptr || ctx.timers == nullptr) {
      return make_error(errc::internal, "clinical_alerts opened without state or timers");
    }
    ctx_ = &ctx;
    auto pending =
        ctx.state->declare("clinical_alerts_pending_by_time", state_backend::kind::value);
    if (!pending) return pending.err();
    pending_id_ = *pending;
    auto ep = ctx.state->declare("clinical_alerts_episodes", state_backend::kind::value);
    if (!ep) return ep.err();
    episodes_id_ = *ep;
    out_ = batch_builder(s_->out_schema, ctx.batch_size);
    late_ = batch_builder(s_->in_schema, ctx.batch_size);
    return {};
  }

  void process(size_t, const record_batch& batch, output& out) override {
    state_backend& state = *ctx_->state;
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      const int64_t t = batch.event_time[r];
      if (t <= ctx_->watermark) {
        late_.append_row(batch, r);
        ++ctx_->late_records;
        if (late_.size() >= ctx_->batch_size) out.emit(1, late_.finish());
        continue;
      }
      const auto int_at = [&](int field) {
        const column& c = batch.columns[static_cast<size_t>(field)];
        return c.is_null(r) ? 0 : c.ints[r];
      };
      rec_.news2 = int_at(s_->news2);
      const column& red = batch.columns[static_cast<size_t>(s_->news2_red)];
      rec_.red = !red.is_null(r) && red.bools[r] != 0;
      rec_.qsofa = int_at(s_->qsofa);
      rec_.sirs = int_at(s_->sirs);
      const column& lac = batch.columns[static_cast<size_t>(s_->lactate)];
      rec_.has_lactate = !lac.is_null(r);
      rec_.lactate = rec_.has_lactate ? lac.doubles[r] : 0;
      rec_.inputs.clear();
      if (s_->inputs >= 0) {
        const column& in = batch.columns[static_cast<size_t>(s_->inputs)];
        if (!in.is_null(r)) rec_.inputs.assign(in.string_at(r));
      }
      key_.clear();
      encode_key(batch, key_fields_, r, key_);
      const uint64_t hash = batch.keyed() ? batch.key_hash[r] : hash_encoded_key(key_);
      state.set_current_key(key_group_of(hash, ctx_->max_parallelism), key_);
      rec_.encode(value_);
      state.put(pending_id_, t, value_);  // A second record for the same time replaces the first.
      ctx_->timers->register_event_timer(t, apply_ns);
    }
    if (!late_.empty()) out.emit(1, late_.finish());
  }

  void on_timer(const timer& t, output& out) override {
    out_port_ = &out;
    state_backend& state = *ctx_->state;
    if (!(state.get(episodes_id_, 0, value_) && ep_.decode(value_))) ep_ = {};
    if (t.ns == apply_ns) {
      apply(t);
    } else if (t.ns >= resolve_ns && t.ns < resolve_ns + static_cast<int64_t>(family_count)) {
      resolve(t, static_cast<size_t>(t.ns - resolve_ns));
    }
    store(t.time);
  }

  void on_watermark(int64_t, output& out) override { flush(out); }

  status close(output& out) override {
    flush(out);
    return {};
  }

 private:
  /// Applies the score record buffered for t.time. Timers fire in event-time order and a record
  /// at or behind the watermark is late, so every record of an earlier time was applied by that
  /// time's timer.
  void apply(const timer& t) {
    state_backend& state = *ctx_->state;
    if (!state.get(pending_id_, t.time, pending_value_)) return;
    state.erase(pending_id_, t.time);
    if (!applied_.decode(pending_value_)) return;
    const score_record& rec = applied_;
    step(family::news2, news2_level(rec), rec.news2, t.time, rec, t.key);
    step(family::sepsis_qsofa, s_->qsofa_on && rec.qsofa >= s_->qsofa_threshold ? 1 : 0, rec.qsofa,
         t.time, rec, t.key);
    step(family::sepsis_sirs_lactate,
         s_->sirs_lactate_on && rec.sirs >= s_->sirs_threshold && rec.has_lactate &&
                 rec.lactate > s_->lactate_threshold
             ? 1
             : 0,
         rec.sirs, t.time, rec, t.key);
  }

  uint8_t news2_level(const score_record& rec) const {
    if (s_->news2_emergency_on && rec.news2 >= s_->news2_emergency) return 2;
    if (s_->news2_urgent_on &&
        (rec.news2 >= s_->news2_urgent || (s_->news2_red_urgent && rec.red))) {
      return 1;
    }
    return 0;
  }

  /// One family's state machine for a score record at `time` with level `level`.
  void step(family fam, uint8_t level, int64_t score, int64_t time, const score_record& rec,
            std::string_view key) {
    const auto fi = static_cast<size_t>(fam);
    episode& e = ep_.f[fi];
    e.last_score = score;
    if (e.open) {
      if (level > e.level) {
        e.level = level;
        e.last_page = time;
        clear_below(e, fi);
        emit(key, fam, e.level, "escalate", time, score, rec);
      } else if (level >= 1) {
        clear_below(e, fi);
      } else if (e.below_since == min_watermark) {
        e.below_since = time;
        ctx_->timers->register_event_timer(resolve_time(e), resolve_ns + static_cast<int64_t>(fi));
      }
      return;
    }
    if (level == 0) return;
    if (e.last_page != min_watermark && time < saturating_add(e.last_page, s_->refractory_us)) {
      return;  // Refractory: silent.
    }
    e.open = true;
    e.level = level;
    e.last_page = time;
    e.below_since = min_watermark;
    emit(key, fam, level, "open", time, score, rec);
  }

  int64_t resolve_time(const episode& e) const {
    return saturating_add(e.below_since, s_->resolve_after_us);
  }

  void clear_below(episode& e, size_t fi) {
    if (e.below_since == min_watermark) return;
    ctx_->timers->delete_event_timer(resolve_time(e), resolve_ns + static_cast<int64_t>(fi));
    e.below_since = min_watermark;
  }

  void resolve(const timer& t, size_t fi) {
    episode& e = ep_.f[fi];
    if (!e.open || e.below_since == min_watermark || resolve_time(e) != t.time) return;
    reason_.assign("below the threshold since ");
    append_timestamp_iso(reason_, e.below_since);
    push(t.key, static_cast<family>(fi), e.level, "resolve", t.time, e.last_score);
    e.open = false;
    e.level = 0;
    e.below_since = min_watermark;
  }

  /// Stores the episodes, or erases them when nothing is open or refractory at `now`; while
  /// only refractory periods remain, a clean-up timer comes back at their end.
  void store(int64_t now) {
    state_backend& state = *ctx_->state;
    int64_t release = min_watermark;
    bool open = false;
    for (const episode& e : ep_.f) {
      open = open || e.open;
      if (e.last_page != min_watermark) {
        release = std::max(release, saturating_add(e.last_page, s_->refractory_us));
      }
    }
    if (!open && release <= now) {
      state.erase(episodes_id_, 0);
      return;
    }
    ep_.encode(value_);
    state.put(episodes_id_, 0, value_);
    if (!open) ctx_->timers->register_event_timer(release, cleanup_ns);
  }

  void emit(std::string_view key, family fam, uint8_t level, std::string_view action, int64_t time,
            int64_t score, const score_record& rec) {
    char buf[96];
    switch (fam) {
      case family::news2:
        if (level == 2) {
          std::snprintf(buf, sizeof buf, "NEWS2 %lld >= %lld", static_cast<long long>(score),
                        static_cast<long long>(s_->news2_emergency));
        } else if (score >= s_->news2_urgent) {
          std::snprintf(buf, sizeof buf, "NEWS2 %lld >= %lld", static_cast<long long>(score),
                        static_cast<long long>(s_->news2_urgent));
        } else {
          std::snprintf(buf, sizeof buf, "NEWS2 %lld with a single parameter scoring 3",
                        static_cast<long long>(score));
        }
        break;
      case family::sepsis_qsofa:
        std::snprintf(buf, sizeof buf, "qSOFA %lld >= %lld", static_cast<long long>(score),
                      static_cast<long long>(s_->qsofa_threshold));
        break;
      case family::sepsis_sirs_lactate:
        std::snprintf(buf, sizeof buf, "SIRS %lld >= %lld and lactate %g > %g mmol/L",
                      static_cast<long long>(score), static_cast<long long>(s_->sirs_threshold),
                      rec.lactate, s_->lactate_threshold);
        break;
    }
    reason_.assign(buf);
    if (!rec.inputs.empty()) {
      reason_.append("; inputs: ");
      reason_.append(rec.inputs);
    }
    push(key, fam, level, action, time, score);
  }

  void push(std::string_view key, family fam, uint8_t level, std::string_view action, int64_t time,
            int64_t score) {
    column* patient_col = &out_.col(0);
    [[maybe_unused]] const bool ok = decode_key(key, key_types_, &patient_col);
    assert(ok);  // Keys are encode_key() bytes of the input's patient field (a string).
    size_t rule_index = 0;
    switch (fam) {
      case family::news2:
        rule_index = level == 2 ? 1 : 0;
        break;
      case family::sepsis_qsofa:
        rule_index = 2;
        break;
      case family::sepsis_sirs_lactate:
        rule_index = 3;
        break;
    }
    std::string_view rule = rule_names[rule_index];
    if (action != "resolve") count_alert(rule_index, level);
    out_.col(1).push_string(rule);
    out_.col(2).push_int64(level);
    out_.col(3).push_string(action);
    out_.col(4).push_int64(time);
    out_.col(5).push_int64(score);
    out_.col(6).push_string(reason_);
    out_.end_row(time, hash_encoded_key(key));
    if (out_.size() >= ctx_->batch_size) out_port_->emit(0, out_.finish());
  }

  /// vigil_clinical_alerts_total{job, rule, level}: alerts opened or escalated.
  void count_alert(size_t rule_index, uint8_t level) {
    const size_t l = std::min<size_t>(level, max_level);
    auto& counter = alerts_[rule_index][l];
    if (!counter) {  // Once per rule and level: the series is kept while the subtask runs.
      counter = metrics::series(metrics::family().clinical_alerts,
                                {{"job", ctx_->job_name},
                                 {"rule", std::string(rule_names[rule_index])},
                                 {"level", std::to_string(l)}});
    }
    counter->Increment();
  }

  void flush(output& out) {
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!late_.empty()) out.emit(1, late_.finish());
  }

  static constexpr size_t max_level = 3;
  std::array<std::array<metrics::series<prometheus::Counter>, max_level + 1>, std::size(rule_names)>
      alerts_;
  std::shared_ptr<const alerts_settings> s_;
  operator_context* ctx_ = nullptr;
  output* out_port_ = nullptr;  ///< The output of the timer being fired.
  state_backend::state_id pending_id_ = 0;
  state_backend::state_id episodes_id_ = 0;
  const std::vector<type_id> key_types_{type_id::string};
  const std::vector<int> key_fields_{s_->patient};
  batch_builder out_;
  batch_builder late_;
  episodes ep_;
  score_record rec_;      ///< The record process() buffers.
  score_record applied_;  ///< The record apply() applies.
  std::string key_;
  std::string value_;
  std::string pending_value_;
  std::string reason_;
};

class alerts_plan final : public operator_plan {
 public:
  explicit alerts_plan(std::shared_ptr<const alerts_settings> s) : s_(std::move(s)) {}
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<alerts_operator>(s_);
  }

 private:
  std::shared_ptr<const alerts_settings> s_;
};

class alerts_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || !ctx.inputs[0].schema) {
      return make_error(errc::invalid_graph, "clinical_alerts takes exactly one input");
    }
    const stream_info& in = ctx.inputs[0];
    auto s = std::make_shared<alerts_settings>();
    const std::pair<int*, std::pair<std::string_view, type_id>> fields[] = {
        {&s->patient, {"patient", type_id::string}},
        {&s->news2, {"news2", type_id::int64}},
        {&s->news2_red, {"news2_red", type_id::boolean}},
        {&s->qsofa, {"qsofa", type_id::int64}},
        {&s->sirs, {"sirs", type_id::int64}},
        {&s->lactate, {"lactate", type_id::float64}},
    };
    for (const auto& [dst, f] : fields) {
      auto i = require_input_field("clinical_alerts", *in.schema, f.first, f.second);
      if (!i) return i.err();
      *dst = *i;
    }
    if (in.schema->index_of("inputs") >= 0) {
      auto i = require_input_field("clinical_alerts", *in.schema, "inputs", type_id::string);
      if (!i) return i.err();
      s->inputs = *i;
    }
    if (in.key_fields != std::vector<int>{s->patient}) {
      return make_error(errc::invalid_graph,
                        "clinical_alerts needs its input keyed by 'patient': put a key_by with "
                        "key: patient before it (or feed it from clinical_scores)");
    }
    config_reader cfg(*ctx.config);
    auto rules = cfg.string_list_or(
        "rules", std::vector<std::string>(std::begin(rule_names), std::end(rule_names)));
    if (!rules) return rules.err();
    s->news2_urgent_on = s->news2_emergency_on = s->qsofa_on = s->sirs_lactate_on = false;
    for (const std::string& r : *rules) {
      if (r == rule_names[0]) {
        s->news2_urgent_on = true;
      } else if (r == rule_names[1]) {
        s->news2_emergency_on = true;
      } else if (r == rule_names[2]) {
        s->qsofa_on = true;
      } else if (r == rule_names[3]) {
        s->sirs_lactate_on = true;
      } else {
        return config_reader::key_error(
            "rules", "unknown rule '" + r +
                         "' (known: news2_urgent, news2_emergency, sepsis_qsofa, "
                         "sepsis_sirs_lactate)");
      }
    }
    if (rules->empty()) return config_reader::key_error("rules", "must name at least one rule");
    const auto positive_int = [&](std::string_view key, int64_t& dst) -> status {
      auto v = cfg.int_or(key, dst);
      if (!v) return v.err();
      if (*v <= 0) return config_reader::key_error(key, "must be positive");
      dst = *v;
      return {};
    };
    VIGIL_TRY(positive_int("news2_urgent", s->news2_urgent));
    VIGIL_TRY(positive_int("news2_emergency", s->news2_emergency));
    VIGIL_TRY(positive_int("qsofa_threshold", s->qsofa_threshold));
    VIGIL_TRY(positive_int("sirs_threshold", s->sirs_threshold));
    if (s->news2_urgent_on && s->news2_emergency_on && s->news2_emergency <= s->news2_urgent) {
      return config_reader::key_error("news2_emergency", "must be greater than news2_urgent");
    }
    auto red = cfg.bool_or("news2_red_urgent", true);
    if (!red) return red.err();
    s->news2_red_urgent = *red;
    auto lactate = cfg.double_or("lactate_threshold", 2.0);
    if (!lactate) return lactate.err();
    if (!(*lactate >= 0)) return config_reader::key_error("lactate_threshold", "must be >= 0");
    s->lactate_threshold = *lactate;
    auto refractory = cfg.duration_us_or("refractory", s->refractory_us);
    if (!refractory) return refractory.err();
    if (*refractory < 0) return config_reader::key_error("refractory", "must not be negative");
    s->refractory_us = *refractory;
    auto resolve = cfg.duration_us_or("resolve_after", s->resolve_after_us);
    if (!resolve) return resolve.err();
    if (*resolve <= 0) return config_reader::key_error("resolve_after", "must be positive");
    s->resolve_after_us = *resolve;
    VIGIL_TRY(cfg.finish());
    s->in_schema = in.schema;
    s->out_schema = alert_schema();
    auto p = std::make_shared<alerts_plan>(s);
    p->outputs = {stream_info{s->out_schema, {0}}, in};
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "clinical_alerts",
      .input_ports = {"in"},
      .output_ports = {"out", "late"},
      .keyed = true,
      .stateful = true,
      .summary =
          "Alert episodes (open, escalate, refractory, resolve) per patient from "
          "clinical score records.",
  };
};

}  // namespace

void register_clinical_alerts_operator(operator_registry& r) {
  r.add(std::make_unique<alerts_factory>());
}

}  // namespace vigil::clinical
