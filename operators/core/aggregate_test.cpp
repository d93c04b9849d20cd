#include "operators/core/aggregate.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::make_rows;
using testing::row_text;
using testing::str;

config_value agg(const std::string& name, const std::string& fn, const std::string& field = "") {
  config_value v;
  v.k = config_value::kind::map;
  v.map.emplace_back("name", str(name));
  v.map.emplace_back("fn", str(fn));
  if (!field.empty()) v.map.emplace_back("field", str(field));
  return v;
}

class Aggregate : public ::testing::Test {
 protected:
  result<std::vector<aggregate_spec>> parse(std::vector<config_value> items) {
    config_value v;
    v.k = config_value::kind::list;
    v.list = std::move(items);
    config_ = {{"aggregates", v}};
    config_reader reader(config_);
    return parse_aggregates(reader, "aggregates", *schema_);
  }

  aggregate_set make(std::vector<config_value> items) {
    auto specs = parse(std::move(items));
    EXPECT_TRUE(specs.ok()) << (specs.ok() ? "" : specs.err().message);
    return aggregate_set(specs.ok() ? *specs : std::vector<aggregate_spec>{});
  }

  /// Folds rows[from, to) of `batch` into `acc` (one group).
  void fold(const aggregate_set& aggs, const record_batch& batch, uint32_t from, uint32_t to,
            accumulator* acc) {
    std::vector<uint32_t> rows, groups;
    for (uint32_t r = from; r < to; ++r) {
      rows.push_back(r);
      groups.push_back(0);
    }
    aggs.add(batch, rows.data(), groups.data(), rows.size(), acc);
  }

  /// The accumulator as an output row (without event time).
  std::string text(const aggregate_set& aggs, const accumulator* acc) {
    std::vector<field> fields;
    for (const auto& s : aggs.specs()) fields.push_back(s.output);
    batch_builder b(make_schema(fields));
    aggs.append_to(acc, b, 0);
    b.end_row(0);
    std::string t = row_text(*b.finish(), 0);
    return t.substr(0, t.find('@'));
  }

  config_map config_;
  schema_ptr schema_ = make_schema({{"hr", type_id::int64, true},
                                    {"temp", type_id::float64, true},
                                    {"note", type_id::string, true},
                                    {"at", type_id::timestamp, false},
                                    {"ok", type_id::boolean, true}});
};

TEST_F(Aggregate, OutputTypesAndNullability) {
  auto specs = parse({agg("n", "count"), agg("n_hr", "count", "hr"), agg("s", "sum", "temp"),
                      agg("a", "avg", "hr"), agg("lo", "min", "note"), agg("hi", "max", "at"),
                      agg("f", "first", "ok")});
  ASSERT_TRUE(specs.ok()) << specs.err().message;
  std::vector<field> out;
  for (const auto& s : *specs) out.push_back(s.output);
  EXPECT_EQ(schema(out).to_string(),
            "n:int64, n_hr:int64, s:double?, a:double?, lo:string?, hi:timestamp, f:bool?");
}

TEST_F(Aggregate, ConfigErrorsNameTheKey) {
  auto message = [&](std::vector<config_value> items) {
    auto r = parse(std::move(items));
    return r.ok() ? std::string("ok") : r.err().message;
  };
  EXPECT_EQ(message({}), "config.aggregates: must not be empty");
  EXPECT_EQ(message({str("count")}),
            "config.aggregates[0]: expected a map {name, fn, field}, got string");
  EXPECT_EQ(message({agg("n", "count"), agg("x", "median", "hr")}),
            "config.aggregates[1].fn: unknown aggregate function 'median' (expected count, sum, "
            "min, max, avg, first or last)");
  EXPECT_EQ(message({agg("s", "sum")}), "config.aggregates[0].field: required for sum");
  EXPECT_TRUE(message({agg("s", "sum", "nope")})
                  .starts_with("config.aggregates[0].field: field 'nope' missing from input 'in'"));
  EXPECT_EQ(message({agg("s", "sum", "note")}),
            "config.aggregates[0].field: sum needs an int64 or double field, 'note' is string");
  EXPECT_EQ(message({agg("m", "max", "ok")}),
            "config.aggregates[0].field: max needs an int64, double, timestamp or string field, "
            "'ok' is bool");
  EXPECT_EQ(message({agg("n", "count"), agg("n", "count", "hr")}),
            "config.aggregates[1].name: duplicate output field 'n'");
  config_value typo = agg("n", "count");
  typo.map.emplace_back("fild", str("hr"));
  EXPECT_EQ(message({typo}), "config.aggregates[0].fild: unknown key");
  config_value no_name;
  no_name.k = config_value::kind::map;
  no_name.map.emplace_back("fn", str("count"));
  EXPECT_EQ(message({no_name}), "config.aggregates[0].name: required");
  config_value bad_type = agg("n", "count");
  bad_type.map[0].second = config_value::of_int(3);
  EXPECT_EQ(message({bad_type}), "config.aggregates[0].name: expected string, got integer");
}

