#include "operators/kafka/source/kafka_source.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "metrics/registry.hpp"
#include "operators/connectors/client_properties.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/connectors/json_record_reader.hpp"
#include "operators/kafka/source/kafka_source_state.hpp"
#include "operators/kafka/source/partition_watermarks.hpp"

namespace vigil {

namespace {

/// How long poll() asks to wait when nothing was available.
constexpr int64_t retry_after_us = 5'000;
/// The same when librdkafka wakes the subtask as messages arrive (operator_context::wakeup):
/// polls then only keep time-driven work going (partition idleness, lag metrics).
constexpr int64_t retry_after_with_wakeup_us = 100'000;
/// Broker errors are logged at most this often.
constexpr int64_t warning_interval_us = 10'000'000;
/// Pause between metadata attempts in open() after a transient error.
constexpr auto metadata_retry_pause = std::chrono::milliseconds(50);

enum class start_mode { earliest, latest, timestamp };

struct kafka_source_params {
  std::string bootstrap;
  std::string topic;
  std::string group_id;  ///< Empty: "vigil-<job>-<node>".
  int event_time_index = -1;
  bool raw =
      false;  ///< format raw: value, key and timestamp as they are (kafka_source_raw_schema).
  start_mode start = start_mode::earliest;
  int64_t start_us = 0;  ///< With start_mode::timestamp.
  int64_t max_out_of_orderness_us = 0;
  int64_t idle_timeout_us = 10'000'000;
  int64_t metadata_timeout_us = 30'000'000;
  bool bounded = false;
  bool read_committed = true;
  client_properties properties;  ///< Extra librdkafka consumer settings, applied last.
  schema_ptr schema;
  schema_ptr errors_schema;
};

/// One partition this subtask reads.
struct partition_state {
  int32_t id = 0;
  int64_t next_offset = 0;  ///< The offset of the next message to read.
  int64_t end_offset = 0;   ///< Bounded: the high watermark at open().
  bool skipping = false;    ///< start: <timestamp>: skipping messages before skip_before_us.
  int64_t skip_before_us = 0;
  bool done = false;  ///< Bounded: read up to end_offset.
  /// The broker refused to serve next_offset (out of range: deleted by retention, or the log
  /// was recreated): the offset refused, while fetching restarts at the partition's first kept
  /// offset; -1 otherwise. The first message (or bounded end) after it tells what was skipped.
  int64_t refused_offset = -1;
};

/// Owns an rd_kafka_topic_partition_list_t.
struct partition_list {
  explicit partition_list(int size) : list(rd_kafka_topic_partition_list_new(size)) {}
  ~partition_list() { rd_kafka_topic_partition_list_destroy(list); }
  partition_list(const partition_list&) = delete;
  partition_list& operator=(const partition_list&) = delete;

