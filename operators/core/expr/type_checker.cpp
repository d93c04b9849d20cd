#include "operators/core/expr/type_checker.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vigil::expr {

namespace {

error at(const std::string& what, uint32_t pos) {
  return make_error(errc::invalid_argument, what + " at position " + std::to_string(pos));
}

std::string type_name(const node& n) {
  return n.untyped_null ? std::string("null") : std::string(to_string(n.type));
}

const char* op_text(op_code op) {
  switch (op) {
    case op_code::add:
      return "+";
    case op_code::sub:
    case op_code::neg:
      return "-";
    case op_code::mul:
      return "*";
    case op_code::div:
      return "/";
    case op_code::mod:
      return "%";
    case op_code::eq:
      return "=";
    case op_code::ne:
      return "!=";
    case op_code::lt:
      return "<";
    case op_code::le:
      return "<=";
    case op_code::gt:
      return ">";
    case op_code::ge:
      return ">=";
    case op_code::and_:
      return "AND";
    case op_code::or_:
      return "OR";
    case op_code::not_:
      return "NOT";
  }
  return "?";
}

bool is_comparison(op_code op) {
  return op == op_code::eq || op == op_code::ne || op == op_code::lt || op == op_code::le ||
         op == op_code::gt || op == op_code::ge;
}

bool cast_allowed(type_id from, type_id to) {
  if (from == to || to == type_id::string) return true;
  switch (to) {
    case type_id::boolean:
      return from == type_id::int64 || from == type_id::string;
    case type_id::int64:
      return true;
    case type_id::float64:
      return from == type_id::int64 || from == type_id::string;
    case type_id::timestamp:
      return from == type_id::int64 || from == type_id::string;
    case type_id::string:
      return true;
  }
  return false;
}

/// True if converting a valid `from` value to `to` can give null (a parse or range failure).
bool cast_can_fail(type_id from, type_id to) {
  if (from == type_id::string) return to != type_id::string;
  return from == type_id::float64 && to == type_id::int64;
}

struct function_info {
  std::string_view name;
  func_id fn;
  int min_args;
  int max_args;  ///< -1: any number.
};

constexpr function_info functions[] = {
    {"lower", func_id::lower, 1, 1},
    {"upper", func_id::upper, 1, 1},
    {"length", func_id::length, 1, 1},
    {"trim", func_id::trim, 1, 1},
    {"concat", func_id::concat, 1, -1},
    {"substr", func_id::substr, 2, 3},
    {"starts_with", func_id::starts_with, 2, 2},
    {"ends_with", func_id::ends_with, 2, 2},
    {"contains", func_id::contains, 2, 2},
    {"abs", func_id::abs, 1, 1},
    {"round", func_id::round, 1, 2},
    {"floor", func_id::floor, 1, 1},
    {"ceil", func_id::ceil, 1, 1},
    {"least", func_id::least, 1, -1},
    {"greatest", func_id::greatest, 1, -1},
    {"coalesce", func_id::coalesce, 1, -1},
    {"milliseconds", func_id::milliseconds, 1, 1},
    {"seconds", func_id::seconds, 1, 1},
    {"minutes", func_id::minutes, 1, 1},
    {"hours", func_id::hours, 1, 1},
    {"days", func_id::days, 1, 1},
    {"epoch_ms", func_id::epoch_ms, 1, 1},
    {"ts_from_ms", func_id::ts_from_ms, 1, 1},
    {"date_trunc", func_id::date_trunc, 2, 2},
    {"event_time", func_id::event_time, 0, 0},
};

struct cast_function {
  std::string_view name;
  type_id to;
};

constexpr cast_function cast_functions[] = {
    {"to_double", type_id::float64}, {"to_int", type_id::int64},
    {"to_string", type_id::string},  {"to_timestamp", type_id::timestamp},
    {"to_bool", type_id::boolean},
};

std::string arity_text(const function_info& f) {
  if (f.max_args < 0) return "at least " + std::to_string(f.min_args) + " argument(s)";
  if (f.min_args == f.max_args) {
    return std::to_string(f.min_args) + (f.min_args == 1 ? " argument" : " arguments");
  }
  return std::to_string(f.min_args) + " or " + std::to_string(f.max_args) + " arguments";
}

class checker {
 public:
  explicit checker(const schema& s) : schema_(s) {}

