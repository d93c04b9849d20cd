#include "operators/connectors/generator_source.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "operators/connectors/connectors.hpp"
#include "operators/connectors/token_bucket.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::num;
using testing::operator_harness;
using testing::str;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;

struct generated_row {
  std::string key;
  int64_t seq = 0;
  double value = 0;
  int64_t ts = 0;
  int64_t event_time = 0;

  friend bool operator==(const generated_row&, const generated_row&) = default;
};

/// What one subtask produced: its rows and, per poll, the result and how many rows came before.
struct subtask_run {
  std::vector<generated_row> rows;
  std::vector<poll_result> polls;
  std::vector<size_t> rows_before_poll_end;
};

class GeneratorTest : public ::testing::Test {
 protected:
  GeneratorTest() { register_connectors(registry_); }

  /// Polls subtask `subtask` of `parallelism` until it finishes (at most `max_polls` times).
  subtask_run run(const config_map& config, uint32_t subtask, uint32_t parallelism,
                  size_t batch_size, size_t max_polls = 100000) {
    operator_harness h(registry_, "generator", config, {}, subtask, parallelism, batch_size);
    subtask_run r;
    for (size_t i = 0; i < max_polls; ++i) {
      const poll_result p = h.poll();
      r.polls.push_back(p);
      collect(h, r.rows);
      r.rows_before_poll_end.push_back(r.rows.size());
      if (p.st == poll_result::state::finished) break;
    }
    return r;
  }

  static void collect(operator_harness& h, std::vector<generated_row>& rows) {
    for (const auto& b : h.batches(0)) {
      EXPECT_LE(b->num_rows(), h.context().batch_size);
      for (size_t i = 0; i < b->num_rows(); ++i) {
        generated_row row;
        const column& key = b->columns[0];
        row.key = key.type == type_id::string ? std::string(key.string_at(i))
                                              : std::to_string(key.ints[i]);
        row.seq = b->columns[1].ints[i];
        row.value = b->columns[2].doubles[i];
        row.ts = b->columns[3].ints[i];
        row.event_time = b->event_time[i];
        rows.push_back(row);
      }
    }
    h.clear_output();
  }

  static std::string error_of(const result<plan_ptr>& r) { return r ? "" : r.err().message; }

  operator_registry registry_;
};

TEST_F(GeneratorTest, Schema) {
  auto plan = operator_harness::try_plan(registry_, "generator", {}, {});
  ASSERT_TRUE(plan) << plan.err().message;
  ASSERT_EQ((*plan)->outputs.size(), 1u);
  EXPECT_EQ((*plan)->outputs[0].schema->to_string(),
            "key:int64, seq:int64, value:double, ts:timestamp");
  EXPECT_FALSE((*plan)->outputs[0].keyed());
  auto s =
      operator_harness::try_plan(registry_, "generator", cfg({{"key_type", str("string")}}), {});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->outputs[0].schema->at(0).type, type_id::string);
  const operator_traits& t = registry_.find("generator")->traits();
  EXPECT_TRUE(t.input_ports.empty());
  EXPECT_EQ(t.output_ports, std::vector<std::string>{"out"});
  EXPECT_FALSE(t.keyed);
  EXPECT_FALSE(t.stateful);
}

TEST_F(GeneratorTest, FirstRecordsByHand) {
  // Without out-of-orderness, ts = start + seq * interval exactly, and the hashed fields follow
  // generate_values().
  auto r = run(cfg({{"count", num(3)}, {"interval", str("10s")}}), 0, 1, 1024);
  ASSERT_EQ(r.rows.size(), 3u);
  for (int64_t seq = 0; seq < 3; ++seq) {
    const generated_row& row = r.rows[seq];
    const generated_values g = generate_values(42, seq, 100, 0);
    EXPECT_EQ(row.seq, seq);
    EXPECT_EQ(row.key, std::to_string(g.key));
    EXPECT_EQ(row.value, g.value);
    EXPECT_EQ(row.ts, jan1_2026 + seq * 10'000'000);
    EXPECT_EQ(row.event_time, row.ts);
  }
  // All three fit in one poll, which therefore reports the end.
  ASSERT_EQ(r.polls.size(), 1u);
  EXPECT_EQ(r.polls[0].st, poll_result::state::finished);
  EXPECT_EQ(r.polls[0].watermark, max_watermark);
}

