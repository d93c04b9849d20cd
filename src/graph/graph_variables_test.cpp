#include "graph/graph_variables.hpp"

#include <gtest/gtest.h>

#include <map>

namespace vigil {
namespace {

std::string expand(std::string_view text) {
  const std::map<std::string, std::string, std::less<>> vars = {
      {"KAFKA", "127.0.0.1:9092"}, {"EMPTY", ""}, {"_X1", "x"}};
  auto r = expand_graph_variables(text, [&](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
  return r ? *r : "error: " + r.err().message;
}

TEST(GraphVariablesTest, ExpandsSetVariablesAndDefaults) {
  EXPECT_EQ(expand("bootstrap: ${KAFKA}\n"), "bootstrap: 127.0.0.1:9092\n");
  EXPECT_EQ(expand("a: ${UNSET:-fallback value}, b: ${_X1:-y}"), "a: fallback value, b: x");
  EXPECT_EQ(expand("a: ${EMPTY:-d} ${EMPTY}|"), "a: d |");
  EXPECT_EQ(expand("a: ${UNSET:-}|"), "a: |");
}

TEST(GraphVariablesTest, DollarsThatAreNotVariablesStay) {
  EXPECT_EQ(expand("price: $5, total: $$${KAFKA}, end $"),
            "price: $5, total: $127.0.0.1:9092, end $");
  EXPECT_EQ(expand("$${KAFKA}"), "${KAFKA}");
  EXPECT_EQ(expand(""), "");
}

TEST(GraphVariablesTest, CommentLinesAreLeftAsTheyAre) {
  EXPECT_EQ(expand("# uses ${NOPE}\n  # and ${KAFKA}\na: ${KAFKA} # ${KAFKA}\n"),
            "# uses ${NOPE}\n  # and ${KAFKA}\na: 127.0.0.1:9092 # 127.0.0.1:9092\n");
}

TEST(GraphVariablesTest, ErrorsNameTheLine) {
  EXPECT_EQ(expand("a: ${NOPE:-${KAFKA}}"),
            "error: line 1: '${NOPE:-${KAFKA}': a default cannot hold variables or '$'");
  EXPECT_EQ(expand("a: 1\nb: ${NOPE}\n"),
            "error: line 2: variable NOPE is not set (set it, or write ${NOPE:-default})");
  EXPECT_EQ(expand("a: ${KAFKA\nb: }"),
            "error: line 1: '${' without a closing '}' on the same line");
  EXPECT_EQ(expand("a: ${9X}"), "error: line 1: '${9X}': expected a variable name");
  EXPECT_EQ(expand("a: ${}"), "error: line 1: '${}': expected a variable name");
  EXPECT_EQ(expand("a: ${KAFKA-x}"),
            "error: line 1: '${KAFKA-x}': expected '}' or ':-default' after the name");
}

}  // namespace
}  // namespace vigil
