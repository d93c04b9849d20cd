#include "operators/core/join_common.hpp"

namespace vigil::join {

result<int64_t> parse_signed_duration_us(const config_value& v) {
  if (v.k == config_value::kind::integer) {
    if (v.i < std::numeric_limits<int64_t>::min() / 1000 ||
        v.i > std::numeric_limits<int64_t>::max() / 1000) {
      return make_error(errc::invalid_argument, "duration out of range");
    }
    return v.i * 1000;
  }
  if (v.k == config_value::kind::string && !v.s.empty() && v.s[0] == '-') {
    auto magnitude = parse_duration_us(config_value::of_string(v.s.substr(1)));
    if (!magnitude) return make_error(errc::invalid_argument, "invalid duration \"" + v.s + "\"");
    return -*magnitude;
  }
  return parse_duration_us(v);
}

result<int64_t> required_signed_duration_us(config_reader& cfg, std::string_view key) {
  const config_value* v = cfg.get(key);
  if (v == nullptr) return config_reader::key_error(key, "required");
  auto d = parse_signed_duration_us(*v);
  if (!d) return config_reader::key_error(key, d.err().message);
  return *d;
}

status check_join_keys(const stream_info& left, const stream_info& right) {
  const stream_info* inputs[2] = {&left, &right};
  const char* names[2] = {"left", "right"};
  for (int i = 0; i < 2; ++i) {
    if (!inputs[i]->keyed()) {
      return make_error(errc::invalid_graph, std::string("input '") + names[i] +
                                                 "' is not keyed (key it with key_by first)");
    }
  }
  if (left.key_fields.size() != right.key_fields.size()) {
    return make_error(errc::invalid_graph, "input 'right' is keyed on " +
                                               std::to_string(right.key_fields.size()) +
                                               " field(s) but input 'left' on " +
                                               std::to_string(left.key_fields.size()));
  }
  for (size_t k = 0; k < left.key_fields.size(); ++k) {
    const field& l = left.schema->at(left.key_fields[k]);
    const field& r = right.schema->at(right.key_fields[k]);
    if (l.type != r.type) {
      std::string msg = "key field '";
      msg += r.name;
      msg += "' of input 'right' has type ";
      msg += to_string(r.type);
      msg += " but key field '";
      msg += l.name;
      msg += "' of input 'left' has type ";
      msg += to_string(l.type);
      return make_error(errc::invalid_graph, std::move(msg));
    }
  }
  return {};
}

result<std::vector<field>> joined_fields(const schema& left, const schema& right,
                                         const std::vector<int>& right_columns,
                                         const std::string& right_prefix, bool right_nullable) {
  std::vector<field> fields = left.fields();
  auto taken = [&](std::string_view name) {
    for (const field& f : fields) {
      if (f.name == name) return true;
    }
    return false;
  };
  for (int c : right_columns) {
    field f = right.at(c);
    if (left.index_of(f.name) >= 0) {
      f.name.insert(0, right_prefix);
      if (taken(f.name)) {
        return config_reader::key_error("right_prefix", "right field '" + right.at(c).name +
                                                            "' would be renamed to '" + f.name +
                                                            "', which is already an output field");
      }
    }
    if (right_nullable) f.nullable = true;
    fields.push_back(std::move(f));
  }
  return fields;
}

void append_entry(std::string& buf, int64_t event_time, std::string_view row) {
  put_i64_ordered(buf, event_time);
  auto len = static_cast<uint32_t>(row.size());
  while (len >= 0x80) {
    buf.push_back(static_cast<char>((len & 0x7f) | 0x80));
    len >>= 7;
  }
  buf.push_back(static_cast<char>(len));
  buf.append(row);
}

size_t count_entries(std::string_view buf) {
  size_t n = 0;
  for_each_entry(buf, [&](int64_t, std::string_view) { ++n; });
  return n;
}

output_buffer::output_buffer(schema_ptr s, size_t port, size_t batch_size)
    : schema_(std::move(s)), port_(port), batch_size_(batch_size == 0 ? 1 : batch_size) {
  reset();
}

void output_buffer::append_row(const record_batch& src, size_t row, output& out) {
  for (size_t c = 0; c < cols_.size(); ++c) cols_[c]->push_from(src.columns[c], row);
  end_row(src.event_time[row], src.key_hash[row], out);
}

void output_buffer::flush(output& out) {
  if (size() == 0) return;
  out.emit(port_, std::move(batch_));
  reset();
}

void output_buffer::reset() {
  batch_ = make_batch(schema_, batch_size_);
  batch_->key_hash.reserve(batch_size_);
  cols_.clear();
  for (column& c : batch_->columns) cols_.push_back(&c);
}

}  // namespace vigil::join
