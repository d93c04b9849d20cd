#include "operators/kafka/sink/kafka_sink.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include "common/config.hpp"
#include "metrics/registry.hpp"
#include "operators/connectors/client_properties.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/kafka/sink/progress_marker.hpp"
#include "operators/kafka/sink/rdkafka_txn_client.hpp"
#include "operators/kafka/sink/sink_wal.hpp"

namespace vigil {

namespace {

using kafka::message_header;
using kafka::wal_epoch;

enum class sink_mode { exactly_once, at_least_once };

/// The checked config, shared by all subtasks.
struct sink_settings {
  std::string bootstrap;
  std::string topic;
  std::string progress_topic;
  sink_mode mode = sink_mode::exactly_once;
  int key_field = -1;  ///< Index in the input schema, or -1: messages without a key.
  int64_t transaction_timeout_us = 60'000'000;
  std::vector<std::pair<std::string, std::string>> properties;
};

/// The first wait before retrying a failed commit at a later checkpoint; doubles per failure.
constexpr int64_t first_backoff_us = 500'000;
constexpr int64_t max_backoff_us = 30'000'000;
/// The same for the retries at the end of the input, which run back to back.
constexpr int64_t close_first_backoff_us = 100'000;
constexpr int64_t close_max_backoff_us = 2'000'000;

/// Appends `v` in decimal.
void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// Appends the value at `row` of `col` as a message key: strings as they are, numbers in
/// decimal (doubles in their shortest form), booleans as true/false, timestamps in ISO-8601.
void append_key_text(std::string& out, const column& col, size_t row) {
  switch (col.type) {
    case type_id::string:
      out += col.string_at(row);
      break;
    case type_id::int64:
      append_int(out, col.ints[row]);
      break;
    case type_id::float64:
      append_json_double(out, col.doubles[row]);
      break;
    case type_id::boolean:
      out += col.bools[row] != 0 ? "true" : "false";
      break;
    case type_id::timestamp:
      append_timestamp_iso(out, col.ints[row]);
      break;
  }
}

class kafka_sink final : public operator_base {
 public:
  kafka_sink(std::shared_ptr<const sink_settings> settings, kafka_sink_hooks hooks)
      : s_(std::move(settings)), hooks_(std::move(hooks)) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    sink_id_ = ctx.job_name + "/" + ctx.node_id + "/" + std::to_string(ctx.subtask_index);
    committed_metric_ = metrics::series(metrics::family().kafka_sink_records_committed,
                                        {{"job", ctx.job_name},
                                         {"operator", ctx.node_id},
                                         {"subtask", std::to_string(ctx.subtask_index)}});
    attempt_ = kafka::random_id();
    run_ = kafka::random_id();
    kafka::txn_client_config cc;
    cc.bootstrap = s_->bootstrap;
    if (exactly_once()) cc.transactional_id = sink_id_;
    cc.timeout_us = s_->transaction_timeout_us;
    cc.properties = s_->properties;
    auto client = hooks_.make_client(cc);
    if (!client) return with_context(who(), client.err());
    client_ = std::move(*client);
    return {};
  }

  void process(size_t, const record_batch& batch, output&) override {
    size_t n = batch.num_rows();
    if (n == 0) return;
    if (discard_input_) {
      ctx_->dropped_records += n;
      return;
    }
    const column* key = s_->key_field >= 0 ? &batch.columns[s_->key_field] : nullptr;
    if (exactly_once()) {
      for (size_t row = 0; row < n; ++row) {
        if (key != nullptr && !key->is_null(row)) {
          current_.begin_key();
          append_key_text(current_.buffer(), *key, row);
        }
        current_.begin_value();
        append_json_row(current_.buffer(), batch, row, true);
        current_.end_message();
      }
      return;
    }
    // at_least_once: straight to the producer, tagged with the epoch the next barrier closes.
    epoch_text_.clear();
    append_int(epoch_text_, last_checkpoint_ + 1);
    const message_header headers[] = {{kafka::header_sink, sink_id_},
                                      {kafka::header_epoch, epoch_text_},
                                      {kafka::header_attempt, attempt_}};
    for (size_t row = 0; row < n; ++row) {
      bool has_key = key != nullptr && !key->is_null(row);
      key_scratch_.clear();
      if (has_key) append_key_text(key_scratch_, *key, row);
      value_scratch_.clear();
      append_json_row(value_scratch_, batch, row, true);
      produce_at_least_once(has_key ? std::optional<std::string_view>(key_scratch_) : std::nullopt,
                            headers);
    }
  }

