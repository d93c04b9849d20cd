#include "operators/core/union_op.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace vigil {
namespace {

class union_operator final : public operator_base {
 public:
  union_operator(schema_ptr schema, bool keyed) : schema_(std::move(schema)), keyed_(keyed) {}

  void process_shared(size_t port, const batch_ptr& in, output& out) override {
    // The inputs' schemas have equal fields (plan()), so a batch passes on as it is unless its
    // key hashes must go.
    if (in->keyed() == keyed_) {
      if (in->num_rows() != 0) out.emit(0, in);
      return;
    }
    process(port, *in, out);
  }

  void process(size_t port, const record_batch& in, output& out) override {
    if (in.num_rows() == 0) return;
    auto b = std::make_shared<record_batch>();
    b->schema = schema_;
    b->columns = in.columns;
    b->event_time = in.event_time;
    if (keyed_) b->key_hash = in.key_hash;
    out.emit(0, std::move(b));
  }

 private:
  schema_ptr schema_;
  bool keyed_;
};

class union_plan final : public operator_plan {
 public:
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<union_operator>(outputs[0].schema, outputs[0].keyed());
  }
};

/// Appends "'name:type'" ('?' marking nullable) of fields[i], or "missing" past the end.
void append_field(std::string& out, const std::vector<field>& fields, size_t i) {
  if (i >= fields.size()) {
    out += "missing";
    return;
  }
  out += '\'';
  out += fields[i].name;
  out += ':';
  out += to_string(fields[i].type);
  if (fields[i].nullable) out += '?';
  out += '\'';
}

class union_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader cfg(*ctx.config);
    VIGIL_TRY(cfg.finish());
    if (ctx.inputs.empty())
      return make_error(errc::invalid_graph, "union needs at least one input");
    const stream_info& first = ctx.inputs[0];
    bool keyed = first.keyed();
    for (size_t i = 1; i < ctx.inputs.size(); ++i) {
      const stream_info& in = ctx.inputs[i];
      const auto& a = first.schema->fields();
      const auto& b = in.schema->fields();
      for (size_t f = 0; f < std::max(a.size(), b.size()); ++f) {
        if (f < a.size() && f < b.size() && a[f] == b[f]) continue;
        std::string msg = "union input " + std::to_string(i) + " does not match input 0 at field " +
                          std::to_string(f) + ": ";
        append_field(msg, b, f);
        msg += " vs ";
        append_field(msg, a, f);
        msg += " (input 0: ";
        msg += first.schema->to_string();
        msg += "; input ";
        msg += std::to_string(i);
        msg += ": ";
        msg += in.schema->to_string();
        msg += ")";
        return make_error(errc::invalid_graph, std::move(msg));
      }
      if (in.key_fields != first.key_fields) keyed = false;
    }
    auto p = std::make_shared<union_plan>();
    p->outputs.push_back(stream_info{first.schema, keyed ? first.key_fields : std::vector<int>{}});
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "union",
      .input_ports = {"in"},
      .variadic_input = true,
      .output_ports = {"out"},
      .summary = "Merges streams with identical schemas.",
  };
};

}  // namespace

void register_union_operator(operator_registry& r) {
  r.add(std::make_unique<union_factory>());
}

}  // namespace vigil
