#include "operators/core/join_temporal.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "operators/core/join_common.hpp"
#include "operators/core/join_operators.hpp"
#include "runtime/state_backend.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::num;
using testing::operator_harness;
using testing::row_text;
using testing::str;

using rows_t = std::vector<std::string>;

constexpr size_t left_port = 0;
constexpr size_t right_port = 1;
constexpr size_t late_port = 1;

std::string s(const char* v) {
  return v;
}
int64_t i(int64_t v) {
  return v;
}

class TemporalJoin : public ::testing::Test {
 protected:
  TemporalJoin() { register_join_operators(registry_); }

  batch_ptr left(std::vector<std::vector<cell>> rows, std::vector<int64_t> times) {
    return make_rows(left_schema_, rows, times, {0});
  }
  /// Versions: pid, lactate, note.
  batch_ptr right(std::vector<std::vector<cell>> rows, std::vector<int64_t> times) {
    return make_rows(right_schema_, rows, times, {0});
  }
  std::vector<stream_info> inputs() const { return {{left_schema_, {0}}, {right_schema_, {0}}}; }

  /// The number of rows (left) or versions (right) in `state`.
  static size_t entries(operator_harness& h, const char* state) {
    auto id = h.context().state->declare(state, state_backend::kind::value);
    EXPECT_TRUE(id.ok());
    size_t n = 0;
    h.context().state->scan_all(*id, [&](uint32_t, std::string_view, std::string_view value) {
      n += join::count_entries(value);
      return true;
    });
    return n;
  }

  operator_registry registry_;
  schema_ptr left_schema_ =
      make_schema({{"pid", type_id::string, true}, {"hr", type_id::int64, false}});
  schema_ptr right_schema_ = make_schema({{"pid", type_id::string, false},
                                          {"lactate", type_id::float64, true},
                                          {"note", type_id::string, true}});
};

/// Runs one temporal_join subtask through subtask_driver directly, to reach the instance's
/// counters (operator_harness does not expose the instance).
class driven_join : public output {
 public:
  driven_join(const operator_registry& registry, const config_map& config,
              std::vector<stream_info> inputs) {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-temporal-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    const operator_factory* f = registry.find("temporal_join");
    plan_context ctx;
    ctx.node_id = "test";
    ctx.config = &config;
    ctx.inputs = std::move(inputs);
    auto plan = f->plan(ctx);
    EXPECT_TRUE(plan.ok());
    plan_ = *plan;
    subtask_driver::options opts;
    opts.node_id = "test";
    opts.state_dir = dir_.string();
    auto d = subtask_driver::make(*f, *plan_, opts, *this);
    EXPECT_TRUE(d.ok());
    driver_ = std::move(*d);
  }
  ~driven_join() override {
    driver_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void emit(size_t port, batch_ptr batch) override {
    for (size_t r = 0; r < batch->num_rows(); ++r) rows_[port].push_back(row_text(*batch, r));
  }

  subtask_driver& driver() { return *driver_; }
  const temporal_join_stats& stats() { return *temporal_join_stats_of(driver_->op()); }
  const rows_t& rows(size_t port = 0) { return rows_[port]; }

 private:
  std::filesystem::path dir_;
  plan_ptr plan_;
  std::unique_ptr<subtask_driver> driver_;
  rows_t rows_[2];
};

TEST_F(TemporalJoin, PlanOutputs) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  const auto& outs = h.plan().outputs;
  ASSERT_EQ(outs.size(), 2u);
  // The right key field is left out; inner mode keeps the right fields' nullability.
  EXPECT_EQ(outs[0].schema->to_string(), "pid:string?, hr:int64, lactate:double?, note:string?");
  EXPECT_EQ(outs[0].key_fields, (std::vector<int>{0}));
  EXPECT_EQ(*outs[1].schema, *left_schema_);
  EXPECT_EQ(outs[1].key_fields, (std::vector<int>{0}));
  const operator_factory* f = registry_.find("temporal_join");
  EXPECT_TRUE(f->traits().keyed);
  EXPECT_TRUE(f->traits().stateful);
  EXPECT_EQ(f->traits().input_ports, (std::vector<std::string>{"left", "right"}));
  EXPECT_EQ(f->traits().output_ports, (std::vector<std::string>{"out", "late"}));