  std::string snapshot_state(int64_t checkpoint_id) override {
    last_checkpoint_ = checkpoint_id;
    if (exactly_once()) {
      if (!current_.empty()) {
        current_.epoch = checkpoint_id;
        pending_.push_back(std::move(current_));
        current_ = wal_epoch();
      }
    } else if (auto st = client_->flush(); !st) {
      // The messages stay queued and are retried, but this checkpoint does not cover them.
      spdlog::error("{}checkpoint {}: {}", who(), checkpoint_id, st.err().message);
    }
    std::string out;
    kafka::encode_sink_state(out, sink_id_, ctx_->subtask_index, run_, checkpoint_id, pending_);
    return out;
  }

  status restore_state(std::string_view bytes) override {
    if (bytes.empty()) return {};
    auto state = kafka::decode_sink_state(bytes);
    if (!state) return with_context(who(), state.err());
    const bool rescaled =
        ctx_->restored_parallelism != 0 && ctx_->restored_parallelism != ctx_->parallelism;
    if (rescaled || (!state->sink_id.empty() && state->sink_id != sink_id_)) {
      return restore_other(std::move(*state));
    }
    run_ = std::move(state->run);
    last_checkpoint_ = last_complete_ = state->last_checkpoint_id;
    pending_ = std::move(state->pending);
    if (!exactly_once()) {
      if (!pending_.empty()) {
        return make_error(errc::invalid_argument,
                          who() + "the checkpoint holds " + std::to_string(pending_.size()) +
                              " uncommitted epoch(s) of mode exactly_once; restore it with "
                              "mode exactly_once");
      }
      return {};
    }
    size_t restored = pending_.size();
    // The restored checkpoint is complete: fence older instances, skip what they committed,
    // and commit the rest now.
    if (auto st = recover(); !st) return with_context(who() + "restore: ", st.err());
    size_t replay = pending_.size();
    spdlog::info("{}restored checkpoint {}: {} epoch(s) to replay, {} already committed (skipped)",
                 who(), last_checkpoint_, replay, restored - replay);
    if (discard_input_) {
      spdlog::info("{}this run already committed its final epoch: replayed input is discarded",
                   who());
    }
    if (auto st = commit_upto(max_watermark); !st) commit_failed(st.err());
    return {};
  }

  /// A failed commit is logged and retried on the next completion, by design: it never fails
  /// the subtask (a dead broker stalls the job visibly; close() reports what stayed pending).
  status notify_checkpoint_complete(int64_t checkpoint_id, std::string_view) override {
    last_complete_ = std::max(last_complete_, checkpoint_id);
    if (!exactly_once() || pending_.empty() || pending_.front().epoch > checkpoint_id) return {};
    if (client_->fenced()) return {};  // Reported once when it happened; close() fails.
    if (now() < next_retry_us_) {
      spdlog::debug("{}backing off: {} epoch(s) pending", who(), pending_.size());
      return {};
    }
    if (auto st = commit_upto(checkpoint_id); !st) {
      commit_failed(st.err());
    } else {
      backoff_us_ = first_backoff_us;
      next_retry_us_ = 0;
    }
    return {};
  }