  rd_kafka_topic_partition_list_t* list;
};

int64_t now_us() {
  return operator_context::now_us();
}

/// Milliseconds left until `deadline_us` (at least 1, so librdkafka makes one attempt).
int remaining_ms(int64_t deadline_us) {
  const int64_t left = (deadline_us - now_us()) / 1000;
  return static_cast<int>(std::clamp<int64_t>(left, 1, 24LL * 3600 * 1000));
}

std::string format_duration(int64_t us) {
  if (us % 1'000'000 == 0) return std::to_string(us / 1'000'000) + "s";
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

class kafka_source final : public operator_base {
 public:
  explicit kafka_source(const kafka_source_params& params)
      : params_(params),
        reader_(params.schema, params.event_time_index, 1000),
        watermarks_(params.max_out_of_orderness_us, params.idle_timeout_us) {}

  ~kafka_source() override { destroy_consumer(); }

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    out_ = batch_builder(params_.schema, ctx.batch_size);
    errors_ = batch_builder(params_.errors_schema, 16);
    const int64_t deadline = now_us() + params_.metadata_timeout_us;
    VIGIL_TRY(create_consumer(ctx));
    auto partitions = fetch_partition_count(deadline);
    if (!partitions) return partitions.err();
    slot_of_.assign(static_cast<size_t>(*partitions), -1);
    for (int32_t q = 0; q < *partitions; ++q) {
      if (static_cast<uint32_t>(q) % ctx.parallelism != ctx.subtask_index) continue;
      slot_of_[q] = static_cast<int>(parts_.size());
      partition_state p;
      p.id = q;
      parts_.push_back(p);
    }
    VIGIL_TRY(resolve_start_offsets(deadline));
    watermarks_.reset(parts_.size(), now_us());
    for (const partition_state& p : parts_) {
      lag_.emplace_back(metrics::family().kafka_consumer_lag,
                        prometheus::Labels{{"job", ctx.job_name},
                                           {"operator", ctx.node_id},
                                           {"subtask", std::to_string(ctx.subtask_index)},
                                           {"topic", params_.topic},
                                           {"partition", std::to_string(p.id)}});
    }
    return {};
  }

  status restore_state(std::string_view bytes) override {
    auto state = decode_kafka_source_state(bytes);
    if (!state) return state.err();
    if (state->topic != params_.topic) {
      spdlog::warn(
          "kafka_source '{}' subtask {}: the checkpoint holds offsets of topic '{}', not '{}'; "
          "they are ignored and every partition starts per `start`",
          ctx_->node_id, ctx_->subtask_index, state->topic, params_.topic);
      return {};
    }
    for (const kafka_partition_position& pos : state->partitions) {
      if (pos.partition >= static_cast<int32_t>(slot_of_.size())) continue;
      const int slot = slot_of_[pos.partition];
      if (slot < 0) continue;  // Another subtask's partition.
      partition_state& p = parts_[slot];
      p.next_offset = pos.next_offset;
      p.refused_offset = -1;
      p.skipping = pos.has_skip_before;
      p.skip_before_us = pos.skip_before_us;
      if (pos.has_max_event_time) watermarks_.restore_max(slot, pos.max_event_time);
    }
    // The runtime restores before the first poll; should polling have started, fetching moves to
    // the restored offsets (a bounded partition already read to its end stays finished).
    if (assigned_) assign();
    return {};
  }

  std::string snapshot_state(int64_t checkpoint_id) override {
    (void)checkpoint_id;
    kafka_source_state state;
    state.topic = params_.topic;
    state.partitions.reserve(parts_.size());
    for (size_t i = 0; i < parts_.size(); ++i) {
      const partition_state& p = parts_[i];
      kafka_partition_position pos;
      pos.partition = p.id;
      pos.next_offset = p.next_offset;
      pos.has_max_event_time = watermarks_.has_max(i);
      pos.max_event_time = watermarks_.max_event_time(i);
      pos.has_skip_before = p.skipping;
      pos.skip_before_us = p.skip_before_us;
      state.partitions.push_back(pos);
    }
    return encode_kafka_source_state(state);
  }

  /// {"topic": T, "offsets": {"<partition>": next offset, ...}} over this subtask's partitions,
  /// as of the last snapshot_state() (the runtime calls it right after).
  std::string position_json() const override {
    std::string out = "{\"topic\":";
    append_json_string(out, params_.topic);
    out += ",\"offsets\":{";
    for (size_t i = 0; i < parts_.size(); ++i) {
      if (i > 0) out += ',';
      out += '"' + std::to_string(parts_[i].id) + "\":" + std::to_string(parts_[i].next_offset);
    }
    out += "}}";
    return out;
  }

  poll_result poll(output& out) override {
    if (!assigned_) assign();
    if (params_.bounded && all_done()) return {poll_result::state::finished, 0, max_watermark};
    const int64_t now = now_us();
    const size_t limit = std::max<size_t>(1, ctx_->batch_size);
    size_t consumed = 0;   // Messages and events taken from the queue.
    size_t delivered = 0;  // Messages among them.
    while (consumed < limit && consumer_ != nullptr) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 0);
      if (m == nullptr) break;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++delivered;
      handle_message(*m, now);
      rd_kafka_message_destroy(m);
      ++consumed;
    }
    if (reassign_) {
      reassign_ = false;
      assign();
    }
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!errors_.empty()) out.emit(1, errors_.finish());
    report_broker_errors(now);
    if (params_.bounded && all_done()) return {poll_result::state::finished, 0, max_watermark};
    keep_backlogged_partitions_active(now);
    if (now >= lag_due_us_) update_lag(now);
    const int64_t wm = watermarks_.advance(now);
    // A full poll of events without messages leaves the queue non-empty: no wake-up would come.
    if (delivered > 0 || consumed == limit) return {poll_result::state::more, 0, wm};
    return {poll_result::state::no_data,
            queue_ != nullptr ? retry_after_with_wakeup_us : retry_after_us, wm};
  }

  status close(output& out) override {
    (void)out;
    destroy_consumer();
    return {};
  }

 private:
  // --- librdkafka callbacks (served by rd_kafka_consumer_poll, on the operator's thread) ---

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    (void)rk;
    auto* self = static_cast<kafka_source*>(opaque);
    self->note_broker_error(std::string(rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err))) +
                            ": " + reason);
  }

  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
    (void)rk;
    // Broker errors reach the operator through on_error and are logged rate-limited there.
    spdlog::debug("librdkafka [{}] {}: {}", level, facility, message);
  }

  status create_consumer(const operator_context& ctx) {
    std::string group_id = params_.group_id;
    if (group_id.empty()) {
      group_id = ctx.job_name.empty() ? "vigil-" + ctx.node_id
                                      : "vigil-" + ctx.job_name + "-" + ctx.node_id;
    }
    const std::string client_id = group_id + "-" + std::to_string(ctx.subtask_index);
    const std::pair<const char*, std::string> settings[] = {
        {"bootstrap.servers", params_.bootstrap},
        {"group.id", group_id},
        {"client.id", client_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", params_.bounded ? "true" : "false"},
        // An offset out of range is reported to the source (handle_out_of_range()), which
        // restarts the partition at its first kept offset and reports what was skipped, instead
        // of librdkafka skipping it without a word.
        {"auto.offset.reset", "error"},
        {"allow.auto.create.topics", "false"},
        {"isolation.level", params_.read_committed ? "read_committed" : "read_uncommitted"},
    };
    char errstr[512] = {};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const char* key, const std::string& value) {
      return rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof errstr) == RD_KAFKA_CONF_OK;
    };
    for (const auto& [key, value] : settings) {
      if (!set(key, value)) {
        rd_kafka_conf_destroy(conf);
        return make_error(errc::invalid_argument,
                          std::string("kafka_source: librdkafka setting ") + key + ": " + errstr);
      }
    }
    for (const auto& [key, value] : params_.properties) {
      if (!set(key.c_str(), value)) {
        rd_kafka_conf_destroy(conf);
        return config_reader::key_error("properties." + key, errstr);
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_error_cb(conf, &kafka_source::on_error);
    rd_kafka_conf_set_log_cb(conf, &kafka_source::on_log);
    // rd_kafka_new takes ownership of conf on success only.
    consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (consumer_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::io_error,
                        std::string("kafka_source: cannot create the Kafka consumer: ") + errstr);
    }
    rd_kafka_poll_set_consumer(consumer_);
    if (ctx.wakeup) {
      // librdkafka calls on_queue_event when a message (or event) lands on the empty consumer
      // queue: the subtask polls at once instead of on a timer.
      wakeup_ = ctx.wakeup;
      queue_ = rd_kafka_queue_get_consumer(consumer_);
      if (queue_ != nullptr)
        rd_kafka_queue_cb_event_enable(queue_, &kafka_source::on_queue_event, this);
    }
    return {};
  }

  /// On a librdkafka thread: wakes the subtask (wakeup_ only sends a message).
  static void on_queue_event(rd_kafka_t* rk, void* opaque) {
    (void)rk;
    static_cast<kafka_source*>(opaque)->wakeup_();
  }

  void destroy_consumer() {
    if (queue_ != nullptr) {
      // The callback runs under the queue's lock: once disabled, no call is under way.
      rd_kafka_queue_cb_event_enable(queue_, nullptr, nullptr);
      rd_kafka_queue_destroy(queue_);
      queue_ = nullptr;
    }
    if (consumer_ == nullptr) return;
    // No group membership and no offsets to commit: skip the consumer close protocol.
    rd_kafka_destroy_flags(consumer_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    consumer_ = nullptr;
  }

  std::string where() const {
    return "topic '" + params_.topic + "' on bootstrap '" + params_.bootstrap + "'";
  }

  /// The topic's partition count from the cluster's metadata, retrying transient errors until
  /// `deadline_us`. Asks for the metadata of all topics: a request naming the topic may create it
  /// on a broker that auto-creates topics (librdkafka's mock cluster does).
  result<int32_t> fetch_partition_count(int64_t deadline_us) {
    std::string last_error;
    for (;;) {
      const rd_kafka_metadata_t* md = nullptr;
      const rd_kafka_resp_err_t err =
          rd_kafka_metadata(consumer_, 1, nullptr, &md, remaining_ms(deadline_us));
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_metadata_topic_t* t = nullptr;
        for (int i = 0; i < md->topic_cnt; ++i) {
          if (params_.topic == md->topics[i].topic) t = &md->topics[i];
        }
        const rd_kafka_resp_err_t topic_err =
            t == nullptr ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : t->err;
        const int32_t count = t == nullptr ? 0 : t->partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
          return make_error(errc::not_found,
                            "kafka_source: " + where() + " does not exist (or is not visible)");
        }
        if (topic_err == RD_KAFKA_RESP_ERR_NO_ERROR && count > 0) return count;
        last_error = topic_err == RD_KAFKA_RESP_ERR_NO_ERROR ? "the topic has no partitions yet"
                                                             : rd_kafka_err2str(topic_err);
      } else {
        last_error = rd_kafka_err2str(err);
      }
      if (now_us() >= deadline_us) break;
      std::this_thread::sleep_for(metadata_retry_pause);
    }
    return make_error(errc::io_error, "kafka_source: cannot read the metadata of " + where() +
                                          " within metadata_timeout " +
                                          format_duration(params_.metadata_timeout_us) + ": " +
                                          last_error);
  }

  /// Sets each partition's first offset per `start` (and, bounded, its end offset).
  status resolve_start_offsets(int64_t deadline_us) {
    for (partition_state& p : parts_) {
      int64_t low = 0;
      int64_t high = 0;
      const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          consumer_, params_.topic.c_str(), p.id, &low, &high, remaining_ms(deadline_us));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return make_error(errc::io_error, "kafka_source: cannot read the offsets of partition " +
                                              std::to_string(p.id) + " of " + where() +
                                              " within metadata_timeout " +
                                              format_duration(params_.metadata_timeout_us) + ": " +
                                              rd_kafka_err2str(err));
      }
      p.next_offset = params_.start == start_mode::latest ? high : low;
      p.end_offset = high;
    }
    if (params_.start != start_mode::timestamp || parts_.empty()) return {};
    // offsets_for_times answers the first offset whose timestamp is at or after the given
    // milliseconds; messages are then skipped client-side until the first one at or after
    // start_us, which also covers brokers that answer -1 ("none") for a partition: librdkafka's
    // mock cluster always does, and a real broker does when every message is older.
    const int64_t start_ms = params_.start_us / 1000 + (params_.start_us % 1000 > 0 ? 1 : 0);
    partition_list list(static_cast<int>(parts_.size()));
    for (const partition_state& p : parts_) {
      rd_kafka_topic_partition_list_add(list.list, params_.topic.c_str(), p.id)->offset = start_ms;
    }
    const rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(consumer_, list.list, remaining_ms(deadline_us));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(errc::io_error, "kafka_source: cannot look up the offsets of " + where() +
                                            " for start " + format_timestamp_iso(params_.start_us) +
                                            ": " + rd_kafka_err2str(err));
    }
    for (int i = 0; i < list.list->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = list.list->elems[i];
      const int slot = slot_of_[tp.partition];
      partition_state& p = parts_[slot];
      if (tp.err == RD_KAFKA_RESP_ERR_NO_ERROR && tp.offset >= 0) {
        p.next_offset = std::max(p.next_offset, tp.offset);
      }
      p.skipping = true;
      p.skip_before_us = params_.start_us;
    }
    return {};
  }

  bool all_done() const {
    return std::all_of(parts_.begin(), parts_.end(),
                       [](const partition_state& p) { return p.done; });
  }

  /// Marks partition `slot` as read to its end (bounded) and stops fetching it.
  void mark_done(size_t slot) {
    partition_state& p = parts_[slot];
    if (p.done) return;
    p.done = true;
    watermarks_.finish(slot);
    if (!assigned_) return;
    partition_list list(1);
    rd_kafka_topic_partition_list_add(list.list, params_.topic.c_str(), p.id);
    rd_kafka_pause_partitions(consumer_, list.list);
  }

  /// Starts fetching every partition that is not done at its next offset.
  void assign() {
    if (params_.bounded) {
      for (size_t i = 0; i < parts_.size(); ++i) {
        if (parts_[i].next_offset >= parts_[i].end_offset) mark_done(i);
      }
    }
    partition_list list(static_cast<int>(parts_.size()));
    for (const partition_state& p : parts_) {
      if (p.done) continue;
      rd_kafka_topic_partition_list_add(list.list, params_.topic.c_str(), p.id)->offset =
          p.refused_offset >= 0 ? RD_KAFKA_OFFSET_BEGINNING : p.next_offset;
    }
    const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, list.list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      note_broker_error(std::string("assigning partitions: ") + rd_kafka_err2str(err));
      reassign_ = true;  // The next poll tries again.
      return;
    }
    assigned_ = true;
  }

  void handle_message(const rd_kafka_message_t& m, int64_t now) {
    if (m.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // The end of a partition (for read_committed, its last stable offset): in a bounded
        // read, control records at the end may keep next_offset below end_offset.
        const int slot = slot_index(m.partition);
        if (slot >= 0 && parts_[slot].refused_offset >= 0) resume_after_refusal(parts_[slot], m);
        if (params_.bounded && slot >= 0 && m.offset >= parts_[slot].end_offset) mark_done(slot);
        return;
      }
      if (m.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        handle_out_of_range(m);
        return;
      }
      note_broker_error(rd_kafka_message_errstr(&m));
      return;
    }
    const int slot = slot_index(m.partition);
    if (slot < 0) return;  // Not assigned to this subtask; librdkafka never delivers one.
    partition_state& p = parts_[slot];
    if (p.done) return;  // Paused.
    if (p.refused_offset >= 0) resume_after_refusal(p, m);
    if (m.offset < p.next_offset) return;  // Fetched before a re-assign.
    if (params_.bounded && m.offset >= p.end_offset) {
      mark_done(slot);  // Written after open(): beyond the end of this bounded read.
      return;
    }
    p.next_offset = m.offset + 1;
    rd_kafka_timestamp_type_t ts_type;
    const int64_t ts_ms = rd_kafka_message_timestamp(&m, &ts_type);
    int64_t ts_us = 0;
    const bool has_ts = ts_ms >= 0 && !__builtin_mul_overflow(ts_ms, int64_t{1000}, &ts_us) &&
                        event_time_in_range(ts_us);
    if (p.skipping) {
      if (has_ts && ts_us < p.skip_before_us) {
        if (params_.bounded && p.next_offset >= p.end_offset) mark_done(slot);
        return;  // Before `start`.
      }
      p.skipping = false;
    }
    const std::string_view value(static_cast<const char*>(m.payload), m.payload ? m.len : 0);
    if (m.payload == nullptr) {
      push_error(m, "the message has no value (a tombstone)", value, has_ts, ts_us);
    } else if (params_.event_time_index < 0 && !has_ts) {
      push_error(m,
                 ts_ms < 0 ? "the message has no timestamp and no event_time_field is configured"
                           : "the message timestamp " + std::to_string(ts_ms) + " is out of range",
                 value, false, 0);
    } else if (params_.raw ? read_raw(m, value, ts_us) : reader_.read(value, out_, ts_us)) {
      watermarks_.on_record(static_cast<size_t>(slot), reader_.event_time(), now);
    } else {
      push_error(m, reader_.reason(), value, has_ts, ts_us);
    }
    if (params_.bounded && p.next_offset >= p.end_offset) mark_done(slot);
  }

  /// Partitions with unread records (below the bounded end, or below the high watermark
  /// librdkafka last saw, read from its cache without a request) are not idle.
  void keep_backlogged_partitions_active(int64_t now) {
    if (consumer_ == nullptr) return;
    for (size_t i = 0; i < parts_.size(); ++i) {
      const partition_state& p = parts_[i];
      if (p.done) continue;
      int64_t end = p.end_offset;
      if (!params_.bounded) {
        int64_t low = 0;
        int64_t high = 0;
        if (rd_kafka_get_watermark_offsets(consumer_, params_.topic.c_str(), p.id, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0) {
          continue;
        }
        end = high;
      }
      if (p.next_offset < end) watermarks_.keep_active(i, now);
    }
  }

  /// vigil_kafka_consumer_lag_records: the high watermark librdkafka last saw (its cache, no
  /// request) minus the next offset to read, per partition, at most once per lag_interval_us.
  void update_lag(int64_t now) {
    lag_due_us_ = now + lag_interval_us;
    if (consumer_ == nullptr) return;
    for (size_t i = 0; i < parts_.size(); ++i) {
      const partition_state& p = parts_[i];
      int64_t low = 0;
      int64_t high = p.end_offset;
      if (!params_.bounded &&
          (rd_kafka_get_watermark_offsets(consumer_, params_.topic.c_str(), p.id, &low, &high) !=
               RD_KAFKA_RESP_ERR_NO_ERROR ||
           high < 0)) {
        continue;
      }
      lag_[i]->Set(static_cast<double>(std::max<int64_t>(0, high - p.next_offset)));
    }
  }

  int slot_index(int32_t partition) const {
    if (partition < 0 || partition >= static_cast<int32_t>(slot_of_.size())) return -1;
    return slot_of_[partition];
  }

  /// format raw: stages the value, the key and the timestamp `ts_us` and appends them to out_.
  bool read_raw(const rd_kafka_message_t& m, std::string_view value, int64_t ts_us) {
    reader_.begin();
    staged_value& v = reader_.value(0);
    v.present = true;
    reader_.stage_string(0, value);
    staged_value& k = reader_.value(1);
    k.present = true;
    k.null = m.key == nullptr;
    if (!k.null) reader_.stage_string(1, {static_cast<const char*>(m.key), m.key_len});
    staged_value& t = reader_.value(2);
    t.present = true;
    t.i = ts_us;
    return reader_.commit(out_, ts_us);
  }

  /// The broker refused partition m.partition's next offset (out of range). Fetching restarts
  /// at the partition's first kept offset (with the next assign(), after this poll's messages).
  void handle_out_of_range(const rd_kafka_message_t& m) {
    const int slot = slot_index(m.partition);
    if (slot < 0 || parts_[slot].done) return;
    partition_state& p = parts_[slot];
    if (p.refused_offset < 0) p.refused_offset = p.next_offset;
    reassign_ = true;
    note_broker_error("partition " + std::to_string(p.id) + ": offset " +
                      std::to_string(p.next_offset) + " is out of range (" +
                      rd_kafka_message_errstr(&m) + "); reading restarts at its first offset");
  }

  /// The first message (or end of partition) of `p` since the broker refused its offset:
  /// reports the offsets skipped on the errors output (a bounded read only up to its end), and
  /// reading goes on from m.offset. The range may include offsets that held no record
  /// (transaction markers).
  void resume_after_refusal(partition_state& p, const rd_kafka_message_t& m) {
    const int64_t refused = p.refused_offset;
    p.refused_offset = -1;
    const int64_t skipped_end = params_.bounded ? std::min(m.offset, p.end_offset) : m.offset;
    if (skipped_end > refused) {
      push_error_at(p.id, refused,
                    "offsets " + std::to_string(refused) + " to " +
                        std::to_string(skipped_end - 1) + " of partition " + std::to_string(p.id) +
                        " could not be read: the broker no longer holds them (deleted by "
                        "retention, or the log was truncated)",
                    {}, false, 0);
    } else if (m.offset < refused) {
      push_error_at(p.id, refused,
                    "partition " + std::to_string(p.id) + " restarted below offset " +
                        std::to_string(refused) +
                        " (the topic was recreated or truncated): reading goes on from offset " +
                        std::to_string(m.offset),
                    {}, false, 0);
    }
    p.next_offset = m.offset;
  }

  void push_error(const rd_kafka_message_t& m, std::string_view reason, std::string_view raw,
                  bool has_ts, int64_t ts_us) {
    push_error_at(m.partition, m.offset, reason, raw, has_ts, ts_us);
  }

  void push_error_at(int32_t partition, int64_t offset, std::string_view reason,
                     std::string_view raw, bool has_ts, int64_t ts_us) {
    errors_.col(0).push_int64(partition);
    errors_.col(1).push_int64(offset);
    errors_.col(2).push_string(reason);
    errors_.col(3).push_string(raw.substr(0, kafka_source_raw_limit));
    const int64_t wm = watermarks_.watermark();
    errors_.end_row(has_ts ? ts_us : (wm == min_watermark ? 0 : wm));
  }

  void note_broker_error(std::string message) {
    if (pending_error_.empty()) {
      pending_error_ = std::move(message);
    } else {
      ++suppressed_errors_;
    }
  }

  /// Logs the first broker error since the last warning, at most once per warning_interval_us.
  void report_broker_errors(int64_t now) {
    if (pending_error_.empty()) return;
    if (last_warning_us_ != 0 && now - last_warning_us_ < warning_interval_us) return;
    spdlog::warn("kafka_source '{}' subtask {}: {}: {}{}", ctx_->node_id, ctx_->subtask_index,
                 where(), pending_error_,
                 suppressed_errors_ == 0
                     ? std::string()
                     : " (and " + std::to_string(suppressed_errors_) + " more errors)");
    last_warning_us_ = now;
    pending_error_.clear();
    suppressed_errors_ = 0;
  }

  const kafka_source_params params_;
  operator_context* ctx_ = nullptr;
  rd_kafka_t* consumer_ = nullptr;
  /// The consumer queue with wake-ups enabled; null without operator_context::wakeup.
  rd_kafka_queue_t* queue_ = nullptr;
  std::function<void()> wakeup_;  ///< A copy of operator_context::wakeup, for on_queue_event.
  std::vector<partition_state> parts_;
  std::vector<int> slot_of_;  ///< Partition id -> index in parts_, or -1 (another subtask's).
  static constexpr int64_t lag_interval_us = 1'000'000;
  std::vector<metrics::series<prometheus::Gauge>> lag_;  ///< Parallel to parts_.
  int64_t lag_due_us_ = 0;
  bool assigned_ = false;
  bool reassign_ = false;  ///< A partition's offset was refused: assign() after this poll.
  json_record_reader reader_;
  partition_watermarks watermarks_;
  batch_builder out_;
  batch_builder errors_;
  std::string pending_error_;  ///< A broker error not logged yet.
  uint64_t suppressed_errors_ = 0;
  int64_t last_warning_us_ = 0;
};

