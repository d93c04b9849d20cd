#include "operators/core/expr/expr.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>

#include "operators/core/expr/conversions.hpp"
#include "operators/core/expr/lexer.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil::expr {
namespace {

using testing::cell;
using testing::make_rows;
using rows_t = std::vector<std::vector<cell>>;

constexpr int64_t minute_us = 60 * int64_t{1000000};

/// a, b: int64; x, y: double; s, u: string; p, q: bool; ts, tt: timestamp; n: int64 not null;
/// "heart rate": double.
schema_ptr test_schema() {
  return make_schema({
      {"a", type_id::int64, true},
      {"b", type_id::int64, true},
      {"x", type_id::float64, true},
      {"y", type_id::float64, true},
      {"s", type_id::string, true},
      {"u", type_id::string, true},
      {"p", type_id::boolean, true},
      {"q", type_id::boolean, true},
      {"ts", type_id::timestamp, true},
      {"tt", type_id::timestamp, true},
      {"n", type_id::int64, false},
      {"heart rate", type_id::float64, true},
  });
}

/// A row of test_schema with every field null except `n`; `set` fills named fields.
std::vector<cell> row(std::initializer_list<std::pair<std::string, cell>> set) {
  auto s = test_schema();
  std::vector<cell> r(s->size());
  r[s->index_of("n")] = int64_t{0};
  for (const auto& [name, value] : set) r[s->index_of(name)] = value;
  return r;
}

std::string text_of(const column& c, size_t i) {
  if (c.is_null(i)) return "null";
  char buf[64];
  switch (c.type) {
    case type_id::boolean:
      return c.bools[i] ? "true" : "false";
    case type_id::int64:
      return std::to_string(c.ints[i]);
    case type_id::timestamp:
      return "ts:" + std::to_string(c.ints[i]);
    case type_id::float64:
      std::snprintf(buf, sizeof buf, "%.17g", c.doubles[i]);
      return buf;
    case type_id::string: {
      std::string out = "'";
      out.append(c.string_at(i));
      out.push_back('\'');
      return out;
    }
  }
  return "?";
}

/// Evaluates `text` over `rows` (event times 1000, 2000, ...) and returns each result as text.
std::vector<std::string> eval_rows(const std::string& text, const rows_t& rows) {
  auto s = test_schema();
  auto e = expression::compile(text, *s);
  EXPECT_TRUE(e.ok()) << text << ": " << (e.ok() ? "" : e.err().message);
  if (!e) return {};
  std::vector<int64_t> times;
  for (size_t i = 0; i < rows.size(); ++i) times.push_back(static_cast<int64_t>(i + 1) * 1000);
  auto batch = make_rows(s, rows, times);
  evaluator ev(*e);
  const column& c = ev.evaluate(*batch);
  EXPECT_EQ(c.size(), rows.size());
  EXPECT_EQ(c.type, (*e)->type());
  std::vector<std::string> out;
  for (size_t i = 0; i < c.size(); ++i) out.push_back(text_of(c, i));
  return out;
}

std::string eval1(const std::string& text, std::vector<cell> r = row({})) {
  auto out = eval_rows(text, {std::move(r)});
  return out.empty() ? "<error>" : out[0];
}

std::string error_of(const std::string& text) {
  auto e = expression::compile(text, *test_schema());
  if (e) return "<ok>";
  EXPECT_EQ(e.err().code, errc::invalid_argument);
  return e.err().message;
}

// ---- lexer and parser -----------------------------------------------------------------------

TEST(ExprLexer, TokensCarryPositionsAndUnescapedText) {
  auto toks = tokenize("a <> 'it''s' AND \"odd \"\"name\" >= 1.5e1");
  ASSERT_TRUE(toks.ok());
  ASSERT_EQ(toks->size(), 8u);
  EXPECT_EQ((*toks)[0].pos, 1u);
  EXPECT_EQ((*toks)[1].kind, token_kind::ne);
  EXPECT_EQ((*toks)[2].kind, token_kind::string);
  EXPECT_EQ((*toks)[2].text, "it's");
  EXPECT_EQ((*toks)[2].pos, 6u);
  EXPECT_EQ((*toks)[4].kind, token_kind::quoted_identifier);
  EXPECT_EQ((*toks)[4].text, "odd \"name");
  EXPECT_EQ((*toks)[6].kind, token_kind::decimal);
  EXPECT_DOUBLE_EQ((*toks)[6].number, 15.0);
  EXPECT_EQ((*toks)[7].kind, token_kind::end);
  EXPECT_EQ((*toks)[7].pos, 39u);
}

TEST(ExprParse, LexicalErrorsNamePositions) {
  EXPECT_EQ(error_of("s = 'abc"), "unterminated string starting at position 5");
  EXPECT_EQ(error_of("\"heart rate > 1"), "unterminated quoted name starting at position 1");
  EXPECT_EQ(error_of("a # 1"), "unexpected character '#' at position 3");
  EXPECT_EQ(error_of("a ! 1"), "unexpected character '!' at position 3");
  EXPECT_EQ(error_of("a = 99999999999999999999"),
            "integer literal '99999999999999999999' out of range at position 5");
  EXPECT_EQ(error_of("a = 9223372036854775808"),
            "integer literal '9223372036854775808' out of range at position 5");
  EXPECT_EQ(error_of("a = 12abc"), "invalid number '12a' at position 5");
}

TEST(ExprParse, SyntaxErrorsNamePositions) {
  EXPECT_EQ(error_of(""), "empty expression");
  EXPECT_EQ(error_of("   "), "empty expression");
  EXPECT_EQ(error_of("(a + 1"), "unbalanced parenthesis: '(' is not closed at position 1");
  EXPECT_EQ(error_of("abs((a + 1)"), "unbalanced parenthesis: '(' is not closed at position 4");
  EXPECT_EQ(error_of("a + 1)"), "unbalanced parenthesis: unexpected ')' at position 6");
  EXPECT_EQ(error_of("a b"), "unexpected 'b' after the end of the expression at position 3");
  EXPECT_EQ(error_of("a = 1 2"), "unexpected '2' after the end of the expression at position 7");
  EXPECT_EQ(error_of("a < b < 3"), "unexpected '<' after the end of the expression at position 7");
  EXPECT_EQ(error_of("a +"), "expected an expression, found end of expression at position 4");
  EXPECT_EQ(error_of("a * , b"), "expected an expression, found ',' at position 5");
  EXPECT_EQ(error_of("abs(a b)"), "expected ')', found 'b' at position 7");
  EXPECT_EQ(error_of("a IS 1"), "expected NULL, found '1' at position 6");
  EXPECT_EQ(error_of("a IN 1"), "expected '(' after IN, found '1' at position 6");
  EXPECT_EQ(error_of("a BETWEEN 1 OR 2"), "expected AND, found 'OR' at position 13");
  EXPECT_EQ(error_of("end = 1"),
            "unexpected keyword 'end' (write \"end\" for a field of that name) at position 1");
  EXPECT_EQ(error_of("CASE WHEN p THEN 1"), "expected END, found end of expression at position 19");
  EXPECT_EQ(error_of("CASE 1 END"), "expected WHEN, found 'END' at position 8");
  EXPECT_EQ(error_of("cast(a as number)"),
            "unknown type 'number' (types: bool, int64, double, string, timestamp) at position 11");
  EXPECT_EQ(error_of("cast(a, int64)"), "expected AS, found ',' at position 7");
}

TEST(ExprParse, DeepNestingIsRefused) {
  std::string deep(300, '(');
  deep += "1";
  deep += std::string(300, ')');
  EXPECT_EQ(error_of(deep), "expression nested too deeply at position 201");
  std::string long_sum = "a";
  for (int i = 0; i < 3000; ++i) long_sum += " + a";
  EXPECT_EQ(error_of(long_sum), "expression too long (more than 5000 terms)");
}

// ---- type checking --------------------------------------------------------------------------

TEST(ExprCheck, UnknownFieldListsTheFields) {
  EXPECT_EQ(error_of("a + hr"),
            "unknown field 'hr' at position 5 (fields: a, b, x, y, s, u, p, q, ts, tt, n, heart "
            "rate)");
  EXPECT_EQ(error_of("A = 1").substr(0, 32), "unknown field 'A' at position 1 ");
}

TEST(ExprCheck, TypeErrorsNameOperatorAndTypes) {
  EXPECT_EQ(error_of("s = 1"), "cannot compare string with int64 at position 5");
  EXPECT_EQ(error_of("ts < a"), "cannot compare timestamp with int64 at position 6");
  EXPECT_EQ(error_of("p = 1.5"), "cannot compare bool with double at position 5");
  EXPECT_EQ(error_of("s + 1"), "operator '+' cannot be applied to string and int64 at position 3");
  EXPECT_EQ(error_of("ts * 2"),
            "operator '*' cannot be applied to timestamp and int64 at position 4");
  EXPECT_EQ(error_of("ts + x"),
            "operator '+' cannot be applied to timestamp and double at position 4");
  EXPECT_EQ(error_of("a - ts"),
            "operator '-' cannot be applied to int64 and timestamp at position 3");
  EXPECT_EQ(error_of("-s"), "operator '-' cannot be applied to string at position 1");
  EXPECT_EQ(error_of("NOT a"), "NOT expects bool, got int64 at position 1");
  EXPECT_EQ(error_of("p AND a"), "AND expects bool operands, got bool and int64 at position 3");
  EXPECT_EQ(error_of("a IN (1, 'x')"),
            "cannot compare int64 with string in IN list at position 10");
  EXPECT_EQ(error_of("CASE WHEN a THEN 1 END"),
            "CASE WHEN condition must be bool, got int64 at position 11");
  EXPECT_EQ(error_of("CASE WHEN p THEN 1 ELSE 'x' END"),
            "cannot mix int64 and string in CASE at position 25");
  EXPECT_EQ(error_of("coalesce(a, s)"),
            "cannot mix int64 and string in function 'coalesce' at position 13");
}

TEST(ExprCheck, FunctionErrors) {
  EXPECT_EQ(error_of("nope(a)"), "unknown function 'nope' at position 1");
  EXPECT_EQ(error_of("lower(a)"),
            "function 'lower' expects string for argument 1, got int64 at position 7");
  EXPECT_EQ(error_of("substr(s)"), "function 'substr' takes 2 or 3 arguments, got 1 at position 1");
  EXPECT_EQ(error_of("event_time(a)"),
            "function 'event_time' takes 0 arguments, got 1 at position 1");
  EXPECT_EQ(error_of("lower()"), "function 'lower' takes 1 argument, got 0 at position 1");
  EXPECT_EQ(error_of("to_int(s, 1)"), "function 'to_int' takes 1 argument, got 2 at position 1");
  EXPECT_EQ(error_of("abs(s)"),
            "function 'abs' expects int64 or double for argument 1, got string at position 5");
  EXPECT_EQ(error_of("date_trunc(s, ts)"),
            "function 'date_trunc' expects a unit literal such as 'minute' for argument 1 at "
            "position 12");
  EXPECT_EQ(error_of("date_trunc('week', ts)"),
            "unknown date_trunc unit 'week' (units: millisecond, second, minute, hour, day) at "
            "position 12");
  EXPECT_EQ(error_of("epoch_ms(a)"),
            "function 'epoch_ms' expects timestamp for argument 1, got int64 at position 10");
  EXPECT_EQ(error_of("cast(ts as double)"), "cannot cast timestamp to double at position 1");
  EXPECT_EQ(error_of("to_bool(x)"), "cannot cast double to bool at position 1");
}

TEST(ExprCheck, UntypedNulls) {
  EXPECT_EQ(error_of("null"),
            "cannot infer the type of null (write e.g. cast(null as int64)) at position 1");
  EXPECT_EQ(error_of("null + null"),
            "cannot infer the type of null (write e.g. cast(null as int64)) at position 1");
  EXPECT_EQ(error_of("abs(null)"),
            "cannot infer the type of null (write e.g. cast(null as int64)) at position 5");
  EXPECT_EQ(eval1("a + null"), "null");
  EXPECT_EQ(eval1("ts + null", row({{"ts", int64_t{5}}})), "null");
  EXPECT_EQ(eval1("null = null"), "null");
  EXPECT_EQ(eval1("null IS NULL"), "true");
  EXPECT_EQ(eval1("coalesce(null, 'x')"), "'x'");
  EXPECT_EQ(eval1("lower(null)"), "null");
  EXPECT_EQ(eval1("cast(null as string)"), "null");
  // A filter's condition may be a bare null (it keeps nothing).
  auto e = expression::compile("null", *test_schema(), type_id::boolean);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->type(), type_id::boolean);
}

