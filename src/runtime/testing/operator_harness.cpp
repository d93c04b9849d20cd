#include "runtime/testing/operator_harness.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "common/key.hpp"

namespace vigil::testing {

batch_ptr make_rows(const schema_ptr& s, const std::vector<std::vector<cell>>& rows,
                    const std::vector<int64_t>& event_times, const std::vector<int>& key_fields) {
  auto b = make_batch(s, rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < s->size(); ++c) {
      column& col = b->columns[c];
      const cell& v = rows[r].at(c);
      if (std::holds_alternative<std::monostate>(v)) {
        col.push_null();
      } else if (auto* bv = std::get_if<bool>(&v)) {
        col.push_bool(*bv);
      } else if (auto* iv = std::get_if<int64_t>(&v)) {
        if (col.type == type_id::float64) {
          col.push_float64(static_cast<double>(*iv));
        } else {
          col.push_int64(*iv);
        }
      } else if (auto* dv = std::get_if<double>(&v)) {
        col.push_float64(*dv);
      } else {
        col.push_string(std::get<std::string>(v));
      }
    }
    b->event_time.push_back(event_times.at(r));
  }
  if (!key_fields.empty()) {
    std::string key;
    for (size_t r = 0; r < rows.size(); ++r) {
      key.clear();
      encode_key(*b, key_fields, r, key);
      b->key_hash.push_back(hash_encoded_key(key));
    }
  }
  return b;
}

std::vector<int64_t> value_state_namespaces(state_backend& state, state_backend::state_id id) {
  std::vector<int64_t> out;
  state.scan_all(id, [&](uint32_t, std::string_view key, std::string_view) {
    EXPECT_GE(key.size(), 8u);  // The namespace ends the key (8 bytes, ordered int64).
    if (key.size() >= 8) out.push_back(get_i64_ordered(key.data() + key.size() - 8));
    return true;
  });
  std::sort(out.begin(), out.end());
  return out;
}

std::string row_text(const record_batch& b, size_t row) {
  std::string out;
  char buf[64];
  for (size_t c = 0; c < b.columns.size(); ++c) {
    if (c > 0) out += '|';
    const column& col = b.columns[c];
    if (col.is_null(row)) {
      out += "null";
      continue;
    }
    switch (col.type) {
      case type_id::boolean:
        out += col.bools[row] ? "true" : "false";
        break;
      case type_id::int64:
      case type_id::timestamp:
        out += std::to_string(col.ints[row]);
        break;
      case type_id::float64:
        std::snprintf(buf, sizeof buf, "%g", col.doubles[row]);
        out += buf;
        break;
      case type_id::string:
        out += col.string_at(row);
        break;
    }
  }
  out += '@';
  out += std::to_string(b.event_time[row]);
  return out;
}

namespace {

std::filesystem::path fresh_state_dir() {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("vigil-harness-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

result<plan_ptr> operator_harness::try_plan(const operator_registry& registry,
                                            const std::string& op, const config_map& config,
                                            std::vector<stream_info> inputs) {
  const operator_factory* f = registry.find(op);
  if (f == nullptr) return make_error(errc::not_found, "unknown operator '" + op + "'");
  plan_context ctx;
  ctx.node_id = "test";
  ctx.config = &config;
  ctx.inputs = std::move(inputs);
  return f->plan(ctx);
}

operator_harness::operator_harness(const operator_registry& registry, const std::string& op,
                                   const config_map& config, std::vector<stream_info> inputs,
                                   uint32_t subtask, uint32_t parallelism, size_t batch_size,
                                   std::function<void()> wakeup) {
  const operator_factory* f = registry.find(op);
  EXPECT_NE(f, nullptr) << "unknown operator " << op;
  plan_context ctx;
  ctx.node_id = "test";
  ctx.config = &config;
  ctx.inputs = std::move(inputs);
  ctx.parallelism = parallelism;
  auto plan = f->plan(ctx);
  if (!plan) {
    ADD_FAILURE() << "plan failed: " << plan.err().message;
    std::abort();  // Nothing below can run without a plan.
  }
  plan_ = *plan;
  out_.resize(std::max<size_t>(1, f->traits().output_ports.size()));
  state_dir_ = fresh_state_dir();
  subtask_driver::options opts;
  opts.node_id = "test";
  opts.subtask_index = subtask;
  opts.parallelism = parallelism;
  opts.batch_size = batch_size;
  opts.state_dir = state_dir_.string();
  opts.wakeup = std::move(wakeup);
  auto d = subtask_driver::make(*f, *plan_, opts, *this);
  if (!d) {
    ADD_FAILURE() << "open failed: " << d.err().message;
    std::abort();
  }
  driver_ = std::move(*d);
}

operator_harness::~operator_harness() {
  driver_.reset();
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
}

void operator_harness::finish() {
  auto st = driver_->finish();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
}

std::vector<std::string> operator_harness::rows(size_t port) const {
  std::vector<std::string> out;
  for (const auto& b : out_[port]) {
    for (size_t r = 0; r < b->num_rows(); ++r) out.push_back(row_text(*b, r));
  }
  return out;
}

void operator_harness::clear_output() {
  for (auto& port : out_) port.clear();
}

void operator_harness::emit(size_t port, batch_ptr batch) {
  EXPECT_LT(port, out_.size());
  EXPECT_GT(batch->num_rows(), 0u) << "operators must not emit empty batches";
  out_[port].push_back(std::move(batch));
}

config_map cfg(std::initializer_list<std::pair<std::string, config_value>> entries) {
  return config_map(entries.begin(), entries.end());
}

config_value str(std::string s) {
  return config_value::of_string(std::move(s));
}
config_value num(int64_t v) {
  return config_value::of_int(v);
}
config_value list(std::initializer_list<std::string> items) {
  config_value v;
  v.k = config_value::kind::list;
  for (const auto& s : items) v.list.push_back(config_value::of_string(s));
  return v;
}

}  // namespace vigil::testing
