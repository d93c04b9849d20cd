#include "operators/core/relational.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::list;
using testing::make_rows;
using testing::num;
using testing::operator_harness;
using testing::str;

using strings = std::vector<std::string>;

config_value assignments(std::initializer_list<std::pair<std::string, config_value>> items) {
  config_value v;
  v.k = config_value::kind::map;
  for (const auto& item : items) v.map.push_back(item);
  return v;
}

class Relational : public ::testing::Test {
 protected:
  Relational() { register_relational_operators(registry_); }

  batch_ptr input(const std::vector<int>& key = {}) const {
    return make_rows(schema_, rows_, times_, key);
  }

  std::string plan_error(const std::string& op, const config_map& config,
                         const std::vector<int>& key = {}) const {
    auto p = operator_harness::try_plan(registry_, op, config, {{schema_, key}});
    if (p) return "<ok>";
    EXPECT_EQ(p.err().code, errc::invalid_argument);
    return p.err().message;
  }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, true},
                                    {"value", type_id::float64, true},
                                    {"code", type_id::int64, false},
                                    {"ts", type_id::timestamp, true}});
  std::vector<std::vector<cell>> rows_ = {
      {std::string("p1"), 98.5, int64_t{1}, int64_t{1000}},
      {std::string("p2"), 101.2, int64_t{2}, int64_t{2000}},
      {std::monostate{}, std::monostate{}, int64_t{3}, std::monostate{}},
      {std::string("p1"), 103.0, int64_t{4}, int64_t{4000}},
  };
  std::vector<int64_t> times_ = {10, 20, 30, 40};
};

// ---- filter ---------------------------------------------------------------------------------

TEST_F(Relational, FilterKeepsRowsWhereTrue) {
  operator_harness h(registry_, "filter", cfg({{"where", str("value > 100")}}), {{schema_, {}}});
  EXPECT_EQ(*h.plan().outputs[0].schema, *schema_);
  EXPECT_FALSE(h.plan().outputs[0].keyed());
  h.push(0, input());
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_FALSE(h.batches()[0]->keyed());
  EXPECT_EQ(h.rows(), (strings{"p2|101.2|2|2000@20", "p1|103|4|4000@40"}));
  h.finish();
  EXPECT_EQ(h.rows().size(), 2u);
}

TEST_F(Relational, FilterDropsNullConditions) {
  operator_harness h(registry_, "filter", cfg({{"where", str("NOT (value > 100)")}}),
                     {{schema_, {}}});
  h.push(0, input());
  EXPECT_EQ(h.rows(), (strings{"p1|98.5|1|1000@10"}));

  operator_harness with_null(registry_, "filter",
                             cfg({{"where", str("value > 100 OR patient IS NULL")}}),
                             {{schema_, {}}});
  with_null.push(0, input());
  EXPECT_EQ(with_null.rows(),
            (strings{"p2|101.2|2|2000@20", "null|null|3|null@30", "p1|103|4|4000@40"}));
}

TEST_F(Relational, FilterEmitsNothingForEmptyOrFullyFilteredBatches) {
  operator_harness h(registry_, "filter", cfg({{"where", str("code > 10")}}), {{schema_, {}}});
  h.push(0, input());
  h.push(0, make_rows(schema_, {}, {}));
  h.finish();
  EXPECT_TRUE(h.batches().empty());
}

TEST_F(Relational, FilterOnEventTimeAndAcrossBatches) {
  operator_harness h(registry_, "filter",
                     cfg({{"where", str("event_time() > ts_from_ms(0) + 25 AND code % 2 = 0")}}),
                     {{schema_, {}}});
  h.push(0, input());
  h.push(0, input());
  EXPECT_EQ(h.rows(), (strings{"p1|103|4|4000@40", "p1|103|4|4000@40"}));
}