  status close(output&) override {
    if (!exactly_once()) {
      if (auto st = client_->flush(); !st) return with_context(who(), st.err());
      if (failed_messages_ > 0) {
        return make_error(errc::io_error,
                          who() + std::to_string(failed_messages_) +
                              " message(s) could not be written, the first: " + failure_);
      }
      return {};
    }
    if (!current_.empty()) {
      current_.epoch = last_checkpoint_ + 1;
      pending_.push_back(std::move(current_));
      current_ = wal_epoch();
    }
    // Epochs whose checkpoint is not known to be complete are committed together with the rest
    // of the input, as final epochs in one transaction (see progress_marker::final).
    for (auto& e : pending_) e.final = e.epoch > last_complete_;
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::microseconds(s_->transaction_timeout_us);
    int64_t backoff = close_first_backoff_us;
    for (;;) {
      auto st = commit_upto(max_watermark);
      if (st) return {};
      auto retry_at = std::chrono::steady_clock::now() + std::chrono::microseconds(backoff);
      if (client_->fenced() || retry_at >= deadline) {
        return make_error(errc::io_error, who() + std::to_string(pending_.size()) +
                                              " epoch(s) not committed to '" + s_->topic +
                                              "' at the end of the input: " + st.err().message);
      }
      spdlog::warn("{}end of input: commit to '{}' failed, retrying in {} ms: {}", who(), s_->topic,
                   backoff / 1000, st.err().message);
      std::this_thread::sleep_for(std::chrono::microseconds(backoff));
      backoff = std::min(backoff * 2, close_max_backoff_us);
    }
  }

 private:
  bool exactly_once() const { return s_->mode == sink_mode::exactly_once; }

  std::string who() const { return "kafka_sink '" + sink_id_ + "': "; }

  int64_t now() const { return hooks_.now_us ? hooks_.now_us() : operator_context::now_us(); }

  /// Fences older producers of this sink id and drops the pending epochs that an earlier
  /// attempt of this run committed (after a restore, or when a failed commit may have landed).
  status recover() {
    VIGIL_TRY(client_->init_transactions());
    auto last = client_->last_marker(s_->progress_topic, sink_id_, run_);
    if (!last) return last.err();
    if (*last) {
      const kafka::progress_marker& m = **last;
      if (m.final) {
        // The run wrote everything it will ever receive.
        pending_.clear();
        current_ = wal_epoch();
        discard_input_ = true;
      } else {
        while (!pending_.empty() && pending_.front().epoch <= m.epoch) {
          pending_.erase(pending_.begin());
        }
      }
    }
    ready_ = true;
    return {};
  }

