#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "operators/core/expr/conversions.hpp"
#include "operators/core/expr/expr.hpp"

/// The vectorized evaluator: every node computes all rows of a batch into its own column
/// buffer (values + validity). Kernels run tight loops over the value arrays and compute
/// validity separately, so values in null rows are don't-care (string kernels keep them '').

namespace vigil::expr {

namespace {

constexpr double int64_lower = -9223372036854775808.0;  // -2^63, exact as a double.
constexpr double int64_upper = 9223372036854775808.0;   // 2^63.

int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
int64_t wrap_neg(int64_t a) {
  return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
}

/// Sizes the value arrays of a non-string column to `n` rows (contents unspecified).
void size_to(column& c, size_t n) {
  c.valid.resize(n);
  switch (c.type) {
    case type_id::int64:
    case type_id::timestamp:
      c.ints.resize(n);
      break;
    case type_id::float64:
      c.doubles.resize(n);
      break;
    case type_id::boolean:
      c.bools.resize(n);
      break;
    case type_id::string:
      assert(false);  // String results are rebuilt with clear() and push_*().
      break;
  }
}

/// Calls f with the member pointer of the value array used by type `t` (not string).
template <class F>
void with_values(type_id t, F&& f) {
  switch (t) {
    case type_id::int64:
    case type_id::timestamp:
      f(&column::ints);
      break;
    case type_id::float64:
      f(&column::doubles);
      break;
    case type_id::boolean:
      f(&column::bools);
      break;
    case type_id::string:
      assert(false);  // Callers handle strings separately.
      break;
  }
}

void and_valid(const column& a, const column& b, column& out, size_t n) {
  const uint8_t* va = a.valid.data();
  const uint8_t* vb = b.valid.data();
  uint8_t* v = out.valid.data();
  for (size_t i = 0; i < n; ++i) v[i] = va[i] & vb[i];
}

void copy_valid(const column& a, column& out, size_t n) {
  std::memcpy(out.valid.data(), a.valid.data(), n);
}

/// Pushes a string built in place: appends to chars, then closes the row.
void end_string_row(column& out) {
  out.valid.push_back(1);
  out.offsets.push_back(static_cast<uint32_t>(out.chars.size()));
}

void fill_literal(column& c, const node& n, size_t rows) {
  if (c.valid.size() == rows && (c.type != type_id::string || c.offsets.size() == rows + 1)) {
    return;  // A literal's buffer holds only the constant; it is already `rows` long.
  }
  const scalar& v = n.value;
  uint8_t valid = v.is_null ? 0 : 1;
  if (c.type == type_id::string) {
    c.clear();
    for (size_t i = 0; i < rows; ++i) {
      if (v.is_null) {
        c.push_null();
      } else {
        c.push_string(v.s);
      }
    }
    return;
  }
  c.valid.assign(rows, valid);
  switch (c.type) {
    case type_id::int64:
    case type_id::timestamp:
      c.ints.assign(rows, v.is_null ? 0 : v.i);
      break;
    case type_id::float64:
      c.doubles.assign(rows, v.is_null ? 0.0 : v.d);
      break;
    case type_id::boolean:
      c.bools.assign(rows, v.is_null ? 0 : (v.b ? 1 : 0));
      break;
    case type_id::string:
      break;
  }
}

// ---- arithmetic -----------------------------------------------------------------------------

void arith_ints(op_code op, const column& a, const column& b, column& out, size_t n) {
  size_to(out, n);
  and_valid(a, b, out, n);
  const int64_t* x = a.ints.data();
  const int64_t* y = b.ints.data();
  int64_t* r = out.ints.data();
  uint8_t* v = out.valid.data();
  switch (op) {
    case op_code::add:
      for (size_t i = 0; i < n; ++i) r[i] = wrap_add(x[i], y[i]);
      break;
    case op_code::sub:
      for (size_t i = 0; i < n; ++i) r[i] = wrap_sub(x[i], y[i]);
      break;
    case op_code::mul:
      for (size_t i = 0; i < n; ++i) r[i] = wrap_mul(x[i], y[i]);
      break;
    case op_code::div:
      for (size_t i = 0; i < n; ++i) {
        int64_t d = y[i];
        if (d == 0) {
          r[i] = 0;
          v[i] = 0;
        } else {
          r[i] = d == -1 ? wrap_neg(x[i]) : x[i] / d;
        }
      }
      break;
    case op_code::mod:
      for (size_t i = 0; i < n; ++i) {
        int64_t d = y[i];
        if (d == 0) {
          r[i] = 0;
          v[i] = 0;
        } else {
          r[i] = d == -1 ? 0 : x[i] % d;
        }
      }
      break;
    default:
      assert(false);  // The checker only makes arithmetic nodes of these operators.
  }
}

void arith_doubles(op_code op, const column& a, const column& b, column& out, size_t n) {
  size_to(out, n);
  and_valid(a, b, out, n);
  const double* x = a.doubles.data();
  const double* y = b.doubles.data();
  double* r = out.doubles.data();
  uint8_t* v = out.valid.data();
  switch (op) {
    case op_code::add:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] + y[i];
      break;
    case op_code::sub:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] - y[i];
      break;
    case op_code::mul:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] * y[i];
      break;
    case op_code::div:
      for (size_t i = 0; i < n; ++i) {
        bool zero = y[i] == 0.0;
        r[i] = x[i] / (zero ? 1.0 : y[i]);
        v[i] &= zero ? 0 : 1;
      }
      break;
    case op_code::mod:
      for (size_t i = 0; i < n; ++i) {
        bool zero = y[i] == 0.0;
        r[i] = zero ? 0.0 : std::fmod(x[i], y[i]);
        v[i] &= zero ? 0 : 1;
      }
      break;
    default:
      assert(false);  // As above.
  }
}

