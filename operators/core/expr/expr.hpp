#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/record_batch.hpp"
#include "common/result.hpp"
#include "common/types.hpp"
#include "operators/core/expr/ast.hpp"

/// # The Vigil expression language
///
/// A small, typed, SQL-like language for filter conditions and computed fields. An expression
/// is parsed and type-checked once, when the job graph is planned, against the schema of the
/// operator's input; it is then evaluated a whole record batch at a time.
///
/// ## Grammar (lowest precedence first; keywords are case-insensitive)
///
///     expr       := or
///     or         := and { OR and }
///     and        := not { AND not }
///     not        := NOT not | predicate
///     predicate  := sum [ cmp_op sum
///                       | IS [NOT] NULL
///                       | [NOT] IN '(' expr { ',' expr } ')'
///                       | [NOT] BETWEEN sum AND sum ]
///     cmp_op     := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
///     sum        := product { ('+' | '-') product }
///     product    := unary { ('*' | '/' | '%') unary }
///     unary      := ('-' | '+') unary | primary
///     primary    := integer | decimal | string | TRUE | FALSE | NULL
///                 | name | "quoted name"
///                 | function '(' [ expr { ',' expr } ] ')'
///                 | CAST '(' expr AS type ')'
///                 | CASE [expr] WHEN expr THEN expr { WHEN expr THEN expr } [ELSE expr] END
///                 | '(' expr ')'
///
/// - integer: decimal digits, an int64 (`-9223372036854775808` is allowed).
/// - decimal: digits with a '.' and/or an exponent (`1.5`, `.5`, `2e-3`), a double.
/// - string: 'single quoted'; write '' for a quote inside.
/// - name: `[A-Za-z_][A-Za-z0-9_]*`, a field of the input (case-sensitive). A field whose name
///   is not of that form or is a keyword is written "double quoted" ("" for a quote inside).
///   Keywords: AND OR NOT IS NULL TRUE FALSE IN BETWEEN CASE WHEN THEN ELSE END CAST AS.
/// - type (in CAST): bool | boolean | int64 | int | long | double | float64 | string | timestamp.
/// - Comparisons do not chain (`a < b < c` is an error). `x BETWEEN a AND b` means
///   `x >= a AND x <= b`; `CASE x WHEN v THEN ...` means `CASE WHEN x = v THEN ...`.
///
/// ## Types
///
/// bool, int64, double, string and timestamp (µs since the epoch, UTC). A `null` literal takes
/// the type its context requires (`coalesce(x, null)`, `x = null`); where nothing determines it
/// (`null + null`, or a computed field that is just `null`), write `cast(null as int64)`.
///
/// - Arithmetic `+ - * / %` and unary `-` on int64 and double; int64 with double gives double.
///   int64 arithmetic wraps on overflow; int64 `/` truncates toward zero and `%` takes the sign
///   of the dividend. Division or modulo by zero (int64 or double) gives null.
/// - Timestamps: timestamp + int64 and int64 + timestamp and timestamp - int64 give a
///   timestamp (the int64 is µs, e.g. `minutes(5)`); timestamp - timestamp gives int64 µs.
/// - Comparisons need both sides of one kind: numeric with numeric (int64 with double compares
///   as double), string with string (bytewise), timestamp with timestamp, bool with bool
///   (false < true).
/// - AND, OR, NOT use SQL three-valued logic: `null AND false` is false, `null OR true` is true,
///   `NOT null` is null, and otherwise a null operand gives null.
/// - `x IN (a, b, ...)`: true if x equals one item; else null if x or an item is null; else
///   false. NOT IN is its negation (so also null in those cases).
/// - `x IS NULL` / `x IS NOT NULL` are never null.
/// - CASE: the value of the first WHEN whose condition is true (null counts as false), else the
///   ELSE value, else null. All values must have one type (int64 and double mix to double).
///
/// Null propagation: every other operator and function gives null if any input is null, except
/// coalesce. In a filter, a row is kept only where the condition is true (null drops it).
///
/// ## Functions (names are case-insensitive)
///
/// Strings (positions and lengths count UTF-8 code points; lower/upper/trim act on ASCII only):
/// - `lower(s)`, `upper(s)`, `trim(s)` (strips ASCII whitespace at both ends) → string
/// - `length(s)` → int64
/// - `concat(a, b, ...)` → string; non-string arguments are converted as by to_string
/// - `substr(s, start [, len])` → string: from 1-based `start` for `len` code points (to the
///   end without `len`); a window reaching before position 1 is cut there; a negative `len` or a
///   start past the end gives ''
/// - `starts_with(s, prefix)`, `ends_with(s, suffix)`, `contains(s, part)` → bool ('' is a
///   prefix, suffix and part of every string)
///
/// Numbers:
/// - `abs(x)`, `floor(x)`, `ceil(x)` → the type of x (floor/ceil of an int64 is itself)
/// - `round(x [, digits])` → the type of x; halves round away from zero; `digits` may be
///   negative (`round(1234, -2)` is 1200)
/// - `least(a, ...)`, `greatest(a, ...)` → the common type; any comparable type
/// - `coalesce(a, ...)` → the first non-null argument; null only if all are null
///
/// Time (timestamps are µs, durations are int64 µs):
/// - `milliseconds(n)`, `seconds(n)`, `minutes(n)`, `hours(n)`, `days(n)` → int64 µs; n is int64
///   or double (a double is rounded to whole µs)
/// - `epoch_ms(ts)` → int64 milliseconds since the epoch (rounded down)
/// - `ts_from_ms(n)` → timestamp
/// - `date_trunc(unit, ts)` → timestamp rounded down to the unit; unit is a literal:
///   'millisecond', 'second', 'minute', 'hour' or 'day' (UTC days)
/// - `event_time()` → the record's event time (timestamp, never null)
///
/// Conversions: `cast(x as T)` or `to_bool(x)`, `to_int(x)`, `to_double(x)`, `to_string(x)`,
/// `to_timestamp(x)`:
/// - to string: from any type; doubles in shortest round-trip form ("2.5", "3", "1e+20"),
///   timestamps in ISO 8601 UTC ("2024-03-01T12:00:00Z", "...:00.250Z"), bools as true/false.
/// - from string: int64 (optional sign, digits), double, bool ('true'/'false', any case),
///   timestamp ('YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|±HH:MM]'); surrounding whitespace is
///   ignored; text that does not parse gives null.
/// - int64 ↔ timestamp (µs), int64 → double, double → int64 (truncates; NaN or out of range
///   gives null), bool ↔ int64 (1/0; nonzero is true).
///
/// ## Errors
///
/// Errors are found when the graph is planned and name the 1-based character position, e.g.
/// "unknown field 'hr' at position 1 (fields: patient, value, ts)",
/// "cannot compare string with int64 at position 9", "unterminated string starting at
/// position 5", "unbalanced parenthesis: '(' is not closed at position 1".

