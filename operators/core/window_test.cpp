#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "operators/core/window_operators.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;

config_value agg(const std::string& name, const std::string& fn, const std::string& field = "") {
  config_value v;
  v.k = config_value::kind::map;
  v.map.emplace_back("name", str(name));
  v.map.emplace_back("fn", str(fn));
  if (!field.empty()) v.map.emplace_back("field", str(field));
  return v;
}

config_value aggs(std::initializer_list<config_value> items) {
  config_value v;
  v.k = config_value::kind::list;
  v.list.assign(items.begin(), items.end());
  return v;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

using rows_t = std::vector<std::string>;

/// Short cell makers keep the literal rows below readable.
cell s(const char* v) {
  return std::string(v);
}
cell i(int64_t v) {
  return v;
}
const cell null{};

/// Input: patient (key), hr, temp, note.
class Window : public ::testing::Test {
 protected:
  Window() { register_window_operators(registry_); }

  std::vector<stream_info> input() const { return {{schema_, {0}}}; }

  batch_ptr rows(const std::vector<std::vector<cell>>& rows, const std::vector<int64_t>& times) {
    return make_rows(schema_, rows, times, {0});
  }

  std::string plan_error(const std::string& op, const config_map& c,
                         std::vector<stream_info> in = {}) {
    auto p = operator_harness::try_plan(registry_, op, c, in.empty() ? input() : std::move(in));
    return p.ok() ? std::string("ok") : p.err().message;
  }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, true},
                                    {"hr", type_id::int64, true},
                                    {"temp", type_id::float64, true},
                                    {"note", type_id::string, true}});
};

TEST_F(Window, TumblingAllAggregates) {
  operator_harness h(
      registry_, "tumbling_window",
      cfg({{"size", str("10ms")},
           {"aggregates",
            aggs({agg("n", "count"), agg("n_hr", "count", "hr"), agg("sum_hr", "sum", "hr"),
                  agg("min_hr", "min", "hr"), agg("max_hr", "max", "hr"),
                  agg("avg_temp", "avg", "temp"), agg("first_note", "first", "note"),
                  agg("last_note", "last", "note"), agg("min_note", "min", "note"),
                  agg("max_note", "max", "note"), agg("sum_temp", "sum", "temp")})}}),
      input());
  h.push(0, rows({{s("p1"), i(80), 36.5, s("b")},
                  {s("p2"), i(100), 38.0, s("x")},
                  {s("p1"), i(90), 37.5, s("a")},
                  {s("p1"), i(70), 37.0, s("c")},
                  {s("p1"), i(60), 36.0, s("d")}},
                 {1000, 2000, 500, 9000, 12000}));
  EXPECT_TRUE(h.rows().empty());
  h.watermark(9998);
  EXPECT_TRUE(h.rows().empty());
  h.watermark(9999);
  EXPECT_EQ(sorted(h.rows()), (rows_t{"p1|0|10000|3|3|240|70|90|37|a|c|a|c|111@9999",
                                      "p2|0|10000|1|1|100|100|100|38|x|x|x|x|38@9999"}));
  h.clear_output();
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|10000|20000|1|1|60|60|60|36|d|d|d|d|36@19999"}));
  EXPECT_TRUE(h.rows(1).empty());
  EXPECT_EQ(h.context().late_records, 0u);
}

TEST_F(Window, FirstAndLastByEventTimeWithArrivalTies) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")},
                          {"aggregates", aggs({agg("f", "first", "hr"), agg("l", "last", "hr")})}}),
                     input());
  h.push(
      0,
      rows({{s("p1"), i(1), null, null}, {s("p1"), i(2), null, null}, {s("p2"), i(5), null, null}},
           {5000, 5000, 5000}));
  h.push(
      0,
      rows({{s("p1"), i(3), null, null}, {s("p2"), i(6), null, null}, {s("p2"), i(7), null, null}},
           {5000, 4000, 5000}));
  h.finish();
  EXPECT_EQ(sorted(h.rows()), (rows_t{"p1|0|10000|1|3@9999", "p2|0|10000|6|7@9999"}));
}

