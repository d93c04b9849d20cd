#include "operators/core/relational.hpp"

#include <memory>
#include <string>
#include <vector>

#include "operators/core/expr/expr.hpp"

namespace vigil {

namespace {

std::string field_list(const schema& s) {
  std::string out;
  for (const auto& f : s.fields()) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

result<const stream_info*> single_input(const plan_context& ctx, std::string_view op) {
  if (ctx.inputs.size() != 1 || ctx.inputs[0].schema == nullptr) {
    return make_error(errc::invalid_graph, std::string(op) + " takes exactly one input stream");
  }
  return &ctx.inputs[0];
}

/// The key of `in` carried over to an output whose field j is input field source[j] under its
/// own name (-1: anything else): the remapped key indices if every key field survives, else none.
std::vector<int> carried_key(const stream_info& in, const std::vector<int>& source) {
  std::vector<int> out;
  for (int k : in.key_fields) {
    int found = -1;
    for (size_t j = 0; j < source.size(); ++j) {
      if (source[j] == k) found = static_cast<int>(j);
    }
    if (found < 0) return {};
    out.push_back(found);
  }
  return out;
}

// ---- filter ---------------------------------------------------------------------------------

class filter_op : public operator_base {
 public:
  filter_op(expr::expression_ptr where, schema_ptr s)
      : eval_(std::move(where)), schema_(std::move(s)) {}

  status open(operator_context& ctx) override {
    builder_ = batch_builder(schema_, ctx.batch_size);
    return {};
  }

  void process(size_t port, const record_batch& batch, output& out) override {
    size_t rows = batch.num_rows();
    if (rows == 0) return;
    const column& keep = eval_.evaluate(batch);
    sel_.resize(rows);
    uint32_t* sel = sel_.data();
    const uint8_t* valid = keep.valid.data();
    const uint8_t* value = keep.bools.data();
    size_t n = 0;
    for (size_t i = 0; i < rows; ++i) {
      sel[n] = static_cast<uint32_t>(i);
      n += valid[i] & value[i];
    }
    if (n == 0) return;
    builder_.append_rows(batch, sel, n);
    out.emit(0, builder_.finish());
  }

 private:
  expr::evaluator eval_;
  schema_ptr schema_;
  batch_builder builder_;
  std::vector<uint32_t> sel_;
};

class filter_plan : public operator_plan {
 public:
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<filter_op>(where, outputs[0].schema);
  }
  expr::expression_ptr where;
};

class filter_factory : public operator_factory {
 public:
  filter_factory() {
    traits_.name = "filter";
    traits_.input_ports = {"in"};
    traits_.output_ports = {"out"};
    traits_.summary = "Keeps the records for which a bool expression (`where`) is true.";
  }
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    auto in = single_input(ctx, "filter");
    if (!in) return in.err();
    config_reader cfg(*ctx.config);
    auto where = cfg.required_string("where");
    if (!where) return where.err();
    VIGIL_TRY(cfg.finish());
    auto e = expr::expression::compile(*where, *(*in)->schema, type_id::boolean);
    if (!e) return config_reader::key_error("where", e.err().message);
    auto p = std::make_shared<filter_plan>();
    p->where = std::move(*e);
    p->outputs = {**in};
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_;
};

// ---- map ------------------------------------------------------------------------------------

/// Where an output field of map or project comes from.
struct field_source {
  int input = -1;       ///< Copied from this input field, or
  int expression = -1;  ///< computed by this expression.
};

class rebuild_op : public operator_base {
 public:
  rebuild_op(schema_ptr s, std::vector<field_source> sources,
             const std::vector<expr::expression_ptr>& exprs, bool keyed)
      : schema_(std::move(s)), sources_(std::move(sources)), keyed_(keyed) {
    evals_.reserve(exprs.size());
    for (const auto& e : exprs) evals_.emplace_back(e);
  }

  void process(size_t port, const record_batch& batch, output& out) override {
    size_t rows = batch.num_rows();
    if (rows == 0) return;
    auto b = make_batch(schema_, rows);
    for (size_t j = 0; j < sources_.size(); ++j) {
      const field_source& src = sources_[j];
      if (src.input >= 0) {
        b->columns[j].append_all(batch.columns[src.input]);
      } else {
        expr::copy_result(evals_[src.expression].evaluate(batch), rows, b->columns[j]);
      }
    }
    b->event_time = batch.event_time;
    if (keyed_) b->key_hash = batch.key_hash;
    out.emit(0, std::move(b));
  }