  status check(node_ptr& np) {
    node& n = *np;
    for (auto& a : n.args) VIGIL_TRY(check(a));
    switch (n.kind) {
      case node_kind::literal:
        n.nullable = n.value.is_null;
        return {};
      case node_kind::field:
        return check_field(n);
      case node_kind::unary:
        return check_unary(n);
      case node_kind::binary:
        if (n.op == op_code::and_ || n.op == op_code::or_) return check_logical(n);
        if (is_comparison(n.op)) return check_comparison(n);
        return check_arithmetic(n);
      case node_kind::is_null:
        settle_if_untyped(*n.args[0], type_id::int64);
        n.type = type_id::boolean;
        n.nullable = false;
        return {};
      case node_kind::in_list: {
        auto t = unify(all(n.args), "IN list", true);
        if (!t) return t.err();
        n.operand_type = *t;
        n.type = type_id::boolean;
        n.nullable = any_nullable(n.args, 0, n.args.size());
        return {};
      }
      case node_kind::case_when:
        return check_case(n);
      case node_kind::cast:
        return check_cast(np);
      case node_kind::call:
        return check_call(np);
    }
    return {};
  }

 private:
  static bool untyped(const node& n) { return n.untyped_null; }
  static void settle_if_untyped(node& n, type_id t) {
    if (n.untyped_null) settle_null(n, t);
  }
  static bool any_nullable(const std::vector<node_ptr>& v, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (v[i]->nullable) return true;
    }
    return false;
  }
  static error cannot_infer(const node& n) {
    return at("cannot infer the type of null (write e.g. cast(null as int64))", n.pos);
  }

  /// Converts int64 node `np` to double (a literal in place, otherwise through a cast node).
  static void widen(node_ptr& np) {
    node& n = *np;
    if (n.kind == node_kind::literal) {
      n.value.d = static_cast<double>(n.value.i);
      n.type = type_id::float64;
      return;
    }
    auto c = std::make_unique<node>();
    c->kind = node_kind::cast;
    c->pos = n.pos;
    c->type = type_id::float64;
    c->nullable = n.nullable;
    c->args.push_back(std::move(np));
    np = std::move(c);
  }

  /// Every node_ptr in `v` (to unify a whole argument list).
  static std::vector<node_ptr*> all(std::vector<node_ptr>& v) {
    std::vector<node_ptr*> out;
    for (auto& p : v) out.push_back(&p);
    return out;
  }

  /// Gives `nodes` one common type: equal types, or int64 and double mixed (the int64 operands
  /// are widened). Untyped nulls take the common type. For a comparison, all-untyped operands
  /// become int64 and a mismatch reads "cannot compare a with b[ in <what>]"; otherwise
  /// all-untyped is an error and a mismatch reads "cannot mix a and b in <what>".
  result<type_id> unify(const std::vector<node_ptr*>& nodes, std::string_view what,
                        bool comparison) {
    const node* first = nullptr;
    bool any_double = false;
    for (node_ptr* p : nodes) {
      const node& a = **p;
      if (untyped(a)) continue;
      if (a.type == type_id::float64) any_double = true;
      if (first == nullptr) {
        first = &a;
        continue;
      }
      if (a.type == first->type || (is_numeric(a.type) && is_numeric(first->type))) continue;
      if (comparison) {
        std::string where = what.empty() ? "" : " in " + std::string(what);
        return at("cannot compare " + type_name(*first) + " with " + type_name(a) + where, a.pos);
      }
      return at(
          "cannot mix " + type_name(*first) + " and " + type_name(a) + " in " + std::string(what),
          a.pos);
    }
    if (first == nullptr) {
      if (!comparison) return cannot_infer(**nodes.front());
      for (node_ptr* p : nodes) settle_null(**p, type_id::int64);
      return type_id::int64;
    }
    type_id common = is_numeric(first->type) && any_double ? type_id::float64 : first->type;
    for (node_ptr* p : nodes) {
      if (untyped(**p)) {
        settle_null(**p, common);
      } else if ((*p)->type != common) {
        widen(*p);
      }
    }
    return common;
  }