TEST_F(Window, OutOfOrderRecordsBeforeTheWatermarkCount) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")}, {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  h.push(0, rows({{s("p1"), null, null, null}}, {5000}));
  h.watermark(4000);
  // Behind the watermark, but its window has not fired: not late.
  h.push(0, rows({{s("p1"), null, null, null}, {s("p1"), null, null, null}}, {3000, 12000}));
  h.watermark(9998);
  EXPECT_TRUE(h.rows().empty());
  h.watermark(9999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|2@9999"}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|2@9999", "p1|10000|20000|1@19999"}));
  EXPECT_EQ(h.context().late_records, 0u);
}

TEST_F(Window, LateRecordsGoUnchangedToTheLatePort) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")}, {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  EXPECT_EQ(h.plan().outputs[1].schema, schema_);
  EXPECT_EQ(h.plan().outputs[1].key_fields, (std::vector<int>{0}));
  h.push(0, rows({{s("p1"), i(1), null, null}}, {1000}));
  h.watermark(9999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|1@9999"}));
  auto b =
      rows({{s("p1"), i(2), 1.5, s("z")}, {s("p1"), i(3), null, null}, {s("p2"), i(4), null, null}},
           {2000, 10500, 9999});
  h.push(0, b);
  EXPECT_EQ(h.rows(1), (rows_t{"p1|2|1.5|z@2000", "p2|4|null|null@9999"}));
  EXPECT_EQ(h.context().late_records, 2u);
  ASSERT_EQ(h.batches(1).size(), 1u);
  EXPECT_EQ(h.batches(1)[0]->key_hash, (std::vector<uint64_t>{b->key_hash[0], b->key_hash[2]}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|1@9999", "p1|10000|20000|1@19999"}));
}

TEST_F(Window, AllowedLatenessRefiresThenCleansUp) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")},
                          {"allowed_lateness", str("5ms")},
                          {"aggregates", aggs({agg("n", "count"), agg("last_hr", "last", "hr")})}}),
                     input());
  h.push(0, rows({{s("p1"), i(1), null, null}}, {1000}));
  h.watermark(9999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|1|1@9999"}));
  // Behind the watermark but within the allowed lateness: the window fires again at once.
  h.push(0, rows({{s("p1"), i(2), null, null}}, {2000}));
  EXPECT_EQ(h.rows().back(), "p1|0|10000|2|2@9999");
  // A window first created by a record within the lateness fires at once, and only once.
  h.push(0, rows({{s("p2"), i(7), null, null}}, {4000}));
  EXPECT_EQ(h.rows().back(), "p2|0|10000|1|7@9999");
  h.watermark(14998);
  EXPECT_EQ(h.rows().size(), 3u);
  h.push(0, rows({{s("p1"), i(3), null, null}}, {3000}));
  EXPECT_EQ(h.rows().back(), "p1|0|10000|3|3@9999");
  // Clean-up at window end - 1 + lateness: now the window's records are late.
  h.watermark(14999);
  h.push(0, rows({{s("p1"), i(4), null, null}}, {4000}));
  EXPECT_EQ(h.rows(1), (rows_t{"p1|4|null|null@4000"}));
  EXPECT_EQ(h.context().late_records, 1u);
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|0|10000|1|1@9999", "p1|0|10000|2|2@9999", "p2|0|10000|1|7@9999",
                              "p1|0|10000|3|3@9999"}));
}

/// Collects emitted batches per port (for tests that drive a subtask_driver directly).
class collector : public output {
 public:
  void emit(size_t port, batch_ptr batch) override {
    for (size_t r = 0; r < batch->num_rows(); ++r) {
      rows[port].push_back(testing::row_text(*batch, r));
    }
  }
  rows_t rows[2];
};