  /// restore_state() of a state another sink id wrote: after a change of parallelism (called
  /// once per old subtask, in subtask order) or when the graph's name changed (called once).
  /// Old subtask j's state is taken over by new subtask j % parallelism alone: with a client of
  /// j's transactional.id (also when that is its own id), which fences j's zombies, it commits
  /// j's pending epochs under j's sink id and j's run, then closes that client before client_
  /// first calls init_transactions. The new subtasks write under a run of their own, the same on
  /// every restore of this checkpoint at this parallelism (see new_run()), never under an old
  /// one. Every new subtask reads whether each old subtask committed its final epoch (of its old
  /// run): if all did, the run's output is in Kafka and the replayed input is discarded; if only
  /// some did, the replayed input no longer reaches the same subtasks and exactly-once cannot be
  /// kept, so the restore fails. On the last call the subtask also reads its own id's marker of
  /// the new run: a final one means an earlier attempt of the same restore wrote this subtask's
  /// whole share, and the replayed input is discarded too.
  status restore_other(kafka::sink_state state) {
    // Version 1 states do not name their writer: the runtime calls in old-subtask order, and a
    // kafka_sink always stores state, so the n-th call is old subtask n.
    const uint32_t from =
        state.subtask >= 0 ? static_cast<uint32_t>(state.subtask) : restore_calls_;
    ++restore_calls_;
    const std::string old_id =
        state.sink_id.empty() ? ctx_->job_name + "/" + ctx_->node_id + "/" + std::to_string(from)
                              : state.sink_id;
    last_checkpoint_ = std::max(last_checkpoint_, state.last_checkpoint_id);
    last_complete_ = last_checkpoint_;
    if (!exactly_once()) {
      if (!state.pending.empty()) {
        return make_error(errc::invalid_argument,
                          who() + "the checkpoint holds " + std::to_string(state.pending.size()) +
                              " uncommitted epoch(s) of mode exactly_once of '" + old_id +
                              "'; restore it with mode exactly_once");
      }
      return {};
    }
    // The first call is old subtask 0 (or the one state of a renamed graph).
    if (restore_calls_ == 1) run_ = new_run(state);
    const bool owner = from % ctx_->parallelism == ctx_->subtask_index;
    bool final = false;
    if (owner) {
      auto taken = take_over(old_id, state);
      if (!taken) {
        return with_context(who() + "restore: taking over '" + old_id + "': ", taken.err());
      }
      final = *taken;
    } else {
      auto last = client_->last_marker(s_->progress_topic, old_id, state.run);
      if (!last) {
        return with_context(who() + "restore: progress of '" + old_id + "': ", last.err());
      }
      final = *last && (*last)->final;
    }
    (final ? old_final_ : old_open_).push_back(old_id);
    if (!old_final_.empty() && !old_open_.empty()) {
      return make_error(errc::state_error,
                        who() + "'" + old_final_.front() +
                            "' committed its final epoch after the restored checkpoint " +
                            std::to_string(state.last_checkpoint_id) + " and '" +
                            old_open_.front() +
                            "' did not: with another parallelism the replayed input reaches "
                            "other subtasks, so part of it would be written twice; restore "
                            "with parallelism " +
                            std::to_string(ctx_->restored_parallelism));
    }
    const bool rescaled =
        ctx_->restored_parallelism != 0 && ctx_->restored_parallelism != ctx_->parallelism;
    if (restore_calls_ < (rescaled ? ctx_->restored_parallelism : 1)) return {};
    // The last call: fence older instances of this id (the takeover clients are closed) and
    // read whether an earlier attempt of this restore committed this subtask's final epoch.
    if (auto st = recover(); !st) return with_context(who() + "restore: ", st.err());
    const bool own_final = discard_input_;
    discard_input_ = own_final || !old_final_.empty();
    if (own_final) {
      spdlog::info(
          "{}an earlier attempt of this restore committed this subtask's final epoch (run {}): "
          "replayed input is discarded",
          who(), run_);
    } else if (discard_input_) {
      spdlog::info(
          "{}the restored run already committed its final epochs: replayed input is "
          "discarded",
          who());
    }
    return {};
  }

  /// The run of the subtasks restored by restore_other() from a state of old subtask 0 (or of
  /// the renamed graph's subtask): `<its run>-<checkpoint id>-p<parallelism>`. Equal on every
  /// restore of the same checkpoint at the same parallelism, so that a repeated attempt finds
  /// its own final markers; different from every old run (longer than old subtask 0's, and the
  /// other old subtasks' runs are random or share old subtask 0's), so that the new job's
  /// markers never pass for the old run's.
  std::string new_run(const kafka::sink_state& state) const {
    std::string out = state.run;
    out += '-';
    append_int(out, state.last_checkpoint_id);
    out += "-p";
    append_int(out, ctx_->parallelism);
    return out;
  }