  status check_field(node& n) {
    int idx = schema_.index_of(n.name);
    if (idx < 0) {
      std::string names;
      for (const auto& f : schema_.fields()) {
        if (!names.empty()) names += ", ";
        names += f.name;
      }
      return make_error(errc::invalid_argument, "unknown field '" + n.name + "' at position " +
                                                    std::to_string(n.pos) + " (fields: " + names +
                                                    ")");
    }
    n.field_index = idx;
    n.type = schema_.at(idx).type;
    n.nullable = schema_.at(idx).nullable;
    return {};
  }

  status check_unary(node& n) {
    node& a = *n.args[0];
    if (n.op == op_code::not_) {
      settle_if_untyped(a, type_id::boolean);
      if (a.type != type_id::boolean) return at("NOT expects bool, got " + type_name(a), n.pos);
      n.type = type_id::boolean;
    } else {
      if (untyped(a)) return cannot_infer(a);
      if (!is_numeric(a.type)) {
        return at("operator '-' cannot be applied to " + type_name(a), n.pos);
      }
      n.type = a.type;
    }
    n.nullable = a.nullable;
    return {};
  }

  status check_logical(node& n) {
    for (auto& a : n.args) {
      settle_if_untyped(*a, type_id::boolean);
      if (a->type != type_id::boolean) {
        return at(std::string(op_text(n.op)) + " expects bool operands, got " +
                      type_name(*n.args[0]) + " and " + type_name(*n.args[1]),
                  n.pos);
      }
    }
    n.type = type_id::boolean;
    n.nullable = n.args[0]->nullable || n.args[1]->nullable;
    return {};
  }

  status check_comparison(node& n) {
    auto t = unify(all(n.args), "", true);
    if (!t) return t.err();
    n.operand_type = *t;
    n.type = type_id::boolean;
    n.nullable = any_nullable(n.args, 0, 2);
    return {};
  }

  status check_arithmetic(node& n) {
    node& a = *n.args[0];
    node& b = *n.args[1];
    if (untyped(a) && untyped(b)) return cannot_infer(a);
    std::string a_name = type_name(a);
    std::string b_name = type_name(b);
    // An untyped null takes the type of the other side (int64 next to a timestamp).
    if (untyped(a)) settle_null(a, b.type == type_id::timestamp ? type_id::int64 : b.type);
    if (untyped(b)) settle_null(b, a.type == type_id::timestamp ? type_id::int64 : a.type);
    n.nullable = a.nullable || b.nullable || n.op == op_code::div || n.op == op_code::mod;
    type_id ta = a.type;
    type_id tb = b.type;
    if (is_numeric(ta) && is_numeric(tb)) {
      n.type = ta == type_id::float64 || tb == type_id::float64 ? type_id::float64 : type_id::int64;
      if (ta != n.type) widen(n.args[0]);
      if (tb != n.type) widen(n.args[1]);
      n.operand_type = n.type;
      return {};
    }
    n.operand_type = type_id::int64;
    if (n.op == op_code::add) {
      if ((ta == type_id::timestamp && tb == type_id::int64) ||
          (ta == type_id::int64 && tb == type_id::timestamp)) {
        n.type = type_id::timestamp;
        return {};
      }
    } else if (n.op == op_code::sub && ta == type_id::timestamp) {
      if (tb == type_id::int64) {
        n.type = type_id::timestamp;
        return {};
      }
      if (tb == type_id::timestamp) {
        n.type = type_id::int64;
        return {};
      }
    }
    return at("operator '" + std::string(op_text(n.op)) + "' cannot be applied to " + a_name +
                  " and " + b_name,
              n.pos);
  }

