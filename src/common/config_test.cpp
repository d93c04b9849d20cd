#include "common/config.hpp"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(Durations, ParsesUnitsAndMilliseconds) {
  EXPECT_EQ(*parse_duration_us(config_value::of_string("250ms")), 250000);
  EXPECT_EQ(*parse_duration_us(config_value::of_string("10s")), 10000000);
  EXPECT_EQ(*parse_duration_us(config_value::of_string("5m")), 300000000);
  EXPECT_EQ(*parse_duration_us(config_value::of_string("2h")), 7200000000);
  EXPECT_EQ(*parse_duration_us(config_value::of_string("1d")), 86400000000);
  EXPECT_EQ(*parse_duration_us(config_value::of_string("100us")), 100);
  EXPECT_EQ(*parse_duration_us(config_value::of_int(1500)), 1500000);
}

TEST(Durations, RefusesGarbageNegativeAndOverflow) {
  for (const char* bad : {"10 parsecs", "s", "-5s", "1.5s", "", "300000000000d"}) {
    EXPECT_FALSE(parse_duration_us(config_value::of_string(bad)).ok()) << bad;
  }
  EXPECT_FALSE(parse_duration_us(config_value::of_int(-1)).ok());
  EXPECT_FALSE(parse_duration_us(config_value::of_bool(true)).ok());
}

TEST(ConfigReader, ReportsTypeErrorsAndUnknownKeysByName) {
  config_map cfg{{"size", config_value::of_string("10s")},
                 {"count", config_value::of_string("ten")},
                 {"typo", config_value::of_int(1)}};
  config_reader r(cfg);
  EXPECT_EQ(*r.required_duration_us("size"), 10000000);
  auto count = r.int_or("count", 0);
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.err().message, "config.count: expected integer, got string");
  auto missing = r.required_string("path");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().message, "config.path: required");
  auto st = r.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().message, "config.typo: unknown key");
}

TEST(ConfigReader, StringListsAcceptAStringOrAList) {
  config_value list;
  list.k = config_value::kind::list;
  list.list = {config_value::of_string("a"), config_value::of_int(3)};
  config_map cfg{{"one", config_value::of_string("x")}, {"many", list}};
  config_reader r(cfg);
  EXPECT_EQ(*r.required_string_list("one"), std::vector<std::string>{"x"});
  auto many = r.required_string_list("many");
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.err().message, "config.many[1]: expected string, got integer");
}

}  // namespace
}  // namespace vigil
