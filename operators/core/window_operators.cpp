#include "operators/core/window_operators.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "operators/core/aggregate.hpp"
#include "operators/core/window_operator.hpp"

namespace vigil {

namespace {

constexpr std::string_view window_start_field = "window_start";
constexpr std::string_view window_end_field = "window_end";

class window_plan final : public operator_plan {
 public:
  explicit window_plan(std::shared_ptr<const window_settings> s) : s_(std::move(s)) {}

  std::unique_ptr<operator_base> instantiate() const override { return make_window_operator(s_); }

 private:
  std::shared_ptr<const window_settings> s_;
};

/// Reads a duration that must be > 0.
result<int64_t> positive_duration(config_reader& reader, std::string_view key) {
  auto d = reader.required_duration_us(key);
  if (!d) return d.err();
  if (*d <= 0) return config_reader::key_error(key, "must be positive");
  return *d;
}

/// Reads the window shape of `kind` into `s`.
status read_shape(config_reader& reader, window_kind kind, window_settings& s) {
  if (kind == window_kind::session) {
    auto gap = positive_duration(reader, "gap");
    if (!gap) return gap.err();
    s.gap_us = *gap;
    return {};
  }
  auto size = positive_duration(reader, "size");
  if (!size) return size.err();
  s.size_us = *size;
  s.slide_us = *size;
  if (kind == window_kind::sliding) {
    auto slide = positive_duration(reader, "slide");
    if (!slide) return slide.err();
    if (*slide > *size) {
      return config_reader::key_error("slide", "must not be larger than size (" +
                                                   std::to_string(*slide) + "us > " +
                                                   std::to_string(*size) + "us)");
    }
    // Every record updates size/slide windows: bound the work per record.
    constexpr int64_t max_windows_per_record = 10000;
    if (*size / *slide > max_windows_per_record) {
      return config_reader::key_error("slide", "size/slide is " + std::to_string(*size / *slide) +
                                                   " windows per record; at most " +
                                                   std::to_string(max_windows_per_record));
    }
    s.slide_us = *slide;
  }
  auto offset = reader.duration_us_or("offset", 0);
  if (!offset) return offset.err();
  if (*offset >= s.slide_us) {
    return config_reader::key_error("offset", kind == window_kind::sliding
                                                  ? "must be smaller than slide"
                                                  : "must be smaller than size");
  }
  s.offset_us = *offset;
  return {};
}

/// Output: the key fields in key order, window_start, window_end, then the aggregates.
result<schema_ptr> output_schema(const stream_info& in, const std::vector<aggregate_spec>& aggs) {
  std::vector<field> fields;
  for (int k : in.key_fields) {
    const field& f = in.schema->at(k);
    if (f.name == window_start_field || f.name == window_end_field) {
      return make_error(errc::invalid_graph, "key field '" + f.name +
                                                 "' clashes with the output field of the same "
                                                 "name; rename it before the window");
    }
    fields.push_back(f);
  }
  fields.push_back({std::string(window_start_field), type_id::timestamp, false});
  fields.push_back({std::string(window_end_field), type_id::timestamp, false});
  const size_t fixed = fields.size();
  for (size_t i = 0; i < aggs.size(); ++i) {
    for (size_t j = 0; j < fixed; ++j) {
      if (fields[j].name == aggs[i].output.name) {
        return config_reader::key_error(
            "aggregates[" + std::to_string(i) + "].name",
            "output field '" + aggs[i].output.name + "' clashes with a " +
                (j < in.key_fields.size() ? "key field" : "window bound field"));
      }
    }
    fields.push_back(aggs[i].output);
  }
  return make_schema(std::move(fields));
}

class window_factory final : public operator_factory {
 public:
  window_factory(window_kind kind, std::string name, std::string summary) : kind_(kind) {
    traits_.name = std::move(name);
    traits_.input_ports = {"in"};
    traits_.output_ports = {"out", "late"};
    traits_.keyed = true;
    traits_.stateful = true;
    traits_.summary = std::move(summary);
  }

  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || ctx.inputs[0].schema == nullptr) {
      return make_error(errc::internal, traits_.name + " needs exactly one input stream");
    }
    const stream_info& in = ctx.inputs[0];
    if (!in.keyed()) {
      return make_error(errc::invalid_graph, "input 'in' of " + traits_.name +
                                                 " must be keyed (add a key_by before it)");
    }
    static const config_map no_config;
    config_reader reader(ctx.config != nullptr ? *ctx.config : no_config);
    auto s = std::make_shared<window_settings>();
    s->kind = kind_;
    VIGIL_TRY(read_shape(reader, kind_, *s));
    auto aggs = parse_aggregates(reader, "aggregates", *in.schema);
    if (!aggs) return aggs.err();
    auto lateness = reader.duration_us_or("allowed_lateness", ctx.allowed_lateness_us);
    if (!lateness) return lateness.err();
    s->allowed_lateness_us = *lateness;
    VIGIL_TRY(reader.finish());

    auto out_schema = output_schema(in, *aggs);
    if (!out_schema) return out_schema.err();
    s->input = in;
    for (int k : in.key_fields) s->key_types.push_back(in.schema->at(k).type);
    s->output = *out_schema;
    s->aggregates = aggregate_set(std::move(*aggs));

    auto plan = std::make_shared<window_plan>(s);
    stream_info out;
    out.schema = s->output;
    for (size_t k = 0; k < in.key_fields.size(); ++k) out.key_fields.push_back(static_cast<int>(k));
    plan->outputs = {std::move(out), in};
    return plan_ptr(std::move(plan));
  }

 private:
  window_kind kind_;
  operator_traits traits_;
};

}  // namespace

void register_window_operators(operator_registry& r) {
  r.add(std::make_unique<window_factory>(
      window_kind::tumbling, "tumbling_window",
      "Aggregates each key over fixed, non-overlapping event-time windows."));
  r.add(std::make_unique<window_factory>(
      window_kind::sliding, "sliding_window",
      "Aggregates each key over fixed event-time windows that start every `slide`."));
  r.add(std::make_unique<window_factory>(
      window_kind::session, "session_window",
      "Aggregates each key over event-time sessions that close after a gap of inactivity."));
}

}  // namespace vigil
