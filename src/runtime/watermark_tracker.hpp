#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/operator.hpp"

namespace vigil {

/// Combines the watermarks of a subtask's input channels: the combined watermark is the minimum
/// over the channels that are active. A channel whose upstream declared itself idle does not
/// hold the watermark back until it sends data or a watermark again; an ended channel counts as
/// max_watermark. The combined watermark never goes back. When every open channel is idle the
/// combined watermark holds (it does not jump to the idle channels' values).
class watermark_tracker {
 public:
  explicit watermark_tracker(size_t channels) : channels_(channels) {}

  /// A watermark arrived on `ch`. Returns the new combined watermark if it advanced.
  std::optional<int64_t> on_watermark(size_t ch, int64_t wm);
  /// Data arrived on `ch`: it is active again.
  void on_data(size_t ch) { channels_[ch].idle = false; }
  /// `ch` declared itself idle. Returns the new combined watermark if it advanced.
  std::optional<int64_t> on_idle(size_t ch);
  /// `ch` ended. Returns the new combined watermark if it advanced.
  std::optional<int64_t> on_end(size_t ch);

  int64_t current() const { return current_; }
  bool all_ended() const;
  bool ended(size_t ch) const { return channels_[ch].ended; }
  /// Every channel that has not ended is idle (and at least one is).
  bool all_idle() const;

 private:
  struct channel {
    int64_t wm = min_watermark;
    bool idle = false;
    bool ended = false;
  };

  std::optional<int64_t> recompute();

  std::vector<channel> channels_;
  int64_t current_ = min_watermark;
};

}  // namespace vigil