// ---- comparison -----------------------------------------------------------------------------

template <class T>
void compare_values(op_code op, const T* x, const T* y, uint8_t* r, size_t n) {
  switch (op) {
    case op_code::eq:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] == y[i];
      break;
    case op_code::ne:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] != y[i];
      break;
    case op_code::lt:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] < y[i];
      break;
    case op_code::le:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] <= y[i];
      break;
    case op_code::gt:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] > y[i];
      break;
    case op_code::ge:
      for (size_t i = 0; i < n; ++i) r[i] = x[i] >= y[i];
      break;
    default:
      assert(false);  // Only comparison operators reach here.
  }
}

void compare_strings(op_code op, const column& a, const column& b, uint8_t* r, size_t n) {
  if (op == op_code::eq || op == op_code::ne) {
    uint8_t flip = op == op_code::ne ? 1 : 0;
    for (size_t i = 0; i < n; ++i) r[i] = (a.string_at(i) == b.string_at(i) ? 1 : 0) ^ flip;
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    int c = a.string_at(i).compare(b.string_at(i));
    switch (op) {
      case op_code::lt:
        r[i] = c < 0;
        break;
      case op_code::le:
        r[i] = c <= 0;
        break;
      case op_code::gt:
        r[i] = c > 0;
        break;
      default:
        r[i] = c >= 0;
        break;
    }
  }
}

void compare(op_code op, type_id t, const column& a, const column& b, column& out, size_t n) {
  size_to(out, n);
  and_valid(a, b, out, n);
  uint8_t* r = out.bools.data();
  if (t == type_id::string) {
    compare_strings(op, a, b, r, n);
    return;
  }
  with_values(t, [&](auto m) { compare_values(op, (a.*m).data(), (b.*m).data(), r, n); });
}

void logical(op_code op, const column& a, const column& b, column& out, size_t n) {
  size_to(out, n);
  const uint8_t* x = a.bools.data();
  const uint8_t* y = b.bools.data();
  const uint8_t* va = a.valid.data();
  const uint8_t* vb = b.valid.data();
  uint8_t* r = out.bools.data();
  uint8_t* v = out.valid.data();
  if (op == op_code::and_) {
    for (size_t i = 0; i < n; ++i) {
      uint8_t ta = va[i] & x[i];
      uint8_t tb = vb[i] & y[i];
      uint8_t fa = va[i] & (x[i] ^ 1);
      uint8_t fb = vb[i] & (y[i] ^ 1);
      r[i] = ta & tb;
      v[i] = fa | fb | (ta & tb);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint8_t ta = va[i] & x[i];
      uint8_t tb = vb[i] & y[i];
      uint8_t fa = va[i] & (x[i] ^ 1);
      uint8_t fb = vb[i] & (y[i] ^ 1);
      r[i] = ta | tb;
      v[i] = ta | tb | (fa & fb);
    }
  }
}

