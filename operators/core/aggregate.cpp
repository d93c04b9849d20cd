#include "operators/core/aggregate.hpp"

#include <bit>
#include <cstring>
#include <set>

namespace vigil {

static_assert(std::endian::native == std::endian::little,
              "accumulators are stored as little-endian bytes");

std::string_view to_string(aggregate_fn fn) {
  switch (fn) {
    case aggregate_fn::count:
      return "count";
    case aggregate_fn::sum:
      return "sum";
    case aggregate_fn::min:
      return "min";
    case aggregate_fn::max:
      return "max";
    case aggregate_fn::avg:
      return "avg";
    case aggregate_fn::first:
      return "first";
    case aggregate_fn::last:
      return "last";
  }
  return "unknown";
}

std::optional<aggregate_fn> parse_aggregate_fn(std::string_view name) {
  for (auto fn : {aggregate_fn::count, aggregate_fn::sum, aggregate_fn::min, aggregate_fn::max,
                  aggregate_fn::avg, aggregate_fn::first, aggregate_fn::last}) {
    if (to_string(fn) == name) return fn;
  }
  return std::nullopt;
}

namespace {

/// Rewrites "config.<k>: ..." from a nested reader into "config.<prefix>.<k>: ...".
error nested(const std::string& prefix, error err) {
  constexpr std::string_view head = "config.";
  if (err.message.starts_with(head)) err.message.insert(head.size(), prefix + ".");
  return err;
}

bool allowed_input(aggregate_fn fn, type_id t) {
  switch (fn) {
    case aggregate_fn::sum:
    case aggregate_fn::avg:
      return is_numeric(t);
    case aggregate_fn::min:
    case aggregate_fn::max:
      return t != type_id::boolean;
    case aggregate_fn::count:
    case aggregate_fn::first:
    case aggregate_fn::last:
      return true;
  }
  return false;
}

std::string_view allowed_input_text(aggregate_fn fn) {
  switch (fn) {
    case aggregate_fn::sum:
    case aggregate_fn::avg:
      return "an int64 or double field";
    case aggregate_fn::min:
    case aggregate_fn::max:
      return "an int64, double, timestamp or string field";
    default:
      return "a field";
  }
}

result<aggregate_spec> parse_one(const config_value& item, const std::string& prefix,
                                 const schema& input) {
  if (item.k != config_value::kind::map) {
    return config_reader::key_error(
        prefix, std::string("expected a map {name, fn, field}, got ") + to_string(item.k));
  }
  config_reader reader(item.map);
  auto name = reader.required_string("name");
  if (!name) return nested(prefix, name.err());
  if (name->empty()) return config_reader::key_error(prefix + ".name", "must not be empty");
  auto fn_name = reader.required_string("fn");
  if (!fn_name) return nested(prefix, fn_name.err());
  auto fn = parse_aggregate_fn(*fn_name);
  if (!fn) {
    return config_reader::key_error(prefix + ".fn",
                                    "unknown aggregate function '" + *fn_name +
                                        "' (expected count, sum, min, max, avg, first or last)");
  }
  auto field_name = reader.string_or("field", "");
  if (!field_name) return nested(prefix, field_name.err());
  if (auto st = reader.finish(); !st) return nested(prefix, st.err());

  aggregate_spec spec;
  spec.fn = *fn;
  spec.output.name = *name;
  if (field_name->empty()) {
    if (spec.fn != aggregate_fn::count) {
      return config_reader::key_error(prefix + ".field",
                                      "required for " + std::string(to_string(spec.fn)));
    }
    spec.output.type = type_id::int64;
    spec.output.nullable = false;
    return spec;
  }
  spec.input = input.index_of(*field_name);
  if (spec.input < 0) {
    return config_reader::key_error(
        prefix + ".field",
        "field '" + *field_name + "' missing from input 'in' (" + input.to_string() + ")");
  }
  const field& in = input.at(spec.input);
  spec.input_type = in.type;
  if (!allowed_input(spec.fn, in.type)) {
    return config_reader::key_error(prefix + ".field",
                                    std::string(to_string(spec.fn)) + " needs " +
                                        std::string(allowed_input_text(spec.fn)) + ", '" + in.name +
                                        "' is " + std::string(vigil::to_string(in.type)));
  }
  switch (spec.fn) {
    case aggregate_fn::count:
      spec.output.type = type_id::int64;
      spec.output.nullable = false;
      break;
    case aggregate_fn::avg:
      spec.output.type = type_id::float64;
      spec.output.nullable = in.nullable;
      break;
    default:
      spec.output.type = in.type;
      spec.output.nullable = in.nullable;
      break;
  }
  return spec;
}

}  // namespace

result<std::vector<aggregate_spec>> parse_aggregates(config_reader& reader, std::string_view key,
                                                     const schema& input) {
  const config_value* v = reader.get(key);
  if (v == nullptr) return config_reader::key_error(key, "required");
  if (v->k != config_value::kind::list) {
    return config_reader::key_error(
        key, std::string("expected a list of {name, fn, field} maps, got ") + to_string(v->k));
  }
  if (v->list.empty()) return config_reader::key_error(key, "must not be empty");
  std::vector<aggregate_spec> specs;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < v->list.size(); ++i) {
    std::string prefix = std::string(key) + "[" + std::to_string(i) + "]";
    auto spec = parse_one(v->list[i], prefix, input);
    if (!spec) return spec.err();
    if (!names.insert(spec->output.name).second) {
      return config_reader::key_error(prefix + ".name",
                                      "duplicate output field '" + spec->output.name + "'");
    }
    specs.push_back(std::move(*spec));
  }
  return specs;
}

