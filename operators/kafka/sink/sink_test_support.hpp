#pragma once

#include <spdlog/spdlog.h>

#include "common/types.hpp"

/// What the kafka_sink unit tests share (test support, not part of the sink).
namespace vigil::kafka::sink_test {

/// Silences logging for its lifetime: the sink logs a warning per injected failure, and crash
/// loops inject many.
class quiet_logs {
 public:
  quiet_logs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
  ~quiet_logs() { spdlog::set_level(level_); }
  quiet_logs(const quiet_logs&) = delete;
  quiet_logs& operator=(const quiet_logs&) = delete;

 private:
  spdlog::level::level_enum level_;
};

/// The records the tests write: id, name.
inline schema_ptr rows_schema() {
  return make_schema({{"id", type_id::int64, false}, {"name", type_id::string, true}});
}

}  // namespace vigil::kafka::sink_test