  /// Takes over the pending epochs of `old_id` (another sink id, or this subtask's own id after
  /// a rescale) from `state`: with a client of its own for that transactional.id, fences the
  /// id's older producers, skips the epochs the markers of the state's run cover, commits the
  /// rest under that id and run, then closes the client (client_ has not called
  /// init_transactions yet; when it does, it fences only this closed client). Failures are retried
  /// (new attempt id, backoff) up to transaction_timeout. Returns whether the old run committed its
  /// final epoch.
  result<bool> take_over(const std::string& old_id, kafka::sink_state& state) {
    kafka::txn_client_config cc;
    cc.bootstrap = s_->bootstrap;
    cc.transactional_id = old_id;
    cc.timeout_us = s_->transaction_timeout_us;
    cc.properties = s_->properties;
    auto client = hooks_.make_client(cc);
    if (!client) return client.err();
    kafka::txn_client& c = **client;
    const size_t restored = state.pending.size();
    size_t committed_epochs = 0;
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::microseconds(s_->transaction_timeout_us);
    int64_t backoff = close_first_backoff_us;
    for (;;) {
      std::string attempt = kafka::random_id();
      bool final = false;
      auto st = [&]() -> status {
        VIGIL_TRY(c.init_transactions());
        auto last = c.last_marker(s_->progress_topic, old_id, state.run);
        if (!last) return last.err();
        if (*last && (*last)->final) {
          final = true;
          state.pending.clear();
        }
        while (*last && !state.pending.empty() && state.pending.front().epoch <= (*last)->epoch) {
          state.pending.erase(state.pending.begin());
        }
        while (!state.pending.empty()) {
          auto committed = commit_epochs(c, old_id, state.run, attempt, state.pending.data(), 1);
          if (!committed) {
            if (auto aborted = c.abort_transaction(); !aborted) {
              spdlog::debug("{}abort for '{}': {}", who(), old_id, aborted.err().message);
            }
            return committed;
          }
          if (committed_metric_) {
            committed_metric_->Increment(static_cast<double>(state.pending.front().size()));
          }
          state.pending.erase(state.pending.begin());
          ++committed_epochs;
        }
        return {};
      }();
      if (st) {
        spdlog::info(
            "{}took over '{}' (checkpoint {}): {} epoch(s) committed under its id, {} "
            "already committed (skipped){}",
            who(), old_id, state.last_checkpoint_id, committed_epochs, restored - committed_epochs,
            final ? "; its final epoch was committed" : "");
        return final;
      }
      auto retry_at = std::chrono::steady_clock::now() + std::chrono::microseconds(backoff);
      if (c.fenced() || retry_at >= deadline) return st.err();
      spdlog::warn("{}taking over '{}' failed, retrying in {} ms: {}", who(), old_id,
                   backoff / 1000, st.err().message);
      std::this_thread::sleep_for(std::chrono::microseconds(backoff));
      backoff = std::min(backoff * 2, close_max_backoff_us);
    }
  }

  /// Commits the pending epochs up to `upto` in order: one transaction per epoch, and one for
  /// all final epochs together.
  status commit_upto(int64_t upto) {
    if (!ready_) VIGIL_TRY(recover());
    while (!pending_.empty() && pending_.front().epoch <= upto) {
      size_t group = 1;
      if (pending_.front().final) {
        while (group < pending_.size() && pending_[group].final) ++group;
      }
      VIGIL_TRY(commit_group(group));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(group));
    }
    return {};
  }

  /// Produces the first `group` pending epochs and their markers in one transaction and commits
  /// it. On failure the transaction is aborted and the next attempt starts with recover().
  status commit_group(size_t group) {
    auto st = commit_epochs(*client_, sink_id_, run_, attempt_, pending_.data(), group);
    if (st && committed_metric_) {
      size_t records = 0;
      for (size_t i = 0; i < group; ++i) records += pending_[i].size();
      committed_metric_->Increment(static_cast<double>(records));
    } else if (!st) {
      if (auto aborted = client_->abort_transaction(); !aborted) {
        spdlog::debug("{}abort: {}", who(), aborted.err().message);
      }
      ready_ = false;
      // The failed try's records may stay visible on a broker without isolation: the retry
      // writes under a new attempt id so that they never match its marker.
      attempt_ = kafka::random_id();
    }
    return st;
  }