  // Left mode makes the right fields nullable; collisions get the prefix.
  auto rs = make_schema({{"hr", type_id::int64, false}, {"pid", type_id::string, false}});
  operator_harness l(registry_, "temporal_join", cfg({{"mode", str("left")}}),
                     {{left_schema_, {0}}, {rs, {1}}});
  EXPECT_EQ(l.plan().outputs[0].schema->to_string(), "pid:string?, hr:int64, right_hr:int64?");
}

TEST_F(TemporalJoin, AsOfSemanticsInnerMode) {
  driven_join j(registry_, cfg({}), inputs());
  // Left rows first, versions later: nothing is emitted before the watermark passes.
  j.driver().process(left_port, left({{s("p1"), i(60)},
                                      {s("p1"), i(61)},
                                      {s("p1"), i(62)},
                                      {s("p1"), i(63)},
                                      {s("p2"), i(64)},
                                      {s("p2"), i(65)}},
                                     {5, 10, 19, 25, 14, 30}));
  j.driver().process(
      right_port,
      right({{s("p1"), 1.0, s("a")}, {s("p1"), 2.0, s("b")}, {s("p2"), 5.0, std::monostate{}}},
            {10, 20, 15}));
  EXPECT_TRUE(j.rows().empty());
  j.driver().advance_watermark(100);
  EXPECT_EQ(j.rows(), (rows_t{"p1|61|1|a@10", "p1|62|1|a@19", "p1|63|2|b@25", "p2|65|5|null@30"}));
  // p1@5 (before the first version) and p2@14 (before p2's first version) are dropped, counted.
  EXPECT_EQ(j.stats().unmatched_left_rows, 2u);
  EXPECT_TRUE(j.driver().finish().ok());
  EXPECT_EQ(j.driver().context().late_records, 0u);
}

TEST_F(TemporalJoin, EmitsInEventTimeOrderAsWatermarkPasses) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("a")}, {s("p2"), 2.0, s("b")}}, {0, 0}));
  h.push(left_port,
         left({{s("p2"), i(1)}, {s("p1"), i(2)}, {s("p1"), i(3)}, {s("p2"), i(4)}, {s("p1"), i(5)}},
              {12, 11, 13, 10, 13}));
  h.watermark(11);
  EXPECT_EQ(h.rows(), (rows_t{"p2|4|2|b@10", "p1|2|1|a@11"}));
  h.watermark(20);
  EXPECT_EQ(h.rows(),
            (rows_t{"p2|4|2|b@10", "p1|2|1|a@11", "p2|1|2|b@12", "p1|3|1|a@13", "p1|5|1|a@13"}));
  EXPECT_EQ(entries(h, "temporal_join.left"), 0u);
}

TEST_F(TemporalJoin, OutOfOrderVersions) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  // The version at 20 arrives before the one at 10; a left row at 15 sees the one at 10.
  h.push(right_port, right({{s("p1"), 2.0, s("v20")}}, {20}));
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}}, {15, 20}));
  h.push(right_port, right({{s("p1"), 1.0, s("v10")}}, {10}));
  // A second row at the same time replaces the version.
  h.push(right_port, right({{s("p1"), 1.5, s("v10b")}}, {10}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|1.5|v10b@15", "p1|2|2|v20@20"}));
}

TEST_F(TemporalJoin, LateRightRowsAffectOnlyLaterLeftRows) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("v5")}}, {5}));
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}}, {11, 13}));
  h.watermark(12);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|1|v5@11"}));
  // A version at 11 arrives after the watermark passed 11: the row at 11 stays as emitted, the
  // row at 13 (still buffered) sees the new version.
  h.push(right_port, right({{s("p1"), 2.0, s("v11")}}, {11}));
  h.watermark(13);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|1|v5@11", "p1|2|2|v11@13"}));
  EXPECT_EQ(h.context().late_records, 0u);
}