// ---- strings --------------------------------------------------------------------------------

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

int64_t code_points(std::string_view s) {
  int64_t count = 0;
  for (char c : s) count += is_continuation(c) ? 0 : 1;
  return count;
}

/// Byte offset where code point `k` (0-based) starts; s.size() when s has at most k.
size_t code_point_offset(std::string_view s, int64_t k) {
  if (k <= 0) return 0;
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_continuation(s[i])) {
      if (seen == k) return i;
      ++seen;
    }
  }
  return s.size();
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view substr_of(std::string_view s, int64_t start, bool has_len, int64_t len) {
  int64_t to = std::numeric_limits<int64_t>::max();  // Exclusive, 1-based.
  if (has_len) {
    if (len < 0) return {};
    if (__builtin_add_overflow(start, len, &to)) to = std::numeric_limits<int64_t>::max();
  }
  int64_t from = std::max<int64_t>(start, 1);
  if (to <= from) return {};
  size_t b0 = code_point_offset(s, from - 1);
  size_t b1 = to == std::numeric_limits<int64_t>::max() ? s.size() : code_point_offset(s, to - 1);
  return s.substr(b0, b1 - b0);
}

void case_map(const column& a, column& out, size_t n, bool upper) {
  out.valid.assign(a.valid.begin(), a.valid.begin() + static_cast<ptrdiff_t>(n));
  uint32_t base = a.offsets[0];
  out.offsets.resize(n + 1);
  for (size_t i = 0; i <= n; ++i) out.offsets[i] = a.offsets[i] - base;
  out.chars.assign(a.chars.begin() + base, a.chars.begin() + a.offsets[n]);
  char lo = upper ? 'a' : 'A';
  char hi = upper ? 'z' : 'Z';
  for (char& c : out.chars) {
    if (c >= lo && c <= hi) c = static_cast<char>(c ^ 0x20);
  }
}

// ---- numbers --------------------------------------------------------------------------------

double round_double(double x, int64_t digits) {
  if (digits == 0) return std::round(x);
  if (digits > 0) {
    if (digits > 308) return x;
    double scale = std::pow(10.0, static_cast<double>(digits));
    double y = x * scale;
    if (!std::isfinite(y)) return x;
    return std::round(y) / scale;
  }
  if (digits < -308) return 0.0;
  double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::round(x / scale) * scale;
}

int64_t round_int(int64_t x, int64_t digits) {
  if (digits >= 0) return x;
  if (digits < -18) return 0;
  int64_t p = 1;
  for (int64_t k = 0; k < -digits; ++k) p *= 10;
  int64_t q = x / p;
  int64_t rem = x % p;
  if ((rem >= 0 ? rem : -rem) * 2 >= p) q += x < 0 ? -1 : 1;
  return wrap_mul(q, p);
}

int64_t unit_us(func_id fn) {
  switch (fn) {
    case func_id::milliseconds:
      return 1000;
    case func_id::seconds:
      return 1000000;
    case func_id::minutes:
      return 60 * int64_t{1000000};
    case func_id::hours:
      return 3600 * int64_t{1000000};
    default:
      return 86400 * int64_t{1000000};
  }
}

template <class T, bool greatest>
void extreme(const std::vector<const column*>& in, std::vector<T> column::*m, column& out,
             size_t n) {
  T* r = (out.*m).data();
  uint8_t* v = out.valid.data();
  std::memcpy(r, ((*in[0]).*m).data(), n * sizeof(T));
  copy_valid(*in[0], out, n);
  for (size_t k = 1; k < in.size(); ++k) {
    const T* y = ((*in[k]).*m).data();
    const uint8_t* vy = in[k]->valid.data();
    for (size_t i = 0; i < n; ++i) {
      r[i] = greatest ? (y[i] > r[i] ? y[i] : r[i]) : (y[i] < r[i] ? y[i] : r[i]);
      v[i] &= vy[i];
    }
  }
}

}  // namespace

evaluator::evaluator(expression_ptr e) : expr_(std::move(e)) {
  slots_.resize(static_cast<size_t>(expr_->slot_count()));
  inputs_.resize(slots_.size());
  std::vector<const node*> stack{&expr_->root()};
  while (!stack.empty()) {
    const node* n = stack.back();
    stack.pop_back();
    slots_[n->slot] = column(n->type);
    inputs_[n->slot].resize(n->args.size());
    for (const auto& a : n->args) stack.push_back(a.get());
  }
}

