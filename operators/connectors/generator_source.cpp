#include "operators/connectors/generator_source.hpp"

#include <charconv>
#include <cstring>
#include <optional>

#include "operators/connectors/json_format.hpp"
#include "operators/connectors/token_bucket.hpp"

namespace vigil {

namespace {

constexpr uint64_t golden_gamma = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t value_salt = 0xD1B54A32D192ED03ULL;
constexpr uint64_t jitter_salt = 0x8CB92BA72F3D8DD7ULL;
/// A rate-limited subtask may emit this much of a second's worth of records at once.
constexpr double burst_seconds = 0.05;
/// 2026-01-01T00:00:00Z.
constexpr int64_t default_start_us = 1767225600LL * 1'000'000;

struct generator_params {
  int64_t count = 0;
  int64_t keys = 100;
  bool string_keys = false;
  uint64_t seed = 42;
  double rate = 0;
  int64_t interval_us = 1000;
  int64_t start_us = default_start_us;
  int64_t out_of_orderness_us = 0;
  int64_t pause_after = 0;
  int64_t pause_for_us = 0;
  schema_ptr schema;
};

/// Writes "k" and `key` zero-padded to at least 6 digits into buf (24 bytes); returns the length.
size_t format_string_key(char* buf, uint64_t key) {
  char digits[20];
  const auto res = std::to_chars(digits, digits + sizeof digits, key);
  const auto n = static_cast<size_t>(res.ptr - digits);
  buf[0] = 'k';
  size_t len = 1;
  for (size_t i = n; i < 6; ++i) buf[len++] = '0';
  for (size_t i = 0; i < n; ++i) buf[len++] = digits[i];
  return len;
}

class generator_source final : public operator_base {
 public:
  explicit generator_source(const generator_params& params) : params_(params) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    next_seq_ = ctx.subtask_index;
    stride_ = ctx.parallelism;
    builder_ = batch_builder(params_.schema, ctx.batch_size);
    if (params_.rate > 0) {
      const double per_subtask = params_.rate / static_cast<double>(ctx.parallelism);
      bucket_.emplace(per_subtask, per_subtask * burst_seconds);
    }
    return {};
  }

  poll_result poll(output& out) override {
    if (exhausted()) return {poll_result::state::finished, 0, max_watermark};
    const bool pause_pending = params_.pause_after > 0 && !pause_done_;
    if (pause_pending && emitted_ >= static_cast<uint64_t>(params_.pause_after)) {
      const int64_t now = operator_context::now_us();
      if (!pause_until_us_) pause_until_us_ = now + params_.pause_for_us;
      if (now < *pause_until_us_) {
        return {poll_result::state::no_data, *pause_until_us_ - now, watermark_};
      }
      pause_done_ = true;
    }

    uint64_t n = std::max<size_t>(1, ctx_->batch_size);
    if (params_.count > 0) {
      const auto count = static_cast<uint64_t>(params_.count);
      n = std::min(n, (count - next_seq_ + stride_ - 1) / stride_);
    }
    if (params_.pause_after > 0 && !pause_done_) {
      n = std::min(n, static_cast<uint64_t>(params_.pause_after) - emitted_);
    }
    if (bucket_) {
      const int64_t now = operator_context::now_us();
      n = bucket_->take(n, now);
      if (n == 0) return {poll_result::state::throttled, bucket_->wait_us(now), watermark_};
    }

    generate(n);
    out.emit(0, builder_.finish());
    if (exhausted()) return {poll_result::state::finished, 0, max_watermark};
    return {poll_result::state::more, 0, watermark_};
  }

  /// The position: next sequence number, records emitted, watermark (3 x int64, little-endian).
  std::string snapshot_state(int64_t) override {
    std::string out(3 * sizeof(int64_t), '\0');
    const int64_t fields[3] = {static_cast<int64_t>(next_seq_), static_cast<int64_t>(emitted_),
                               watermark_};
    std::memcpy(out.data(), fields, sizeof fields);
    return out;
  }