class kafka_source_plan final : public operator_plan {
 public:
  kafka_source_params params;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<kafka_source>(params);
  }
};

/// A positive duration config value.
result<int64_t> positive_duration(config_reader& r, std::string_view key, int64_t fallback_us) {
  auto v = r.duration_us_or(key, fallback_us);
  if (!v) return v.err();
  if (*v <= 0) return config_reader::key_error(key, "must be positive");
  return *v;
}

/// Reads `properties` (librdkafka consumer settings), refusing those the source manages itself
/// or has a key for, and checking each with librdkafka.
result<client_properties> read_consumer_properties(config_reader& r) {
  auto props = read_client_properties(r, "properties");
  if (!props) return props.err();
  VIGIL_TRY(refuse_unsafe_kafka_properties(*props, "properties"));
  static constexpr std::pair<std::string_view, std::string_view> managed[] = {
      {"bootstrap.servers", "use config.bootstrap"},
      {"metadata.broker.list", "use config.bootstrap"},
      {"client.id", "is <group_id>-<subtask>"},
      {"group.id", "use config.group_id"},
      {"isolation.level", "use config.isolation"},
      {"enable.auto.commit", "offsets live in checkpoints"},
      {"enable.auto.offset.store", "offsets live in checkpoints"},
      {"enable.partition.eof", "use config.bounded"},
      {"auto.offset.reset", "use config.start"},
      {"opaque", "is set by the source itself"},
  };
  char errstr[512] = {};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : *props) {
    for (const auto& [name, why] : managed) {
      if (key == name) {
        rd_kafka_conf_destroy(conf);
        return config_reader::key_error("properties." + key,
                                        "is managed by kafka_source (" + std::string(why) + ")");
      }
    }
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return config_reader::key_error("properties." + key, errstr);
    }
  }
  rd_kafka_conf_destroy(conf);
  return props;
}