aggregate_set::aggregate_set(std::vector<aggregate_spec> specs) : specs_(std::move(specs)) {}

void aggregate_set::reset(accumulator* acc) const {
  for (size_t a = 0; a < specs_.size(); ++a) {
    accumulator& x = acc[a];
    x.has = false;
    x.n = 0;
    x.i = 0;
    x.d = 0;
    x.ts = 0;
    x.s.clear();
  }
}

namespace {

/// Where a value of type `t` lives in an accumulator.
enum class slot : uint8_t { i, d, s };

slot slot_of(type_id t) {
  switch (t) {
    case type_id::float64:
      return slot::d;
    case type_id::string:
      return slot::s;
    default:
      return slot::i;
  }
}

int64_t wrapping_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

/// Calls f(accumulator&, row) for each listed row whose value in `c` is not null.
template <class F>
void for_valid(const column& c, const uint32_t* rows, const uint32_t* groups, size_t n,
               accumulator* accs, size_t width, size_t a, F&& f) {
  for (size_t k = 0; k < n; ++k) {
    const uint32_t r = rows[k];
    if (c.valid[r] != 0) f(accs[size_t{groups[k]} * width + a], r);
  }
}

/// Folds the listed rows of `c` into a min (less = true) or max accumulator.
template <bool less>
void fold_extreme(const column& c, slot sl, const uint32_t* rows, const uint32_t* groups, size_t n,
                  accumulator* accs, size_t width, size_t a) {
  auto better = [](const auto& v, const auto& cur) { return less ? v < cur : cur < v; };
  switch (sl) {
    case slot::i:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (x.has && !better(c.ints[r], x.i)) return;
        x.i = c.ints[r];
        x.has = true;
      });
      break;
    case slot::d:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (x.has && !better(c.doubles[r], x.d)) return;
        x.d = c.doubles[r];
        x.has = true;
      });
      break;
    case slot::s:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        std::string_view v = c.string_at(r);
        if (x.has && !better(v, std::string_view(x.s))) return;
        x.s.assign(v);
        x.has = true;
      });
      break;
  }
}

/// Folds the listed rows of `c` into a first (earliest = true) or last accumulator.
template <bool earliest>
void fold_positional(const column& c, const std::vector<int64_t>& event_time, const uint32_t* rows,
                     const uint32_t* groups, size_t n, accumulator* accs, size_t width, size_t a) {
  auto take = [&](accumulator& x, uint32_t r) {
    const int64_t t = event_time[r];
    if (x.has && (earliest ? t >= x.ts : t < x.ts)) return false;
    x.has = true;
    x.ts = t;
    return true;
  };
  switch (c.type) {
    case type_id::float64:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (take(x, r)) x.d = c.doubles[r];
      });
      break;
    case type_id::string:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (take(x, r)) x.s.assign(c.string_at(r));
      });
      break;
    case type_id::boolean:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (take(x, r)) x.i = c.bools[r];
      });
      break;
    case type_id::int64:
    case type_id::timestamp:
      for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
        if (take(x, r)) x.i = c.ints[r];
      });
      break;
  }
}