const column& evaluator::evaluate(const record_batch& batch) {
  batch_ = &batch;
  rows_ = batch.num_rows();
  return eval(expr_->root());
}

const column& evaluator::eval(const node& n) {
  column& out = slots_[n.slot];
  switch (n.kind) {
    case node_kind::literal:
      fill_literal(out, n, rows_);
      return out;
    case node_kind::field:
      assert(batch_->columns[n.field_index].type == n.type);  // Batches follow the plan schema.
      return batch_->columns[n.field_index];
    default:
      break;
  }
  auto& in = inputs_[n.slot];
  for (size_t i = 0; i < n.args.size(); ++i) {
    // date_trunc's unit is a literal the checker already read.
    bool skip = n.kind == node_kind::call && n.fn == func_id::date_trunc && i == 0;
    in[i] = skip ? nullptr : &eval(*n.args[i]);
  }
  run(n, in, out);
  return out;
}

void evaluator::run(const node& n, const std::vector<const column*>& in, column& out) {
  size_t rows = rows_;
  switch (n.kind) {
    case node_kind::unary: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      if (n.op == op_code::not_) {
        for (size_t i = 0; i < rows; ++i) out.bools[i] = a.bools[i] ^ 1;
      } else if (n.type == type_id::float64) {
        for (size_t i = 0; i < rows; ++i) out.doubles[i] = -a.doubles[i];
      } else {
        for (size_t i = 0; i < rows; ++i) out.ints[i] = wrap_neg(a.ints[i]);
      }
      return;
    }
    case node_kind::binary:
      switch (n.op) {
        case op_code::and_:
        case op_code::or_:
          logical(n.op, *in[0], *in[1], out, rows);
          return;
        case op_code::add:
        case op_code::sub:
        case op_code::mul:
        case op_code::div:
        case op_code::mod:
          if (n.operand_type == type_id::float64) {
            arith_doubles(n.op, *in[0], *in[1], out, rows);
          } else {
            arith_ints(n.op, *in[0], *in[1], out, rows);
          }
          return;
        default:
          compare(n.op, n.operand_type, *in[0], *in[1], out, rows);
          return;
      }
    case node_kind::is_null: {
      size_to(out, rows);
      const uint8_t* va = in[0]->valid.data();
      uint8_t flip = n.negated ? 0 : 1;
      for (size_t i = 0; i < rows; ++i) {
        out.bools[i] = va[i] ^ flip;
        out.valid[i] = 1;
      }
      return;
    }
    case node_kind::in_list: {
      size_to(out, rows);
      uint8_t* found = out.bools.data();
      std::fill(found, found + rows, 0);
      mask_.assign(rows, 0);  // 1 where some item is null.
      const column& x = *in[0];
      for (size_t k = 1; k < in.size(); ++k) {
        const column& item = *in[k];
        const uint8_t* vi = item.valid.data();
        if (n.operand_type == type_id::string) {
          for (size_t i = 0; i < rows; ++i) {
            found[i] |= vi[i] & (x.string_at(i) == item.string_at(i) ? 1 : 0);
          }
        } else {
          with_values(n.operand_type, [&](auto m) {
            const auto* xv = (x.*m).data();
            const auto* iv = (item.*m).data();
            for (size_t i = 0; i < rows; ++i) found[i] |= vi[i] & (xv[i] == iv[i] ? 1 : 0);
          });
        }
        for (size_t i = 0; i < rows; ++i) mask_[i] |= vi[i] ^ 1;
      }
      uint8_t flip = n.negated ? 1 : 0;
      for (size_t i = 0; i < rows; ++i) {
        out.valid[i] = x.valid[i] & (found[i] | (mask_[i] ^ 1));
        found[i] ^= flip;
      }
      return;
    }
    case node_kind::case_when: {
      size_t branches = (in.size() - (n.has_else ? 1 : 0)) / 2;
      choice_.assign(rows, -1);
      for (size_t b = 0; b < branches; ++b) {
        const column& c = *in[2 * b];
        auto value = static_cast<int32_t>(2 * b + 1);
        for (size_t i = 0; i < rows; ++i) {
          if (choice_[i] < 0 && (c.valid[i] & c.bools[i])) choice_[i] = value;
        }
      }
      if (n.has_else) {
        auto last = static_cast<int32_t>(in.size() - 1);
        for (size_t i = 0; i < rows; ++i) {
          if (choice_[i] < 0) choice_[i] = last;
        }
      }
      if (n.type == type_id::string) {
        out.clear();
        for (size_t i = 0; i < rows; ++i) {
          int32_t k = choice_[i];
          if (k < 0 || in[k]->is_null(i)) {
            out.push_null();
          } else {
            out.push_string(in[k]->string_at(i));
          }
        }
        return;
      }
      size_to(out, rows);
      with_values(n.type, [&](auto m) {
        auto* r = (out.*m).data();
        for (size_t i = 0; i < rows; ++i) {
          int32_t k = choice_[i];
          if (k < 0) {
            r[i] = 0;
            out.valid[i] = 0;
          } else {
            r[i] = ((*in[k]).*m)[i];
            out.valid[i] = in[k]->valid[i];
          }
        }
      });
      return;
    }
    case node_kind::cast:
      run_cast(n, *in[0], out);
      return;
    case node_kind::call:
      run_call(n, in, out);
      return;
    case node_kind::literal:
    case node_kind::field:
      break;
  }
}

