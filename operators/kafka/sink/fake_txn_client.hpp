#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "operators/kafka/sink/txn_client.hpp"

/// Test support: an in-memory transactional Kafka with the isolation and fencing the test
/// broker lacks, and with crash and failure injection. Header-only; only tests include it.

namespace vigil::kafka {

/// The broker side: topics as lists of records, transactions per transactional id.
class fake_txn_broker {
 public:
  struct record {
    std::string topic;
    std::optional<std::string> key;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;

    /// The value of header `name`, or "".
    std::string header(const std::string& name) const {
      for (const auto& [n, v] : headers) {
        if (n == name) return v;
      }
      return {};
    }
  };

  /// Records of committed transactions and of non-transactional producers, in commit order:
  /// what a read_committed consumer sees.
  std::vector<record> committed(const std::string& topic) const {
    std::vector<record> out;
    for (const auto& r : state_->committed) {
      if (r.topic == topic) out.push_back(r);
    }
    return out;
  }

  /// Every record produced, aborted and open transactions included (what the mock broker shows).
  const std::vector<record>& log() const { return state_->log; }

  /// A txn_client_maker whose clients talk to this broker.
  txn_client_maker maker() {
    auto st = state_;
    return [st](const txn_client_config& cfg) -> result<std::unique_ptr<txn_client>> {
      return std::unique_ptr<txn_client>(new client(st, cfg.transactional_id));
    };
  }

  /// The `n`-th client call from now (1-based, counting every call of every client) kills the
  /// client that makes it, like the death of its process: with `after`, the call takes effect
  /// first. Every later call of that client fails without effect, it reports itself fenced, and
  /// crashed() turns true.
  void crash_at(int64_t n, bool after) {
    state_->crash_op = state_->ops + n;
    state_->crash_after = after;
  }

  /// The `n`-th client call from now fails with an io_error and no effect; the client lives on.
  void fail_at(int64_t n) { state_->fail_op = state_->ops + n; }

  bool crashed() const { return state_->crashed; }
  /// Forgets the crash (the test restarted the sink).
  void clear_crash() { state_->crashed = false; }
  /// Client calls so far.
  int64_t ops() const { return state_->ops; }

 private:
  struct txn_state {
    int64_t producer_epoch = 0;
    std::vector<record> open;  ///< The open transaction's records.
  };

  struct shared {
    std::vector<record> committed;
    std::vector<record> log;
    std::map<std::string, txn_state, std::less<>> txns;
    int64_t ops = 0;
    int64_t crash_op = -1;
    bool crash_after = false;
    bool crashed = false;
    int64_t fail_op = -1;
  };

  class client final : public txn_client {
   public:
    client(std::shared_ptr<shared> st, std::string tid)
        : st_(std::move(st)), tid_(std::move(tid)) {}

    status init_transactions() override {
      return call([&]() -> status {
        if (fenced_) return fenced_error();
        txn_state& t = st_->txns[tid_];
        ++t.producer_epoch;  // Fences every older client with this id.
        t.open.clear();      // Aborts the transaction such a client left open.
        epoch_ = t.producer_epoch;
        in_txn_ = false;
        return {};
      });
    }

    status begin_transaction() override {
      return call([&]() -> status {
        VIGIL_TRY(check_epoch());
        if (in_txn_) return make_error(errc::internal, "fake kafka: a transaction is open");
        in_txn_ = true;
        return {};
      });
    }

    status produce(const std::string& topic, std::optional<std::string_view> key,
                   std::string_view value, std::span<const message_header> headers) override {
      return call([&]() -> status {
        record r;
        r.topic = topic;
        if (key) r.key = std::string(*key);
        r.value = std::string(value);
        for (const auto& h : headers) r.headers.emplace_back(h.name, std::string(h.value));
        if (tid_.empty()) {
          st_->committed.push_back(r);
          st_->log.push_back(std::move(r));
          return {};
        }
        VIGIL_TRY(check_epoch());
        if (!in_txn_) return make_error(errc::internal, "fake kafka: produce outside a txn");
        st_->txns[tid_].open.push_back(r);
        st_->log.push_back(std::move(r));
        return {};
      });
    }

    status commit_transaction() override {
      return call([&]() -> status {
        VIGIL_TRY(check_epoch());
        if (!in_txn_) return make_error(errc::internal, "fake kafka: commit outside a txn");
        auto& open = st_->txns[tid_].open;
        for (auto& r : open) st_->committed.push_back(std::move(r));
        open.clear();
        in_txn_ = false;
        return {};
      });
    }

    status abort_transaction() override {
      return call([&]() -> status {
        if (!in_txn_) return {};
        VIGIL_TRY(check_epoch());
        st_->txns[tid_].open.clear();
        in_txn_ = false;
        return {};
      });
    }

    status flush() override {
      return call([]() -> status { return {}; });
    }

    result<std::optional<progress_marker>> last_marker(const std::string& progress_topic,
                                                       std::string_view sink_id,
                                                       std::string_view run) override {
      std::optional<progress_marker> best;
      auto st = call([&]() -> status {
        for (const auto& r : st_->committed) {
          if (r.topic != progress_topic || !r.key || *r.key != sink_id) continue;
          auto m = parse_marker(r.value);
          if (!m) return m.err();
          if (m->run == run && (!best || m->epoch > best->epoch)) best = *m;
        }
        return {};
      });
      if (!st) return st.err();
      return best;
    }

    /// A dead client reports itself fenced too, so that the sink stops retrying at once (its
    /// process would be gone).
    bool fenced() const override { return fenced_ || dead_; }

   private:
    /// Counts the call and applies crash and failure injection around `op`.
    template <class F>
    status call(F&& op) {
      if (dead_) return make_error(errc::io_error, "fake kafka: this client's process is dead");
      int64_t n = ++st_->ops;
      if (n == st_->fail_op) return make_error(errc::io_error, "fake kafka: injected failure");
      if (n == st_->crash_op) {
        if (st_->crash_after) (void)op();
        dead_ = true;
        st_->crashed = true;
        return make_error(errc::io_error, "fake kafka: injected crash");
      }
      return op();
    }

    status check_epoch() {
      if (epoch_ == 0) return make_error(errc::internal, "fake kafka: init_transactions first");
      if (fenced_ || st_->txns[tid_].producer_epoch != epoch_) {
        fenced_ = true;
        return fenced_error();
      }
      return {};
    }

    static error fenced_error() {
      return make_error(errc::io_error, "fake kafka: fenced by a newer producer");
    }

    std::shared_ptr<shared> st_;
    std::string tid_;
    int64_t epoch_ = 0;
    bool in_txn_ = false;
    bool fenced_ = false;
    bool dead_ = false;
  };

  std::shared_ptr<shared> state_ = std::make_shared<shared>();
};

}  // namespace vigil::kafka