void copy_value(accumulator& into, const accumulator& from, slot sl) {
  switch (sl) {
    case slot::i:
      into.i = from.i;
      break;
    case slot::d:
      into.d = from.d;
      break;
    case slot::s:
      into.s.assign(from.s);
      break;
  }
}

/// True if `a` holds a smaller value than `b`.
bool value_less(const accumulator& a, const accumulator& b, slot sl) {
  switch (sl) {
    case slot::i:
      return a.i < b.i;
    case slot::d:
      return a.d < b.d;
    case slot::s:
      return a.s < b.s;
  }
  return false;
}

template <class T>
void put_raw(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void put_value(std::string& out, const accumulator& x, slot sl) {
  switch (sl) {
    case slot::i:
      put_raw(out, x.i);
      break;
    case slot::d:
      put_raw(out, x.d);
      break;
    case slot::s:
      put_raw(out, static_cast<uint32_t>(x.s.size()));
      out.append(x.s);
      break;
  }
}

/// Reads fixed-size and length-prefixed fields from an encoded accumulator.
class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}

  template <class T>
  bool get(T& v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool get_flag(bool& v) {
    uint8_t b = 0;
    if (!get(b)) return false;
    v = b != 0;
    return true;
  }
  bool get_value(accumulator& x, slot sl) {
    switch (sl) {
      case slot::i:
        return get(x.i);
      case slot::d:
        return get(x.d);
      case slot::s: {
        uint32_t len = 0;
        if (!get(len) || in_.size() - pos_ < len) return false;
        x.s.assign(in_.data() + pos_, len);
        pos_ += len;
        return true;
      }
    }
    return false;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

void aggregate_set::add(const record_batch& batch, const uint32_t* rows, const uint32_t* groups,
                        size_t n, accumulator* accs) const {
  const size_t width = specs_.size();
  for (size_t a = 0; a < width; ++a) {
    const aggregate_spec& spec = specs_[a];
    if (spec.input < 0) {
      for (size_t k = 0; k < n; ++k) ++accs[size_t{groups[k]} * width + a].n;
      continue;
    }
    const column& c = batch.columns[spec.input];
    const slot sl = slot_of(spec.input_type);
    switch (spec.fn) {
      case aggregate_fn::count:
        for_valid(c, rows, groups, n, accs, width, a, [](accumulator& x, uint32_t) { ++x.n; });
        break;
      case aggregate_fn::sum:
      case aggregate_fn::avg:
        if (sl == slot::i) {
          for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
            x.i = wrapping_add(x.i, c.ints[r]);
            x.has = true;
            ++x.n;
          });
        } else {
          for_valid(c, rows, groups, n, accs, width, a, [&](accumulator& x, uint32_t r) {
            x.d += c.doubles[r];
            x.has = true;
            ++x.n;
          });
        }
        break;
      case aggregate_fn::min:
        fold_extreme<true>(c, sl, rows, groups, n, accs, width, a);
        break;
      case aggregate_fn::max:
        fold_extreme<false>(c, sl, rows, groups, n, accs, width, a);
        break;
      case aggregate_fn::first:
        fold_positional<true>(c, batch.event_time, rows, groups, n, accs, width, a);
        break;
      case aggregate_fn::last:
        fold_positional<false>(c, batch.event_time, rows, groups, n, accs, width, a);
        break;
    }
  }
}

