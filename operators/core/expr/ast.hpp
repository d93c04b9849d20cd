#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/types.hpp"

/// The syntax tree of an expression. The parser builds it from text; the type checker then
/// resolves names, fixes every node's type and nullability, inserts implicit casts, and numbers
/// the nodes (`slot`) so that an evaluator can keep one reusable buffer per node.

namespace vigil::expr {

enum class node_kind : uint8_t {
  literal,    ///< `value` of type `type`; an untyped null until the checker settles it.
  field,      ///< A reference to input field `name` (resolved to `field_index`).
  unary,      ///< `op` is neg or not_; args[0].
  binary,     ///< Arithmetic, comparison, and_, or_; args[0] op args[1].
  is_null,    ///< args[0] IS NULL (IS NOT NULL when `negated`).
  in_list,    ///< args[0] IN (args[1..]) (NOT IN when `negated`).
  case_when,  ///< args = cond1, value1, cond2, value2, ... [, else value when `has_else`].
  call,       ///< Function `name` (resolved to `fn`) over args.
  cast,       ///< args[0] converted to `type`.
};

enum class op_code : uint8_t {
  add,
  sub,
  mul,
  div,
  mod,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  and_,
  or_,
  neg,
  not_
};

/// The functions of the language; to_double/to_int/to_string/to_timestamp/to_bool become casts.
enum class func_id : uint8_t {
  lower,
  upper,
  length,
  trim,
  concat,
  substr,
  starts_with,
  ends_with,
  contains,
  abs,
  round,
  floor,
  ceil,
  least,
  greatest,
  coalesce,
  milliseconds,
  seconds,
  minutes,
  hours,
  days,
  epoch_ms,
  ts_from_ms,
  date_trunc,
  event_time,
};

/// A literal value; which member is used depends on the node's type.
struct scalar {
  bool is_null = true;
  bool b = false;
  int64_t i = 0;  ///< int64 and timestamp.
  double d = 0;
  std::string s;
};

struct node {
  node_kind kind = node_kind::literal;
  uint32_t pos = 0;  ///< 1-based character position in the expression text.

  // Set by the parser.
  op_code op = op_code::add;
  bool negated = false;
  bool has_else = false;
  bool untyped_null = false;  ///< A `null` literal whose type the checker has not settled yet.
  std::string name;           ///< Field or function name.
  scalar value;
  std::vector<std::unique_ptr<node>> args;

  // Set by the type checker (literals and casts get `type` from the parser).
  type_id type = type_id::int64;
  bool nullable = true;
  type_id operand_type = type_id::int64;  ///< binary/in_list: the common type of the operands.
  func_id fn = func_id::lower;
  int field_index = -1;
  int slot = -1;  ///< Index of this node's evaluation buffer.
};

using node_ptr = std::unique_ptr<node>;

/// A deep copy of `n` (used to desugar BETWEEN and simple CASE, which repeat an operand).
node_ptr clone(const node& n);

}  // namespace vigil::expr