  /// {"next_seq": the next sequence number, "emitted": records emitted so far}.
  std::string position_json() const override {
    return "{\"next_seq\":" + std::to_string(next_seq_) +
           ",\"emitted\":" + std::to_string(emitted_) + "}";
  }

  status restore_state(std::string_view bytes) override {
    int64_t fields[3];
    if (ctx_->restored_parallelism != 0 && ctx_->restored_parallelism != ctx_->parallelism) {
      return make_error(errc::state_error,
                        "generator: its records are split by subtask, so it cannot change "
                        "parallelism when restored (checkpoint " +
                            std::to_string(ctx_->restored_parallelism) + ", graph " +
                            std::to_string(ctx_->parallelism) + ")");
    }
    if (bytes.size() != sizeof fields) {
      return make_error(
          errc::state_error,
          "generator: snapshot of " + std::to_string(bytes.size()) + " bytes, expected 24");
    }
    std::memcpy(fields, bytes.data(), sizeof fields);
    if (fields[0] < 0 || fields[1] < 0 ||
        static_cast<uint64_t>(fields[0]) % stride_ != ctx_->subtask_index % stride_) {
      return make_error(errc::state_error,
                        "generator: the snapshot belongs to another subtask or parallelism");
    }
    next_seq_ = static_cast<uint64_t>(fields[0]);
    emitted_ = static_cast<uint64_t>(fields[1]);
    watermark_ = fields[2];
    return {};
  }

 private:
  bool exhausted() const {
    return params_.count > 0 && next_seq_ >= static_cast<uint64_t>(params_.count);
  }

  void generate(uint64_t n) {
    column& key_col = builder_.col(0);
    column& seq_col = builder_.col(1);
    column& value_col = builder_.col(2);
    column& ts_col = builder_.col(3);
    const auto keys = static_cast<uint64_t>(params_.keys);
    int64_t base = 0;
    char key_buf[24];
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = next_seq_;
      const generated_values g =
          generate_values(params_.seed, seq, keys, params_.out_of_orderness_us);
      if (params_.string_keys) {
        key_col.push_string({key_buf, format_string_key(key_buf, g.key)});
      } else {
        key_col.push_int64(static_cast<int64_t>(g.key));
      }
      seq_col.push_int64(static_cast<int64_t>(seq));
      value_col.push_float64(g.value);
      base = params_.start_us + static_cast<int64_t>(seq) * params_.interval_us;
      const int64_t ts = base - g.jitter_us;
      ts_col.push_int64(ts);
      builder_.end_row(ts);
      next_seq_ += stride_;
    }
    emitted_ += n;
    watermark_ = base - params_.out_of_orderness_us;
  }

  const generator_params params_;
  operator_context* ctx_ = nullptr;
  batch_builder builder_;
  uint64_t next_seq_ = 0;
  uint64_t stride_ = 1;
  uint64_t emitted_ = 0;
  int64_t watermark_ = min_watermark;
  std::optional<token_bucket> bucket_;
  std::optional<int64_t> pause_until_us_;
  bool pause_done_ = false;
};

class generator_plan final : public operator_plan {
 public:
  generator_params params;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<generator_source>(params);
  }
};

result<int64_t> read_start_time(config_reader& r) {
  const config_value* v = r.get("start_time");
  if (v == nullptr) return default_start_us;
  if (v->k == config_value::kind::integer) return v->i;
  if (v->k == config_value::kind::string) {
    if (auto us = parse_timestamp_iso(v->s)) return *us;
    return config_reader::key_error(
        "start_time",
        "invalid timestamp \"" + v->s + "\" (expected e.g. \"2026-01-01T00:00:00Z\")");
  }
  return config_reader::key_error(
      "start_time",
      std::string("expected an ISO-8601 string or integer µs, got ") + to_string(v->k));
}

class generator_factory final : public operator_factory {
 public:
  generator_factory() {
    traits_.name = "generator";
    traits_.output_ports = {"out"};
    traits_.summary =
        "Deterministic synthetic records (key, seq, value, ts) for tests and benchmarks";
  }

  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<generator_plan>();
    generator_params& g = p->params;

