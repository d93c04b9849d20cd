#include "operators/core/join_interval.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

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
using testing::str;

using rows_t = std::vector<std::string>;

constexpr size_t left_port = 0;
constexpr size_t right_port = 1;
constexpr size_t late_left_port = 1;
constexpr size_t late_right_port = 2;

class IntervalJoin : public ::testing::Test {
 protected:
  IntervalJoin() { register_join_operators(registry_); }

  /// One left row: id, lv at time t.
  batch_ptr left(std::vector<std::vector<cell>> rows, std::vector<int64_t> times) {
    return make_rows(left_schema_, rows, times, {0});
  }
  batch_ptr right(std::vector<std::vector<cell>> rows, std::vector<int64_t> times) {
    return make_rows(right_schema_, rows, times, {0});
  }
  std::vector<stream_info> inputs() const { return {{left_schema_, {0}}, {right_schema_, {0}}}; }

  /// The number of rows buffered in `state` ("interval_join.left" or "interval_join.right").
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
      make_schema({{"id", type_id::string, true}, {"lv", type_id::int64, true}});
  schema_ptr right_schema_ =
      make_schema({{"id", type_id::string, true}, {"rv", type_id::string, true}});
};

std::string s(const char* v) {
  return v;
}
int64_t i(int64_t v) {
  return v;
}

TEST_F(IntervalJoin, PlanOutputs) {
  operator_harness h(registry_, "interval_join", cfg({{"lower", str("-1s")}, {"upper", num(0)}}),
                     inputs());
  const auto& outs = h.plan().outputs;
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[0].schema->to_string(), "id:string?, lv:int64?, right_id:string?, rv:string?");
  EXPECT_EQ(outs[0].key_fields, (std::vector<int>{0}));
  EXPECT_EQ(*outs[1].schema, *left_schema_);
  EXPECT_EQ(outs[1].key_fields, (std::vector<int>{0}));
  EXPECT_EQ(*outs[2].schema, *right_schema_);
  const operator_factory* f = registry_.find("interval_join");
  EXPECT_TRUE(f->traits().keyed);
  EXPECT_TRUE(f->traits().stateful);
  EXPECT_EQ(f->traits().input_ports, (std::vector<std::string>{"left", "right"}));
  EXPECT_EQ(f->traits().output_ports, (std::vector<std::string>{"out", "late_left", "late_right"}));

  operator_harness p(registry_, "interval_join",
                     cfg({{"lower", num(0)}, {"upper", num(0)}, {"right_prefix", str("r_")}}),
                     inputs());
  EXPECT_EQ(p.plan().outputs[0].schema->to_string(),
            "id:string?, lv:int64?, r_id:string?, rv:string?");
}

TEST_F(IntervalJoin, PositiveBounds) {
  // r.time in [l.time + 2, l.time + 5].
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("2us")}, {"upper", str("5us")}}), inputs());
  h.push(left_port, left({{s("a"), i(1)}, {s("b"), i(2)}, {s("a"), i(3)}}, {10, 10, 20}));
  EXPECT_TRUE(h.rows().empty());
  h.push(right_port, right({{s("a"), s("x")},
                            {s("a"), s("y")},
                            {s("a"), s("z")},
                            {s("b"), s("w")},
                            {s("a"), s("v")}},
                           {12, 15, 16, 11, 25}));
  EXPECT_EQ(h.rows(), (rows_t{"a|1|a|x@12", "a|1|a|y@15", "a|3|a|v@25"}));
  // The output key hash is the inputs' key hash.
  auto expected = make_rows(left_schema_, {{s("a"), i(0)}}, {0}, {0});
  ASSERT_EQ(h.batches().size(), 1u);
  for (uint64_t kh : h.batches()[0]->key_hash) EXPECT_EQ(kh, expected->key_hash[0]);
  h.finish();
  EXPECT_EQ(h.rows().size(), 3u);
  EXPECT_EQ(h.context().late_records, 0u);
}