void aggregate_set::merge(accumulator* into, const accumulator* later) const {
  for (size_t a = 0; a < specs_.size(); ++a) {
    const aggregate_spec& spec = specs_[a];
    accumulator& x = into[a];
    const accumulator& y = later[a];
    const slot sl = slot_of(spec.input_type);
    switch (spec.fn) {
      case aggregate_fn::count:
        x.n += y.n;
        break;
      case aggregate_fn::sum:
      case aggregate_fn::avg:
        if (!y.has) break;
        if (sl == slot::i) {
          x.i = wrapping_add(x.i, y.i);
        } else {
          x.d += y.d;
        }
        x.n += y.n;
        x.has = true;
        break;
      case aggregate_fn::min:
      case aggregate_fn::max: {
        if (!y.has) break;
        const bool take =
            !x.has || (spec.fn == aggregate_fn::min ? value_less(y, x, sl) : value_less(x, y, sl));
        if (!take) break;
        copy_value(x, y, sl);
        x.has = true;
        break;
      }
      case aggregate_fn::first:
      case aggregate_fn::last: {
        if (!y.has) break;
        const bool take = !x.has || (spec.fn == aggregate_fn::first ? y.ts < x.ts : y.ts >= x.ts);
        if (!take) break;
        copy_value(x, y, sl);
        x.ts = y.ts;
        x.has = true;
        break;
      }
    }
  }
}

void aggregate_set::encode(const accumulator* acc, std::string& out) const {
  for (size_t a = 0; a < specs_.size(); ++a) {
    const aggregate_spec& spec = specs_[a];
    const accumulator& x = acc[a];
    const slot sl = slot_of(spec.input_type);
    switch (spec.fn) {
      case aggregate_fn::count:
        put_raw(out, x.n);
        break;
      case aggregate_fn::sum:
      case aggregate_fn::avg:
        put_raw(out, x.n);
        put_value(out, x, sl);
        break;
      case aggregate_fn::min:
      case aggregate_fn::max:
        put_raw(out, static_cast<uint8_t>(x.has));
        put_value(out, x, sl);
        break;
      case aggregate_fn::first:
      case aggregate_fn::last:
        put_raw(out, static_cast<uint8_t>(x.has));
        put_raw(out, x.ts);
        put_value(out, x, sl);
        break;
    }
  }
}

bool aggregate_set::decode(std::string_view in, accumulator* acc) const {
  reader rd(in);
  for (size_t a = 0; a < specs_.size(); ++a) {
    const aggregate_spec& spec = specs_[a];
    accumulator& x = acc[a];
    const slot sl = slot_of(spec.input_type);
    switch (spec.fn) {
      case aggregate_fn::count:
        if (!rd.get(x.n)) return false;
        break;
      case aggregate_fn::sum:
      case aggregate_fn::avg:
        if (!rd.get(x.n) || !rd.get_value(x, sl)) return false;
        x.has = x.n > 0;
        break;
      case aggregate_fn::min:
      case aggregate_fn::max:
        if (!rd.get_flag(x.has) || !rd.get_value(x, sl)) return false;
        break;
      case aggregate_fn::first:
      case aggregate_fn::last:
        if (!rd.get_flag(x.has) || !rd.get(x.ts) || !rd.get_value(x, sl)) return false;
        break;
    }
  }
  return rd.done();
}

void aggregate_set::append_to(const accumulator* acc, batch_builder& b, size_t first_col) const {
  for (size_t a = 0; a < specs_.size(); ++a) {
    const aggregate_spec& spec = specs_[a];
    const accumulator& x = acc[a];
    column& c = b.col(first_col + a);
    if (spec.fn == aggregate_fn::count) {
      c.push_int64(x.n);
      continue;
    }
    if (!x.has) {
      c.push_null();
      continue;
    }
    if (spec.fn == aggregate_fn::avg) {
      const double sum = spec.input_type == type_id::float64 ? x.d : static_cast<double>(x.i);
      c.push_float64(sum / static_cast<double>(x.n));
      continue;
    }
    switch (spec.output.type) {
      case type_id::int64:
      case type_id::timestamp:
        c.push_int64(x.i);
        break;
      case type_id::float64:
        c.push_float64(x.d);
        break;
      case type_id::boolean:
        c.push_bool(x.i != 0);
        break;
      case type_id::string:
        c.push_string(x.s);
        break;
    }
  }
}

}  // namespace vigil
