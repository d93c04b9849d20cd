#pragma once

#include <cstdint>
#include <memory>

#include "runtime/operator.hpp"

/// Sinks that write rows as JSON lines (`stdout`, `jsonl_file`) and one that discards them
/// (`null`). The JSON form of a row is append_json_row() (operators/connectors/json_format.hpp).

namespace vigil {

std::unique_ptr<operator_factory> make_stdout_sink_factory();
std::unique_ptr<operator_factory> make_jsonl_file_sink_factory();
std::unique_ptr<operator_factory> make_null_sink_factory();

/// The `null` sink's instance: counts and discards rows; with delay_per_batch it sleeps that
/// long in every process() call, blocking its subtask, to act as a slow consumer in
/// backpressure tests.
class null_sink final : public operator_base {
 public:
  explicit null_sink(int64_t delay_per_batch_us) : delay_per_batch_us_(delay_per_batch_us) {}

  void process(size_t port, const record_batch& batch, output& out) override;

  uint64_t rows() const { return rows_; }
  uint64_t batches() const { return batches_; }

 private:
  int64_t delay_per_batch_us_;
  uint64_t rows_ = 0;
  uint64_t batches_ = 0;
};

}  // namespace vigil
