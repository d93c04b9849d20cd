#include "operators/core/expr/lexer.hpp"

#include <charconv>
#include <limits>

namespace vigil::expr {

namespace {

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_ident_char(char c) {
  return is_ident_start(c) || is_digit(c);
}

error at(std::string what, size_t pos) {
  return make_error(errc::invalid_argument, what + " at position " + std::to_string(pos));
}

/// Reads a quoted run starting at text[i] == quote; a doubled quote stands for one quote.
/// Returns the index after the closing quote, or npos if unterminated.
size_t read_quoted(std::string_view text, size_t i, char quote, std::string& out) {
  for (size_t j = i + 1; j < text.size(); ++j) {
    if (text[j] != quote) {
      out.push_back(text[j]);
      continue;
    }
    if (j + 1 < text.size() && text[j + 1] == quote) {
      out.push_back(quote);
      ++j;
      continue;
    }
    return j + 1;
  }
  return std::string_view::npos;
}

}  // namespace

result<std::vector<token>> tokenize(std::string_view text) {
  std::vector<token> out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    token t;
    t.pos = static_cast<uint32_t>(i + 1);
    size_t start = i;
    if (is_ident_start(c)) {
      while (i < text.size() && is_ident_char(text[i])) ++i;
      t.kind = token_kind::identifier;
      t.text = std::string(text.substr(start, i - start));
    } else if (is_digit(c) || (c == '.' && i + 1 < text.size() && is_digit(text[i + 1]))) {
      bool is_decimal = false;
      while (i < text.size() && is_digit(text[i])) ++i;
      if (i < text.size() && text[i] == '.') {
        is_decimal = true;
        ++i;
        while (i < text.size() && is_digit(text[i])) ++i;
      }
      if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < text.size() && is_digit(text[j])) {
          is_decimal = true;
          i = j;
          while (i < text.size() && is_digit(text[i])) ++i;
        }
      }
      if (i < text.size() && is_ident_char(text[i])) {
        return at("invalid number '" + std::string(text.substr(start, i + 1 - start)) + "'",
                  start + 1);
      }
      t.text = std::string(text.substr(start, i - start));
      if (is_decimal) {
        t.kind = token_kind::decimal;
        auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.number);
        if (ec != std::errc() || p != t.text.data() + t.text.size()) {
          return at("decimal literal '" + t.text + "' out of range", start + 1);
        }
      } else {
        t.kind = token_kind::integer;
        auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.magnitude);
        constexpr uint64_t limit = uint64_t{1} << 63;
        if (ec != std::errc() || t.magnitude > limit) {
          return at("integer literal '" + t.text + "' out of range", start + 1);
        }
      }
    } else if (c == '\'') {
      t.kind = token_kind::string;
      i = read_quoted(text, i, '\'', t.text);
      if (i == std::string_view::npos) return at("unterminated string starting", start + 1);
    } else if (c == '"') {
      t.kind = token_kind::quoted_identifier;
      i = read_quoted(text, i, '"', t.text);
      if (i == std::string_view::npos) return at("unterminated quoted name starting", start + 1);
      if (t.text.empty()) return at("empty quoted name", start + 1);
    } else {
      char next = i + 1 < text.size() ? text[i + 1] : '\0';
      size_t len = 1;
      switch (c) {
        case '(':
          t.kind = token_kind::lparen;
          break;
        case ')':
          t.kind = token_kind::rparen;
          break;
        case ',':
          t.kind = token_kind::comma;
          break;
        case '+':
          t.kind = token_kind::plus;
          break;
        case '-':
          t.kind = token_kind::minus;
          break;
        case '*':
          t.kind = token_kind::star;
          break;
        case '/':
          t.kind = token_kind::slash;
          break;
        case '%':
          t.kind = token_kind::percent;
          break;
        case '=':
          t.kind = token_kind::eq;
          if (next == '=') len = 2;
          break;
        case '!':
          if (next != '=') return at("unexpected character '!'", start + 1);
          t.kind = token_kind::ne;
          len = 2;
          break;
        case '<':
          if (next == '=') {
            t.kind = token_kind::le;
            len = 2;
          } else if (next == '>') {
            t.kind = token_kind::ne;
            len = 2;
          } else {
            t.kind = token_kind::lt;
          }
          break;
        case '>':
          if (next == '=') {
            t.kind = token_kind::ge;
            len = 2;
          } else {
            t.kind = token_kind::gt;
          }
          break;
        default:
          return at("unexpected character '" + std::string(1, c) + "'", start + 1);
      }
      i += len;
      t.text = std::string(text.substr(start, len));
    }
    out.push_back(std::move(t));
  }
  token end;
  end.kind = token_kind::end;
  end.pos = static_cast<uint32_t>(text.size() + 1);
  out.push_back(std::move(end));
  return out;
}

std::string describe(const token& t) {
  switch (t.kind) {
    case token_kind::end:
      return "end of expression";
    case token_kind::string:
      return "string '" + t.text + "'";
    case token_kind::quoted_identifier:
      return "\"" + t.text + "\"";
    default:
      return "'" + t.text + "'";
  }
}

}  // namespace vigil::expr