TEST_F(IntervalJoin, NegativeBoundsAndMultipleMatches) {
  // r.time in [l.time - 5, l.time - 1]; the right side arrives first.
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-5us")}, {"upper", str("-1us")}}), inputs());
  h.push(right_port,
         right({{s("k"), s("r1")}, {s("k"), s("r2")}, {s("k"), s("r3")}}, {10, 14, 15}));
  h.push(left_port, left({{s("k"), i(1)}, {s("k"), i(2)}, {s("q"), i(3)}}, {15, 20, 15}));
  EXPECT_EQ(h.rows(), (rows_t{"k|1|k|r1@15", "k|1|k|r2@15", "k|2|k|r3@20"}));
}

TEST_F(IntervalJoin, NoMatchesAndEmptyInput) {
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("0us")}, {"upper", str("1us")}}), inputs());
  h.push(left_port, left({}, {}));
  h.push(left_port, left({{s("a"), i(1)}}, {10}));
  h.push(right_port,
         right({{s("a"), s("early")}, {s("a"), s("later")}, {s("b"), s("other")}}, {9, 12, 10}));
  h.finish();
  EXPECT_TRUE(h.rows().empty());
  EXPECT_TRUE(h.rows(late_left_port).empty());
  EXPECT_TRUE(h.rows(late_right_port).empty());
}

TEST_F(IntervalJoin, OutOfOrderArrivalOnBothSides) {
  // r.time in [l.time - 3, l.time + 3]; rows of both sides interleave out of order.
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-3us")}, {"upper", str("3us")}}), inputs());
  h.push(left_port, left({{s("a"), i(1)}}, {10}));
  h.push(right_port, right({{s("a"), s("x")}, {s("a"), s("y")}}, {8, 13}));
  h.push(left_port, left({{s("a"), i(2)}}, {12}));
  h.push(right_port, right({{s("a"), s("z")}}, {30}));
  h.push(left_port, left({{s("a"), i(3)}}, {9}));
  EXPECT_EQ(h.rows(), (rows_t{"a|1|a|x@10", "a|1|a|y@13", "a|2|a|y@13", "a|3|a|x@9"}));
}

TEST_F(IntervalJoin, BoundsAreInclusive) {
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-2us")}, {"upper", str("2us")}}), inputs());
  h.push(left_port, left({{s("a"), i(1)}}, {10}));
  h.push(right_port,
         right({{s("a"), s("lo-1")}, {s("a"), s("lo")}, {s("a"), s("hi")}, {s("a"), s("hi+1")}},
               {7, 8, 12, 13}));
  EXPECT_EQ(h.rows(), (rows_t{"a|1|a|lo@10", "a|1|a|hi@12"}));
}

TEST_F(IntervalJoin, NullKeysAndValues) {
  operator_harness h(registry_, "interval_join", cfg({{"lower", num(0)}, {"upper", num(0)}}),
                     inputs());
  h.push(left_port, left({{std::monostate{}, i(1)}, {s("a"), std::monostate{}}}, {10, 10}));
  h.push(right_port, right({{std::monostate{}, s("n")}, {s("a"), std::monostate{}}}, {10, 10}));
  EXPECT_EQ(h.rows(), (rows_t{"a|null|a|null@10"}));
  EXPECT_EQ(entries(h, "interval_join.left"), 1u);  // The null-key rows are not buffered.
  EXPECT_EQ(entries(h, "interval_join.right"), 1u);
}

/// Chunks that are not full are released at the end of the 10 s period of their rows' bound.
constexpr int64_t period_end = 9'999'999;