TEST_F(Window, AllowedLatenessDefaultsToTheGraphs) {
  const config_map c = cfg({{"size", str("10ms")}, {"aggregates", aggs({agg("n", "count")})}});
  plan_context pc;
  pc.node_id = "w";
  pc.config = &c;
  pc.inputs = input();
  pc.allowed_lateness_us = 5000;
  const operator_factory* f = registry_.find("tumbling_window");
  auto plan = f->plan(pc);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vigil-window-default-lateness-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  collector out;
  subtask_driver::options opts;
  opts.node_id = "w";
  opts.state_dir = dir.string();
  {
    auto d = subtask_driver::make(*f, **plan, opts, out);
    ASSERT_TRUE(d.ok()) << d.err().message;
    (*d)->process(0, rows({{s("p1"), null, null, null}}, {1000}));
    (*d)->advance_watermark(12000);
    (*d)->process(0, rows({{s("p1"), null, null, null}}, {2000}));
    (*d)->advance_watermark(15000);
    (*d)->process(0, rows({{s("p1"), null, null, null}}, {3000}));
    ASSERT_TRUE((*d)->finish().ok());
    EXPECT_EQ((*d)->context().late_records, 1u);
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(out.rows[0], (rows_t{"p1|0|10000|1@9999", "p1|0|10000|2@9999"}));
  EXPECT_EQ(out.rows[1], (rows_t{"p1|null|null|null@3000"}));
}

TEST_F(Window, EmptyInputProducesNothing) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")}, {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  h.push(0, rows({}, {}));
  h.watermark(50000);
  h.finish();
  EXPECT_TRUE(h.batches(0).empty());
  EXPECT_TRUE(h.batches(1).empty());
}

TEST_F(Window, NullsAreIgnoredByAggregates) {
  operator_harness h(
      registry_, "tumbling_window",
      cfg({{"size", str("10ms")},
           {"aggregates",
            aggs({agg("n", "count"), agg("n_hr", "count", "hr"), agg("sum_hr", "sum", "hr"),
                  agg("min_hr", "min", "hr"), agg("avg_temp", "avg", "temp"),
                  agg("first_hr", "first", "hr"), agg("last_temp", "last", "temp")})}}),
      input());
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string?, window_start:timestamp, window_end:timestamp, n:int64, "
            "n_hr:int64, sum_hr:int64?, min_hr:int64?, avg_temp:double?, first_hr:int64?, "
            "last_temp:double?");
  h.push(0, rows({{s("p1"), null, null, null},
                  {s("p1"), null, null, null},
                  {s("p2"), null, 1.5, null},
                  {s("p2"), i(5), null, null},
                  {null, i(9), 2.5, null}},
                 {1000, 2000, 3000, 4000, 5000}));
  h.finish();
  EXPECT_EQ(sorted(h.rows()), (rows_t{"null|0|10000|1|1|9|9|2.5|9|2.5@9999",
                                      "p1|0|10000|2|0|null|null|null|null|null@9999",
                                      "p2|0|10000|2|1|5|5|1.5|5|1.5@9999"}));
}

TEST_F(Window, TumblingOffset) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")},
                          {"offset", str("3ms")},
                          {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  h.push(
      0,
      rows({{s("p1"), null, null, null}, {s("p1"), null, null, null}, {s("p1"), null, null, null}},
           {1000, 3000, 12999}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|-7000|3000|1@2999", "p1|3000|13000|2@12999"}));
}

TEST_F(Window, SlidingWindowsOverlap) {
  operator_harness h(registry_, "sliding_window",
                     cfg({{"size", str("10ms")},
                          {"slide", str("5ms")},
                          {"aggregates", aggs({agg("n", "count"), agg("sum_hr", "sum", "hr")})}}),
                     input());
  h.push(
      0,
      rows({{s("p1"), i(1), null, null}, {s("p1"), i(2), null, null}, {s("p1"), i(4), null, null}},
           {1000, 6000, 12000}));
  h.watermark(9999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|-5000|5000|1|1@4999", "p1|0|10000|2|3@9999"}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|-5000|5000|1|1@4999", "p1|0|10000|2|3@9999",
                              "p1|5000|15000|2|6@14999", "p1|10000|20000|1|4@19999"}));
}