class kafka_source_factory final : public operator_factory {
 public:
  kafka_source_factory() {
    traits_.name = "kafka_source";
    traits_.output_ports = {"out", "errors"};
    traits_.summary =
        "Reads JSON messages from a Kafka topic (offsets in checkpoints); unreadable messages "
        "go to port 'errors'";
  }

  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<kafka_source_plan>();
    kafka_source_params& kp = p->params;

    auto bootstrap = r.required_string("bootstrap");
    if (!bootstrap) return bootstrap.err();
    if (bootstrap->empty()) return config_reader::key_error("bootstrap", "must not be empty");
    kp.bootstrap = *bootstrap;

    auto topic = r.required_string("topic");
    if (!topic) return topic.err();
    if (topic->empty()) return config_reader::key_error("topic", "must not be empty");
    kp.topic = *topic;

    auto et_field = r.string_or("event_time_field", "");
    if (!et_field) return et_field.err();

    auto format = r.string_or("format", "json");
    if (!format) return format.err();
    if (*format == "raw") {
      kp.raw = true;
      if (!et_field->empty()) {
        return config_reader::key_error(
            "event_time_field",
            "not with format raw (the event time is the message's Kafka timestamp)");
      }
    } else if (*format != "json") {
      return config_reader::key_error("format",
                                      "expected \"json\" or \"raw\", got \"" + *format + "\"");
    }