TEST_F(IntervalJoin, CleanupDrainsState) {
  // A left row may go once W >= l.time + 3, a right row once W >= r.time + 3; their chunks
  // (not full) go at the end of that 10 s period.
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-3us")}, {"upper", str("3us")}}), inputs());
  h.push(left_port, left({{s("a"), i(1)}, {s("b"), i(2)}}, {10, 11}));
  h.push(right_port, right({{s("a"), s("x")}}, {20}));
  EXPECT_EQ(entries(h, "interval_join.left"), 2u);
  EXPECT_EQ(entries(h, "interval_join.right"), 1u);
  h.watermark(14);
  EXPECT_EQ(entries(h, "interval_join.left"), 2u);
  // A right row at 15 (not late) does not meet the left row at 10, kept past its bound: it
  // joins left rows in [12, 18] only. A right row at 13 is late.
  h.push(right_port, right({{s("a"), s("y")}, {s("a"), s("late")}}, {15, 13}));
  EXPECT_TRUE(h.rows().empty());
  EXPECT_EQ(h.rows(late_right_port), (rows_t{"a|late@13"}));
  // A left row at 17 meets right rows in [14, 20], in buffer order.
  h.push(left_port, left({{s("a"), i(3)}}, {17}));
  EXPECT_EQ(h.rows(), (rows_t{"a|3|a|x@20", "a|3|a|y@17"}));
  h.watermark(period_end - 1);
  EXPECT_EQ(entries(h, "interval_join.left"), 3u);
  EXPECT_EQ(entries(h, "interval_join.right"), 2u);
  h.watermark(period_end);
  EXPECT_EQ(entries(h, "interval_join.left"), 0u);
  EXPECT_EQ(entries(h, "interval_join.right"), 0u);
  h.finish();
  EXPECT_EQ(h.context().late_records, 1u);
}

TEST_F(IntervalJoin, FullChunkIsReleasedAtItsBound) {
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-3us")}, {"upper", str("3us")}}), inputs());
  // 32 rows fill a chunk: released once W >= 10'000'031 + 3. The 33rd starts a new chunk.
  std::vector<std::vector<cell>> rows;
  std::vector<int64_t> times;
  for (int64_t k = 0; k < 33; ++k) {
    rows.push_back({s("c"), k});
    times.push_back(10'000'000 + k + (k == 32 ? 8 : 0));
  }
  h.push(left_port, left(rows, times));
  EXPECT_EQ(entries(h, "interval_join.left"), 33u);
  h.watermark(10'000'033);
  EXPECT_EQ(entries(h, "interval_join.left"), 33u);
  h.watermark(10'000'034);
  EXPECT_EQ(entries(h, "interval_join.left"), 1u);
  // The left row at 10'000'040 still joins (10'000'043 is within its interval).
  h.push(right_port, right({{s("c"), s("y")}}, {10'000'043}));
  EXPECT_EQ(h.rows(), (rows_t{"c|32|c|y@10000043"}));
  h.watermark(2 * period_end);
  EXPECT_EQ(entries(h, "interval_join.left"), 1u);
  h.watermark(2 * period_end + 1);
  EXPECT_EQ(entries(h, "interval_join.left"), 0u);
  EXPECT_EQ(entries(h, "interval_join.right"), 0u);
}

TEST_F(IntervalJoin, RowThatCanOnlyMatchBufferedRowsIsNotBuffered) {
  // r.time in [l.time - 5, l.time - 1]: a left row at 11 with W = 10 can only match right rows
  // at or before 10, which are all buffered or late already.
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-5us")}, {"upper", str("-1us")}}), inputs());
  h.push(right_port, right({{s("a"), s("x")}}, {8}));
  h.watermark(10);
  EXPECT_EQ(entries(h, "interval_join.right"), 1u);
  h.push(left_port, left({{s("a"), i(1)}}, {11}));
  EXPECT_EQ(h.rows(), (rows_t{"a|1|a|x@11"}));
  EXPECT_EQ(entries(h, "interval_join.left"), 0u);
  h.watermark(period_end - 1);
  EXPECT_EQ(entries(h, "interval_join.right"), 1u);
  h.watermark(period_end);
  EXPECT_EQ(entries(h, "interval_join.right"), 0u);
}

TEST_F(IntervalJoin, LateRecordsGoToSideOutputs) {
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-5us")}, {"upper", str("5us")}}), inputs());
  h.push(right_port, right({{s("a"), s("x")}}, {12}));
  h.watermark(10);
  // time + 0 <= 10 is late.
  h.push(left_port, left({{s("a"), i(1)}, {s("a"), i(2)}}, {10, 11}));
  h.push(right_port, right({{s("a"), s("old")}, {s("a"), s("new")}}, {5, 11}));
  EXPECT_EQ(h.rows(), (rows_t{"a|2|a|x@12", "a|2|a|new@11"}));
  EXPECT_EQ(h.rows(late_left_port), (rows_t{"a|1@10"}));
  EXPECT_EQ(h.rows(late_right_port), (rows_t{"a|old@5"}));
  EXPECT_EQ(h.context().late_records, 2u);
  ASSERT_EQ(h.batches(late_left_port).size(), 1u);
  EXPECT_TRUE(h.batches(late_left_port)[0]->keyed());
}