TEST_F(GeneratorTest, SameRecordsWhateverParallelismAndBatchSize) {
  const auto config = cfg({{"count", num(1000)},
                           {"keys", num(17)},
                           {"seed", num(7)},
                           {"out_of_orderness", str("5ms")}});
  std::vector<generated_row> reference = run(config, 0, 1, 1024).rows;
  ASSERT_EQ(reference.size(), 1000u);
  for (size_t i = 0; i < reference.size(); ++i) ASSERT_EQ(reference[i].seq, int64_t(i));

  for (uint32_t p : {1u, 2u, 4u}) {
    for (size_t batch : {size_t{1}, size_t{7}, size_t{1024}}) {
      std::vector<generated_row> all;
      for (uint32_t i = 0; i < p; ++i) {
        auto r = run(config, i, p, batch);
        EXPECT_EQ(r.polls.back().st, poll_result::state::finished);
        int64_t prev = -1;
        for (const auto& row : r.rows) {
          EXPECT_EQ(row.seq % p, i) << "subtask " << i << " of " << p;
          EXPECT_GT(row.seq, prev);
          prev = row.seq;
        }
        all.insert(all.end(), r.rows.begin(), r.rows.end());
      }
      std::sort(all.begin(), all.end(),
                [](const generated_row& a, const generated_row& b) { return a.seq < b.seq; });
      EXPECT_EQ(all, reference) << "parallelism " << p << ", batch size " << batch;
    }
  }
}

// The position for a checkpoint's lineage: this subtask's next sequence number and how many
// records it emitted.
TEST_F(GeneratorTest, PositionIsTheNextSequenceNumberAndTheRecordsEmitted) {
  operator_harness h(registry_, "generator", cfg({{"count", num(10)}}), {}, 1, 2, 4);
  EXPECT_EQ(h.op().position_json(), R"({"next_seq":1,"emitted":0})");
  ASSERT_EQ(h.poll().st, poll_result::state::more);  // Sequence numbers 1, 3, 5, 7.
  EXPECT_EQ(h.op().position_json(), R"({"next_seq":9,"emitted":4})");
  ASSERT_EQ(h.poll().st, poll_result::state::finished);  // 9: the last of subtask 1.
  EXPECT_EQ(h.op().position_json(), R"({"next_seq":11,"emitted":5})");
}

TEST_F(GeneratorTest, SeedChangesTheData) {
  auto a = run(cfg({{"count", num(50)}}), 0, 1, 1024).rows;
  auto b = run(cfg({{"count", num(50)}, {"seed", num(43)}}), 0, 1, 1024).rows;
  size_t same_keys = 0;
  for (size_t i = 0; i < a.size(); ++i) same_keys += a[i].key == b[i].key ? 1 : 0;
  EXPECT_LT(same_keys, 10u);
}

TEST_F(GeneratorTest, KeyAndValueRanges) {
  auto r = run(cfg({{"count", num(5000)}, {"keys", num(10)}}), 0, 1, 1024);
  std::map<std::string, int> per_key;
  for (const auto& row : r.rows) {
    ++per_key[row.key];
    EXPECT_GE(row.value, 0.0);
    EXPECT_LT(row.value, 100.0);
    EXPECT_EQ(std::round(row.value * 1000) / 1000, row.value);
  }
  ASSERT_EQ(per_key.size(), 10u);  // Keys 0..9, each used.
  EXPECT_EQ(per_key.begin()->first, "0");
  EXPECT_EQ(per_key.rbegin()->first, "9");
  for (const auto& [key, n] : per_key) EXPECT_GT(n, 350) << key;  // About 500 each.
}

TEST_F(GeneratorTest, StringKeys) {
  auto r = run(cfg({{"count", num(200)}, {"keys", num(5)}, {"key_type", str("string")}}), 0, 1, 64);
  ASSERT_EQ(r.rows.size(), 200u);
  for (const auto& row : r.rows) {
    const generated_values g = generate_values(42, row.seq, 5, 0);
    EXPECT_EQ(row.key, "k00000" + std::to_string(g.key));
  }
  // Keys with more than six digits are not cut.
  auto big = run(cfg({{"count", num(50)}, {"keys", num(100'000'000)}, {"key_type", str("string")}}),
                 0, 1, 1024);
  for (const auto& row : big.rows) {
    const generated_values g = generate_values(42, row.seq, 100'000'000, 0);
    std::string digits = std::to_string(g.key);
    if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
    EXPECT_EQ(row.key, "k" + digits);
  }
}

