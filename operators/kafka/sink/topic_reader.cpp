#include "operators/kafka/sink/topic_reader.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "operators/kafka/sink/progress_marker.hpp"

namespace vigil::kafka {

namespace {

using steady = std::chrono::steady_clock;

struct reader_state {
  std::string last_error;  ///< The latest broker problem librdkafka reported.
};

void on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* st = static_cast<reader_state*>(opaque);
  st->last_error =
      std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason;
}

struct rk_deleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};

struct md_deleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};

struct rkt_deleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};

struct list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};

int remaining_ms(steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 1, 1'000'000'000));
}

}  // namespace

status read_topic(const topic_read_options& opts,
                  const std::function<void(const consumed_record&)>& on_record) {
  auto deadline = steady::now() + std::chrono::microseconds(opts.timeout_us);
  const std::string what = "topic '" + opts.topic + "'";
  reader_state st;
  char errstr[512] = {};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : opts.properties) {
    // Producer-only properties are accepted here and ignored by the consumer.
    rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr);
  }
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", opts.bootstrap},
      {"group.id", "vigil-reader-" + random_id()},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", opts.read_committed ? "read_committed" : "read_uncommitted"},
      {"log_level", "4"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::invalid_argument, std::string("librdkafka ") + key + ": " + errstr);
    }
  }
  rd_kafka_conf_set_opaque(conf, &st);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (raw == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(errc::io_error, "reading " + what + ": cannot create a consumer: " + errstr);
  }
  std::unique_ptr<rd_kafka_t, rk_deleter> rk(raw);
  auto broker_problem = [&](std::string_view doing, rd_kafka_resp_err_t err) {
    std::string msg = "reading " + what + " from " + opts.bootstrap + ": " + std::string(doing);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) msg += std::string(": ") + rd_kafka_err2str(err);
    if (!st.last_error.empty()) msg += " (broker: " + st.last_error + ")";
    return make_error(errc::io_error, std::move(msg));
  };

  std::unique_ptr<rd_kafka_topic_t, rkt_deleter> rkt(
      rd_kafka_topic_new(rk.get(), opts.topic.c_str(), nullptr));
  if (!rkt) return broker_problem("cannot make a topic handle", rd_kafka_last_error());
  const rd_kafka_metadata_t* md_raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk.get(), 0, rkt.get(), &md_raw, remaining_ms(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return broker_problem("no metadata", err);
  std::unique_ptr<const rd_kafka_metadata_t, md_deleter> md(md_raw);
  if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return {};  // No such topic: nothing to read.
  }
  if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return broker_problem("topic metadata", md->topics[0].err);
  }

  // The end offsets now; the read is complete when every partition reached its own.
  int partitions = md->topics[0].partition_cnt;
  std::vector<int64_t> end(partitions, 0);
  std::vector<bool> done(partitions, true);
  size_t open = 0;
  std::unique_ptr<rd_kafka_topic_partition_list_t, list_deleter> assignment(
      rd_kafka_topic_partition_list_new(partitions));
  for (int i = 0; i < partitions; ++i) {
    int32_t p = md->topics[0].partitions[i].id;
    if (p < 0 || p >= partitions) return broker_problem("unexpected partition ids", err);
    int64_t lo = 0;
    int64_t hi = 0;
    err = rd_kafka_query_watermark_offsets(rk.get(), opts.topic.c_str(), p, &lo, &hi,
                                           remaining_ms(deadline));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return broker_problem("no end offset of partition " + std::to_string(p), err);
    }
    end[p] = hi;
    if (hi > lo) {
      done[p] = false;
      ++open;
      rd_kafka_topic_partition_list_add(assignment.get(), opts.topic.c_str(), p)->offset = lo;
    }
  }
  if (open == 0) return {};
  err = rd_kafka_assign(rk.get(), assignment.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return broker_problem("cannot assign partitions", err);

  consumed_record rec;
  while (open > 0) {
    if (steady::now() >= deadline) {
      return broker_problem("the end offsets were not reached in time (" + std::to_string(open) +
                                " partition(s) left)",
                            RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_message_t* msg =
        rd_kafka_consumer_poll(rk.get(), std::min(100, remaining_ms(deadline)));
    if (msg == nullptr) continue;
    int32_t p = msg->partition;
    bool mine = msg->rkt != nullptr && p >= 0 && p < partitions && !done[p];
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (mine && msg->offset >= end[p]) {
        done[p] = true;
        --open;
      }
    } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      st.last_error = rd_kafka_message_errstr(msg);
    } else if (mine) {
      rec.partition = p;
      rec.offset = msg->offset;
      rec.key.reset();
      if (msg->key != nullptr) rec.key.emplace(static_cast<const char*>(msg->key), msg->key_len);
      rec.value = msg->payload != nullptr
                      ? std::string_view(static_cast<const char*>(msg->payload), msg->len)
                      : std::string_view();
      rec.headers.clear();
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* val = nullptr;
        size_t size = 0;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          rec.headers.emplace_back(name, val != nullptr
                                             ? std::string_view(static_cast<const char*>(val), size)
                                             : std::string_view());
        }
      }
      on_record(rec);
      if (msg->offset + 1 >= end[p]) {
        done[p] = true;
        --open;
      }
    }
    rd_kafka_message_destroy(msg);
  }
  return {};
}

}  // namespace vigil::kafka
