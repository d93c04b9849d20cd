#include "operators/kafka/sink/rdkafka_txn_client.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/config.hpp"
#include "operators/kafka/sink/topic_reader.hpp"

namespace vigil::kafka {

namespace {

using steady = std::chrono::steady_clock;

/// Serves delivery reports every this many produced messages, so they do not pile up.
constexpr uint64_t poll_every = 1024;

int to_ms(int64_t us) {
  return static_cast<int>(std::clamp<int64_t>(us / 1000, 1, 1'000'000'000));
}

bool is_fencing(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

class rdkafka_txn_client final : public txn_client {
 public:
  explicit rdkafka_txn_client(txn_client_config config) : config_(std::move(config)) {
    who_ = config_.transactional_id.empty() ? "producer" : "'" + config_.transactional_id + "'";
  }
  ~rdkafka_txn_client() override { destroy(); }

  /// Makes the librdkafka handle (no network yet).
  status create() {
    char errstr[512] = {};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto set = [&](const std::string& key, const std::string& value) -> status {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        return make_error(errc::invalid_argument, "librdkafka " + key + ": " + errstr);
      }
      return {};
    };
    std::vector<std::pair<std::string, std::string>> settings = config_.properties;
    settings.emplace_back("bootstrap.servers", config_.bootstrap);
    settings.emplace_back("enable.idempotence", "true");
    if (transactional()) {
      settings.emplace_back("transactional.id", config_.transactional_id);
      settings.emplace_back("transaction.timeout.ms",
                            std::to_string(std::max(1000, to_ms(config_.timeout_us))));
    } else {
      settings.emplace_back("message.timeout.ms", "0");
    }
    for (const auto& [key, value] : settings) {
      if (auto st = set(key, value); !st) {
        rd_kafka_conf_destroy(conf);
        return st;
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::io_error, std::string("cannot create a Kafka producer: ") + errstr);
    }
    return {};
  }

  status init_transactions() override {
    if (fenced_) return fenced_error();
    if (rk_ != nullptr && (fatal_ || broken_)) destroy();
    if (rk_ == nullptr) VIGIL_TRY(create());
    if (!transactional() || initialized_) return {};
    if (auto st =
            check(rd_kafka_init_transactions(rk_, to_ms(config_.timeout_us)), "init_transactions");
        !st) {
      // A timed-out init may be retried on the same handle; anything else starts over.
      return st;
    }
    initialized_ = true;
    return {};
  }

  status begin_transaction() override {
    VIGIL_TRY(usable());
    VIGIL_TRY(check(rd_kafka_begin_transaction(rk_), "begin_transaction"));
    in_txn_ = true;
    return {};
  }

  status produce(const std::string& topic, std::optional<std::string_view> key,
                 std::string_view value, std::span<const message_header> headers) override {
    if (!transactional() && fatal_) {
      // An idempotent producer that hit a fatal error (its queued messages failed with it) is
      // replaced; the transactional one is replaced by the next init_transactions().
      spdlog::warn("kafka_sink {}: replacing the producer after a fatal error", who_);
      destroy();
      VIGIL_TRY(create());
    }
    VIGIL_TRY(usable());
    vus_.clear();
    rd_kafka_vu_t vu{};
    vu.vtype = RD_KAFKA_VTYPE_TOPIC;
    vu.u.cstr = topic.c_str();
    vus_.push_back(vu);
    if (key) {
      vu.vtype = RD_KAFKA_VTYPE_KEY;
      vu.u.mem = {const_cast<char*>(key->data()), key->size()};
      vus_.push_back(vu);
    }
    vu.vtype = RD_KAFKA_VTYPE_VALUE;
    vu.u.mem = {const_cast<char*>(value.data()), value.size()};  // Copied: RD_KAFKA_MSG_F_COPY.
    vus_.push_back(vu);
    vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu.u.i = RD_KAFKA_MSG_F_COPY;
    vus_.push_back(vu);
    for (const auto& h : headers) {
      vu.vtype = RD_KAFKA_VTYPE_HEADER;
      vu.u.header = {h.name, h.value.data(), static_cast<ssize_t>(h.value.size())};
      vus_.push_back(vu);
    }
    auto deadline = steady::now() + std::chrono::microseconds(config_.timeout_us);
    auto warn_at = steady::now() + std::chrono::seconds(5);
    for (;;) {
      rd_kafka_error_t* e = rd_kafka_produceva(rk_, vus_.data(), vus_.size());
      if (e == nullptr) break;
      if (rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return check(e, "produce to '" + topic + "'");
      }
      rd_kafka_error_destroy(e);
      // The local queue is full: serve delivery reports until there is room again.
      rd_kafka_poll(rk_, 10);
      auto now = steady::now();
      if (now >= deadline) {
        return broker_error("produce to '" + topic + "': the producer queue stayed full for " +
                                std::to_string(config_.timeout_us / 1000) + " ms",
                            errc::resource_exhausted);
      }
      if (now >= warn_at) {
        spdlog::warn("kafka_sink {}: producer queue full, waiting for the broker ({})", who_,
                     last_error_.empty() ? std::string("no error reported") : last_error_);
        warn_at = now + std::chrono::seconds(5);
      }
    }
    if (++produced_ % poll_every == 0) rd_kafka_poll(rk_, 0);
    return {};
  }

  status commit_transaction() override {
    VIGIL_TRY(usable());
    VIGIL_TRY(
        check(rd_kafka_commit_transaction(rk_, to_ms(config_.timeout_us)), "commit_transaction"));
    in_txn_ = false;
    return {};
  }

  status abort_transaction() override {
    if (rk_ == nullptr || !initialized_ || !in_txn_) return {};
    if (auto st =
            check(rd_kafka_abort_transaction(rk_, to_ms(config_.timeout_us)), "abort_transaction");
        !st) {
      // The handle's transaction state is unknown: the next init starts with a fresh one.
      broken_ = true;
      initialized_ = false;
      return st;
    }
    in_txn_ = false;
    return {};
  }

  status flush() override {
    if (rk_ == nullptr) return {};
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_, to_ms(config_.timeout_us));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return broker_error(std::to_string(rd_kafka_outq_len(rk_)) +
                          " message(s) not acknowledged by the broker within " +
                          std::to_string(config_.timeout_us / 1000) + " ms");
    }
    if (failed_ > 0) {
      std::string msg = std::to_string(failed_) + " message(s) failed: " + first_failure_;
      failed_ = 0;
      first_failure_.clear();
      return make_error(errc::io_error, "kafka " + who_ + ": " + msg);
    }
    return {};
  }

  result<std::optional<progress_marker>> last_marker(const std::string& progress_topic,
                                                     std::string_view sink_id,
                                                     std::string_view run) override {
    topic_read_options opts;
    opts.bootstrap = config_.bootstrap;
    opts.topic = progress_topic;
    opts.read_committed = true;
    opts.timeout_us = config_.timeout_us;
    opts.properties = config_.properties;
    std::optional<progress_marker> best;
    std::string bad;
    auto st = read_topic(opts, [&](const consumed_record& r) {
      if (!r.key || *r.key != sink_id) return;
      auto m = parse_marker(r.value);
      if (!m) {
        if (bad.empty()) bad = m.err().message;
        return;
      }
      if (m->sink == sink_id && m->run == run && (!best || m->epoch > best->epoch)) {
        best = std::move(*m);
      }
    });
    if (!st) return st.err();
    if (!bad.empty()) {
      spdlog::warn("kafka_sink {}: progress topic '{}' holds an unreadable marker: {}", who_,
                   progress_topic, bad);
    }
    return best;
  }

  bool fenced() const override { return fenced_; }

 private:
  bool transactional() const { return !config_.transactional_id.empty(); }

  status usable() {
    if (fenced_) return fenced_error();
    if (rk_ == nullptr || fatal_ || broken_ || (transactional() && !initialized_)) {
      return make_error(errc::io_error, "kafka " + who_ + ": the producer is not initialized");
    }
    return {};
  }

  error fenced_error() const {
    return make_error(errc::io_error, "kafka " + who_ +
                                          ": fenced by a newer producer with the same "
                                          "transactional.id (this instance is a zombie)");
  }

  error broker_error(std::string what, errc code = errc::io_error) const {
    std::string msg = "kafka " + who_ + " at " + config_.bootstrap + ": " + std::move(what);
    if (!last_error_.empty()) msg += " (broker: " + last_error_ + ")";
    return make_error(code, std::move(msg));
  }

  /// Turns a librdkafka error object into a status, noting fatal errors and fencing.
  status check(rd_kafka_error_t* e, const std::string& call) {
    if (e == nullptr) return {};
    rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    std::string text = rd_kafka_error_string(e);
    bool fatal = rd_kafka_error_is_fatal(e) != 0;
    rd_kafka_error_destroy(e);
    if (fatal) {
      char buf[512] = {};
      rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk_, buf, sizeof buf);
      if (is_fencing(code) || is_fencing(cause)) fenced_ = true;
      fatal_ = true;
      initialized_ = false;
      if (cause != RD_KAFKA_RESP_ERR_NO_ERROR) text = buf;
    } else if (is_fencing(code)) {
      fenced_ = true;
    }
    if (fenced_) return fenced_error();
    return broker_error(call + ": " + text);
  }