void evaluator::run_cast(const node& n, const column& a, column& out) {
  size_t rows = rows_;
  type_id from = a.type;
  type_id to = n.type;
  if (to == type_id::string) {
    out.clear();
    for (size_t i = 0; i < rows; ++i) {
      if (a.is_null(i)) {
        out.push_null();
        continue;
      }
      switch (from) {
        case type_id::boolean:
          out.push_string(a.bools[i] ? "true" : "false");
          break;
        case type_id::int64: {
          char buf[24];
          auto [end, ec] = std::to_chars(buf, buf + sizeof buf, a.ints[i]);
          out.push_string(std::string_view(buf, static_cast<size_t>(end - buf)));
          break;
        }
        case type_id::float64:
          text_.clear();
          append_double(text_, a.doubles[i]);
          out.push_string(text_);
          break;
        case type_id::timestamp:
          text_.clear();
          append_timestamp(text_, a.ints[i]);
          out.push_string(text_);
          break;
        case type_id::string:
          out.push_string(a.string_at(i));
          break;
      }
    }
    return;
  }
  size_to(out, rows);
  copy_valid(a, out, rows);
  uint8_t* v = out.valid.data();
  if (from == type_id::string) {
    for (size_t i = 0; i < rows; ++i) {
      bool ok = false;
      if (v[i]) {
        std::string_view s = a.string_at(i);
        switch (to) {
          case type_id::int64:
            if (auto p = parse_int(s)) out.ints[i] = *p, ok = true;
            break;
          case type_id::float64:
            if (auto p = parse_double(s)) out.doubles[i] = *p, ok = true;
            break;
          case type_id::boolean:
            if (auto p = parse_bool(s)) out.bools[i] = *p ? 1 : 0, ok = true;
            break;
          case type_id::timestamp:
            if (auto p = parse_timestamp(s)) out.ints[i] = *p, ok = true;
            break;
          case type_id::string:
            break;
        }
      }
      if (!ok) {
        v[i] = 0;
        with_values(to, [&](auto m) { (out.*m)[i] = 0; });
      }
    }
    return;
  }
  if (to == type_id::float64) {  // From int64.
    for (size_t i = 0; i < rows; ++i) out.doubles[i] = static_cast<double>(a.ints[i]);
  } else if (to == type_id::boolean) {  // From int64.
    for (size_t i = 0; i < rows; ++i) out.bools[i] = a.ints[i] != 0 ? 1 : 0;
  } else if (from == type_id::float64) {  // To int64.
    for (size_t i = 0; i < rows; ++i) {
      double d = a.doubles[i];
      bool in_range = d >= int64_lower && d < int64_upper;  // False for NaN.
      out.ints[i] = in_range ? static_cast<int64_t>(d) : 0;
      v[i] &= in_range ? 1 : 0;
    }
  } else if (from == type_id::boolean) {  // To int64.
    for (size_t i = 0; i < rows; ++i) out.ints[i] = a.bools[i];
  } else {  // int64 <-> timestamp.
    std::memcpy(out.ints.data(), a.ints.data(), rows * sizeof(int64_t));
  }
}