    auto start = r.string_or("start", "earliest");
    if (!start) return start.err();
    if (*start == "earliest") {
      kp.start = start_mode::earliest;
    } else if (*start == "latest") {
      kp.start = start_mode::latest;
    } else if (auto t = parse_timestamp_iso(*start)) {
      if (*t < 0) {
        return config_reader::key_error("start", "timestamp \"" + *start + "\" is before 1970");
      }
      kp.start = start_mode::timestamp;
      kp.start_us = *t;
    } else {
      return config_reader::key_error(
          "start",
          "expected \"earliest\", \"latest\" or an ISO-8601 timestamp with a zone "
          "(e.g. \"2026-01-01T08:00:00Z\"), got \"" +
              *start + "\"");
    }

    auto ooo = r.duration_us_or("max_out_of_orderness", 0);
    if (!ooo) return ooo.err();
    if (*ooo < 0) return config_reader::key_error("max_out_of_orderness", "must not be negative");
    kp.max_out_of_orderness_us = *ooo;

    auto idle = positive_duration(r, "idle_timeout", 10'000'000);
    if (!idle) return idle.err();
    kp.idle_timeout_us = *idle;

    auto metadata_timeout = positive_duration(r, "metadata_timeout", 30'000'000);
    if (!metadata_timeout) return metadata_timeout.err();
    kp.metadata_timeout_us = *metadata_timeout;