  void destroy() {
    if (rk_ == nullptr) return;
    // Undelivered messages are dropped: what a destroyed producer held is retried by the
    // protocol (exactly once) or was not yet covered by a checkpoint (at least once).
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    initialized_ = false;
    in_txn_ = false;
    fatal_ = false;
    broken_ = false;
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    auto* self = static_cast<rdkafka_txn_client*>(opaque);
    if (self->failed_++ == 0) self->first_failure_ = rd_kafka_err2str(msg->err);
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<rdkafka_txn_client*>(opaque);
    std::string text =
        std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512] = {};
      if (is_fencing(rd_kafka_fatal_error(rk, buf, sizeof buf))) self->fenced_ = true;
      self->fatal_ = true;
      text = std::string("fatal: ") + buf;
    }
    if (text != self->last_error_) {
      spdlog::warn("kafka_sink {}: {}", self->who_, text);
      self->last_error_ = std::move(text);
    }
  }

  txn_client_config config_;
  std::string who_;  ///< For messages: the transactional id or "producer".
  rd_kafka_t* rk_ = nullptr;
  bool initialized_ = false;  ///< init_transactions succeeded on rk_.
  bool in_txn_ = false;
  bool fatal_ = false;   ///< rk_ had a fatal error and must be replaced.
  bool broken_ = false;  ///< rk_'s transaction state is unknown and must be replaced.
  bool fenced_ = false;
  uint64_t produced_ = 0;
  uint64_t failed_ = 0;  ///< Failed deliveries since the last flush.
  std::string first_failure_;
  std::string last_error_;          ///< The latest asynchronous broker error.
  std::vector<rd_kafka_vu_t> vus_;  ///< Reused for every message.
};

}  // namespace

result<std::unique_ptr<txn_client>> make_rdkafka_txn_client(const txn_client_config& config) {
  auto client = std::make_unique<rdkafka_txn_client>(config);
  VIGIL_TRY(client->create());
  return std::unique_ptr<txn_client>(std::move(client));
}

const std::vector<std::string>& managed_producer_properties() {
  static const std::vector<std::string> names = {"bootstrap.servers",
                                                 "metadata.broker.list",
                                                 "transactional.id",
                                                 "enable.idempotence",
                                                 "transaction.timeout.ms",
                                                 "message.timeout.ms",
                                                 "dr_msg_cb",
                                                 "error_cb",
                                                 "opaque"};
  return names;
}

status check_producer_properties(const std::vector<std::pair<std::string, std::string>>& props) {
  char errstr[512] = {};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : props) {
    const auto& managed = managed_producer_properties();
    if (std::find(managed.begin(), managed.end(), key) != managed.end()) {
      rd_kafka_conf_destroy(conf);
      return config_reader::key_error("properties." + key, "is set by the sink itself");
    }
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return config_reader::key_error("properties." + key, errstr);
    }
  }
  rd_kafka_conf_destroy(conf);
  return {};
}

}  // namespace vigil::kafka