namespace vigil::expr {

/// A parsed and type-checked expression. Immutable; one is shared by all subtasks of a plan.
class expression {
 public:
  /// Parses `text` and checks it against `input`. With `expected`, the result must have that
  /// type (a bare `null` takes it).
  static result<std::shared_ptr<const expression>> compile(
      std::string_view text, const schema& input, std::optional<type_id> expected = std::nullopt);

  const std::string& text() const { return text_; }
  type_id type() const { return root_->type; }
  /// False when the checker proved the result is never null.
  bool nullable() const { return root_->nullable; }
  /// The input field index if the expression is a plain field reference, else -1.
  int field_index() const { return root_->kind == node_kind::field ? root_->field_index : -1; }
  const node& root() const { return *root_; }
  int slot_count() const { return slots_; }

 private:
  expression() = default;

  std::string text_;
  node_ptr root_;
  int slots_ = 0;
};

using expression_ptr = std::shared_ptr<const expression>;

/// Evaluates an expression over whole batches. Owns one buffer per syntax node, reused from
/// batch to batch (they only grow), so evaluation allocates nothing once warmed up. One per
/// operator instance; not thread-safe.
class evaluator {
 public:
  explicit evaluator(expression_ptr e);

  /// Evaluates every row of `batch`, which has the schema the expression was compiled against.
  /// The result has batch.num_rows() rows and stays valid until the next call and while `batch`
  /// lives (a plain field reference returns the batch's own column). The values in null rows
  /// are unspecified.
  const column& evaluate(const record_batch& batch);

  const expression& expr() const { return *expr_; }

 private:
  const column& eval(const node& n);
  void run(const node& n, const std::vector<const column*>& in, column& out);
  void run_call(const node& n, const std::vector<const column*>& in, column& out);
  void run_cast(const node& n, const column& in, column& out);

  expression_ptr expr_;
  std::vector<column> slots_;
  std::vector<std::vector<const column*>> inputs_;  ///< Per slot: the evaluated arguments.
  std::vector<uint8_t> mask_;
  std::vector<int32_t> choice_;
  std::string text_;
  const record_batch* batch_ = nullptr;
  size_t rows_ = 0;
};

/// Copies the first `rows` rows of `src` into the empty column `dst` of the same type, setting
/// the values of null rows to 0 / '' as record batches require.
void copy_result(const column& src, size_t rows, column& dst);

}  // namespace vigil::expr