TEST(ExprCheck, ExpectedTypeIsEnforced) {
  auto e = expression::compile("a + 1", *test_schema(), type_id::boolean);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.err().message, "expression must be bool, got int64");
}

TEST(ExprCheck, ResultTypesAndNullability) {
  auto s = test_schema();
  struct expect_t {
    std::string text;
    type_id type;
    bool nullable;
  };
  std::vector<expect_t> cases = {
      {"n", type_id::int64, false},
      {"n + 1", type_id::int64, false},
      {"n + 1.5", type_id::float64, false},
      {"n / 2", type_id::int64, true},
      {"n % 2", type_id::int64, true},
      {"a + 1", type_id::int64, true},
      {"n > 3", type_id::boolean, false},
      {"a IS NULL", type_id::boolean, false},
      {"coalesce(a, 0)", type_id::int64, false},
      {"coalesce(a, b)", type_id::int64, true},
      {"coalesce(a, x)", type_id::float64, true},
      {"to_string(n)", type_id::string, false},
      {"to_int('5')", type_id::int64, true},
      {"to_int(1.5)", type_id::int64, true},
      {"to_double(n)", type_id::float64, false},
      {"cast(n as int64)", type_id::int64, false},
      {"event_time()", type_id::timestamp, false},
      {"event_time() - minutes(5)", type_id::timestamp, false},
      {"event_time() - ts", type_id::int64, true},
      {"CASE WHEN n > 0 THEN 'pos' ELSE 'neg' END", type_id::string, false},
      {"CASE WHEN n > 0 THEN 'pos' END", type_id::string, true},
      {"CASE WHEN n > 0 THEN 1 ELSE 2.5 END", type_id::float64, false},
      {"'x'", type_id::string, false},
      {"concat('n=', n)", type_id::string, false},
      {"round(x, 1)", type_id::float64, true},
      {"seconds(n)", type_id::int64, false},
      {"seconds(1.5)", type_id::int64, true},
      {"date_trunc('hour', event_time())", type_id::timestamp, false},
      {"n IN (1, 2)", type_id::boolean, false},
      {"n IN (1, null)", type_id::boolean, true},
      {"n BETWEEN 1 AND 3", type_id::boolean, false},
      {"\"heart rate\"", type_id::float64, true},
  };
  for (const auto& c : cases) {
    auto e = expression::compile(c.text, *s);
    ASSERT_TRUE(e.ok()) << c.text << ": " << e.err().message;
    EXPECT_EQ((*e)->type(), c.type) << c.text;
    EXPECT_EQ((*e)->nullable(), c.nullable) << c.text;
  }
  auto ref = expression::compile("a", *s);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ((*ref)->field_index(), 0);
  auto cast_away = expression::compile("to_int(b)", *s);
  ASSERT_TRUE(cast_away.ok());
  EXPECT_EQ((*cast_away)->field_index(), 1);  // An identity cast disappears.
}

