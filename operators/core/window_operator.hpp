#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "operators/core/aggregate.hpp"
#include "runtime/operator.hpp"

/// The running instances of the window operators (planning is in window_operators.cpp).

namespace vigil {

enum class window_kind : uint8_t { tumbling, sliding, session };

/// Everything a window operator instance needs, fixed at planning time.
struct window_settings {
  window_kind kind = window_kind::tumbling;
  int64_t size_us = 0;    ///< Tumbling and sliding.
  int64_t slide_us = 0;   ///< Sliding; equals size_us for tumbling windows.
  int64_t offset_us = 0;  ///< Tumbling and sliding: windows start at offset + k * slide.
  int64_t gap_us = 0;     ///< Session.
  int64_t allowed_lateness_us = 0;
  stream_info input;
  std::vector<type_id> key_types;  ///< Types of the input key fields, in key order.
  schema_ptr output;               ///< Key fields, window_start, window_end, aggregates.
  aggregate_set aggregates;
};

/// Makes an instance for tumbling or sliding windows (window_kind::tumbling, ::sliding), or for
/// session windows (window_kind::session).
std::unique_ptr<operator_base> make_window_operator(std::shared_ptr<const window_settings> s);

}  // namespace vigil