 private:
  schema_ptr schema_;
  std::vector<field_source> sources_;
  std::vector<expr::evaluator> evals_;
  bool keyed_;
};

class rebuild_plan : public operator_plan {
 public:
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<rebuild_op>(outputs[0].schema, sources, exprs, outputs[0].keyed());
  }
  std::vector<field_source> sources;
  std::vector<expr::expression_ptr> exprs;
};

std::unique_ptr<rebuild_plan> finish_rebuild(const stream_info& in, std::vector<field> fields,
                                             std::vector<field_source> sources,
                                             std::vector<expr::expression_ptr> exprs) {
  auto p = std::make_unique<rebuild_plan>();
  // Only a field copied under its own name keeps a key field.
  std::vector<int> copied;
  for (size_t j = 0; j < sources.size(); ++j) {
    int i = sources[j].input;
    copied.push_back(i >= 0 && in.schema->at(i).name == fields[j].name ? i : -1);
  }
  stream_info out;
  out.schema = make_schema(std::move(fields));
  out.key_fields = carried_key(in, copied);
  p->outputs = {std::move(out)};
  p->sources = std::move(sources);
  p->exprs = std::move(exprs);
  return p;
}

class map_factory : public operator_factory {
 public:
  map_factory() {
    traits_.name = "map";
    traits_.input_ports = {"in"};
    traits_.output_ports = {"out"};
    traits_.summary = "Adds or replaces fields computed by expressions (`set`), removes `drop`.";
  }
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    auto in_r = single_input(ctx, "map");
    if (!in_r) return in_r.err();
    const stream_info& in = **in_r;
    const schema& s = *in.schema;
    config_reader cfg(*ctx.config);
    const config_value* set = cfg.get("set");
    auto drop = cfg.string_list_or("drop", {});
    if (!drop) return drop.err();
    VIGIL_TRY(cfg.finish());
    if (set == nullptr && drop->empty()) {
      return config_reader::key_error(
          "set", "required (a map of field name to expression) unless config.drop is given");
    }
    if (set != nullptr && set->k != config_value::kind::map) {
      return config_reader::key_error(
          "set",
          std::string("expected a map of field name to expression, got ") + to_string(set->k));
    }

    // Assignments, checked and compiled against the input schema.
    std::vector<std::pair<std::string, expr::expression_ptr>> assigned;
    if (set != nullptr) {
      for (const auto& [name, value] : set->map) {
        std::string key = "set." + name;
        if (name.empty()) return config_reader::key_error("set", "field name must not be empty");
        if (value.k != config_value::kind::string) {
          return config_reader::key_error(
              key, std::string("expected an expression string, got ") + to_string(value.k));
        }
        for (const auto& a : assigned) {
          if (a.first == name) return config_reader::key_error(key, "assigned twice");
        }
        auto e = expr::expression::compile(value.s, s);
        if (!e) return config_reader::key_error(key, e.err().message);
        assigned.emplace_back(name, std::move(*e));
      }
    }
    std::vector<bool> dropped(s.size(), false);
    for (const auto& name : *drop) {
      int idx = s.index_of(name);
      if (idx < 0) {
        return config_reader::key_error(
            "drop", "unknown field '" + name + "' (fields: " + field_list(s) + ")");
      }
      for (const auto& a : assigned) {
        if (a.first == name) {
          return config_reader::key_error("drop",
                                          "field '" + name + "' is also assigned in config.set");
        }
      }
      dropped[idx] = true;
    }

    std::vector<field> fields;
    std::vector<field_source> sources;
    std::vector<expr::expression_ptr> exprs;
    std::vector<bool> placed(assigned.size(), false);
    auto add_assigned = [&](size_t a) {
      const auto& [name, e] = assigned[a];
      placed[a] = true;
      field_source src;
      // A plain field reference (`y: x`) is copied as a column, no evaluation needed.
      src.input = e->field_index();
      if (src.input < 0) {
        src.expression = static_cast<int>(exprs.size());
        exprs.push_back(e);
      }
      fields.push_back(field{name, e->type(), e->nullable()});
      sources.push_back(src);
    };
    for (size_t i = 0; i < s.size(); ++i) {
      if (dropped[i]) continue;
      size_t a = 0;
      while (a < assigned.size() && assigned[a].first != s.at(i).name) ++a;
      if (a < assigned.size()) {
        add_assigned(a);
      } else {
        fields.push_back(s.at(i));
        sources.push_back(field_source{static_cast<int>(i), -1});
      }
    }
    for (size_t a = 0; a < assigned.size(); ++a) {
      if (!placed[a]) add_assigned(a);
    }
    if (fields.empty()) return config_reader::key_error("drop", "would remove every field");
    return plan_ptr(finish_rebuild(in, std::move(fields), std::move(sources), std::move(exprs)));
  }

 private:
  operator_traits traits_;
};

// ---- project --------------------------------------------------------------------------------

class project_factory : public operator_factory {
 public:
  project_factory() {
    traits_.name = "project";
    traits_.input_ports = {"in"};
    traits_.output_ports = {"out"};
    traits_.summary = "Keeps only the listed `fields`, in that order.";
  }
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    auto in_r = single_input(ctx, "project");
    if (!in_r) return in_r.err();
    const stream_info& in = **in_r;
    const schema& s = *in.schema;
    config_reader cfg(*ctx.config);
    auto names = cfg.required_string_list("fields");
    if (!names) return names.err();
    VIGIL_TRY(cfg.finish());
    std::vector<field> fields;
    std::vector<field_source> sources;
    for (const auto& name : *names) {
      int idx = s.index_of(name);
      if (idx < 0) {
        return config_reader::key_error(
            "fields", "unknown field '" + name + "' (fields: " + field_list(s) + ")");
      }
      for (const auto& f : fields) {
        if (f.name == name) {
          return config_reader::key_error("fields", "field '" + name + "' listed twice");
        }
      }
      fields.push_back(s.at(idx));
      sources.push_back(field_source{idx, -1});
    }
    return plan_ptr(finish_rebuild(in, std::move(fields), std::move(sources), {}));
  }

 private:
  operator_traits traits_;
};

}  // namespace

void register_relational_operators(operator_registry& registry) {
  registry.add(std::make_unique<filter_factory>());
  registry.add(std::make_unique<map_factory>());
  registry.add(std::make_unique<project_factory>());
}

}  // namespace vigil
