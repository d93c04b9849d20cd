#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "runtime/operator.hpp"
#include "runtime/subtask_driver.hpp"

/// Test support for operators: build batches from literal rows, run one operator subtask
/// through the same driver the runtime uses, and read its output back as text rows.

namespace vigil::testing {

/// A literal cell: null, bool, int64 (also timestamps), double or string.
using cell = std::variant<std::monostate, bool, int64_t, double, std::string>;

/// Makes a batch of `s` from rows; event_times[i] is row i's event time. With key_fields, the
/// key-hash column is filled as key_by would.
batch_ptr make_rows(const schema_ptr& s, const std::vector<std::vector<cell>>& rows,
                    const std::vector<int64_t>& event_times,
                    const std::vector<int>& key_fields = {});

/// One row as text: "v1|v2|...@event_time"; nulls print as "null", doubles with %g,
/// timestamps as integers (µs).
std::string row_text(const record_batch& b, size_t row);

/// An output that drops what it is given (for operators whose output a test does not read).
struct discard_output final : output {
  void emit(size_t, batch_ptr) override {}
};

/// The namespaces (e.g. event times) of every entry of value state `id`, over all keys, sorted.
std::vector<int64_t> value_state_namespaces(state_backend& state, state_backend::state_id id);

/// Drives one subtask of an operator and collects what it emits on each port.
class operator_harness : public output {
 public:
  /// Plans `op` from the registry with `config` over `inputs`; fails the test on error.
  /// `wakeup` becomes operator_context::wakeup (sources; none by default).
  operator_harness(const operator_registry& registry, const std::string& op,
                   const config_map& config, std::vector<stream_info> inputs, uint32_t subtask = 0,
                   uint32_t parallelism = 1, size_t batch_size = 1024,
                   std::function<void()> wakeup = {});
  ~operator_harness() override;

  /// Plans without running; returns the error (for validation tests).
  static result<plan_ptr> try_plan(const operator_registry& registry, const std::string& op,
                                   const config_map& config, std::vector<stream_info> inputs);

  void push(size_t port, const batch_ptr& batch) { driver_->process(port, batch); }
  void watermark(int64_t wm) { driver_->advance_watermark(wm); }
  void processing_time(int64_t now_us) { driver_->advance_processing_time(now_us); }
  poll_result poll() { return driver_->poll(); }
  void finish();

  const operator_plan& plan() const { return *plan_; }
  operator_context& context() { return driver_->context(); }
  /// The operator instance, e.g. for its checkpoint hooks.
  operator_base& op() { return driver_->op(); }
  /// Rows emitted on `port` so far, as row_text(), in emission order.
  std::vector<std::string> rows(size_t port = 0) const;
  const std::vector<batch_ptr>& batches(size_t port = 0) { return out_[port]; }
  void clear_output();

  void emit(size_t port, batch_ptr batch) override;

 private:
  plan_ptr plan_;
  std::filesystem::path state_dir_;
  std::vector<std::vector<batch_ptr>> out_;
  std::unique_ptr<subtask_driver> driver_;
};

/// Builds a config map from (key, value) pairs: cfg({{"size", config_value::of_string("10s")}}).
config_map cfg(std::initializer_list<std::pair<std::string, config_value>> entries);
config_value str(std::string s);
config_value num(int64_t v);
config_value list(std::initializer_list<std::string> items);

}  // namespace vigil::testing