TEST_F(Aggregate, FoldEncodeDecodeRoundTrip) {
  aggregate_set aggs =
      make({agg("n", "count"), agg("n_hr", "count", "hr"), agg("s", "sum", "hr"),
            agg("st", "sum", "temp"), agg("a", "avg", "temp"), agg("lo", "min", "note"),
            agg("hi", "max", "note"), agg("f", "first", "note"), agg("l", "last", "ok")});
  auto b =
      make_rows(schema_,
                {{int64_t{3}, 1.5, std::string("m"), int64_t{1}, true},
                 {std::monostate{}, 2.5, std::string("b\0z", 3), int64_t{2}, false},
                 {int64_t{4}, std::monostate{}, std::string("y"), int64_t{3}, std::monostate{}}},
                {20, 10, 30});
  std::vector<accumulator> acc(aggs.size());
  aggs.reset(acc.data());
  fold(aggs, *b, 0, 3, acc.data());
  const std::string expected = text(aggs, acc.data());
  EXPECT_EQ(expected, std::string("3|2|7|4|2|b\0z|y|b\0z|true", 24));

  std::string bytes;
  aggs.encode(acc.data(), bytes);
  std::vector<accumulator> back(aggs.size());
  ASSERT_TRUE(aggs.decode(bytes, back.data()));
  EXPECT_EQ(text(aggs, back.data()), expected);
  EXPECT_FALSE(aggs.decode(bytes.substr(0, bytes.size() - 1), back.data()));
  EXPECT_FALSE(aggs.decode(bytes + "x", back.data()));

  std::vector<accumulator> empty(aggs.size());
  aggs.reset(empty.data());
  EXPECT_EQ(text(aggs, empty.data()), "0|0|null|null|null|null|null|null|null");
  bytes.clear();
  aggs.encode(empty.data(), bytes);
  ASSERT_TRUE(aggs.decode(bytes, back.data()));
  EXPECT_EQ(text(aggs, back.data()), "0|0|null|null|null|null|null|null|null");
}

TEST_F(Aggregate, MergeKeepsArrivalOrderOnEventTimeTies) {
  aggregate_set aggs = make({agg("f", "first", "hr"), agg("l", "last", "hr"), agg("a", "avg", "hr"),
                             agg("lo", "min", "temp")});
  auto b = make_rows(schema_,
                     {{int64_t{1}, 5.0, std::monostate{}, int64_t{0}, true},
                      {int64_t{2}, std::monostate{}, std::monostate{}, int64_t{0}, true},
                      {int64_t{3}, -1.0, std::monostate{}, int64_t{0}, true},
                      {int64_t{4}, std::monostate{}, std::monostate{}, int64_t{0}, true}},
                     {100, 100, 100, 50});
  std::vector<accumulator> earlier(aggs.size()), later(aggs.size());
  aggs.reset(earlier.data());
  aggs.reset(later.data());
  fold(aggs, *b, 0, 2, earlier.data());
  EXPECT_EQ(text(aggs, earlier.data()), "1|2|1.5|5");
  fold(aggs, *b, 2, 3, later.data());
  aggs.merge(earlier.data(), later.data());
  EXPECT_EQ(text(aggs, earlier.data()), "1|3|2|-1");
  aggs.reset(later.data());
  fold(aggs, *b, 3, 4, later.data());
  aggs.merge(earlier.data(), later.data());
  EXPECT_EQ(text(aggs, earlier.data()), "4|3|2.5|-1");
}

}  // namespace
}  // namespace vigil
