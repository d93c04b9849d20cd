#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace vigil::expr {

enum class token_kind : uint8_t {
  identifier,         ///< Unquoted name or keyword; keywords are recognized by the parser.
  quoted_identifier,  ///< "double-quoted" name ("" inside stands for ").
  integer,            ///< Decimal digits; `magnitude` holds the value (up to 2^63).
  decimal,            ///< Digits with a '.' or an exponent; `number` holds the value.
  string,             ///< 'single-quoted' ('' inside stands for '); `text` is unescaped.
  lparen,
  rparen,
  comma,
  plus,
  minus,
  star,
  slash,
  percent,
  eq,  ///< = or ==
  ne,  ///< != or <>
  lt,
  le,
  gt,
  ge,
  end,  ///< End of the text.
};

struct token {
  token_kind kind = token_kind::end;
  uint32_t pos = 0;  ///< 1-based position of the token's first character.
  std::string text;  ///< Identifier name, unescaped string, or the token's source text.
  uint64_t magnitude = 0;
  double number = 0;
};

/// Splits `text` into tokens, ending with one token_kind::end. Errors (unterminated string or
/// quoted name, unexpected character, integer out of range) name the position.
result<std::vector<token>> tokenize(std::string_view text);

/// How a token reads in an error message: 'name', '(', or "end of expression".
std::string describe(const token& t);

}  // namespace vigil::expr