TEST_F(IntervalJoin, AllowedLateness) {
  // With 5us of allowed lateness at W = 20, rows at 16..20 still join; rows at <= 15 are late.
  operator_harness h(
      registry_, "interval_join",
      cfg({{"lower", str("0us")}, {"upper", str("2us")}, {"allowed_lateness", str("5us")}}),
      inputs());
  h.push(left_port, left({{s("a"), i(1)}}, {16}));
  h.watermark(20);
  EXPECT_EQ(entries(h, "interval_join.left"), 1u);
  h.push(right_port, right({{s("a"), s("x")}, {s("a"), s("late")}}, {17, 15}));
  EXPECT_EQ(h.rows(), (rows_t{"a|1|a|x@17"}));
  EXPECT_EQ(h.rows(late_right_port), (rows_t{"a|late@15"}));
  // The left row may go once W >= 16 + 2 + 5, its chunk at the end of that 10 s period.
  h.watermark(period_end - 1);
  EXPECT_EQ(entries(h, "interval_join.left"), 1u);
  h.watermark(period_end);
  EXPECT_EQ(entries(h, "interval_join.left"), 0u);
  EXPECT_EQ(h.context().late_records, 1u);
}

TEST_F(IntervalJoin, GraphDefaultLatenessApplies) {
  // Without allowed_lateness in the config, the graph's default (plan_context) applies.
  struct collector : output {
    void emit(size_t port, batch_ptr b) override { rows[port] += b->num_rows(); }
    size_t rows[3] = {0, 0, 0};
  } out;
  config_map c = cfg({{"lower", num(0)}, {"upper", num(0)}});
  const operator_factory* f = registry_.find("interval_join");
  plan_context ctx;
  ctx.config = &c;
  ctx.inputs = inputs();
  ctx.allowed_lateness_us = 5;
  auto plan = f->plan(ctx);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  subtask_driver::options opts;
  opts.state_dir = (std::filesystem::temp_directory_path() /
                    ("vigil-interval-default-" + std::to_string(::getpid())))
                       .string();
  {
    auto d = subtask_driver::make(*f, **plan, opts, out);
    ASSERT_TRUE(d.ok()) << d.err().message;
    (*d)->advance_watermark(20);
    (*d)->process(right_port, right({{s("a"), s("x")}}, {16}));
    (*d)->process(left_port, left({{s("a"), i(1)}, {s("a"), i(2)}}, {16, 15}));
    EXPECT_EQ(out.rows[0], 1u);
    EXPECT_EQ(out.rows[late_left_port], 1u);
  }
  std::filesystem::remove_all(opts.state_dir);
}

TEST_F(IntervalJoin, SmallBatchesSplitOutput) {
  operator_harness h(registry_, "interval_join",
                     cfg({{"lower", str("-10us")}, {"upper", str("10us")}}), inputs(), 0, 1,
                     /*batch_size=*/2);
  h.push(right_port, right({{s("a"), s("1")}, {s("a"), s("2")}, {s("a"), s("3")}}, {1, 2, 3}));
  h.push(left_port, left({{s("a"), i(7)}}, {5}));
  EXPECT_EQ(h.rows(), (rows_t{"a|7|a|1@5", "a|7|a|2@5", "a|7|a|3@5"}));
  EXPECT_EQ(h.batches().size(), 2u);
}

