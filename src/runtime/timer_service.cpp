#include "runtime/timer_service.hpp"

#include <limits>

#include "common/key.hpp"

/// Persistence: one map state per domain ("__timers_event", "__timers_processing"; names
/// starting with "__" get the runtime's reserved ids). A timer is an entry of its key's map with
/// user key [time i64 ordered][namespace i64 ordered] and an empty value, so a restore finds
/// every timer with scan_all() and the key group of each stays that of its key.

namespace vigil {
namespace {

constexpr size_t suffix_bytes = 16;
constexpr int64_t min_time = std::numeric_limits<int64_t>::min();

/// timer_service::entry: (domain, time, key group, key, namespace).
using timer_service_entry = std::tuple<uint8_t, int64_t, uint32_t, std::string, int64_t>;

/// The persisted user key of a timer: [time][namespace], both ordered int64.
class timer_user_key {
 public:
  timer_user_key(int64_t time, int64_t ns) {
    put(bytes_, time);
    put(bytes_ + 8, ns);
  }
  std::string_view view() const { return {bytes_, suffix_bytes}; }

 private:
  static void put(char* p, int64_t v) {
    uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
    for (int i = 7; i >= 0; --i, u >>= 8) p[i] = static_cast<char>(u & 0xff);
  }
  char bytes_[suffix_bytes];
};

/// A set entry for the state's current key, built in a per-thread buffer so that looking up a
/// timer that exists (re-registration is the common case) allocates nothing.
const timer_service_entry& current_entry(state_backend& state, uint8_t d, int64_t time,
                                         int64_t ns) {
  thread_local timer_service_entry probe;
  std::get<0>(probe) = d;
  std::get<1>(probe) = time;
  std::get<2>(probe) = state.current_key_group();
  std::get<3>(probe).assign(state.current_key());
  std::get<4>(probe) = ns;
  return probe;
}

}  // namespace

result<std::unique_ptr<timer_service>> timer_service::make(state_backend& state) {
  auto event_id = state.declare("__timers_event", state_backend::kind::map);
  if (!event_id) return event_id.err();
  auto processing_id = state.declare("__timers_processing", state_backend::kind::map);
  if (!processing_id) return processing_id.err();
  std::unique_ptr<timer_service> ts(new timer_service(state, *event_id, *processing_id));
  bool malformed = false;
  for (uint8_t d = 0; d < 2; ++d) {
    state.scan_all(ts->ids_[d],
                   [&](uint32_t kg, std::string_view key_and_suffix, std::string_view) {
                     if (key_and_suffix.size() < suffix_bytes) {
                       malformed = true;
                       return false;
                     }
                     size_t key_len = key_and_suffix.size() - suffix_bytes;
                     const char* suffix = key_and_suffix.data() + key_len;
                     ts->timers_.emplace(d, get_i64_ordered(suffix), kg,
                                         std::string(key_and_suffix.substr(0, key_len)),
                                         get_i64_ordered(suffix + 8));
                     return true;
                   });
    if (malformed) return make_error(errc::state_error, "timer state is malformed");
  }
  return ts;
}

void timer_service::register_timer(domain d, int64_t time, int64_t ns) {
  auto di = static_cast<uint8_t>(d);
  // std::set copies the probe into a node only if it is new.
  if (!timers_.insert(current_entry(state_, di, time, ns)).second) return;  // Already there.
  state_.map_put(ids_[di], timer_user_key(time, ns).view(), {});
}

void timer_service::delete_timer(domain d, int64_t time, int64_t ns) {
  auto di = static_cast<uint8_t>(d);
  auto it = timers_.find(current_entry(state_, di, time, ns));
  if (it == timers_.end()) return;
  timers_.erase(it);
  state_.map_erase(ids_[di], timer_user_key(time, ns).view());
}

void timer_service::advance(domain d, int64_t now, const std::function<void(const timer&)>& fn) {
  auto di = static_cast<uint8_t>(d);
  for (;;) {
    auto it = timers_.lower_bound(entry{di, min_time, 0, std::string(), min_time});
    if (it == timers_.end() || std::get<0>(*it) != di || std::get<1>(*it) > now) return;
    // The extracted node owns the key for as long as fn runs.
    auto node = timers_.extract(it);
    const auto& [dom, time, kg, key, ns] = node.value();
    state_.set_current_key(kg, key);
    state_.map_erase(ids_[di], timer_user_key(time, ns).view());
    fn(timer{time, kg, key, ns});
  }
}

std::optional<int64_t> timer_service::next(domain d) const {
  auto di = static_cast<uint8_t>(d);
  auto it = timers_.lower_bound(entry{di, min_time, 0, std::string(), min_time});
  if (it == timers_.end() || std::get<0>(*it) != di) return std::nullopt;
  return std::get<1>(*it);
}

}  // namespace vigil