TEST_F(Window, SlidingSizeNotAMultipleOfSlide) {
  operator_harness h(registry_, "sliding_window",
                     cfg({{"size", str("10ms")},
                          {"slide", str("4ms")},
                          {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  h.push(0, rows({{s("p1"), null, null, null}}, {9000}));
  h.finish();
  EXPECT_EQ(h.rows(),
            (rows_t{"p1|0|10000|1@9999", "p1|4000|14000|1@13999", "p1|8000|18000|1@17999"}));
}

TEST_F(Window, SlidingRecordSkipsOnlyItsExpiredWindows) {
  operator_harness h(registry_, "sliding_window",
                     cfg({{"size", str("10ms")},
                          {"slide", str("5ms")},
                          {"aggregates", aggs({agg("n", "count")})}}),
                     input());
  h.watermark(9999);
  h.push(0, rows({{s("p1"), null, null, null}}, {6000}));
  h.push(0, rows({{s("p1"), null, null, null}}, {4000}));
  EXPECT_EQ(h.rows(1), (rows_t{"p1|null|null|null@4000"}));
  EXPECT_EQ(h.context().late_records, 1u);
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p1|5000|15000|1@14999"}));
}

class SessionWindow : public Window {
 protected:
  config_map session(int64_t lateness_ms = 0) {
    return cfg({{"gap", str("10ms")},
                {"allowed_lateness", testing::num(lateness_ms)},
                {"aggregates", aggs({agg("n", "count"), agg("first_hr", "first", "hr"),
                                     agg("last_hr", "last", "hr"), agg("min_hr", "min", "hr")})}});
  }
};

TEST_F(SessionWindow, RecordBridgingTwoSessionsMergesThem) {
  operator_harness h(registry_, "session_window", session(), input());
  h.push(0, rows({{s("p1"), i(1), null, null}}, {1000}));
  h.push(0, rows({{s("p1"), i(2), null, null}}, {20000}));
  h.watermark(5000);
  h.push(0, rows({{s("p1"), i(3), null, null}}, {10500}));
  // The fire timer of [1000, 11000) went with the merge.
  h.watermark(29998);
  EXPECT_TRUE(h.rows().empty());
  h.watermark(29999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1000|30000|3|1|2|1@29999"}));
  h.finish();
  EXPECT_EQ(h.rows().size(), 1u);
}

TEST_F(SessionWindow, MergesWithinOneBatch) {
  operator_harness h(registry_, "session_window", session(), input());
  h.push(0, rows({{s("p1"), i(1), null, null},
                  {s("p2"), i(9), null, null},
                  {s("p1"), i(2), null, null},
                  {s("p1"), i(3), null, null},
                  {s("p3"), i(4), null, null},
                  {s("p3"), i(5), null, null}},
                 {1000, 1000, 20000, 10500, 0, 10000}));
  h.finish();
  // p3's records are exactly one gap apart: two sessions that touch but do not merge.
  EXPECT_EQ(sorted(h.rows()), (rows_t{"p1|1000|30000|3|1|2|1@29999", "p2|1000|11000|1|9|9|9@10999",
                                      "p3|0|10000|1|4|4|4@9999", "p3|10000|20000|1|5|5|5@19999"}));
}

TEST_F(SessionWindow, ClosedSessionThenNewSession) {
  operator_harness h(registry_, "session_window", session(), input());
  h.push(0, rows({{s("p2"), i(1), null, null}, {s("p2"), i(2), null, null}}, {1000, 4000}));
  h.watermark(13999);
  EXPECT_EQ(h.rows(), (rows_t{"p2|1000|14000|2|1|2|1@13999"}));
  h.push(0, rows({{s("p2"), i(3), null, null}}, {15000}));
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p2|1000|14000|2|1|2|1@13999", "p2|15000|25000|1|3|3|3@24999"}));
}

TEST_F(SessionWindow, RecordInsideAnOpenSessionIsNotLate) {
  operator_harness h(registry_, "session_window", session(), input());
  h.push(0, rows({{s("p4"), i(1), null, null},
                  {s("p4"), i(2), null, null},
                  {s("p4"), i(3), null, null},
                  {s("p4"), i(4), null, null}},
                 {0, 8000, 16000, 24000}));
  h.watermark(20000);
  // [5000, 15000) alone would be expired, but it falls into the open session [0, 34000).
  h.push(0, rows({{s("p4"), i(0), null, null}}, {5000}));
  EXPECT_EQ(h.context().late_records, 0u);
  h.finish();
  EXPECT_EQ(h.rows(), (rows_t{"p4|0|34000|5|1|4|0@33999"}));
}

TEST_F(SessionWindow, LateRecordAfterSessionClosed) {
  operator_harness h(registry_, "session_window", session(), input());
  h.push(0, rows({{s("p1"), i(1), null, null}}, {1000}));
  h.watermark(20000);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1000|11000|1|1|1|1@10999"}));
  h.push(0, rows({{s("p1"), i(2), null, null}}, {2000}));
  EXPECT_EQ(h.rows(1), (rows_t{"p1|2|null|null@2000"}));
  EXPECT_EQ(h.context().late_records, 1u);
  h.finish();
  EXPECT_EQ(h.rows().size(), 1u);
}

TEST_F(SessionWindow, AllowedLatenessRefiresAndExtends) {
  operator_harness h(registry_, "session_window", session(5), input());
  h.push(0, rows({{s("p1"), i(5), null, null}}, {1000}));
  h.watermark(10999);
  EXPECT_EQ(h.rows(), (rows_t{"p1|1000|11000|1|5|5|5@10999"}));
  h.watermark(12000);
  // Within the lateness and not past the session's end: the session fires again at once.
  h.push(0, rows({{s("p1"), i(3), null, null}}, {500}));
  EXPECT_EQ(h.rows().back(), "p1|500|11000|2|3|5|3@10999");
  // Overlaps the fired session and extends it past the watermark: fires again at its new end.
  h.push(0, rows({{s("p1"), i(7), null, null}}, {10999}));
  EXPECT_EQ(h.rows().size(), 2u);
  // The old clean-up time (15999) no longer applies.
  h.watermark(16000);
  h.push(0, rows({{s("p1"), i(1), null, null}}, {2000}));
  EXPECT_EQ(h.rows().size(), 2u);
  h.watermark(20998);
  EXPECT_EQ(h.rows().back(), "p1|500|20999|4|3|7|1@20998");
  h.watermark(25998);
  h.push(0, rows({{s("p1"), i(1), null, null}}, {5000}));
  EXPECT_EQ(h.context().late_records, 1u);
  h.finish();
  EXPECT_EQ(h.rows().size(), 3u);
}

TEST_F(Window, CloseFlushesAllWindowsInBatchesOfBatchSize) {
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")}, {"aggregates", aggs({agg("n", "count")})}}),
                     input(), 0, 1, 2);
  h.push(0, rows({{s("a"), null, null, null},
                  {s("b"), null, null, null},
                  {s("c"), null, null, null},
                  {s("a"), null, null, null},
                  {s("d"), null, null, null}},
                 {1000, 2000, 3000, 15000, 4000}));
  EXPECT_TRUE(h.rows().empty());
  h.finish();
  EXPECT_EQ(sorted(h.rows()), (rows_t{"a|0|10000|1@9999", "a|10000|20000|1@19999",
                                      "b|0|10000|1@9999", "c|0|10000|1@9999", "d|0|10000|1@9999"}));
  for (const auto& b : h.batches(0)) EXPECT_LE(b->num_rows(), 2u);
}

TEST_F(Window, OutputSchemaAndKeyHash) {
  auto in_schema = make_schema({{"ward", type_id::string, false},
                                {"bed", type_id::int64, false},
                                {"hr", type_id::int64, false},
                                {"at", type_id::timestamp, true}});
  const std::vector<int> in_keys = {1, 0};
  operator_harness h(registry_, "tumbling_window",
                     cfg({{"size", str("10ms")},
                          {"aggregates", aggs({agg("n", "count"), agg("latest", "max", "at"),
                                               agg("sum_hr", "sum", "hr")})}}),
                     {{in_schema, in_keys}});
  const stream_info& out = h.plan().outputs[0];
  EXPECT_EQ(out.schema->to_string(),
            "bed:int64, ward:string, window_start:timestamp, window_end:timestamp, n:int64, "
            "latest:timestamp?, sum_hr:int64");
  EXPECT_EQ(out.key_fields, (std::vector<int>{0, 1}));
  EXPECT_EQ(h.plan().outputs[1].schema, in_schema);
  EXPECT_EQ(h.plan().outputs[1].key_fields, in_keys);
  auto in = make_rows(in_schema,
                      {{s("w1"), i(3), i(60), i(123)},
                       {s("w2"), i(3), i(70), null},
                       {s("w1"), i(3), i(80), i(456)}},
                      {1000, 2000, 3000}, in_keys);
  h.push(0, in);
  h.finish();
  EXPECT_EQ(sorted(h.rows()),
            (rows_t{"3|w1|0|10000|2|456|140@9999", "3|w2|0|10000|1|null|70@9999"}));
  ASSERT_EQ(h.batches(0).size(), 1u);
  const record_batch& b = *h.batches(0)[0];
  ASSERT_EQ(b.key_hash.size(), 2u);
  for (size_t r = 0; r < b.num_rows(); ++r) {
    std::string key;
    encode_key(b, out.key_fields, r, key);
    EXPECT_EQ(b.key_hash[r], hash_encoded_key(key));
    const size_t in_row = b.columns[1].string_at(r) == "w1" ? 0 : 1;
    EXPECT_EQ(b.key_hash[r], in->key_hash[in_row]);
  }
}

TEST_F(Window, ConfigErrorsNameTheKey) {
  const config_value count = aggs({agg("n", "count")});
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"aggregates", count}})), "config.size: required");
  EXPECT_EQ(
      plan_error("tumbling_window", cfg({{"size", str("10 parsecs")}, {"aggregates", count}})),
      "config.size: invalid duration \"10 parsecs\" (units: us, ms, s, m, h, d)");
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"size", str("0s")}, {"aggregates", count}})),
            "config.size: must be positive");
  EXPECT_EQ(plan_error("tumbling_window",
                       cfg({{"size", str("10s")}, {"offset", str("10s")}, {"aggregates", count}})),
            "config.offset: must be smaller than size");
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"size", str("10s")}})),
            "config.aggregates: required");
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"size", str("10s")},
                                               {"aggregates", aggs({agg("m", "median", "hr")})}})),
            "config.aggregates[0].fn: unknown aggregate function 'median' (expected count, sum, "
            "min, max, avg, first or last)");
  EXPECT_TRUE(plan_error("tumbling_window",
                         cfg({{"size", str("10s")}, {"aggregates", aggs({agg("s", "sum", "bp")})}}))
                  .starts_with("config.aggregates[0].field: field 'bp' missing from input 'in'"));
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"size", str("10s")},
                                               {"aggregates", aggs({agg("s", "sum", "note")})}})),
            "config.aggregates[0].field: sum needs an int64 or double field, 'note' is string");
  EXPECT_EQ(plan_error("tumbling_window",
                       cfg({{"size", str("10s")}, {"sise", str("10s")}, {"aggregates", count}})),
            "config.sise: unknown key");
  EXPECT_EQ(
      plan_error("tumbling_window",
                 cfg({{"size", str("10s")}, {"aggregates", aggs({agg("window_end", "count")})}})),
      "config.aggregates[0].name: output field 'window_end' clashes with a window bound "
      "field");
  EXPECT_EQ(plan_error("tumbling_window", cfg({{"size", str("10s")},
                                               {"aggregates", aggs({agg("patient", "count")})}})),
            "config.aggregates[0].name: output field 'patient' clashes with a key field");
  EXPECT_EQ(
      plan_error(
          "tumbling_window",
          cfg({{"size", str("10s")}, {"allowed_lateness", str("soon")}, {"aggregates", count}})),
      "config.allowed_lateness: invalid duration \"soon\"");
  EXPECT_EQ(plan_error("sliding_window", cfg({{"size", str("10s")}, {"aggregates", count}})),
            "config.slide: required");
  EXPECT_EQ(plan_error("sliding_window",
                       cfg({{"size", str("10s")}, {"slide", str("0ms")}, {"aggregates", count}})),
            "config.slide: must be positive");
  EXPECT_EQ(plan_error("sliding_window",
                       cfg({{"size", str("10s")}, {"slide", str("11s")}, {"aggregates", count}})),
            "config.slide: must not be larger than size (11000000us > 10000000us)");
  EXPECT_EQ(plan_error("sliding_window", cfg({{"size", str("10s")},
                                              {"slide", str("5s")},
                                              {"offset", str("5s")},
                                              {"aggregates", count}})),
            "config.offset: must be smaller than slide");
  EXPECT_EQ(plan_error("session_window", cfg({{"aggregates", count}})), "config.gap: required");
  EXPECT_EQ(plan_error("session_window",
                       cfg({{"gap", str("1m")}, {"size", str("1m")}, {"aggregates", count}})),
            "config.size: unknown key");
  EXPECT_EQ(plan_error("session_window", cfg({{"gap", str("1m")}, {"aggregates", count}}),
                       {{schema_, {}}}),
            "input 'in' of session_window must be keyed (add a key_by before it)");
}