// ---- evaluation -----------------------------------------------------------------------------

TEST(ExprEval, Literals) {
  EXPECT_EQ(eval1("42"), "42");
  EXPECT_EQ(eval1("-42"), "-42");
  EXPECT_EQ(eval1("-9223372036854775808"), std::to_string(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(eval1("1.5"), "1.5");
  EXPECT_EQ(eval1(".5"), "0.5");
  EXPECT_EQ(eval1("2e3"), "2000");
  EXPECT_EQ(eval1("'it''s'"), "'it's'");
  EXPECT_EQ(eval1("''"), "''");
  EXPECT_EQ(eval1("TRUE"), "true");
  EXPECT_EQ(eval1("false"), "false");
  EXPECT_EQ(eval1("- - 3"), "3");
  EXPECT_EQ(eval1("+3"), "3");
  EXPECT_EQ(eval1("-(2 + 3)"), "-5");
}

TEST(ExprEval, FieldReferences) {
  auto r = row({{"a", int64_t{7}}, {"s", std::string("hi")}, {"heart rate", 88.5}});
  EXPECT_EQ(eval1("a", r), "7");
  EXPECT_EQ(eval1("\"a\"", r), "7");
  EXPECT_EQ(eval1("s", r), "'hi'");
  EXPECT_EQ(eval1("\"heart rate\" + 1", r), "89.5");
  EXPECT_EQ(eval1("b", r), "null");
}

TEST(ExprEval, IntegerArithmetic) {
  auto r = row({{"a", int64_t{7}}, {"b", int64_t{-2}}});
  EXPECT_EQ(eval1("a + b", r), "5");
  EXPECT_EQ(eval1("a - b", r), "9");
  EXPECT_EQ(eval1("a * b", r), "-14");
  EXPECT_EQ(eval1("a / b", r), "-3");  // Truncates toward zero.
  EXPECT_EQ(eval1("a % b", r), "1");   // Sign of the dividend.
  EXPECT_EQ(eval1("-a % 3", r), "-1");
  EXPECT_EQ(eval1("7 / 2", r), "3");
  EXPECT_EQ(eval1("1 + 2 * 3 - 4 / 2", r), "5");
  EXPECT_EQ(eval1("(1 + 2) * 3", r), "9");
  EXPECT_EQ(eval1("a / 0", r), "null");
  EXPECT_EQ(eval1("a % 0", r), "null");
  EXPECT_EQ(eval1("a / (b + 2)", r), "null");
  EXPECT_EQ(eval1("-a", r), "-7");
  EXPECT_EQ(eval1("9223372036854775807 + 1", r),
            std::to_string(std::numeric_limits<int64_t>::min()));  // Wraps.
  EXPECT_EQ(eval1("-9223372036854775808 / -1", r),
            std::to_string(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(eval1("-9223372036854775808 % -1", r), "0");
  EXPECT_EQ(eval1("a + b", row({{"a", int64_t{1}}})), "null");
}

TEST(ExprEval, DoubleArithmetic) {
  auto r = row({{"a", int64_t{3}}, {"x", 1.5}, {"y", 0.0}});
  EXPECT_EQ(eval1("a + x", r), "4.5");
  EXPECT_EQ(eval1("x * 2", r), "3");
  EXPECT_EQ(eval1("a / 2.0", r), "1.5");
  EXPECT_EQ(eval1("x - a", r), "-1.5");
  EXPECT_EQ(eval1("7.5 % 2", r), "1.5");
  EXPECT_EQ(eval1("x / y", r), "null");
  EXPECT_EQ(eval1("x % y", r), "null");
  EXPECT_EQ(eval1("-x", r), "-1.5");
  EXPECT_EQ(eval1("x + y", row({{"x", 1.0}})), "null");
}

TEST(ExprEval, Comparisons) {
  auto r = row({{"a", int64_t{3}},
                {"b", int64_t{5}},
                {"x", 3.0},
                {"s", std::string("apple")},
                {"u", std::string("banana")},
                {"p", true},
                {"q", false},
                {"ts", int64_t{100}},
                {"tt", int64_t{200}}});
  EXPECT_EQ(eval1("a = b", r), "false");
  EXPECT_EQ(eval1("a != b", r), "true");
  EXPECT_EQ(eval1("a <> b", r), "true");
  EXPECT_EQ(eval1("a == 3", r), "true");
  EXPECT_EQ(eval1("a < b", r), "true");
  EXPECT_EQ(eval1("a <= 3", r), "true");
  EXPECT_EQ(eval1("a > b", r), "false");
  EXPECT_EQ(eval1("b >= 5", r), "true");
  EXPECT_EQ(eval1("a = x", r), "true");  // int64 with double.
  EXPECT_EQ(eval1("x < 3.5", r), "true");
  EXPECT_EQ(eval1("s < u", r), "true");
  EXPECT_EQ(eval1("s = 'apple'", r), "true");
  EXPECT_EQ(eval1("s >= 'b'", r), "false");
  EXPECT_EQ(eval1("'' < s", r), "true");
  EXPECT_EQ(eval1("p > q", r), "true");
  EXPECT_EQ(eval1("p = true", r), "true");
  EXPECT_EQ(eval1("ts < tt", r), "true");
  EXPECT_EQ(eval1("tt - ts = 100", r), "true");
  EXPECT_EQ(eval1("a = y", r), "null");
  EXPECT_EQ(eval1("s = null", r), "null");
}

TEST(ExprEval, ThreeValuedLogicTable) {
  rows_t rows;
  std::vector<cell> values = {cell{true}, cell{false}, cell{}};
  for (const auto& p : values) {
    for (const auto& q : values) rows.push_back(row({{"p", p}, {"q", q}}));
  }
  // Rows: (T,T) (T,F) (T,N) (F,T) (F,F) (F,N) (N,T) (N,F) (N,N).
  EXPECT_EQ(eval_rows("p AND q", rows),
            (std::vector<std::string>{"true", "false", "null", "false", "false", "false", "null",
                                      "false", "null"}));
  EXPECT_EQ(eval_rows("p OR q", rows),
            (std::vector<std::string>{"true", "true", "true", "true", "false", "null", "true",
                                      "null", "null"}));
  EXPECT_EQ(eval_rows("NOT p", rows),
            (std::vector<std::string>{"false", "false", "false", "true", "true", "true", "null",
                                      "null", "null"}));
  EXPECT_EQ(eval_rows("p IS NULL", rows),
            (std::vector<std::string>{"false", "false", "false", "false", "false", "false", "true",
                                      "true", "true"}));
  EXPECT_EQ(eval_rows("q IS NOT NULL", rows),
            (std::vector<std::string>{"true", "true", "false", "true", "true", "false", "true",
                                      "true", "false"}));
  EXPECT_EQ(eval1("null AND false"), "false");
  EXPECT_EQ(eval1("null OR true"), "true");
  EXPECT_EQ(eval1("NOT null"), "null");
}

TEST(ExprEval, Precedence) {
  auto r = row({{"p", true}, {"q", false}, {"a", int64_t{1}}});
  EXPECT_EQ(eval1("p OR q AND q", r), "true");  // AND binds tighter than OR.
  EXPECT_EQ(eval1("(p OR q) AND q", r), "false");
  EXPECT_EQ(eval1("NOT q AND p", r), "true");  // NOT binds tighter than AND.
  EXPECT_EQ(eval1("NOT a = 2", r), "true");    // Comparison binds tighter than NOT.
  EXPECT_EQ(eval1("a + 1 = 2 AND a * 2 > 1", r), "true");
}

TEST(ExprEval, InList) {
  rows_t rows = {row({{"a", int64_t{1}}}), row({{"a", int64_t{4}}}), row({})};
  EXPECT_EQ(eval_rows("a IN (1, 2, 3)", rows), (std::vector<std::string>{"true", "false", "null"}));
  EXPECT_EQ(eval_rows("a NOT IN (1, 2, 3)", rows),
            (std::vector<std::string>{"false", "true", "null"}));
  EXPECT_EQ(eval_rows("a IN (1, null)", rows), (std::vector<std::string>{"true", "null", "null"}));
  EXPECT_EQ(eval_rows("a NOT IN (1, null)", rows),
            (std::vector<std::string>{"false", "null", "null"}));
  EXPECT_EQ(eval_rows("a IN (1.0, 4.5)", rows),
            (std::vector<std::string>{"true", "false", "null"}));
  EXPECT_EQ(eval1("s IN ('a', '', 'b')", row({{"s", std::string("")}})), "true");
  EXPECT_EQ(eval1("p IN (false)", row({{"p", true}})), "false");
}

TEST(ExprEval, Between) {
  rows_t rows = {row({{"a", int64_t{1}}}), row({{"a", int64_t{5}}}), row({{"a", int64_t{6}}}),
                 row({})};
  EXPECT_EQ(eval_rows("a BETWEEN 1 AND 5", rows),
            (std::vector<std::string>{"true", "true", "false", "null"}));
  EXPECT_EQ(eval_rows("a NOT BETWEEN 2 AND 5", rows),
            (std::vector<std::string>{"true", "false", "true", "null"}));
  EXPECT_EQ(eval1("a BETWEEN 1 AND 2 AND true", row({{"a", int64_t{2}}})), "true");
}

TEST(ExprEval, Case) {
  rows_t rows = {row({{"a", int64_t{1}}}), row({{"a", int64_t{5}}}), row({{"a", int64_t{9}}}),
                 row({})};
  EXPECT_EQ(eval_rows("CASE WHEN a < 3 THEN 'low' WHEN a < 7 THEN 'mid' ELSE 'high' END", rows),
            (std::vector<std::string>{"'low'", "'mid'", "'high'", "'high'"}));
  EXPECT_EQ(eval_rows("CASE WHEN a < 3 THEN 1 WHEN a < 7 THEN 2.5 END", rows),
            (std::vector<std::string>{"1", "2.5", "null", "null"}));
  EXPECT_EQ(eval_rows("case a when 1 then 'one' when 5 then 'five' else 'other' end", rows),
            (std::vector<std::string>{"'one'", "'five'", "'other'", "'other'"}));
  EXPECT_EQ(eval_rows("CASE WHEN a > 3 THEN b ELSE a END", rows),
            (std::vector<std::string>{"1", "null", "null", "null"}));
  EXPECT_EQ(eval_rows("CASE WHEN a > 3 THEN p END", rows),
            (std::vector<std::string>{"null", "null", "null", "null"}));
}

TEST(ExprEval, StringFunctions) {
  auto r = row({{"s", std::string("Hello, Wörld")}, {"u", std::string("")}});
  EXPECT_EQ(eval1("lower(s)", r), "'hello, wörld'");
  EXPECT_EQ(eval1("upper(s)", r), "'HELLO, WöRLD'");  // ASCII only.
  EXPECT_EQ(eval1("lower(u)", r), "''");
  EXPECT_EQ(eval1("upper(u)", r), "''");
  EXPECT_EQ(eval1("length(s)", r), "12");  // Code points, not bytes.
  EXPECT_EQ(eval1("length(u)", r), "0");
  EXPECT_EQ(eval1("trim('  a b \t')", r), "'a b'");
  EXPECT_EQ(eval1("trim(u)", r), "''");
  EXPECT_EQ(eval1("trim('   ')", r), "''");
  EXPECT_EQ(eval1("concat(s, '!')", r), "'Hello, Wörld!'");
  EXPECT_EQ(eval1("concat(u, u)", r), "''");
  EXPECT_EQ(eval1("concat('a')", r), "'a'");
  EXPECT_EQ(eval1("concat('n=', 3, ' x=', 1.5, ' ', true)", r), "'n=3 x=1.5 true'");
  EXPECT_EQ(eval1("concat(s, a)", r), "null");
  EXPECT_EQ(eval1("substr(s, 1, 5)", r), "'Hello'");
  EXPECT_EQ(eval1("substr(s, 8)", r), "'Wörld'");
  EXPECT_EQ(eval1("substr(s, 9, 2)", r), "'ör'");
  EXPECT_EQ(eval1("substr(s, 0, 3)", r), "'He'");  // The window [0, 3) is cut at 1.
  EXPECT_EQ(eval1("substr(s, -5, 3)", r), "''");
  EXPECT_EQ(eval1("substr(s, 12, 100)", r), "'d'");
  EXPECT_EQ(eval1("substr(s, 13)", r), "''");
  EXPECT_EQ(eval1("substr(s, 2, -1)", r), "''");
  EXPECT_EQ(eval1("substr(s, 2, 9223372036854775807)", r), "'ello, Wörld'");
  EXPECT_EQ(eval1("substr(u, 1, 1)", r), "''");
  EXPECT_EQ(eval1("substr(s, a, 1)", r), "null");
  EXPECT_EQ(eval1("starts_with(s, 'Hell')", r), "true");
  EXPECT_EQ(eval1("starts_with(s, 'hell')", r), "false");
  EXPECT_EQ(eval1("starts_with(s, u)", r), "true");
  EXPECT_EQ(eval1("starts_with(u, 'a')", r), "false");
  EXPECT_EQ(eval1("ends_with(s, 'örld')", r), "true");
  EXPECT_EQ(eval1("ends_with(u, u)", r), "true");
  EXPECT_EQ(eval1("contains(s, ', W')", r), "true");
  EXPECT_EQ(eval1("contains(s, 'xyz')", r), "false");
  EXPECT_EQ(eval1("contains(u, '')", r), "true");
  auto nulls = row({});
  for (const char* f : {"lower(s)", "upper(s)", "length(s)", "trim(s)", "substr(s, 1)",
                        "starts_with(s, 'a')", "ends_with('a', s)", "contains(s, s)"}) {
    EXPECT_EQ(eval1(f, nulls), "null") << f;
  }
}

TEST(ExprEval, MathFunctions) {
  auto r = row({{"a", int64_t{-7}}, {"x", -2.5}, {"y", 2.345}});
  EXPECT_EQ(eval1("abs(a)", r), "7");
  EXPECT_EQ(eval1("abs(x)", r), "2.5");
  EXPECT_EQ(eval1("abs(-9223372036854775808)", r),
            std::to_string(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(eval1("round(x)", r), "-3");  // Half away from zero.
  EXPECT_EQ(eval1("round(2.5)", r), "3");
  EXPECT_EQ(eval1("round(y, 1)", r), "2.2999999999999998");
  EXPECT_EQ(eval1("round(1234.5678, 2)", r), "1234.5699999999999");
  EXPECT_EQ(eval1("round(1250.0, -2)", r), "1300");
  EXPECT_EQ(eval1("round(a)", r), "-7");
  EXPECT_EQ(eval1("round(1234, -2)", r), "1200");
  EXPECT_EQ(eval1("round(1250, -2)", r), "1300");
  EXPECT_EQ(eval1("round(-1250, -2)", r), "-1300");
  EXPECT_EQ(eval1("round(y, b)", r), "null");
  EXPECT_EQ(eval1("floor(x)", r), "-3");
  EXPECT_EQ(eval1("ceil(x)", r), "-2");
  EXPECT_EQ(eval1("floor(a)", r), "-7");
  EXPECT_EQ(eval1("ceil(y)", r), "3");
  EXPECT_EQ(eval1("least(3, a, 10)", r), "-7");
  EXPECT_EQ(eval1("greatest(3, a, 10)", r), "10");
  EXPECT_EQ(eval1("greatest(a, x)", r), "-2.5");
  EXPECT_EQ(eval1("least('b', 'a', 'c')", r), "'a'");
  EXPECT_EQ(eval1("greatest('b', '', 'c')", r), "'c'");
  EXPECT_EQ(eval1("greatest(1, b)", r), "null");
  EXPECT_EQ(eval1("least(s, 'a')", r), "null");
  EXPECT_EQ(eval1("least(ts_from_ms(5), ts_from_ms(3))", r), "ts:3000");
  EXPECT_EQ(eval1("least(true, false)", r), "false");
  EXPECT_EQ(eval1("coalesce(b, a, 1)", r), "-7");
  EXPECT_EQ(eval1("coalesce(b, 1)", r), "1");
  EXPECT_EQ(eval1("coalesce(b, x)", r), "-2.5");
  EXPECT_EQ(eval1("coalesce(b)", r), "null");
  EXPECT_EQ(eval1("coalesce(s, u, 'z')", r), "'z'");
  EXPECT_EQ(eval1("coalesce(s, 'first', 'z')", r), "'first'");
  EXPECT_EQ(eval1("coalesce(p, true)", r), "true");
}

TEST(ExprEval, TimeFunctions) {
  const int64_t t = 1709294645123456;  // 2024-03-01T12:04:05.123456Z
  auto r = row({{"ts", t}, {"tt", int64_t{-1}}, {"a", int64_t{90}}});
  EXPECT_EQ(eval1("milliseconds(3)", r), "3000");
  EXPECT_EQ(eval1("seconds(2)", r), "2000000");
  EXPECT_EQ(eval1("seconds(1.5)", r), "1500000");
  EXPECT_EQ(eval1("minutes(5)", r), "300000000");
  EXPECT_EQ(eval1("hours(1)", r), "3600000000");
  EXPECT_EQ(eval1("days(1)", r), "86400000000");
  EXPECT_EQ(eval1("seconds(1e300)", r), "null");
  EXPECT_EQ(eval1("ts + minutes(1)", r), "ts:" + std::to_string(t + minute_us));
  EXPECT_EQ(eval1("minutes(1) + ts", r), "ts:" + std::to_string(t + minute_us));
  EXPECT_EQ(eval1("ts - seconds(a)", r), "ts:" + std::to_string(t - 90000000));
  EXPECT_EQ(eval1("ts - ts_from_ms(0)", r), std::to_string(t));
  EXPECT_EQ(eval1("epoch_ms(ts)", r), "1709294645123");
  EXPECT_EQ(eval1("epoch_ms(tt)", r), "-1");  // Rounds down.
  EXPECT_EQ(eval1("ts_from_ms(1709294645123)", r), "ts:1709294645123000");
  EXPECT_EQ(eval1("date_trunc('millisecond', ts)", r), "ts:1709294645123000");
  EXPECT_EQ(eval1("date_trunc('second', ts)", r), "ts:1709294645000000");
  EXPECT_EQ(eval1("date_trunc('minute', ts)", r), "ts:1709294640000000");
  EXPECT_EQ(eval1("date_trunc('hour', ts)", r), "ts:1709294400000000");
  EXPECT_EQ(eval1("date_trunc('day', ts)", r), "ts:1709251200000000");
  EXPECT_EQ(eval1("date_trunc('second', tt)", r), "ts:-1000000");
  EXPECT_EQ(eval1("epoch_ms(ts_from_ms(a))", row({})), "null");
  EXPECT_EQ(eval_rows("event_time()", {row({}), row({})}),
            (std::vector<std::string>{"ts:1000", "ts:2000"}));
  EXPECT_EQ(eval1("event_time() > ts", r), "false");
  // The extremes wrap instead of overflowing.
  EXPECT_EQ(eval1("date_trunc('day', cast(-9223372036854775808 as timestamp)) > ts", r), "true");
  EXPECT_EQ(eval1("length(to_string(cast(-9223372036854775808 as timestamp))) > 0", r), "true");
  EXPECT_EQ(eval1("length(to_string(cast(9223372036854775807 as timestamp))) > 0", r), "true");
  EXPECT_EQ(eval1("ts > event_time() - days(1)", r), "true");
}

TEST(ExprEval, Casts) {
  auto r = row({{"a", int64_t{42}},
                {"x", 2.75},
                {"y", -2.75},
                {"s", std::string(" 17 ")},
                {"u", std::string("abc")},
                {"p", true},
                {"ts", int64_t{1709294645250000}}});
  EXPECT_EQ(eval1("to_double(a)", r), "42");
  EXPECT_EQ(eval1("cast(a as double) / 8", r), "5.25");
  EXPECT_EQ(eval1("to_int(x)", r), "2");  // Truncates.
  EXPECT_EQ(eval1("to_int(y)", r), "-2");
  EXPECT_EQ(eval1("to_int(1e19)", r), "null");
  EXPECT_EQ(eval1("to_int(to_double('nan'))", r), "null");
  EXPECT_EQ(eval1("to_int(s)", r), "17");
  EXPECT_EQ(eval1("to_int(u)", r), "null");
  EXPECT_EQ(eval1("to_int('')", r), "null");
  EXPECT_EQ(eval1("to_int('+5')", r), "5");
  EXPECT_EQ(eval1("to_int('1.5')", r), "null");
  EXPECT_EQ(eval1("to_int('99999999999999999999')", r), "null");
  EXPECT_EQ(eval1("to_double('1.5e2')", r), "150");
  EXPECT_EQ(eval1("to_double('-0.25')", r), "-0.25");
  EXPECT_EQ(eval1("to_double(u)", r), "null");
  EXPECT_EQ(eval1("to_string(a)", r), "'42'");
  EXPECT_EQ(eval1("to_string(x)", r), "'2.75'");
  EXPECT_EQ(eval1("to_string(3.0)", r), "'3'");
  EXPECT_EQ(eval1("to_string(0.1)", r), "'0.1'");
  EXPECT_EQ(eval1("to_string(p)", r), "'true'");
  EXPECT_EQ(eval1("to_string(ts)", r), "'2024-03-01T12:04:05.250Z'");
  EXPECT_EQ(eval1("to_string(ts + 1)", r), "'2024-03-01T12:04:05.250001Z'");
  EXPECT_EQ(eval1("to_string(ts_from_ms(0))", r), "'1970-01-01T00:00:00Z'");
  EXPECT_EQ(eval1("to_string(ts_from_ms(-1))", r), "'1969-12-31T23:59:59.999Z'");
  EXPECT_EQ(eval1("to_string(b)", r), "null");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01T12:04:05.25Z')", r), "ts:1709294645250000");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01 13:04:05.25+01:00')", r), "ts:1709294645250000");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01T07:34:05.25-0430')", r), "ts:1709294645250000");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01')", r), "ts:1709251200000000");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01T12:04')", r), "ts:1709294640000000");
  EXPECT_EQ(eval1("to_timestamp('2024-02-30')", r), "null");
  EXPECT_EQ(eval1("to_timestamp('2024-03-01T25:00')", r), "null");
  EXPECT_EQ(eval1("to_timestamp('yesterday')", r), "null");
  EXPECT_EQ(eval1("to_timestamp(a)", r), "ts:42");
  EXPECT_EQ(eval1("to_int(ts)", r), "1709294645250000");
  EXPECT_EQ(eval1("to_bool('TRUE')", r), "true");
  EXPECT_EQ(eval1("to_bool(' false ')", r), "false");
  EXPECT_EQ(eval1("to_bool('yes')", r), "null");
  EXPECT_EQ(eval1("to_bool(a)", r), "true");
  EXPECT_EQ(eval1("to_bool(0)", r), "false");
  EXPECT_EQ(eval1("to_int(p)", r), "1");
  EXPECT_EQ(eval1("cast(s as string)", r), "' 17 '");
  EXPECT_EQ(eval1("CAST(a AS Int64)", r), "42");
}

TEST(ExprEval, NullPropagationThroughFunctions) {
  auto r = row({});
  for (const char* f :
       {"abs(a)", "round(x)", "floor(x)", "ceil(a)", "seconds(a)", "epoch_ms(ts)", "ts_from_ms(a)",
        "date_trunc('hour', ts)", "to_string(x)", "to_int(s)", "-a", "a + 1", "a < 1", "x * 2.0"}) {
    EXPECT_EQ(eval1(f, r), "null") << f;
  }
}

TEST(ExprEval, BuffersAreReusedAcrossBatchesOfDifferentSizes) {
  auto s = test_schema();
  auto e = expression::compile("CASE WHEN a > 1 THEN concat(s, '-', 'x') ELSE 'small' END", *s);
  ASSERT_TRUE(e.ok());
  evaluator ev(*e);
  auto check_batch = [&](size_t rows) {
    rows_t data;
    std::vector<int64_t> times;
    for (size_t i = 0; i < rows; ++i) {
      std::string text = "r";
      text += std::to_string(i);
      data.push_back(row({{"a", static_cast<int64_t>(i % 3)}, {"s", text}}));
      times.push_back(static_cast<int64_t>(i));
    }
    auto batch = make_rows(s, data, times);
    const column& c = ev.evaluate(*batch);
    ASSERT_EQ(c.size(), rows);
    for (size_t i = 0; i < rows; ++i) {
      std::string want = "small";
      if (i % 3 > 1) {
        want = "r";
        want += std::to_string(i);
        want += "-x";
      }
      ASSERT_EQ(c.string_at(i), want) << "row " << i << " of " << rows;
    }
  };
  check_batch(1024);
  check_batch(3);
  check_batch(0);
  check_batch(1500);
  check_batch(7);
}

TEST(ExprEval, CopyResultZeroesNullRows) {
  auto s = test_schema();
  auto e = expression::compile("a + 1", *s);
  ASSERT_TRUE(e.ok());
  evaluator ev(*e);
  auto batch = make_rows(s, {row({{"a", int64_t{1}}}), row({})}, {0, 0});
  column out(type_id::int64);
  copy_result(ev.evaluate(*batch), 2, out);
  EXPECT_EQ(out.ints, (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(out.valid, (std::vector<uint8_t>{1, 0}));
}

TEST(ExprConversions, TimestampTextRoundTrips) {
  for (int64_t us : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{951782400000000},
                     int64_t{1709294645123456}, int64_t{-62135596800000000}}) {
    std::string text;
    append_timestamp(text, us);
    auto back = parse_timestamp(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, us) << text;
  }
  std::string leap;
  append_timestamp(leap, 951782400000000);
  EXPECT_EQ(leap, "2000-02-29T00:00:00Z");
  EXPECT_FALSE(parse_timestamp("2023-02-29").has_value());
  EXPECT_FALSE(parse_timestamp("2024-03-01T12:00:00.").has_value());
  EXPECT_FALSE(parse_timestamp("2024-03-01T12:00:00Zjunk").has_value());
  EXPECT_EQ(parse_timestamp("2024-03-01T12:00:00.1234567Z"), 1709294400123456);
}

}  // namespace
}  // namespace vigil::expr
