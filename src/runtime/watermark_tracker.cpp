#include "runtime/watermark_tracker.hpp"

#include <algorithm>

namespace vigil {

std::optional<int64_t> watermark_tracker::on_watermark(size_t ch, int64_t wm) {
  auto& c = channels_[ch];
  c.idle = false;
  c.wm = std::max(c.wm, wm);
  return recompute();
}

std::optional<int64_t> watermark_tracker::on_idle(size_t ch) {
  channels_[ch].idle = true;
  return recompute();
}

std::optional<int64_t> watermark_tracker::on_end(size_t ch) {
  auto& c = channels_[ch];
  c.ended = true;
  c.idle = false;
  c.wm = max_watermark;
  return recompute();
}

bool watermark_tracker::all_ended() const {
  return std::all_of(channels_.begin(), channels_.end(), [](const channel& c) { return c.ended; });
}

bool watermark_tracker::all_idle() const {
  bool any_idle = false;
  for (const auto& c : channels_) {
    if (c.ended) continue;
    if (!c.idle) return false;
    any_idle = true;
  }
  return any_idle;
}

std::optional<int64_t> watermark_tracker::recompute() {
  int64_t combined = max_watermark;
  bool any_active = false;
  for (const auto& c : channels_) {
    if (c.ended || c.idle) continue;
    any_active = true;
    combined = std::min(combined, c.wm);
  }
  if (!any_active) {
    // Every input ended: time is over. Some idle and the rest ended: hold.
    if (!all_ended()) return std::nullopt;
    combined = max_watermark;
  }
  if (combined <= current_) return std::nullopt;
  current_ = combined;
  return current_;
}

}  // namespace vigil
