#include "operators/core/key_by.hpp"

#include <string>
#include <vector>

namespace vigil {
namespace {

class key_by_operator final : public operator_base {
 public:
  key_by_operator(schema_ptr schema, std::vector<int> key_fields)
      : schema_(std::move(schema)), key_fields_(std::move(key_fields)) {}

  void process(size_t port, const record_batch& in, output& out) override {
    size_t n = in.num_rows();
    if (n == 0) return;
    auto b = std::make_shared<record_batch>();
    b->schema = schema_;
    b->columns.reserve(in.columns.size());
    for (const column& c : in.columns) {
      b->columns.emplace_back(c.type);
      b->columns.back().append_all(c);
    }
    b->event_time = in.event_time;
    b->key_hash.resize(n);
    for (size_t r = 0; r < n; ++r) {
      key_.clear();
      encode_key(in, key_fields_, r, key_);
      b->key_hash[r] = hash_encoded_key(key_);
    }
    out.emit(0, std::move(b));
  }

 private:
  schema_ptr schema_;
  std::vector<int> key_fields_;
  std::string key_;  ///< Reused for every row's encoded key.
};

class key_by_plan final : public operator_plan {
 public:
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<key_by_operator>(outputs[0].schema, outputs[0].key_fields);
  }
};

class key_by_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || !ctx.inputs[0].schema) {
      return make_error(errc::invalid_graph, "key_by takes exactly one input");
    }
    const schema& in = *ctx.inputs[0].schema;
    config_reader cfg(*ctx.config);
    auto names = cfg.required_string_list("key");
    if (!names) return names.err();
    VIGIL_TRY(cfg.finish());
    std::vector<int> key_fields;
    for (const std::string& name : *names) {
      int idx = in.index_of(name);
      if (idx < 0) {
        return config_reader::key_error(
            "key", "field '" + name + "' is not in the input (" + in.to_string() + ")");
      }
      for (int k : key_fields) {
        if (k == idx) return config_reader::key_error("key", "field '" + name + "' listed twice");
      }
      key_fields.push_back(idx);
    }
    auto p = std::make_shared<key_by_plan>();
    p->outputs.push_back(stream_info{ctx.inputs[0].schema, std::move(key_fields)});
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "key_by",
      .input_ports = {"in"},
      .output_ports = {"out"},
      .summary = "Keys a stream by fields: sets the key-hash column for hash partitioning.",
  };
};

}  // namespace

void register_key_by_operator(operator_registry& r) {
  r.add(std::make_unique<key_by_factory>());
}

}  // namespace vigil