TEST_F(GeneratorTest, OutOfOrdernessBoundAndWatermark) {
  const int64_t ooo = 20'000;  // 20ms
  const int64_t interval = 1'000;
  const auto config = cfg({{"count", num(2000)}, {"out_of_orderness", str("20ms")}});
  bool saw_disorder = false;
  for (uint32_t p : {1u, 3u}) {
    for (uint32_t i = 0; i < p; ++i) {
      auto r = run(config, i, p, 7);
      int64_t prev_ts = min_watermark;
      for (const auto& row : r.rows) {
        const int64_t base = jan1_2026 + row.seq * interval;
        EXPECT_LE(row.ts, base);
        EXPECT_GE(row.ts, base - ooo);
        saw_disorder |= row.ts < prev_ts;
        prev_ts = row.ts;
      }
      // The watermark after a poll is below every record emitted by a later poll, and equals the
      // last emitted base time minus the bound.
      int64_t last_wm = min_watermark;
      for (size_t k = 0; k < r.polls.size(); ++k) {
        const poll_result& pr = r.polls[k];
        if (pr.st == poll_result::state::finished) {
          EXPECT_EQ(pr.watermark, max_watermark);
          continue;
        }
        const size_t end = r.rows_before_poll_end[k];
        ASSERT_GT(end, 0u);
        EXPECT_EQ(pr.watermark, jan1_2026 + r.rows[end - 1].seq * interval - ooo);
        EXPECT_GE(pr.watermark, last_wm);
        last_wm = pr.watermark;
        for (size_t j = end; j < r.rows.size(); ++j) {
          ASSERT_GT(r.rows[j].event_time, pr.watermark) << "row " << j << " after poll " << k;
        }
      }
    }
  }
  EXPECT_TRUE(saw_disorder);
}

TEST_F(GeneratorTest, CountSplitsExactly) {
  const auto config = cfg({{"count", num(10)}});
  const size_t expected[] = {3, 3, 2, 2};
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(run(config, i, 4, 2).rows.size(), expected[i]) << "subtask " << i;
  }
  // A subtask without any share finishes at once.
  auto empty = run(cfg({{"count", num(3)}}), 3, 4, 1024);
  EXPECT_TRUE(empty.rows.empty());
  ASSERT_EQ(empty.polls.size(), 1u);
  EXPECT_EQ(empty.polls[0].st, poll_result::state::finished);
  EXPECT_EQ(empty.polls[0].watermark, max_watermark);
}

TEST_F(GeneratorTest, UnboundedByDefault) {
  auto r = run({}, 1, 2, 100, 20);
  ASSERT_EQ(r.polls.size(), 20u);
  for (const auto& p : r.polls) EXPECT_EQ(p.st, poll_result::state::more);
  ASSERT_EQ(r.rows.size(), 2000u);
  EXPECT_EQ(r.rows.back().seq, 3999);
}

TEST_F(GeneratorTest, RateLimitThrottles) {
  // One record per second: the bucket holds one token, so the first poll emits one record and
  // the next is throttled for (almost) a second.
  operator_harness h(registry_, "generator", cfg({{"rate", num(1)}}), {}, 0, 1, 1024);
  poll_result first = h.poll();
  EXPECT_EQ(first.st, poll_result::state::more);
  EXPECT_EQ(h.rows().size(), 1u);
  poll_result second = h.poll();
  EXPECT_EQ(second.st, poll_result::state::throttled);
  EXPECT_GT(second.retry_after_us, 0);
  EXPECT_LE(second.retry_after_us, 1'000'000);
  EXPECT_EQ(second.watermark, first.watermark);
  EXPECT_EQ(h.rows().size(), 1u);
}

