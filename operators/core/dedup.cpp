#include "operators/core/dedup.hpp"

#include <limits>

#include "common/int_math.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {
namespace {

class dedup_plan final : public operator_plan {
 public:
  explicit dedup_plan(std::shared_ptr<const dedup_operator::settings> s) : s_(std::move(s)) {}

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<dedup_operator>(s_);
  }

 private:
  std::shared_ptr<const dedup_operator::settings> s_;
};

class dedup_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || !ctx.inputs[0].schema) {
      return make_error(errc::invalid_graph, "dedup takes exactly one input");
    }
    const stream_info& in = ctx.inputs[0];
    if (!in.keyed()) {
      return make_error(errc::invalid_graph, "dedup needs a keyed input: put a key_by before it");
    }
    config_reader cfg(*ctx.config);
    auto ttl = cfg.required_duration_us("ttl");
    if (!ttl) return ttl.err();
    if (*ttl <= 0) return config_reader::key_error("ttl", "must be positive");
    auto lateness = cfg.duration_us_or("allowed_lateness", ctx.allowed_lateness_us);
    if (!lateness) return lateness.err();
    VIGIL_TRY(cfg.finish());

    auto s = std::make_shared<dedup_operator::settings>();
    s->key_fields = in.key_fields;
    s->ttl_us = *ttl;
    s->allowed_lateness_us = *lateness;
    s->schema = in.schema;
    auto p = std::make_shared<dedup_plan>(std::move(s));
    p->outputs = {in, in};
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "dedup",
      .input_ports = {"in"},
      .output_ports = {"out", "late"},
      .keyed = true,
      .stateful = true,
      .summary = "Drops records whose key was seen within a time-to-live (event time).",
  };
};

}  // namespace

status dedup_operator::open(operator_context& ctx) {
  if (ctx.state == nullptr || ctx.timers == nullptr) {
    return make_error(errc::internal, "dedup opened without state backend or timers");
  }
  ctx_ = &ctx;
  // Declared first, so that the ids are those of the earlier layout and the same whether or not
  // this subtask was restored from it (rescaling merges require equal state registries).
  auto legacy_id = ctx.state->declare("dedup_first_seen", state_backend::kind::value);
  if (!legacy_id) return legacy_id.err();
  legacy_seen_id_ = *legacy_id;
  // Every value gets its own expiry (put_expiring()); the declared ttl only makes this a TTL
  // state on the event-time clock.
  auto id = ctx.state->declare("dedup_seen", state_backend::kind::value, s_->ttl_us,
                               state_backend::ttl_clock::event_time);
  if (!id) return id.err();
  seen_id_ = *id;
  // Only the earlier layout registered timers: they were restored with its entries.
  legacy_ = ctx.timers->next(timer_service::domain::event_time).has_value();
  duplicates_metric_ =
      metrics::series(metrics::family().clinical_duplicates_dropped, {{"job", ctx.job_name}});
  out_ = batch_builder(s_->schema, ctx.batch_size);
  late_ = batch_builder(s_->schema, ctx.batch_size);
  return {};
}

int64_t dedup_operator::cleanup_time(int64_t first_seen) const {
  return saturating_add(saturating_add(first_seen, s_->ttl_us - 1), s_->allowed_lateness_us);
}

void dedup_operator::process_shared(size_t, const batch_ptr& batch, output& out) {
  run(*batch, &batch, out);
}

void dedup_operator::process(size_t, const record_batch& batch, output& out) {
  run(batch, nullptr, out);
}