    auto count = r.int_or("count", 0);
    if (!count) return count.err();
    if (*count < 0) return config_reader::key_error("count", "must not be negative");
    g.count = *count;

    auto keys = r.int_or("keys", 100);
    if (!keys) return keys.err();
    if (*keys < 1) return config_reader::key_error("keys", "must be at least 1");
    g.keys = *keys;

    auto key_type = r.string_or("key_type", "int64");
    if (!key_type) return key_type.err();
    if (*key_type != "int64" && *key_type != "string") {
      return config_reader::key_error(
          "key_type", "expected \"int64\" or \"string\", got \"" + *key_type + "\"");
    }
    g.string_keys = *key_type == "string";

    auto seed = r.int_or("seed", 42);
    if (!seed) return seed.err();
    g.seed = static_cast<uint64_t>(*seed);

    auto rate = r.double_or("rate", 0);
    if (!rate) return rate.err();
    if (!(*rate >= 0)) return config_reader::key_error("rate", "must not be negative");
    g.rate = *rate;

    auto interval_us = r.duration_us_or("interval", 1000);
    if (!interval_us) return interval_us.err();
    if (*interval_us <= 0) {
      return config_reader::key_error("interval", "must be positive (event time must advance)");
    }
    g.interval_us = *interval_us;

    auto start = read_start_time(r);
    if (!start) return start.err();
    g.start_us = *start;

    auto ooo = r.duration_us_or("out_of_orderness", 0);
    if (!ooo) return ooo.err();
    g.out_of_orderness_us = *ooo;

    auto pause_after = r.int_or("pause_after", 0);
    if (!pause_after) return pause_after.err();
    if (*pause_after < 0) return config_reader::key_error("pause_after", "must not be negative");
    g.pause_after = *pause_after;
    const bool has_pause_for = r.get("pause_for") != nullptr;
    auto pause_for = r.duration_us_or("pause_for", 0);
    if (!pause_for) return pause_for.err();
    if (g.pause_after > 0 && !has_pause_for) {
      return config_reader::key_error("pause_for", "required when pause_after is set");
    }
    if (g.pause_after == 0 && has_pause_for) {
      return config_reader::key_error("pause_for", "needs pause_after (a record count)");
    }
    g.pause_for_us = *pause_for;

    if (auto st = r.finish(); !st) return st.err();

    if (int64_t earliest = 0;
        __builtin_sub_overflow(g.start_us, g.out_of_orderness_us, &earliest) ||
        !event_time_in_range(earliest)) {
      return config_reader::key_error("start_time",
                                      "start_time - out_of_orderness is out of the event-time "
                                      "range (±2^62 µs)");
    }
    if (g.count > 0) {
      int64_t span = 0;
      int64_t last = 0;
      if (__builtin_mul_overflow(g.count - 1, g.interval_us, &span) ||
          __builtin_add_overflow(g.start_us, span, &last) || !event_time_in_range(last)) {
        return config_reader::key_error("count", "count * interval overflows the timestamp range");
      }
    }

    g.schema = make_schema({
        {"key", g.string_keys ? type_id::string : type_id::int64, false},
        {"seq", type_id::int64, false},
        {"value", type_id::float64, false},
        {"ts", type_id::timestamp, false},
    });
    p->outputs.push_back(stream_info{g.schema, {}});
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_;
};

}  // namespace

generated_values generate_values(uint64_t seed, uint64_t seq, uint64_t keys,
                                 int64_t out_of_orderness_us) {
  const uint64_t h = splitmix64(seed ^ (seq * golden_gamma));
  generated_values g;
  g.key = h % keys;
  g.value = static_cast<double>(splitmix64(h ^ value_salt) % 100000) / 1000.0;
  if (out_of_orderness_us > 0) {
    g.jitter_us = static_cast<int64_t>(splitmix64(h ^ jitter_salt) %
                                       (static_cast<uint64_t>(out_of_orderness_us) + 1));
  }
  return g;
}

std::unique_ptr<operator_factory> make_generator_factory() {
  return std::make_unique<generator_factory>();
}

}  // namespace vigil
