#include "common/config.hpp"

#include <charconv>
#include <limits>

namespace vigil {

config_value config_value::of_bool(bool v) {
  config_value c;
  c.k = kind::boolean;
  c.b = v;
  return c;
}

config_value config_value::of_int(int64_t v) {
  config_value c;
  c.k = kind::integer;
  c.i = v;
  return c;
}

config_value config_value::of_double(double v) {
  config_value c;
  c.k = kind::number;
  c.d = v;
  return c;
}

config_value config_value::of_string(std::string v) {
  config_value c;
  c.k = kind::string;
  c.s = std::move(v);
  return c;
}

const config_value* config_value::find(std::string_view key) const {
  for (const auto& [name, value] : map) {
    if (name == key) return &value;
  }
  return nullptr;
}

const char* to_string(config_value::kind k) {
  switch (k) {
    case config_value::kind::null:
      return "null";
    case config_value::kind::boolean:
      return "bool";
    case config_value::kind::integer:
      return "integer";
    case config_value::kind::number:
      return "number";
    case config_value::kind::string:
      return "string";
    case config_value::kind::list:
      return "list";
    case config_value::kind::map:
      return "map";
  }
  return "unknown";
}

result<int64_t> parse_duration_us(const config_value& v) {
  if (v.k == config_value::kind::integer) {
    if (v.i < 0) return make_error(errc::invalid_argument, "duration must not be negative");
    if (v.i > std::numeric_limits<int64_t>::max() / 1000) {
      return make_error(errc::invalid_argument, "duration is too large");
    }
    return v.i * 1000;
  }
  if (v.k != config_value::kind::string) {
    return make_error(errc::invalid_argument,
                      std::string("expected a duration such as \"10s\", got ") + to_string(v.k));
  }
  std::string_view s = v.s;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  std::string_view unit(ptr, s.data() + s.size() - ptr);
  if (ec != std::errc() || n < 0) {
    return make_error(errc::invalid_argument, "invalid duration \"" + v.s + "\"");
  }
  int64_t mult = 0;
  if (unit == "us")
    mult = 1;
  else if (unit == "ms")
    mult = 1000;
  else if (unit == "s")
    mult = 1000000;
  else if (unit == "m" || unit == "min")
    mult = 60 * int64_t{1000000};
  else if (unit == "h")
    mult = 3600 * int64_t{1000000};
  else if (unit == "d")
    mult = 86400 * int64_t{1000000};
  else {
    return make_error(errc::invalid_argument,
                      "invalid duration \"" + v.s + "\" (units: us, ms, s, m, h, d)");
  }
  int64_t us = 0;
  if (__builtin_mul_overflow(n, mult, &us)) {
    return make_error(errc::invalid_argument, "duration \"" + v.s + "\" is too large");
  }
  return us;
}

error config_reader::key_error(std::string_view key, std::string_view what) {
  std::string msg = "config.";
  msg += key;
  msg += ": ";
  msg += what;
  return make_error(errc::invalid_argument, std::move(msg));
}

const config_value* config_reader::get(std::string_view key) {
  seen_.emplace(key);
  for (const auto& [name, value] : cfg_) {
    if (name == key) return &value;
  }
  return nullptr;
}

namespace {

std::string expected_got(std::string_view want, const config_value& v) {
  return "expected " + std::string(want) + ", got " + to_string(v.k);
}

}  // namespace

result<std::string> config_reader::required_string(std::string_view key) {
  const config_value* v = get(key);
  if (v == nullptr) return key_error(key, "required");
  return string_or(key, {});
}

result<std::string> config_reader::string_or(std::string_view key, std::string fallback) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->k != config_value::kind::string) return key_error(key, expected_got("string", *v));
  return v->s;
}

result<int64_t> config_reader::required_int(std::string_view key) {
  if (get(key) == nullptr) return key_error(key, "required");
  return int_or(key, 0);
}

result<int64_t> config_reader::int_or(std::string_view key, int64_t fallback) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->k != config_value::kind::integer) return key_error(key, expected_got("integer", *v));
  return v->i;
}

result<double> config_reader::double_or(std::string_view key, double fallback) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->k == config_value::kind::integer) return static_cast<double>(v->i);
  if (v->k != config_value::kind::number) return key_error(key, expected_got("number", *v));
  return v->d;
}

result<bool> config_reader::bool_or(std::string_view key, bool fallback) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->k != config_value::kind::boolean) return key_error(key, expected_got("bool", *v));
  return v->b;
}

result<int64_t> config_reader::required_duration_us(std::string_view key) {
  if (get(key) == nullptr) return key_error(key, "required");
  return duration_us_or(key, 0);
}

result<int64_t> config_reader::duration_us_or(std::string_view key, int64_t fallback_us) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback_us;
  auto d = parse_duration_us(*v);
  if (!d) return key_error(key, d.err().message);
  return *d;
}

result<std::vector<std::string>> config_reader::required_string_list(std::string_view key) {
  if (get(key) == nullptr) return key_error(key, "required");
  return string_list_or(key, {});
}

result<std::vector<std::string>> config_reader::string_list_or(std::string_view key,
                                                               std::vector<std::string> fallback) {
  const config_value* v = get(key);
  if (v == nullptr) return fallback;
  if (v->k == config_value::kind::string) return std::vector<std::string>{v->s};
  if (v->k != config_value::kind::list) {
    return key_error(key, expected_got("string or list of strings", *v));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v->list.size(); ++i) {
    if (v->list[i].k != config_value::kind::string) {
      return key_error(std::string(key) + "[" + std::to_string(i) + "]",
                       expected_got("string", v->list[i]));
    }
    out.push_back(v->list[i].s);
  }
  if (out.empty()) return key_error(key, "must not be empty");
  return out;
}

status config_reader::finish() const {
  for (const auto& [name, value] : cfg_) {
    if (!seen_.contains(name)) return key_error(name, "unknown key");
  }
  return {};
}

}  // namespace vigil