  status check_case(node& n) {
    size_t branches = (n.args.size() - (n.has_else ? 1 : 0)) / 2;
    for (size_t i = 0; i < branches; ++i) {
      node& c = *n.args[2 * i];
      settle_if_untyped(c, type_id::boolean);
      if (c.type != type_id::boolean) {
        return at("CASE WHEN condition must be bool, got " + type_name(c), c.pos);
      }
    }
    // Values sit at odd indices, plus the ELSE value at the end.
    std::vector<node_ptr*> values;
    for (size_t i = 0; i < branches; ++i) values.push_back(&n.args[2 * i + 1]);
    if (n.has_else) values.push_back(&n.args.back());
    auto t = unify(values, "CASE", false);
    bool nullable = !n.has_else;
    for (node_ptr* v : values) nullable = nullable || (*v)->nullable;
    if (!t) return t.err();
    n.type = *t;
    n.nullable = nullable;
    return {};
  }

  status check_cast(node_ptr& np) {
    node& n = *np;
    node& a = *n.args[0];
    if (untyped(a)) {
      settle_null(a, n.type);
      n.nullable = true;
      return {};
    }
    if (!cast_allowed(a.type, n.type)) {
      return at("cannot cast " + type_name(a) + " to " + std::string(to_string(n.type)), n.pos);
    }
    if (a.type == n.type) {
      node_ptr inner = std::move(n.args[0]);
      np = std::move(inner);
      return {};
    }
    n.nullable = a.nullable || cast_can_fail(a.type, n.type);
    return {};
  }

  /// Requires argument `i` of call `n` to be of type `t` (an int64 is widened to a wanted
  /// double; an untyped null takes `t`).
  status expect_arg(node& n, size_t i, type_id t) {
    node& a = *n.args[i];
    if (untyped(a)) {
      settle_null(a, t);
      return {};
    }
    if (a.type == t) return {};
    if (t == type_id::float64 && a.type == type_id::int64) {
      widen(n.args[i]);
      return {};
    }
    return at("function '" + n.name + "' expects " + std::string(to_string(t)) + " for argument " +
                  std::to_string(i + 1) + ", got " + type_name(a),
              a.pos);
  }

  status expect_numeric(node& n, size_t i) {
    node& a = *n.args[i];
    if (untyped(a)) return cannot_infer(a);
    if (!is_numeric(a.type)) {
      return at("function '" + n.name + "' expects int64 or double for argument " +
                    std::to_string(i + 1) + ", got " + type_name(a),
                a.pos);
    }
    return {};
  }