  /// Produces `epochs[0..group)` and their markers under sink id `id`, `run` and `attempt` in
  /// one transaction of `client` and commits it. Leaves a failed transaction open.
  status commit_epochs(kafka::txn_client& client, const std::string& id, const std::string& run,
                       const std::string& attempt, const wal_epoch* epochs, size_t group) {
    VIGIL_TRY(client.begin_transaction());
    for (size_t i = 0; i < group; ++i) {
      const wal_epoch& e = epochs[i];
      epoch_text_.clear();
      append_int(epoch_text_, e.epoch);
      const message_header headers[] = {{kafka::header_sink, id},
                                        {kafka::header_epoch, epoch_text_},
                                        {kafka::header_attempt, attempt}};
      status produced;
      e.for_each([&](std::optional<std::string_view> key, std::string_view value) {
        produced = client.produce(s_->topic, key, value, headers);
        return produced.ok();
      });
      VIGIL_TRY(produced);
      kafka::progress_marker m{id, e.epoch, attempt, run, static_cast<int64_t>(e.size()), e.final};
      VIGIL_TRY(client.produce(s_->progress_topic, id, kafka::encode_marker(m), headers));
    }
    return client.commit_transaction();
  }

  /// Logs a failed commit at a checkpoint and schedules the retry.
  void commit_failed(const error& err) {
    if (client_->fenced()) {
      spdlog::error("{}{}; no more commits", who(), err.message);
      return;
    }
    spdlog::warn("{}commit to '{}' failed; {} epoch(s) kept, retry in {} ms or later: {}", who(),
                 s_->topic, pending_.size(), backoff_us_ / 1000, err.message);
    next_retry_us_ = now() + backoff_us_;
    backoff_us_ = std::min(backoff_us_ * 2, max_backoff_us);
  }

  /// at_least_once: waits while the broker is away (warning), recreates a failed producer.
  void produce_at_least_once(std::optional<std::string_view> key,
                             std::span<const message_header> headers) {
    for (;;) {
      auto st = client_->produce(s_->topic, key, value_scratch_, headers);
      if (st) return;
      if (st.err().code != errc::resource_exhausted) {
        // A message librdkafka refuses outright (e.g. too large) cannot be written.
        if (failed_messages_++ == 0) {
          failure_ = st.err().message;
          spdlog::error("{}{}", who(), failure_);
        }
        return;
      }
      spdlog::warn("{}{}", who(), st.err().message);
    }
  }

  std::shared_ptr<const sink_settings> s_;
  kafka_sink_hooks hooks_;
  operator_context* ctx_ = nullptr;
  std::string sink_id_;
  std::string attempt_;
  std::string run_;
  std::unique_ptr<kafka::txn_client> client_;
  wal_epoch current_;               ///< Records since the last barrier.
  std::vector<wal_epoch> pending_;  ///< Sealed, not yet committed, oldest first.
  int64_t last_checkpoint_ = 0;     ///< The latest barrier (or the restored checkpoint).
  int64_t last_complete_ = 0;       ///< The latest checkpoint known to be complete.
  bool ready_ = false;              ///< recover() ran since the last failure.
  bool discard_input_ = false;      ///< This run's output is complete (a final marker exists).
  uint32_t restore_calls_ = 0;      ///< restore_other() calls so far.
  /// After a rescaled restore: the old sink ids whose run committed its final epoch, and those
  /// whose run did not.
  std::vector<std::string> old_final_;
  std::vector<std::string> old_open_;
  int64_t next_retry_us_ = 0;
  int64_t backoff_us_ = first_backoff_us;
  uint64_t failed_messages_ = 0;  ///< at_least_once: messages that could not be written.
  /// vigil_kafka_sink_records_committed_total{job, operator, subtask} (exactly_once).
  metrics::series<prometheus::Counter> committed_metric_;
  std::string failure_;  ///< The first of them.
  std::string epoch_text_;
  std::string key_scratch_;
  std::string value_scratch_;
};