TEST_F(TemporalJoin, LeftModeEmitsUnmatchedRowsWithNulls) {
  operator_harness h(registry_, "temporal_join", cfg({{"mode", str("left")}}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("a")}}, {10}));
  h.push(left_port,
         left({{s("p1"), i(1)}, {s("p1"), i(2)}, {s("p2"), i(3)}, {std::monostate{}, i(4)}},
              {9, 10, 11, 12}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|null|null@9", "p1|2|1|a@10", "p2|3|null|null@11",
                              "null|4|null|null@12"}));
  ASSERT_FALSE(h.batches().empty());
  EXPECT_TRUE(h.batches()[0]->keyed());
}

TEST_F(TemporalJoin, NullKeysNeverMatch) {
  auto ns = make_schema({{"pid", type_id::string, true},
                         {"lactate", type_id::float64, true},
                         {"note", type_id::string, true}});
  driven_join j(registry_, cfg({}), {{left_schema_, {0}}, {ns, {0}}});
  j.driver().process(right_port, make_rows(ns, {{std::monostate{}, 1.0, s("n")}}, {1}, {0}));
  j.driver().process(left_port, left({{std::monostate{}, i(1)}}, {5}));
  EXPECT_TRUE(j.driver().finish().ok());
  EXPECT_TRUE(j.rows().empty());
  EXPECT_EQ(j.stats().unmatched_left_rows, 1u);
}

TEST_F(TemporalJoin, MaxAge) {
  operator_harness h(registry_, "temporal_join",
                     cfg({{"mode", str("left")}, {"max_age", str("5us")}}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("a")}}, {10}));
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}, {s("p1"), i(3)}}, {14, 15, 16}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|1|a@14", "p1|2|1|a@15", "p1|3|null|null@16"}));
  // With max_age, expired versions are dropped too: nothing is left.
  EXPECT_EQ(entries(h, "temporal_join.right"), 0u);
}

TEST_F(TemporalJoin, LateLeftRows) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("a")}}, {1}));
  h.watermark(20);
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}}, {20, 21}));
  EXPECT_EQ(h.rows(late_port), (rows_t{"p1|1@20"}));
  EXPECT_EQ(h.context().late_records, 1u);
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|2|1|a@21"}));
}

TEST_F(TemporalJoin, AllowedLatenessJoinsAtOnce) {
  operator_harness h(registry_, "temporal_join", cfg({{"allowed_lateness", str("10us")}}),
                     inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("a")}, {s("p1"), 2.0, s("b")}}, {5, 14}));
  h.watermark(20);
  // 15 > 20 - 10: joined at once with the version as of 15; 10 <= 20 - 10: late.
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}}, {15, 10}));
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|2|b@15"}));
  EXPECT_EQ(h.rows(late_port), (rows_t{"p1|2@10"}));
  EXPECT_EQ(h.context().late_records, 1u);
  // 11 > 20 - 10: the version at 5 is still kept (newest at or before W - A = 10).
  h.push(left_port, left({{s("p1"), i(3)}}, {11}));
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|2|b@15", "p1|3|1|a@11"}));
}