TEST_F(Relational, FilterKeepsKeyAndKeyHash) {
  operator_harness h(registry_, "filter", cfg({{"where", str("code != 2")}}), {{schema_, {0}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{0}));
  auto in = input({0});
  h.push(0, in);
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_EQ(h.batches()[0]->key_hash,
            (std::vector<uint64_t>{in->key_hash[0], in->key_hash[2], in->key_hash[3]}));
}

TEST_F(Relational, FilterConfigErrors) {
  EXPECT_EQ(plan_error("filter", {}), "config.where: required");
  EXPECT_EQ(plan_error("filter", cfg({{"where", num(1)}})),
            "config.where: expected string, got integer");
  EXPECT_EQ(plan_error("filter", cfg({{"where", str("code > 1")}, {"wehre", str("x")}})),
            "config.wehre: unknown key");
  EXPECT_EQ(plan_error("filter", cfg({{"where", str("hr > 100")}})),
            "config.where: unknown field 'hr' at position 1 (fields: patient, value, code, ts)");
  EXPECT_EQ(plan_error("filter", cfg({{"where", str("value + 1")}})),
            "config.where: expression must be bool, got double");
  EXPECT_EQ(plan_error("filter", cfg({{"where", str("patient = 'p1")}})),
            "config.where: unterminated string starting at position 11");
  EXPECT_EQ(plan_error("filter", cfg({{"where", str("patient = 1")}})),
            "config.where: cannot compare string with int64 at position 11");
}

// ---- map ------------------------------------------------------------------------------------

TEST_F(Relational, MapReplacesInPlaceAppendsAndDrops) {
  operator_harness h(registry_, "map",
                     cfg({{"set", assignments({{"value", str("value * 2")},
                                               {"flag", str("value > 100")},
                                               {"label", str("concat(patient, ':', code)")}})},
                          {"drop", list({"ts"})}}),
                     {{schema_, {}}});
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string?, value:double?, code:int64, flag:bool?, label:string?");
  EXPECT_FALSE(h.plan().outputs[0].keyed());
  h.push(0, input());
  EXPECT_EQ(h.rows(), (strings{"p1|197|1|false|p1:1@10", "p2|202.4|2|true|p2:2@20",
                               "null|null|3|null|null@30", "p1|206|4|true|p1:4@40"}));
  ASSERT_EQ(h.batches().size(), 1u);
  // Null rows hold zero values, as record batches require.
  const column& value = h.batches()[0]->columns[1];
  EXPECT_EQ(value.doubles[2], 0.0);
}

TEST_F(Relational, MapTypesAndNullability) {
  operator_harness h(registry_, "map",
                     cfg({{"set", assignments({{"code", str("to_string(code)")},
                                               {"next", str("code + 1")},
                                               {"half", str("code / 2")},
                                               {"v", str("coalesce(value, 0.0)")},
                                               {"copy", str("patient")},
                                               {"minute", str("date_trunc('minute', ts)")}})}}),
                     {{schema_, {}}});
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string?, value:double?, code:string, ts:timestamp?, next:int64, "
            "half:int64?, v:double, copy:string?, minute:timestamp?");
  h.push(0, input());
  EXPECT_EQ(h.rows(),
            (strings{"p1|98.5|1|1000|2|0|98.5|p1|0@10", "p2|101.2|2|2000|3|1|101.2|p2|0@20",
                     "null|null|3|null|4|1|0|null|null@30", "p1|103|4|4000|5|2|103|p1|0@40"}));
}

TEST_F(Relational, MapKeepsKeyWhenKeyFieldsSurvive) {
  auto in = input({0});
  operator_harness h(
      registry_, "map",
      cfg({{"set", assignments({{"value", str("value + 1")}, {"patient", str("patient")}})}}),
      {{schema_, {0}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{0}));
  h.push(0, in);
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_EQ(h.batches()[0]->key_hash, in->key_hash);
  EXPECT_EQ(h.rows()[0], "p1|99.5|1|1000@10");

  // A dropped field before the key moves it: the key index is remapped.
  operator_harness moved(registry_, "map", cfg({{"drop", list({"patient", "value"})}}),
                         {{schema_, {2}}});
  EXPECT_EQ(moved.plan().outputs[0].schema->to_string(), "code:int64, ts:timestamp?");
  EXPECT_EQ(moved.plan().outputs[0].key_fields, (std::vector<int>{0}));
  auto in2 = input({2});
  moved.push(0, in2);
  ASSERT_EQ(moved.batches().size(), 1u);
  EXPECT_EQ(moved.batches()[0]->key_hash, in2->key_hash);
  EXPECT_EQ(moved.rows(), (strings{"1|1000@10", "2|2000@20", "3|null@30", "4|4000@40"}));
}

TEST_F(Relational, MapDropsKeyWhenKeyFieldChanges) {
  struct case_t {
    config_map config;
    std::string schema;
  };
  std::vector<case_t> cases = {
      {cfg({{"set", assignments({{"patient", str("upper(patient)")}})}}),
       "patient:string?, value:double?, code:int64, ts:timestamp?"},
      {cfg({{"drop", list({"patient"})}}), "value:double?, code:int64, ts:timestamp?"},
      {cfg({{"set", assignments({{"who", str("patient")}})}, {"drop", list({"patient"})}}),
       "value:double?, code:int64, ts:timestamp?, who:string?"},
  };
  for (const auto& c : cases) {
    operator_harness h(registry_, "map", c.config, {{schema_, {0}}});
    EXPECT_EQ(h.plan().outputs[0].schema->to_string(), c.schema);
    EXPECT_FALSE(h.plan().outputs[0].keyed()) << c.schema;
    h.push(0, input({0}));
    ASSERT_EQ(h.batches().size(), 1u);
    EXPECT_FALSE(h.batches()[0]->keyed());
  }
}

TEST_F(Relational, MapEmitsNothingForEmptyBatches) {
  operator_harness h(registry_, "map", cfg({{"set", assignments({{"v", str("value")}})}}),
                     {{schema_, {}}});
  h.push(0, make_rows(schema_, {}, {}));
  EXPECT_TRUE(h.batches().empty());
}

TEST_F(Relational, MapConfigErrors) {
  EXPECT_EQ(plan_error("map", {}),
            "config.set: required (a map of field name to expression) unless config.drop is "
            "given");
  EXPECT_EQ(plan_error("map", cfg({{"set", str("x")}})),
            "config.set: expected a map of field name to expression, got string");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"x", num(1)}})}})),
            "config.set.x: expected an expression string, got integer");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"x", str("1")}, {"x", str("2")}})}})),
            "config.set.x: assigned twice");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"", str("1")}})}})),
            "config.set: field name must not be empty");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"flag", str("hr > 1")}})}})),
            "config.set.flag: unknown field 'hr' at position 1 (fields: patient, value, code, "
            "ts)");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"x", str("null")}})}})),
            "config.set.x: cannot infer the type of null (write e.g. cast(null as int64)) at "
            "position 1");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"x", str("lower(code)")}})}})),
            "config.set.x: function 'lower' expects string for argument 1, got int64 at "
            "position 7");
  EXPECT_EQ(plan_error("map", cfg({{"drop", list({"nope"})}})),
            "config.drop: unknown field 'nope' (fields: patient, value, code, ts)");
  EXPECT_EQ(plan_error("map", cfg({{"set", assignments({{"value", str("1")}})},
                                   {"drop", list({"value"})}})),
            "config.drop: field 'value' is also assigned in config.set");
  EXPECT_EQ(plan_error("map", cfg({{"drop", list({"patient", "value", "code", "ts"})}})),
            "config.drop: would remove every field");
  EXPECT_EQ(plan_error("map", cfg({{"drop", num(3)}})),
            "config.drop: expected string or list of strings, got integer");
  EXPECT_EQ(plan_error("map", cfg({{"drop", list({"ts"})}, {"sett", str("x")}})),
            "config.sett: unknown key");
}