/// Random keyed input with bounded disorder against a reference model of Flink's fixed windows:
/// the last row emitted per (key, window) must aggregate exactly the records that were not too
/// late for that window, and the late port gets exactly the records too late for every window.
TEST_F(Window, FixedWindowsMatchReferenceModel) {
  for (const bool sliding : {false, true}) {
    SCOPED_TRACE(sliding ? "sliding" : "tumbling");
    const int64_t size = 10000, slide = sliding ? 4000 : size, lateness = 1000;
    config_map c =
        cfg({{"size", str("10ms")},
             {"allowed_lateness", str("1ms")},
             {"aggregates", aggs({agg("n", "count"), agg("sum_hr", "sum", "hr"),
                                  agg("min_hr", "min", "hr"), agg("max_hr", "max", "hr")})}});
    if (sliding) c.emplace_back("slide", str("4ms"));
    operator_harness h(registry_, sliding ? "sliding_window" : "tumbling_window", c, input(), 0, 1,
                       64);
    std::mt19937_64 rng(42);
    std::map<std::pair<std::string, int64_t>, std::vector<std::optional<int64_t>>> expected;
    uint64_t expected_late = 0;
    int64_t wm = min_watermark, clock = 0;
    for (int batch = 0; batch < 200; ++batch) {
      std::vector<std::vector<cell>> rs;
      std::vector<int64_t> ts;
      const int n = static_cast<int>(rng() % 40);
      for (int k = 0; k < n; ++k) {
        clock += static_cast<int64_t>(rng() % 300);
        const int64_t t = clock - static_cast<int64_t>(rng() % 12000);
        const std::string key = "k" + std::to_string(rng() % 7);
        std::optional<int64_t> hr;
        if (rng() % 10 != 0) hr = static_cast<int64_t>(rng() % 200) - 50;
        rs.push_back({key, hr ? cell(*hr) : null, null, null});
        ts.push_back(t);
        bool any = false;
        const int64_t last = t - (((t % slide) + slide) % slide);
        for (int64_t start = last; t - start < size; start -= slide) {
          if (start + size - 1 + lateness <= wm) continue;
          expected[{key, start}].push_back(hr);
          any = true;
        }
        if (!any) ++expected_late;
      }
      h.push(0, rows(rs, ts));
      if (rng() % 3 == 0) {
        wm = std::max(wm, clock - 2500);
        h.watermark(wm);
      }
    }
    h.finish();
    std::map<std::pair<std::string, int64_t>, std::string> last_row;
    for (const auto& r : h.rows()) {
      const auto bar = r.find('|');
      last_row[{r.substr(0, bar), std::stoll(r.substr(bar + 1))}] = r;
    }
    ASSERT_EQ(last_row.size(), expected.size());
    for (const auto& [win, values] : expected) {
      int64_t cnt = 0, sum = 0, lo = 0, hi = 0;
      for (const auto& v : values) {
        if (!v) continue;
        lo = cnt == 0 ? *v : std::min(lo, *v);
        hi = cnt == 0 ? *v : std::max(hi, *v);
        sum += *v;
        ++cnt;
      }
      const int64_t end = win.second + size;
      std::string want = win.first + "|" + std::to_string(win.second) + "|" + std::to_string(end) +
                         "|" + std::to_string(values.size()) + "|";
      want += cnt == 0 ? "null|null|null"
                       : std::to_string(sum) + "|" + std::to_string(lo) + "|" + std::to_string(hi);
      want += "@" + std::to_string(end - 1);
      EXPECT_EQ(last_row[win], want);
    }
    EXPECT_GT(expected_late, 0u);
    EXPECT_EQ(h.context().late_records, expected_late);
    EXPECT_EQ(h.rows(1).size(), expected_late);
  }
}

