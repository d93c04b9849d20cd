#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "common/result.hpp"
#include "runtime/operator.hpp"
#include "runtime/state_backend.hpp"

namespace vigil {

/// Keyed event-time and processing-time timers of one subtask. Timers are part of the keyed
/// state: each is stored in the state backend (reserved state ids) and mirrored in an in-memory
/// ordered set so that due timers are found without a scan. A timer is identified by
/// (domain, time, key group, key, namespace); registering it twice keeps one.
class timer_service {
 public:
  enum class domain : uint8_t { event_time, processing_time };

  /// Loads timers already in `state` (after a restore).
  static result<std::unique_ptr<timer_service>> make(state_backend& state);

  /// Registers a timer for the state's current key.
  void register_timer(domain d, int64_t time, int64_t ns = 0);
  /// Deletes a timer of the current key; no-op if absent.
  void delete_timer(domain d, int64_t time, int64_t ns = 0);

  void register_event_timer(int64_t time, int64_t ns = 0) {
    register_timer(domain::event_time, time, ns);
  }
  void delete_event_timer(int64_t time, int64_t ns = 0) {
    delete_timer(domain::event_time, time, ns);
  }

  /// Fires, in time order, every timer of domain `d` with time <= `now`: removes it, sets the
  /// state's current key to the timer's key and calls fn. Timers that fn registers at or
  /// before `now` fire in the same call.
  void advance(domain d, int64_t now, const std::function<void(const timer&)>& fn);

  /// The earliest pending timer of domain `d`.
  std::optional<int64_t> next(domain d) const;
  size_t size() const { return timers_.size(); }

 private:
  explicit timer_service(state_backend& state, state_backend::state_id event_id,
                         state_backend::state_id processing_id)
      : state_(state), ids_{event_id, processing_id} {}

  using entry = std::tuple<uint8_t, int64_t, uint32_t, std::string, int64_t>;  // d, t, kg, key, ns

  state_backend& state_;
  state_backend::state_id ids_[2];
  std::set<entry> timers_;
};

}  // namespace vigil