TEST_F(TemporalJoin, RetentionKeepsNewestVersionAtOrBeforeWatermark) {
  // Clean-ups for keys without new right rows run at the end of 10 s periods.
  constexpr int64_t period_end = 9'999'999;
  operator_harness h(registry_, "temporal_join", cfg({}), inputs());
  h.push(right_port, right({{s("p1"), 1.0, s("v10")},
                            {s("p1"), 2.0, s("v20")},
                            {s("p1"), 3.0, s("v30")},
                            {s("p2"), 4.0, s("w10")}},
                           {10, 20, 30, 10}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 4u);
  h.push(left_port, left({{s("p1"), i(1)}}, {26}));
  h.watermark(period_end - 1);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|2|v20@26"}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 4u);
  h.watermark(period_end);  // p1: v30 is the newest at or before W - A: v10 and v20 go.
  EXPECT_EQ(entries(h, "temporal_join.right"), 2u);
  // A version at 5 arrives far behind the watermark: applied, and dropped at once since v30
  // (the newest at or before W - A) supersedes it.
  h.push(right_port, right({{s("p1"), 0.5, s("v5")}}, {5}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 2u);
  // A new version supersedes v30 as soon as W - A reaches it: dropped with the next right row.
  h.push(right_port, right({{s("p1"), 4.0, s("v+1")}}, {period_end + 1}));
  h.push(left_port, left({{s("p1"), i(2)}, {s("p1"), i(3)}}, {period_end + 1, period_end + 2}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 3u);
  h.watermark(period_end + 1);
  h.push(right_port, right({{s("p2"), 5.0, s("w+2")}}, {period_end + 2}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 4u);
  h.push(right_port, right({{s("p1"), 5.0, s("v+3")}}, {period_end + 3}));
  EXPECT_EQ(entries(h, "temporal_join.right"), 4u);  // p1: v30 went, v+3 came.
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|2|v20@26", "p1|2|4|v+1@10000000", "p1|3|4|v+1@10000001"}));
  // Without max_age the newest version of each key stays: it is the table's current row.
  EXPECT_EQ(entries(h, "temporal_join.right"), 2u);
  EXPECT_EQ(entries(h, "temporal_join.left"), 0u);
}

TEST_F(TemporalJoin, SmallBatchesAndEmptyInput) {
  operator_harness h(registry_, "temporal_join", cfg({}), inputs(), 0, 1, /*batch_size=*/2);
  h.push(left_port, left({}, {}));
  h.push(right_port, right({}, {}));
  h.push(right_port, right({{s("p1"), 1.0, s("a")}}, {0}));
  h.push(left_port, left({{s("p1"), i(1)}, {s("p1"), i(2)}, {s("p1"), i(3)}}, {1, 2, 3}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|1|1|a@1", "p1|2|1|a@2", "p1|3|1|a@3"}));
  EXPECT_EQ(h.batches().size(), 2u);
}

TEST_F(TemporalJoin, ConfigErrorsNameTheKey) {
  auto msg = [&](config_map c) {
    auto r = operator_harness::try_plan(registry_, "temporal_join", c, inputs());
    return r.ok() ? std::string("ok") : r.err().message;
  };
  EXPECT_EQ(msg(cfg({{"mode", str("outer")}})),
            "config.mode: expected \"inner\" or \"left\", got \"outer\"");
  EXPECT_EQ(msg(cfg({{"mode", num(1)}})), "config.mode: expected string, got integer");
  EXPECT_EQ(msg(cfg({{"max_age", str("-5s")}})).rfind("config.max_age: ", 0), 0u);
  EXPECT_EQ(msg(cfg({{"allowed_lateness", str("x")}})).rfind("config.allowed_lateness: ", 0), 0u);
  EXPECT_EQ(msg(cfg({{"right_prefix", num(1)}})).rfind("config.right_prefix: ", 0), 0u);
  EXPECT_EQ(msg(cfg({{"lower", str("1s")}})), "config.lower: unknown key");
  EXPECT_EQ(msg(cfg({{"max_age", str("1h")}, {"mode", str("left")}})), "ok");

  auto unkeyed = operator_harness::try_plan(registry_, "temporal_join", cfg({}),
                                            {{left_schema_, {}}, {right_schema_, {0}}});
  ASSERT_FALSE(unkeyed.ok());
  EXPECT_EQ(unkeyed.err().message, "input 'left' is not keyed (key it with key_by first)");

  auto int_key = make_schema({{"pid", type_id::int64, false}, {"lactate", type_id::float64, true}});
  auto types = operator_harness::try_plan(registry_, "temporal_join", cfg({}),
                                          {{left_schema_, {0}}, {int_key, {0}}});
  ASSERT_FALSE(types.ok());
  EXPECT_EQ(types.err().message,
            "key field 'pid' of input 'right' has type int64 but key field 'pid' of input 'left' "
            "has type string");
}

}  // namespace
}  // namespace vigil