    auto bounded = r.bool_or("bounded", false);
    if (!bounded) return bounded.err();
    kp.bounded = *bounded;

    auto isolation = r.string_or("isolation", "read_committed");
    if (!isolation) return isolation.err();
    if (*isolation == "read_committed") {
      kp.read_committed = true;
    } else if (*isolation == "read_uncommitted") {
      kp.read_committed = false;
    } else {
      return config_reader::key_error(
          "isolation",
          "expected \"read_committed\" or \"read_uncommitted\", got \"" + *isolation + "\"");
    }

    auto group_id = r.string_or("group_id", "");
    if (!group_id) return group_id.err();
    if (r.get("group_id") != nullptr && group_id->empty()) {
      return config_reader::key_error("group_id", "must not be empty");
    }
    kp.group_id = *group_id;

    auto properties = read_consumer_properties(r);
    if (!properties) return properties.err();
    kp.properties = std::move(*properties);

    if (auto st = r.finish(); !st) return st.err();

    if (kp.raw) {
      if (ctx.declared_output != nullptr && ctx.declared_output->size() != 0 &&
          !(*ctx.declared_output == *kafka_source_raw_schema())) {
        return make_error(errc::invalid_graph,
                          "output_schema: with format raw, kafka_source's output is " +
                              kafka_source_raw_schema()->to_string() +
                              "; leave output_schema out or declare exactly that");
      }
      kp.schema = kafka_source_raw_schema();
    } else if (ctx.declared_output == nullptr || ctx.declared_output->size() == 0) {
      return make_error(errc::invalid_graph,
                        "output_schema: required for kafka_source (the fields of the messages' "
                        "JSON objects)");
    }
    if (!kp.raw) kp.schema = ctx.declared_output;
    if (!et_field->empty()) {
      kp.event_time_index = kp.schema->index_of(*et_field);
      if (kp.event_time_index < 0) {
        return config_reader::key_error(
            "event_time_field",
            "no field '" + *et_field + "' in the schema (" + kp.schema->to_string() + ")");
      }
      if (kp.schema->at(kp.event_time_index).type != type_id::timestamp) {
        return config_reader::key_error(
            "event_time_field",
            "field '" + *et_field + "' must have type timestamp, not " +
                std::string(to_string(kp.schema->at(kp.event_time_index).type)));
      }
    }
    kp.errors_schema = kafka_source_errors_schema();
    p->outputs.push_back(stream_info{kp.schema, {}});
    p->outputs.push_back(stream_info{kp.errors_schema, {}});
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_;
};

}  // namespace

schema_ptr kafka_source_errors_schema() {
  static const schema_ptr s = make_schema({
      {"partition", type_id::int64, false},
      {"offset", type_id::int64, false},
      {"reason", type_id::string, false},
      {"raw", type_id::string, false},
  });
  return s;
}

schema_ptr kafka_source_raw_schema() {
  static const schema_ptr s = make_schema({
      {"raw", type_id::string, false},
      {"key", type_id::string, true},
      {"timestamp", type_id::timestamp, false},
  });
  return s;
}

std::unique_ptr<operator_factory> make_kafka_source_factory() {
  return std::make_unique<kafka_source_factory>();
}

}  // namespace vigil
