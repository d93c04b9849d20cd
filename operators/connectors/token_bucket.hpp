#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace vigil {

/// A token bucket against an explicit clock (µs), for rate-limited sources: tokens accrue at
/// `rate_per_s` up to `burst`; the bucket starts full.
class token_bucket {
 public:
  token_bucket(double rate_per_s, double burst)
      : rate_per_us_(rate_per_s / 1e6), burst_(std::max(1.0, burst)), tokens_(burst_) {}

  /// Takes up to `want` whole tokens at time `now_us`; returns how many were taken.
  uint64_t take(uint64_t want, int64_t now_us) {
    refill(now_us);
    const auto n = std::min(want, static_cast<uint64_t>(tokens_));
    tokens_ -= static_cast<double>(n);
    return n;
  }

  /// Microseconds from `now_us` until one token is available (0 if one is available now).
  int64_t wait_us(int64_t now_us) {
    refill(now_us);
    if (tokens_ >= 1.0) return 0;
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - tokens_) / rate_per_us_)));
  }

 private:
  void refill(int64_t now_us) {
    if (!started_) {
      started_ = true;
      last_us_ = now_us;
      return;
    }
    if (now_us <= last_us_) return;
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_us - last_us_) * rate_per_us_);
    last_us_ = now_us;
  }

  double rate_per_us_;
  double burst_;
  double tokens_;
  bool started_ = false;
  int64_t last_us_ = 0;
};

}  // namespace vigil