TEST_F(IntervalJoin, CompositeKeys) {
  auto ls = make_schema(
      {{"p", type_id::string, false}, {"n", type_id::int64, false}, {"v", type_id::float64, true}});
  auto rs = make_schema({{"n2", type_id::int64, false},
                         {"p2", type_id::string, false},
                         {"w", type_id::boolean, true}});
  // Left keyed on (p, n), right on (p2, n2).
  operator_harness h(registry_, "interval_join", cfg({{"lower", num(0)}, {"upper", num(0)}}),
                     {{ls, {0, 1}}, {rs, {1, 0}}});
  h.push(left_port, make_rows(ls, {{s("a"), i(1), 1.5}, {s("a"), i(2), 2.5}}, {10, 10}, {0, 1}));
  h.push(right_port,
         make_rows(rs, {{i(2), s("a"), true}, {i(1), s("b"), false}}, {10, 10}, {1, 0}));
  EXPECT_EQ(h.rows(), (rows_t{"a|2|2.5|2|a|true@10"}));
}

TEST_F(IntervalJoin, ConfigErrorsNameTheKey) {
  auto plan = [&](config_map c) {
    return operator_harness::try_plan(registry_, "interval_join", c, inputs());
  };
  auto msg = [&](config_map c) {
    auto r = plan(std::move(c));
    return r.ok() ? std::string("ok") : r.err().message;
  };
  EXPECT_EQ(msg(cfg({{"upper", num(1)}})), "config.lower: required");
  EXPECT_EQ(msg(cfg({{"lower", num(1)}})), "config.upper: required");
  EXPECT_EQ(msg(cfg({{"lower", str("5s")}, {"upper", str("-5s")}})),
            "config.lower: must not be greater than config.upper (5000000us > -5000000us)");
  EXPECT_EQ(msg(cfg({{"lower", str("-5x")}, {"upper", num(0)}})),
            "config.lower: invalid duration \"-5x\"");
  EXPECT_EQ(msg(cfg({{"lower", num(0)}, {"upper", str("soon")}})).rfind("config.upper: ", 0), 0u);
  EXPECT_EQ(msg(cfg({{"lower", num(0)}, {"upper", num(0)}, {"allowed_lateness", str("-1s")}}))
                .rfind("config.allowed_lateness: ", 0),
            0u);
  EXPECT_EQ(msg(cfg({{"lower", num(0)}, {"upper", num(0)}, {"mode", str("inner")}})),
            "config.mode: unknown key");
  EXPECT_EQ(msg(cfg({{"lower", str("-2m")}, {"upper", str("-1m")}})), "ok");
  EXPECT_EQ(msg(cfg({{"lower", num(-1500)}, {"upper", num(-1500)}})), "ok");

  auto taken = make_schema({{"id", type_id::string, true}, {"right_id", type_id::int64, true}});
  auto r = operator_harness::try_plan(registry_, "interval_join",
                                      cfg({{"lower", num(0)}, {"upper", num(0)}}),
                                      {{taken, {0}}, {right_schema_, {0}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message,
            "config.right_prefix: right field 'id' would be renamed to 'right_id', which is "
            "already an output field");
}

TEST_F(IntervalJoin, InputErrorsNameInputAndField) {
  config_map c = cfg({{"lower", num(0)}, {"upper", num(0)}});
  auto unkeyed = operator_harness::try_plan(registry_, "interval_join", c,
                                            {{left_schema_, {0}}, {right_schema_, {}}});
  ASSERT_FALSE(unkeyed.ok());
  EXPECT_EQ(unkeyed.err().code, errc::invalid_graph);
  EXPECT_EQ(unkeyed.err().message, "input 'right' is not keyed (key it with key_by first)");

  auto int_key = make_schema({{"pid", type_id::int64, true}, {"rv", type_id::string, true}});
  auto types = operator_harness::try_plan(registry_, "interval_join", c,
                                          {{left_schema_, {0}}, {int_key, {0}}});
  ASSERT_FALSE(types.ok());
  EXPECT_EQ(types.err().message,
            "key field 'pid' of input 'right' has type int64 but key field 'id' of input 'left' "
            "has type string");

  auto count = operator_harness::try_plan(registry_, "interval_join", c,
                                          {{left_schema_, {0, 1}}, {right_schema_, {0}}});
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.err().message, "input 'right' is keyed on 1 field(s) but input 'left' on 2");
}

}  // namespace
}  // namespace vigil