TEST(TokenBucket, RefillsAtRateUpToBurst) {
  token_bucket b(1000, 10);  // 1000/s = one per ms, burst 10.
  EXPECT_EQ(b.take(100, 0), 10u);
  EXPECT_EQ(b.take(1, 0), 0u);
  EXPECT_EQ(b.wait_us(0), 1000);
  EXPECT_EQ(b.wait_us(400), 600);
  EXPECT_EQ(b.take(5, 3000), 3u);
  EXPECT_EQ(b.take(100, 1'000'000), 10u);  // Capped at the burst.
  EXPECT_EQ(b.take(1, 999'000), 0u);       // A clock going back adds nothing.
}

TEST_F(GeneratorTest, PausesAfterCountThenContinues) {
  operator_harness h(registry_, "generator",
                     cfg({{"pause_after", num(5)}, {"pause_for", str("1h")}, {"count", num(8)}}),
                     {}, 0, 1, 3);
  EXPECT_EQ(h.poll().st, poll_result::state::more);
  const poll_result second = h.poll();
  EXPECT_EQ(second.st, poll_result::state::more);
  EXPECT_EQ(h.rows().size(), 5u);
  const poll_result paused = h.poll();
  EXPECT_EQ(paused.st, poll_result::state::no_data);
  EXPECT_GT(paused.retry_after_us, 3'500'000'000LL);
  EXPECT_LE(paused.retry_after_us, 3'600'000'000LL);
  EXPECT_EQ(paused.watermark, second.watermark);
  EXPECT_EQ(h.poll().st, poll_result::state::no_data);
  EXPECT_EQ(h.rows().size(), 5u);

  // With a 1µs pause the source resumes as soon as the clock has moved.
  operator_harness quick(
      registry_, "generator",
      cfg({{"pause_after", num(2)}, {"pause_for", str("1us")}, {"count", num(4)}}), {}, 0, 1, 1024);
  EXPECT_EQ(quick.poll().st, poll_result::state::more);
  poll_result p = quick.poll();
  EXPECT_EQ(p.st, poll_result::state::no_data);
  for (int spins = 0; spins < 10'000'000 && p.st == poll_result::state::no_data; ++spins) {
    p = quick.poll();
  }
  EXPECT_EQ(p.st, poll_result::state::finished);
  EXPECT_EQ(quick.rows().size(), 4u);
}

TEST_F(GeneratorTest, StartTimeAndInterval) {
  auto iso = run(cfg({{"count", num(2)},
                      {"start_time", str("2026-03-01T12:00:00+01:00")},
                      {"interval", str("2s")}}),
                 0, 1, 1024);
  ASSERT_EQ(iso.rows.size(), 2u);
  const int64_t start = (1772362800LL) * 1'000'000;  // 2026-03-01T11:00:00Z
  EXPECT_EQ(iso.rows[0].ts, start);
  EXPECT_EQ(iso.rows[1].ts, start + 2'000'000);
  auto micros = run(cfg({{"count", num(1)}, {"start_time", num(123)}}), 0, 1, 1024);
  ASSERT_EQ(micros.rows.size(), 1u);
  EXPECT_EQ(micros.rows[0].ts, 123);
}

TEST_F(GeneratorTest, ConfigErrorsNameTheKey) {
  auto err = [&](const config_map& c) {
    return error_of(operator_harness::try_plan(registry_, "generator", c, {}));
  };
  EXPECT_NE(err(cfg({{"keys", num(0)}})).find("config.keys"), std::string::npos);
  EXPECT_NE(err(cfg({{"count", num(-1)}})).find("config.count"), std::string::npos);
  EXPECT_NE(err(cfg({{"count", str("many")}})).find("config.count"), std::string::npos);
  EXPECT_NE(err(cfg({{"key_type", str("uuid")}})).find("config.key_type"), std::string::npos);
  EXPECT_NE(err(cfg({{"interval", str("0ms")}})).find("config.interval"), std::string::npos);
  EXPECT_NE(err(cfg({{"interval", num(0)}})).find("config.interval"), std::string::npos);
  EXPECT_NE(err(cfg({{"interval", str("fast")}})).find("config.interval"), std::string::npos);
  EXPECT_NE(err(cfg({{"rate", num(-5)}})).find("config.rate"), std::string::npos);
  EXPECT_NE(err(cfg({{"start_time", str("yesterday")}})).find("config.start_time"),
            std::string::npos);
  EXPECT_NE(err(cfg({{"start_time", config_value::of_bool(true)}})).find("config.start_time"),
            std::string::npos);
  EXPECT_NE(err(cfg({{"out_of_orderness", str("-1s")}})).find("config.out_of_orderness"),
            std::string::npos);
  EXPECT_NE(err(cfg({{"pause_after", num(10)}})).find("config.pause_for"), std::string::npos);
  EXPECT_NE(err(cfg({{"pause_for", str("1s")}})).find("config.pause_for"), std::string::npos);
  EXPECT_NE(
      err(cfg({{"pause_after", num(-1)}, {"pause_for", str("1s")}})).find("config.pause_after"),
      std::string::npos);
  EXPECT_NE(err(cfg({{"cuont", num(10)}})).find("config.cuont: unknown key"), std::string::npos);
  EXPECT_NE(err(cfg({{"count", num(10)}, {"interval", str("100000000d")}})).find("config.count"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil
