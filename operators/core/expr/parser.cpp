#include "operators/core/expr/parser.hpp"

#include <array>
#include <limits>
#include <string>
#include <vector>

#include "operators/core/expr/lexer.hpp"

namespace vigil::expr {

node_ptr clone(const node& n) {
  auto c = std::make_unique<node>();
  c->kind = n.kind;
  c->pos = n.pos;
  c->op = n.op;
  c->negated = n.negated;
  c->has_else = n.has_else;
  c->untyped_null = n.untyped_null;
  c->name = n.name;
  c->value = n.value;
  c->type = n.type;
  c->nullable = n.nullable;
  c->operand_type = n.operand_type;
  c->fn = n.fn;
  c->field_index = n.field_index;
  c->slot = n.slot;
  c->args.reserve(n.args.size());
  for (const auto& a : n.args) c->args.push_back(clone(*a));
  return c;
}

namespace {

constexpr int max_depth = 200;
/// Bounds the work of the (recursive) checker and evaluator on absurdly long expressions.
constexpr size_t max_nodes = 5000;

size_t count_nodes(const node& root) {
  size_t count = 0;
  std::vector<const node*> stack{&root};
  while (!stack.empty()) {
    const node* n = stack.back();
    stack.pop_back();
    ++count;
    for (const auto& a : n->args) stack.push_back(a.get());
  }
  return count;
}

constexpr std::array<std::string_view, 16> reserved_words = {
    "and",     "or",   "not",  "is",   "null", "true", "false", "in",
    "between", "case", "when", "then", "else", "end",  "cast",  "as"};

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_reserved(const token& t) {
  if (t.kind != token_kind::identifier) return false;
  std::string l = lowercase(t.text);
  for (auto w : reserved_words) {
    if (l == w) return true;
  }
  return false;
}

error at(const std::string& what, uint32_t pos) {
  return make_error(errc::invalid_argument, what + " at position " + std::to_string(pos));
}

node_ptr make_node(node_kind kind, uint32_t pos) {
  auto n = std::make_unique<node>();
  n->kind = kind;
  n->pos = pos;
  return n;
}

node_ptr make_binary(op_code op, uint32_t pos, node_ptr a, node_ptr b) {
  auto n = make_node(node_kind::binary, pos);
  n->op = op;
  n->args.push_back(std::move(a));
  n->args.push_back(std::move(b));
  return n;
}

node_ptr make_unary(op_code op, uint32_t pos, node_ptr a) {
  auto n = make_node(node_kind::unary, pos);
  n->op = op;
  n->args.push_back(std::move(a));
  return n;
}

class parser {
 public:
  explicit parser(std::vector<token> tokens) : toks_(std::move(tokens)) {}

  result<node_ptr> parse_all() {
    if (peek().kind == token_kind::end) {
      return make_error(errc::invalid_argument, "empty expression");
    }
    auto e = parse_or();
    if (!e) return e;
    const token& t = peek();
    if (t.kind == token_kind::rparen) {
      return at("unbalanced parenthesis: unexpected ')'", t.pos);
    }
    if (t.kind != token_kind::end) {
      return at("unexpected " + describe(t) + " after the end of the expression", t.pos);
    }
    return e;
  }