// ---- project --------------------------------------------------------------------------------

TEST_F(Relational, ProjectKeepsListedFieldsInOrder) {
  operator_harness h(registry_, "project", cfg({{"fields", list({"value", "patient"})}}),
                     {{schema_, {}}});
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(), "value:double?, patient:string?");
  h.push(0, input());
  EXPECT_EQ(h.rows(), (strings{"98.5|p1@10", "101.2|p2@20", "null|null@30", "103|p1@40"}));
  h.push(0, make_rows(schema_, {}, {}));
  EXPECT_EQ(h.batches().size(), 1u);

  operator_harness single(registry_, "project", cfg({{"fields", str("code")}}), {{schema_, {}}});
  single.push(0, input());
  EXPECT_EQ(single.rows(), (strings{"1@10", "2@20", "3@30", "4@40"}));
}

TEST_F(Relational, ProjectRemapsOrDropsTheKey) {
  auto in = input({0, 2});
  operator_harness h(registry_, "project", cfg({{"fields", list({"code", "value", "patient"})}}),
                     {{schema_, {0, 2}}});
  EXPECT_EQ(h.plan().outputs[0].key_fields, (std::vector<int>{2, 0}));
  h.push(0, in);
  ASSERT_EQ(h.batches().size(), 1u);
  EXPECT_EQ(h.batches()[0]->key_hash, in->key_hash);
  EXPECT_EQ(h.rows()[1], "2|101.2|p2@20");

  operator_harness lost(registry_, "project", cfg({{"fields", list({"code", "value"})}}),
                        {{schema_, {0, 2}}});
  EXPECT_FALSE(lost.plan().outputs[0].keyed());
  lost.push(0, in);
  ASSERT_EQ(lost.batches().size(), 1u);
  EXPECT_FALSE(lost.batches()[0]->keyed());
}

TEST_F(Relational, ProjectConfigErrors) {
  EXPECT_EQ(plan_error("project", {}), "config.fields: required");
  EXPECT_EQ(plan_error("project", cfg({{"fields", list({"value", "hr"})}})),
            "config.fields: unknown field 'hr' (fields: patient, value, code, ts)");
  EXPECT_EQ(plan_error("project", cfg({{"fields", list({"value", "value"})}})),
            "config.fields: field 'value' listed twice");
  EXPECT_EQ(plan_error("project", cfg({{"fields", list({})}})), "config.fields: must not be empty");
  EXPECT_EQ(plan_error("project", cfg({{"fields", list({"code"})}, {"where", str("x")}})),
            "config.where: unknown key");
}

TEST_F(Relational, RegistersThreeStatelessOperators) {
  for (const char* name : {"filter", "map", "project"}) {
    const operator_factory* f = registry_.find(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->traits().input_ports, (strings{"in"}));
    EXPECT_EQ(f->traits().output_ports, (strings{"out"}));
    EXPECT_FALSE(f->traits().keyed);
    EXPECT_FALSE(f->traits().stateful);
    EXPECT_FALSE(f->traits().summary.empty());
  }
}

}  // namespace
}  // namespace vigil