  status check_call(node_ptr& np) {
    node& n = *np;
    for (const auto& c : cast_functions) {
      if (n.name != c.name) continue;
      if (n.args.size() != 1) {
        return at(
            "function '" + n.name + "' takes 1 argument, got " + std::to_string(n.args.size()),
            n.pos);
      }
      n.kind = node_kind::cast;
      n.type = c.to;
      return check_cast(np);
    }
    const function_info* info = nullptr;
    for (const auto& f : functions) {
      if (f.name == n.name) info = &f;
    }
    if (info == nullptr) return at("unknown function '" + n.name + "'", n.pos);
    int argc = static_cast<int>(n.args.size());
    if (argc < info->min_args || (info->max_args >= 0 && argc > info->max_args)) {
      return at(
          "function '" + n.name + "' takes " + arity_text(*info) + ", got " + std::to_string(argc),
          n.pos);
    }
    n.fn = info->fn;
    n.nullable = any_nullable(n.args, 0, n.args.size());
    switch (n.fn) {
      case func_id::lower:
      case func_id::upper:
      case func_id::trim:
        VIGIL_TRY(expect_arg(n, 0, type_id::string));
        n.type = type_id::string;
        return {};
      case func_id::length:
        VIGIL_TRY(expect_arg(n, 0, type_id::string));
        n.type = type_id::int64;
        return {};
      case func_id::concat:
        for (auto& a : n.args) {
          if (untyped(*a)) {
            settle_null(*a, type_id::string);
          } else if (a->type != type_id::string) {
            auto c = std::make_unique<node>();
            c->kind = node_kind::cast;
            c->pos = a->pos;
            c->type = type_id::string;
            c->nullable = a->nullable;
            c->args.push_back(std::move(a));
            a = std::move(c);
          }
        }
        n.type = type_id::string;
        return {};
      case func_id::substr:
        VIGIL_TRY(expect_arg(n, 0, type_id::string));
        for (size_t i = 1; i < n.args.size(); ++i) VIGIL_TRY(expect_arg(n, i, type_id::int64));
        n.type = type_id::string;
        return {};
      case func_id::starts_with:
      case func_id::ends_with:
      case func_id::contains:
        VIGIL_TRY(expect_arg(n, 0, type_id::string));
        VIGIL_TRY(expect_arg(n, 1, type_id::string));
        n.type = type_id::boolean;
        return {};
      case func_id::abs:
      case func_id::floor:
      case func_id::ceil:
        VIGIL_TRY(expect_numeric(n, 0));
        n.type = n.args[0]->type;
        return {};
      case func_id::round:
        VIGIL_TRY(expect_numeric(n, 0));
        if (n.args.size() == 2) VIGIL_TRY(expect_arg(n, 1, type_id::int64));
        n.type = n.args[0]->type;
        return {};
      case func_id::least:
      case func_id::greatest:
      case func_id::coalesce: {
        auto t = unify(all(n.args), "function '" + n.name + "'", false);
        if (!t) return t.err();
        n.type = *t;
        if (n.fn == func_id::coalesce) {
          n.nullable = true;
          for (const auto& a : n.args) n.nullable = n.nullable && a->nullable;
        }
        return {};
      }
      case func_id::milliseconds:
      case func_id::seconds:
      case func_id::minutes:
      case func_id::hours:
      case func_id::days:
        settle_if_untyped(*n.args[0], type_id::int64);
        VIGIL_TRY(expect_numeric(n, 0));
        // A double count is rounded to whole microseconds; NaN or overflow gives null.
        if (n.args[0]->type == type_id::float64) n.nullable = true;
        n.type = type_id::int64;
        return {};
      case func_id::epoch_ms:
        VIGIL_TRY(expect_arg(n, 0, type_id::timestamp));
        n.type = type_id::int64;
        return {};
      case func_id::ts_from_ms:
        VIGIL_TRY(expect_arg(n, 0, type_id::int64));
        n.type = type_id::timestamp;
        return {};
      case func_id::date_trunc: {
        const node& unit = *n.args[0];
        if (unit.kind != node_kind::literal || unit.untyped_null || unit.type != type_id::string) {
          return at("function 'date_trunc' expects a unit literal such as 'minute' for argument 1",
                    unit.pos);
        }
        int64_t us = date_trunc_unit_us(unit.value.s);
        if (us == 0) {
          return at("unknown date_trunc unit '" + unit.value.s +
                        "' (units: millisecond, second, minute, hour, day)",
                    unit.pos);
        }
        n.value.i = us;
        VIGIL_TRY(expect_arg(n, 1, type_id::timestamp));
        n.type = type_id::timestamp;
        n.nullable = n.args[1]->nullable;
        return {};
      }
      case func_id::event_time:
        n.type = type_id::timestamp;
        n.nullable = false;
        return {};
    }
    return {};
  }

  const schema& schema_;
};

void number(node& n, int& next) {
  n.slot = next++;
  for (auto& a : n.args) number(*a, next);
}

}  // namespace

void settle_null(node& n, type_id t) {
  n.untyped_null = false;
  n.type = t;
  n.nullable = true;
  n.value.is_null = true;
}

int64_t date_trunc_unit_us(std::string_view unit) {
  if (unit == "millisecond") return 1000;
  if (unit == "second") return 1000000;
  if (unit == "minute") return 60 * int64_t{1000000};
  if (unit == "hour") return 3600 * int64_t{1000000};
  if (unit == "day") return 86400 * int64_t{1000000};
  return 0;
}

result<int> check(node_ptr& root, const schema& input) {
  checker c(input);
  VIGIL_TRY(c.check(root));
  int slots = 0;
  number(*root, slots);
  return slots;
}

}  // namespace vigil::expr