void evaluator::run_call(const node& n, const std::vector<const column*>& in, column& out) {
  size_t rows = rows_;
  switch (n.fn) {
    case func_id::lower:
    case func_id::upper:
      case_map(*in[0], out, rows, n.fn == func_id::upper);
      return;
    case func_id::trim: {
      const column& a = *in[0];
      out.clear();
      for (size_t i = 0; i < rows; ++i) {
        std::string_view s = a.string_at(i);
        while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
        while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
        out.push_string(s);
        out.valid.back() = a.valid[i];
      }
      return;
    }
    case func_id::length: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      for (size_t i = 0; i < rows; ++i) out.ints[i] = code_points(a.string_at(i));
      return;
    }
    case func_id::concat: {
      out.clear();
      for (size_t i = 0; i < rows; ++i) {
        bool valid = true;
        for (const column* c : in) valid = valid && c->valid[i];
        if (!valid) {
          out.push_null();
          continue;
        }
        for (const column* c : in) {
          std::string_view s = c->string_at(i);
          out.chars.insert(out.chars.end(), s.begin(), s.end());
        }
        end_string_row(out);
      }
      return;
    }
    case func_id::substr: {
      const column& s = *in[0];
      const column& start = *in[1];
      bool has_len = in.size() == 3;
      out.clear();
      for (size_t i = 0; i < rows; ++i) {
        bool valid = s.valid[i] && start.valid[i] && (!has_len || in[2]->valid[i]);
        if (!valid) {
          out.push_null();
          continue;
        }
        out.push_string(
            substr_of(s.string_at(i), start.ints[i], has_len, has_len ? in[2]->ints[i] : 0));
      }
      return;
    }
    case func_id::starts_with:
    case func_id::ends_with:
    case func_id::contains: {
      const column& a = *in[0];
      const column& b = *in[1];
      size_to(out, rows);
      and_valid(a, b, out, rows);
      for (size_t i = 0; i < rows; ++i) {
        std::string_view s = a.string_at(i);
        std::string_view p = b.string_at(i);
        bool r = n.fn == func_id::starts_with ? s.starts_with(p)
                 : n.fn == func_id::ends_with ? s.ends_with(p)
                                              : s.find(p) != std::string_view::npos;
        out.bools[i] = r ? 1 : 0;
      }
      return;
    }
    case func_id::abs:
    case func_id::floor:
    case func_id::ceil: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      if (n.type == type_id::float64) {
        const double* x = a.doubles.data();
        double* r = out.doubles.data();
        if (n.fn == func_id::abs) {
          for (size_t i = 0; i < rows; ++i) r[i] = std::fabs(x[i]);
        } else if (n.fn == func_id::floor) {
          for (size_t i = 0; i < rows; ++i) r[i] = std::floor(x[i]);
        } else {
          for (size_t i = 0; i < rows; ++i) r[i] = std::ceil(x[i]);
        }
      } else if (n.fn == func_id::abs) {
        for (size_t i = 0; i < rows; ++i) {
          out.ints[i] = a.ints[i] < 0 ? wrap_neg(a.ints[i]) : a.ints[i];
        }
      } else {
        std::memcpy(out.ints.data(), a.ints.data(), rows * sizeof(int64_t));
      }
      return;
    }
    case func_id::round: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      if (in.size() == 2) and_valid(a, *in[1], out, rows);
      for (size_t i = 0; i < rows; ++i) {
        int64_t digits = in.size() == 2 ? in[1]->ints[i] : 0;
        if (n.type == type_id::float64) {
          out.doubles[i] = round_double(a.doubles[i], digits);
        } else {
          out.ints[i] = round_int(a.ints[i], digits);
        }
      }
      return;
    }
    case func_id::least:
    case func_id::greatest: {
      bool greatest = n.fn == func_id::greatest;
      if (n.type == type_id::string) {
        out.clear();
        for (size_t i = 0; i < rows; ++i) {
          bool valid = true;
          for (const column* c : in) valid = valid && c->valid[i];
          if (!valid) {
            out.push_null();
            continue;
          }
          std::string_view best = in[0]->string_at(i);
          for (size_t k = 1; k < in.size(); ++k) {
            std::string_view s = in[k]->string_at(i);
            if (greatest ? s > best : s < best) best = s;
          }
          out.push_string(best);
        }
        return;
      }
      size_to(out, rows);
      with_values(n.type, [&](auto m) {
        if (greatest) {
          extreme<typename std::remove_reference_t<decltype(out.*m)>::value_type, true>(in, m, out,
                                                                                        rows);
        } else {
          extreme<typename std::remove_reference_t<decltype(out.*m)>::value_type, false>(in, m, out,
                                                                                         rows);
        }
      });
      return;
    }
    case func_id::coalesce: {
      if (n.type == type_id::string) {
        out.clear();
        for (size_t i = 0; i < rows; ++i) {
          const column* pick = nullptr;
          for (const column* c : in) {
            if (c->valid[i]) {
              pick = c;
              break;
            }
          }
          if (pick == nullptr) {
            out.push_null();
          } else {
            out.push_string(pick->string_at(i));
          }
        }
        return;
      }
      size_to(out, rows);
      with_values(n.type, [&](auto m) {
        auto* r = (out.*m).data();
        uint8_t* v = out.valid.data();
        const column& last = *in.back();
        std::memcpy(r, (last.*m).data(), rows * sizeof(*r));
        copy_valid(last, out, rows);
        for (size_t k = in.size() - 1; k-- > 0;) {
          const auto* y = ((*in[k]).*m).data();
          const uint8_t* vy = in[k]->valid.data();
          for (size_t i = 0; i < rows; ++i) {
            r[i] = vy[i] ? y[i] : r[i];
            v[i] |= vy[i];
          }
        }
      });
      return;
    }
    case func_id::milliseconds:
    case func_id::seconds:
    case func_id::minutes:
    case func_id::hours:
    case func_id::days: {
      const column& a = *in[0];
      int64_t unit = unit_us(n.fn);
      size_to(out, rows);
      copy_valid(a, out, rows);
      if (a.type == type_id::float64) {
        for (size_t i = 0; i < rows; ++i) {
          double us = a.doubles[i] * static_cast<double>(unit);
          bool in_range = us >= int64_lower && us < int64_upper;
          out.ints[i] = in_range ? std::llround(us) : 0;
          out.valid[i] &= in_range ? 1 : 0;
        }
      } else {
        for (size_t i = 0; i < rows; ++i) out.ints[i] = wrap_mul(a.ints[i], unit);
      }
      return;
    }
    case func_id::epoch_ms: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      for (size_t i = 0; i < rows; ++i) out.ints[i] = floor_div(a.ints[i], 1000);
      return;
    }
    case func_id::ts_from_ms: {
      const column& a = *in[0];
      size_to(out, rows);
      copy_valid(a, out, rows);
      for (size_t i = 0; i < rows; ++i) out.ints[i] = wrap_mul(a.ints[i], 1000);
      return;
    }
    case func_id::date_trunc: {
      const column& a = *in[1];
      int64_t unit = n.value.i;
      size_to(out, rows);
      copy_valid(a, out, rows);
      for (size_t i = 0; i < rows; ++i) {
        out.ints[i] = wrap_sub(a.ints[i], floor_mod(a.ints[i], unit));
      }
      return;
    }
    case func_id::event_time:
      size_to(out, rows);
      std::fill(out.valid.begin(), out.valid.end(), 1);
      std::memcpy(out.ints.data(), batch_->event_time.data(), rows * sizeof(int64_t));
      return;
  }
}

void copy_result(const column& src, size_t rows, column& dst) {
  assert(src.type == dst.type && dst.size() == 0);  // Callers pass a fresh column.
  dst.valid.assign(src.valid.begin(), src.valid.begin() + static_cast<ptrdiff_t>(rows));
  const uint8_t* v = dst.valid.data();
  if (src.type == type_id::string) {
    dst.offsets.reserve(rows + 1);
    for (size_t i = 0; i < rows; ++i) {
      if (v[i]) {
        std::string_view s = src.string_at(i);
        dst.chars.insert(dst.chars.end(), s.begin(), s.end());
      }
      dst.offsets.push_back(static_cast<uint32_t>(dst.chars.size()));
    }
    return;
  }
  with_values(src.type, [&](auto m) {
    auto& out = dst.*m;
    const auto& in = src.*m;
    out.assign(in.begin(), in.begin() + static_cast<ptrdiff_t>(rows));
    for (size_t i = 0; i < rows; ++i) out[i] = v[i] ? out[i] : 0;
  });
}

}  // namespace vigil::expr
