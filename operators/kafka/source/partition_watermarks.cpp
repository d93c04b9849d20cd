#include "operators/kafka/source/partition_watermarks.hpp"

#include <algorithm>
#include <limits>

namespace vigil {

namespace {

constexpr int64_t lowest = std::numeric_limits<int64_t>::min();
constexpr int64_t highest = std::numeric_limits<int64_t>::max();

}  // namespace

void partition_watermarks::reset(size_t partitions, int64_t now_us) {
  slots_.assign(partitions, slot{});
  for (slot& s : slots_) s.last_record_us = now_us;
  watermark_ = lowest;
}

void partition_watermarks::restore_max(size_t p, int64_t max_event_time) {
  slots_[p].has_max = true;
  slots_[p].max_event_time = max_event_time;
}

int64_t partition_watermarks::advance(int64_t now_us) {
  int64_t candidate = highest;
  bool any_active = false;
  for (slot& s : slots_) {
    if (s.finished) continue;
    if (!s.idle && now_us - s.last_record_us >= idle_timeout_us_) s.idle = true;
    if (s.idle) continue;
    any_active = true;
    int64_t wm = lowest;
    if (s.has_max && (__builtin_sub_overflow(s.max_event_time, max_out_of_orderness_us_, &wm) ||
                      __builtin_sub_overflow(wm, 1, &wm))) {
      wm = lowest;
    }
    candidate = std::min(candidate, wm);
  }
  if (any_active) watermark_ = std::max(watermark_, candidate);
  return watermark_;
}

bool partition_watermarks::all_idle() const {
  return std::all_of(slots_.begin(), slots_.end(),
                     [](const slot& s) { return s.idle || s.finished; });
}

}  // namespace vigil