void dedup_operator::run(const record_batch& batch, const batch_ptr* shared, output& out) {
  const size_t n = batch.num_rows();
  state_backend& state = *ctx_->state;
  const uint64_t duplicates_before = duplicates_;
  const auto late = [&](size_t r) {
    return saturating_add(batch.event_time[r], s_->allowed_lateness_us) <= ctx_->watermark;
  };
  // First the keys of the rows that are not late, so that the backend reads those it does not
  // hold in one batch (every key is new in the common case: a read of each would go to RocksDB).
  keys_.clear();
  key_ends_.clear();
  key_groups_.clear();
  for (size_t r = 0; r < n; ++r) {
    if (late(r)) continue;
    const size_t begin = keys_.size();
    encode_key(batch, s_->key_fields, r, keys_);
    const uint64_t hash =
        batch.keyed() ? batch.key_hash[r] : hash_encoded_key(std::string_view(keys_).substr(begin));
    key_groups_.push_back(key_group_of(hash, ctx_->max_parallelism));
    key_ends_.push_back(keys_.size());
  }
  refs_.clear();
  for (size_t i = 0, begin = 0; i < key_ends_.size(); begin = key_ends_[i], ++i) {
    refs_.push_back({key_groups_[i], std::string_view(keys_).substr(begin, key_ends_[i] - begin)});
  }
  state.prefetch(seen_id_, 0, refs_);

  // While every row so far is forwarded, rows [0, forwarded) are not copied yet: when the whole
  // batch is forwarded, the batch itself is emitted (the common case: duplicates are rare).
  size_t forwarded = 0;
  bool copying = shared == nullptr || n > ctx_->batch_size;
  const auto start_copying = [&] {
    if (copying) return;
    copying = true;
    for (size_t i = 0; i < forwarded; ++i) out_.append_row(batch, i);
  };
  for (size_t r = 0, next_ref = 0; r < n; ++r) {
    if (late(r)) {
      start_copying();
      late_.append_row(batch, r);
      ++ctx_->late_records;
      if (late_.size() >= ctx_->batch_size) out.emit(1, late_.finish());
      continue;
    }
    const int64_t t = batch.event_time[r];
    const state_backend::key_ref& key = refs_[next_ref++];
    state.set_current_key(key.key_group, key.key);
    // "dedup_seen" hides t0 from its cleanup time on, as the earlier layout's timer erased it.
    const bool seen = state.get(seen_id_, 0, value_);
    const bool legacy_seen = !seen && legacy_ && state.get(legacy_seen_id_, 0, value_);
    if ((seen || legacy_seen) && value_.size() == 8) {
      const int64_t first_seen = get_i64_ordered(value_.data());
      if (t < saturating_add(first_seen, s_->ttl_us)) {
        start_copying();
        ++duplicates_;
        ++ctx_->dropped_records;
        continue;
      }
      // t replaces an earlier layout's t0: its entry and clean-up timer go, as they went then.
      if (legacy_seen) ctx_->timers->delete_event_timer(cleanup_time(first_seen));
    }
    if (legacy_seen) state.erase(legacy_seen_id_, 0);
    value_.clear();
    put_i64_ordered(value_, t);
    state.put_expiring(seen_id_, 0, value_, cleanup_time(t));
    if (!copying) {
      ++forwarded;
      continue;
    }
    out_.append_row(batch, r);
    if (out_.size() >= ctx_->batch_size) out.emit(0, out_.finish());
  }
  if (!copying && n != 0) out.emit(0, *shared);
  if (!out_.empty()) out.emit(0, out_.finish());
  if (!late_.empty()) out.emit(1, late_.finish());
  if (duplicates_ != duplicates_before) {
    duplicates_metric_->Increment(static_cast<double>(duplicates_ - duplicates_before));
  }
}

void dedup_operator::on_timer(const timer&, output&) {
  // Only the earlier layout registered timers. The firing timer is the one of the key's current
  // old t0: process() deleted the old timer whenever it replaced t0. So the entry is erased
  // without reading it first, which would be a RocksDB read: by ttl + allowed_lateness later it
  // has usually left the state cache.
  ctx_->state->erase(legacy_seen_id_, 0);
}

void dedup_operator::on_watermark(int64_t, output&) {
  // Due timers fired before this call: once none is left, neither is an old entry.
  if (legacy_ && !ctx_->timers->next(timer_service::domain::event_time)) legacy_ = false;
}

void register_dedup_operator(operator_registry& r) {
  r.add(std::make_unique<dedup_factory>());
}

}  // namespace vigil