/// Random arrival order against a sort-and-split model: with watermarks far enough behind that
/// no record reaches a fired session, each key's sessions are its records sorted by event time,
/// split where consecutive records are `gap` or more apart.
TEST_F(SessionWindow, MatchesSortAndSplitModel) {
  for (const bool watermarks : {false, true}) {
    SCOPED_TRACE(watermarks ? "lagging watermarks" : "no watermark before the end");
    const int64_t gap = 1000;
    operator_harness h(
        registry_, "session_window",
        cfg({{"gap", str("1ms")},
             {"aggregates", aggs({agg("n", "count"), agg("lo", "min", "hr"),
                                  agg("f", "first", "hr"), agg("l", "last", "hr")})}}),
        input(), 0, 1, 16);
    std::mt19937_64 rng(7);
    struct rec {
      int64_t t;
      int arrival;
      std::optional<int64_t> hr;
    };
    std::map<std::string, std::vector<rec>> by_key;
    int64_t clock = 0;
    int arrival = 0;
    for (int batch = 0; batch < 150; ++batch) {
      std::vector<std::vector<cell>> rs;
      std::vector<int64_t> ts;
      const int n = static_cast<int>(rng() % 30);
      for (int k = 0; k < n; ++k) {
        clock += static_cast<int64_t>(rng() % 200);
        const int64_t t = clock - static_cast<int64_t>(rng() % 3000);
        const std::string key = "k" + std::to_string(rng() % 5);
        std::optional<int64_t> hr;
        if (rng() % 8 != 0) hr = static_cast<int64_t>(rng() % 50);
        rs.push_back({key, hr ? cell(*hr) : null, null, null});
        ts.push_back(t);
        by_key[key].push_back({t, arrival++, hr});
      }
      h.push(0, rows(rs, ts));
      if (watermarks) h.watermark(clock - 50000);
    }
    h.finish();
    EXPECT_EQ(h.context().late_records, 0u);
    rows_t want;
    for (auto& [key, recs] : by_key) {
      std::sort(recs.begin(), recs.end(), [](const rec& a, const rec& b) {
        return std::pair(a.t, a.arrival) < std::pair(b.t, b.arrival);
      });
      size_t begin = 0;
      for (size_t k = 1; k <= recs.size(); ++k) {
        if (k < recs.size() && recs[k].t - recs[k - 1].t < gap) continue;
        const int64_t start = recs[begin].t, end = recs[k - 1].t + gap;
        // In (event time, arrival) order, first is the first non-null value, last the last one.
        std::optional<int64_t> lo, first, last;
        for (size_t j = begin; j < k; ++j) {
          const rec& r = recs[j];
          if (!r.hr) continue;
          lo = lo ? std::min(*lo, *r.hr) : *r.hr;
          if (!first) first = r.hr;
          last = r.hr;
        }
        auto text = [](const std::optional<int64_t>& v) {
          return v ? std::to_string(*v) : std::string("null");
        };
        want.push_back(key + "|" + std::to_string(start) + "|" + std::to_string(end) + "|" +
                       std::to_string(k - begin) + "|" + text(lo) + "|" + text(first) + "|" +
                       text(last) + "@" + std::to_string(end - 1));
        begin = k;
      }
    }
    EXPECT_EQ(sorted(h.rows()), sorted(want));
  }
}

}  // namespace
}  // namespace vigil