 private:
  const token& peek(size_t ahead = 0) const {
    size_t i = std::min(next_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const token& take() {
    const token& t = toks_[next_];
    if (next_ + 1 < toks_.size()) ++next_;
    return t;
  }
  bool keyword(std::string_view w, size_t ahead = 0) const {
    const token& t = peek(ahead);
    return t.kind == token_kind::identifier && lowercase(t.text) == w;
  }
  bool accept_keyword(std::string_view w) {
    if (!keyword(w)) return false;
    take();
    return true;
  }
  status expect_keyword(std::string_view w) {
    if (accept_keyword(w)) return {};
    std::string upper = lowercase(w);
    for (char& c : upper) c = static_cast<char>(c - 'a' + 'A');
    return at("expected " + upper + ", found " + describe(peek()), peek().pos);
  }
  /// Consumes the ')' that closes the '(' at `open_pos`.
  status expect_close(uint32_t open_pos) {
    if (peek().kind == token_kind::rparen) {
      take();
      return {};
    }
    if (peek().kind == token_kind::end) {
      return at("unbalanced parenthesis: '(' is not closed", open_pos);
    }
    return at("expected ')', found " + describe(peek()), peek().pos);
  }

  struct depth_guard {
    explicit depth_guard(int& d) : d_(d) { ++d_; }
    ~depth_guard() { --d_; }
    int& d_;
  };

  result<node_ptr> parse_or() {
    depth_guard g(depth_);
    if (depth_ > max_depth) return at("expression nested too deeply", peek().pos);
    auto left = parse_and();
    if (!left) return left;
    node_ptr l = std::move(*left);
    while (keyword("or")) {
      uint32_t pos = take().pos;
      auto right = parse_and();
      if (!right) return right;
      l = make_binary(op_code::or_, pos, std::move(l), std::move(*right));
    }
    return l;
  }

  result<node_ptr> parse_and() {
    auto left = parse_not();
    if (!left) return left;
    node_ptr l = std::move(*left);
    while (keyword("and")) {
      uint32_t pos = take().pos;
      auto right = parse_not();
      if (!right) return right;
      l = make_binary(op_code::and_, pos, std::move(l), std::move(*right));
    }
    return l;
  }

  result<node_ptr> parse_not() {
    if (keyword("not")) {
      depth_guard g(depth_);
      if (depth_ > max_depth) return at("expression nested too deeply", peek().pos);
      uint32_t pos = take().pos;
      auto operand = parse_not();
      if (!operand) return operand;
      return make_unary(op_code::not_, pos, std::move(*operand));
    }
    return parse_predicate();
  }

  static bool comparison(token_kind k, op_code& op) {
    switch (k) {
      case token_kind::eq:
        op = op_code::eq;
        return true;
      case token_kind::ne:
        op = op_code::ne;
        return true;
      case token_kind::lt:
        op = op_code::lt;
        return true;
      case token_kind::le:
        op = op_code::le;
        return true;
      case token_kind::gt:
        op = op_code::gt;
        return true;
      case token_kind::ge:
        op = op_code::ge;
        return true;
      default:
        return false;
    }
  }

  result<node_ptr> parse_predicate() {
    auto left = parse_additive();
    if (!left) return left;
    node_ptr l = std::move(*left);
    op_code op{};
    if (comparison(peek().kind, op)) {
      uint32_t pos = take().pos;
      auto right = parse_additive();
      if (!right) return right;
      return make_binary(op, pos, std::move(l), std::move(*right));
    }
    if (keyword("is")) {
      uint32_t pos = take().pos;
      auto n = make_node(node_kind::is_null, pos);
      n->negated = accept_keyword("not");
      VIGIL_TRY(expect_keyword("null"));
      n->args.push_back(std::move(l));
      return n;
    }
    bool negated = false;
    uint32_t not_pos = peek().pos;
    if (keyword("not") && (keyword("in", 1) || keyword("between", 1))) {
      take();
      negated = true;
    }
    if (keyword("in")) {
      uint32_t pos = take().pos;
      if (peek().kind != token_kind::lparen) {
        return at("expected '(' after IN, found " + describe(peek()), peek().pos);
      }
      uint32_t open = take().pos;
      auto n = make_node(node_kind::in_list, negated ? not_pos : pos);
      n->negated = negated;
      n->args.push_back(std::move(l));
      while (true) {
        auto item = parse_or();
        if (!item) return item;
        n->args.push_back(std::move(*item));
        if (peek().kind != token_kind::comma) break;
        take();
      }
      VIGIL_TRY(expect_close(open));
      return n;
    }
    if (keyword("between")) {
      uint32_t pos = take().pos;
      auto low = parse_additive();
      if (!low) return low;
      VIGIL_TRY(expect_keyword("and"));
      auto high = parse_additive();
      if (!high) return high;
      node_ptr copy = clone(*l);
      auto ge = make_binary(op_code::ge, pos, std::move(l), std::move(*low));
      auto le = make_binary(op_code::le, pos, std::move(copy), std::move(*high));
      auto both = make_binary(op_code::and_, pos, std::move(ge), std::move(le));
      if (negated) return make_unary(op_code::not_, not_pos, std::move(both));
      return both;
    }
    return l;
  }

  result<node_ptr> parse_additive() {
    auto left = parse_multiplicative();
    if (!left) return left;
    node_ptr l = std::move(*left);
    while (peek().kind == token_kind::plus || peek().kind == token_kind::minus) {
      const token& t = take();
      op_code op = t.kind == token_kind::plus ? op_code::add : op_code::sub;
      auto right = parse_multiplicative();
      if (!right) return right;
      l = make_binary(op, t.pos, std::move(l), std::move(*right));
    }
    return l;
  }

  result<node_ptr> parse_multiplicative() {
    auto left = parse_unary();
    if (!left) return left;
    node_ptr l = std::move(*left);
    while (peek().kind == token_kind::star || peek().kind == token_kind::slash ||
           peek().kind == token_kind::percent) {
      const token& t = take();
      op_code op = t.kind == token_kind::star    ? op_code::mul
                   : t.kind == token_kind::slash ? op_code::div
                                                 : op_code::mod;
      auto right = parse_unary();
      if (!right) return right;
      l = make_binary(op, t.pos, std::move(l), std::move(*right));
    }
    return l;
  }

  result<node_ptr> parse_unary() {
    if (peek().kind != token_kind::minus && peek().kind != token_kind::plus) return parse_primary();
    depth_guard g(depth_);
    if (depth_ > max_depth) return at("expression nested too deeply", peek().pos);
    const token& sign = take();
    bool minus = sign.kind == token_kind::minus;
    uint32_t pos = sign.pos;
    // A sign directly before a number literal folds into the literal (this also admits the
    // smallest int64, whose magnitude alone is out of range).
    if (peek().kind == token_kind::integer) {
      const token& t = take();
      auto n = make_node(node_kind::literal, pos);
      n->type = type_id::int64;
      n->value.is_null = false;
      if (t.magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) && !minus) {
        return at("integer literal '" + t.text + "' out of range", t.pos);
      }
      n->value.i =
          minus ? static_cast<int64_t>(0 - t.magnitude) : static_cast<int64_t>(t.magnitude);
      return n;
    }
    if (peek().kind == token_kind::decimal) {
      const token& t = take();
      auto n = make_node(node_kind::literal, pos);
      n->type = type_id::float64;
      n->value.is_null = false;
      n->value.d = minus ? -t.number : t.number;
      return n;
    }
    auto operand = parse_unary();
    if (!operand) return operand;
    if (!minus) return operand;
    return make_unary(op_code::neg, pos, std::move(*operand));
  }

  result<node_ptr> parse_primary() {
    const token& t = peek();
    switch (t.kind) {
      case token_kind::integer: {
        take();
        if (t.magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return at("integer literal '" + t.text + "' out of range", t.pos);
        }
        auto n = make_node(node_kind::literal, t.pos);
        n->type = type_id::int64;
        n->value.is_null = false;
        n->value.i = static_cast<int64_t>(t.magnitude);
        return n;
      }
      case token_kind::decimal: {
        take();
        auto n = make_node(node_kind::literal, t.pos);
        n->type = type_id::float64;
        n->value.is_null = false;
        n->value.d = t.number;
        return n;
      }
      case token_kind::string: {
        take();
        auto n = make_node(node_kind::literal, t.pos);
        n->type = type_id::string;
        n->value.is_null = false;
        n->value.s = t.text;
        return n;
      }
      case token_kind::quoted_identifier: {
        take();
        auto n = make_node(node_kind::field, t.pos);
        n->name = t.text;
        return n;
      }
      case token_kind::lparen: {
        uint32_t open = take().pos;
        auto inner = parse_or();
        if (!inner) return inner;
        VIGIL_TRY(expect_close(open));
        return inner;
      }
      case token_kind::identifier:
        return parse_identifier();
      case token_kind::end:
        return at("expected an expression, found end of expression", t.pos);
      default:
        return at("expected an expression, found " + describe(t), t.pos);
    }
  }

  result<node_ptr> parse_identifier() {
    const token& t = peek();
    std::string word = lowercase(t.text);
    if (word == "true" || word == "false") {
      take();
      auto n = make_node(node_kind::literal, t.pos);
      n->type = type_id::boolean;
      n->value.is_null = false;
      n->value.b = word == "true";
      return n;
    }
    if (word == "null") {
      take();
      auto n = make_node(node_kind::literal, t.pos);
      n->untyped_null = true;
      return n;
    }
    if (word == "case") return parse_case();
    if (word == "cast") return parse_cast();
    if (is_reserved(t)) {
      return at(
          "unexpected keyword '" + t.text + "' (write \"" + t.text + "\" for a field of that name)",
          t.pos);
    }
    take();
    if (peek().kind == token_kind::lparen) {
      uint32_t open = take().pos;
      auto n = make_node(node_kind::call, t.pos);
      n->name = word;
      if (peek().kind != token_kind::rparen) {
        while (true) {
          auto arg = parse_or();
          if (!arg) return arg;
          n->args.push_back(std::move(*arg));
          if (peek().kind != token_kind::comma) break;
          take();
        }
      }
      VIGIL_TRY(expect_close(open));
      return n;
    }
    auto n = make_node(node_kind::field, t.pos);
    n->name = t.text;
    return n;
  }

  result<node_ptr> parse_cast() {
    uint32_t pos = take().pos;
    if (peek().kind != token_kind::lparen) {
      return at("expected '(' after CAST, found " + describe(peek()), peek().pos);
    }
    uint32_t open = take().pos;
    auto operand = parse_or();
    if (!operand) return operand;
    VIGIL_TRY(expect_keyword("as"));
    const token& type_tok = peek();
    if (type_tok.kind != token_kind::identifier) {
      return at("expected a type name, found " + describe(type_tok), type_tok.pos);
    }
    auto type = parse_type(lowercase(type_tok.text));
    if (!type) {
      return at(
          "unknown type '" + type_tok.text + "' (types: bool, int64, double, string, timestamp)",
          type_tok.pos);
    }
    take();
    VIGIL_TRY(expect_close(open));
    auto n = make_node(node_kind::cast, pos);
    n->type = *type;
    n->args.push_back(std::move(*operand));
    return n;
  }

  result<node_ptr> parse_case() {
    uint32_t pos = take().pos;
    auto n = make_node(node_kind::case_when, pos);
    node_ptr subject;
    if (!keyword("when")) {
      auto s = parse_or();
      if (!s) return s;
      subject = std::move(*s);
    }
    if (!keyword("when")) return at("expected WHEN, found " + describe(peek()), peek().pos);
    while (keyword("when")) {
      uint32_t when_pos = take().pos;
      auto cond = parse_or();
      if (!cond) return cond;
      VIGIL_TRY(expect_keyword("then"));
      auto value = parse_or();
      if (!value) return value;
      if (subject) {
        n->args.push_back(make_binary(op_code::eq, when_pos, clone(*subject), std::move(*cond)));
      } else {
        n->args.push_back(std::move(*cond));
      }
      n->args.push_back(std::move(*value));
    }
    if (accept_keyword("else")) {
      auto value = parse_or();
      if (!value) return value;
      n->args.push_back(std::move(*value));
      n->has_else = true;
    }
    VIGIL_TRY(expect_keyword("end"));
    return n;
  }

  std::vector<token> toks_;
  size_t next_ = 0;
  int depth_ = 0;
};

}  // namespace

result<node_ptr> parse(std::string_view text) {
  auto toks = tokenize(text);
  if (!toks) return toks.err();
  parser p(std::move(*toks));
  auto root = p.parse_all();
  if (root && count_nodes(**root) > max_nodes) {
    return make_error(errc::invalid_argument,
                      "expression too long (more than " + std::to_string(max_nodes) + " terms)");
  }
  return root;
}

}  // namespace vigil::expr