class kafka_sink_plan final : public operator_plan {
 public:
  std::shared_ptr<const sink_settings> settings;
  kafka_sink_hooks hooks;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<kafka_sink>(settings, hooks);
  }
};

/// Reads `properties` (librdkafka producer settings) and refuses those the sink manages.
result<client_properties> read_properties(config_reader& r) {
  auto out = read_client_properties(r, "properties");
  if (!out) return out.err();
  VIGIL_TRY(refuse_unsafe_kafka_properties(*out, "properties"));
  VIGIL_TRY(kafka::check_producer_properties(*out));
  return out;
}

class kafka_sink_factory final : public operator_factory {
 public:
  explicit kafka_sink_factory(kafka_sink_hooks hooks) : hooks_(std::move(hooks)) {
    if (!hooks_.make_client) hooks_.make_client = kafka::make_rdkafka_txn_client;
  }

  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto s = std::make_shared<sink_settings>();
    auto bootstrap = r.required_string("bootstrap");
    if (!bootstrap) return bootstrap.err();
    if (bootstrap->empty()) return config_reader::key_error("bootstrap", "must not be empty");
    s->bootstrap = *bootstrap;
    auto topic = r.required_string("topic");
    if (!topic) return topic.err();
    if (topic->empty()) return config_reader::key_error("topic", "must not be empty");
    s->topic = *topic;
    auto mode = r.string_or("mode", "exactly_once");
    if (!mode) return mode.err();
    if (*mode == "exactly_once") {
      s->mode = sink_mode::exactly_once;
    } else if (*mode == "at_least_once") {
      s->mode = sink_mode::at_least_once;
    } else {
      return config_reader::key_error(
          "mode", "expected exactly_once or at_least_once, got '" + *mode + "'");
    }
    auto key_field = r.string_or("key_field", "");
    if (!key_field) return key_field.err();
    auto progress = r.string_or("progress_topic", s->topic + ".progress");
    if (!progress) return progress.err();
    if (progress->empty() || *progress == s->topic) {
      return config_reader::key_error("progress_topic",
                                      "must be a topic other than '" + s->topic + "'");
    }
    s->progress_topic = *progress;
    auto timeout = r.duration_us_or("transaction_timeout", 60'000'000);
    if (!timeout) return timeout.err();
    if (*timeout < 1'000'000 || *timeout > 900'000'000) {
      return config_reader::key_error("transaction_timeout", "must be from 1s to 15m");
    }
    s->transaction_timeout_us = *timeout;
    auto props = read_properties(r);
    if (!props) return props.err();
    s->properties = std::move(*props);
    VIGIL_TRY(r.finish());
    if (ctx.inputs.size() != 1) {
      return make_error(errc::invalid_graph,
                        "expected one input stream, got " + std::to_string(ctx.inputs.size()));
    }
    if (!key_field->empty()) {
      s->key_field = ctx.inputs[0].schema->index_of(*key_field);
      if (s->key_field < 0) {
        return config_reader::key_error("key_field", "no field '" + *key_field + "' in the input");
      }
    }
    auto p = std::make_shared<kafka_sink_plan>();
    p->settings = std::move(s);
    p->hooks = hooks_;
    return plan_ptr(std::move(p));
  }

 private:
  kafka_sink_hooks hooks_;
  operator_traits traits_ = [] {
    operator_traits t;
    t.name = "kafka_sink";
    t.input_ports = {"in"};
    t.summary =
        "Writes rows to a Kafka topic as JSON, exactly once per checkpoint (write-ahead, "
        "transactional) or at least once";
    return t;
  }();
};

}  // namespace

std::unique_ptr<operator_factory> make_kafka_sink_factory() {
  return make_kafka_sink_factory(kafka_sink_hooks{});
}

std::unique_ptr<operator_factory> make_kafka_sink_factory(kafka_sink_hooks hooks) {
  return std::make_unique<kafka_sink_factory>(std::move(hooks));
}

}  // namespace vigil
