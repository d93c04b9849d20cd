#include "runtime/timer_service.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "common/key.hpp"

/// Persistence: one map state per domain ("__timers_event", "__timers_processing"; names
/// starting with "__" get the runtime's reserved ids). A timer is an entry of its key's map with
/// user key [time i64 ordered][namespace i64 ordered] and an empty value, so a restore finds
/// every timer with scan_all() and the key group of each stays that of its key. Timers reach the
/// backend only in write_to_state(), before a snapshot, written with map_put_new(): the index
/// knows the backend holds no entry for them. A timer that fires or is deleted before then costs
/// no state access at all; one the backend holds is erased from it when it fires or is deleted.

namespace vigil {
namespace {

constexpr size_t suffix_bytes = 16;
constexpr size_t min_slots = 64;
/// A heap is rebuilt without its stale items once they exceed this and half of it.
constexpr size_t min_stale_to_rebuild = 1024;

/// The persisted user key of a timer: [time][namespace], both ordered int64.
class timer_user_key {
 public:
  timer_user_key(int64_t time, int64_t ns) {
    put_i64_ordered(bytes_, time);
    put_i64_ordered(bytes_ + 8, ns);
  }
  std::string_view view() const { return {bytes_, suffix_bytes}; }

 private:
  char bytes_[suffix_bytes];
};

/// Up to 8 bytes of `s` from `pos` as a big-endian integer, zero-padded.
uint64_t load_be(std::string_view s, size_t pos) {
  unsigned char b[8] = {};
  if (pos < s.size()) std::memcpy(b, s.data() + pos, std::min<size_t>(8, s.size() - pos));
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

uint32_t tag_of(uint64_t hash) {
  return static_cast<uint32_t>(hash >> 32);
}

/// The heap order: a min-heap by time (std heap functions build max-heaps).
constexpr auto later = [](const auto& a, const auto& b) { return a.time > b.time; };

}  // namespace

timer_service::timer_service(state_backend& state, state_backend::state_id event_id,
                             state_backend::state_id processing_id)
    : state_(state), ids_{event_id, processing_id} {
  slots_.resize(min_slots);
}

result<std::unique_ptr<timer_service>> timer_service::make(state_backend& state) {
  auto event_id = state.declare("__timers_event", state_backend::kind::map);
  if (!event_id) return event_id.err();
  auto processing_id = state.declare("__timers_processing", state_backend::kind::map);
  if (!processing_id) return processing_id.err();
  std::unique_ptr<timer_service> ts(new timer_service(state, *event_id, *processing_id));
  bool malformed = false;
  for (uint8_t d = 0; d < 2; ++d) {
    state.scan_all(
        ts->ids_[d], [&](uint32_t kg, std::string_view key_and_suffix, std::string_view) {
          if (key_and_suffix.size() < suffix_bytes) {
            malformed = true;
            return false;
          }
          size_t key_len = key_and_suffix.size() - suffix_bytes;
          std::string_view key = key_and_suffix.substr(0, key_len);
          const char* suffix = key_and_suffix.data() + key_len;
          int64_t time = get_i64_ordered(suffix);
          int64_t ns = get_i64_ordered(suffix + 8);
          // Persisted entries are distinct, so each is new to the index.
          ts->records_[ts->add(hash_of(d, time, kg, key, ns), d, time, kg, key, ns)].stored = true;
          return true;
        });
    if (malformed) return make_error(errc::state_error, "timer state is malformed");
  }
  return ts;
}

void timer_service::register_timer(domain d, int64_t time, int64_t ns) {
  auto di = static_cast<uint8_t>(d);
  uint32_t kg = state_.current_key_group();
  std::string_view key = state_.current_key();
  uint64_t h = hash_of(di, time, kg, key, ns);
  if (find(h, di, time, kg, key, ns) != npos) return;  // Already there.
  const uint32_t i = add(h, di, time, kg, key, ns);
  if (unstored_.size() >= 2 * size_ + 1024) {
    std::erase_if(unstored_, [this](const std::pair<uint32_t, uint32_t>& u) {
      const record& r = records_[u.first];
      return !r.live || r.generation != u.second;
    });
  }
  unstored_.emplace_back(i, records_[i].generation);
}

void timer_service::write_to_state() {
  if (unstored_.empty()) return;
  // The caller's current key is kept: an operator may rely on it across a snapshot.
  const uint32_t caller_key_group = state_.current_key_group();
  caller_key_.assign(state_.current_key());
  for (const auto& [i, generation] : unstored_) {
    record& r = records_[i];
    if (!r.live || r.generation != generation || r.stored) continue;
    state_.set_current_key(r.key_group, r.key);
    state_.map_put_new(ids_[r.domain], timer_user_key(r.time, r.ns).view(), {});
    r.stored = true;
  }
  unstored_.clear();
  state_.set_current_key(caller_key_group, caller_key_);
}

void timer_service::delete_timer(domain d, int64_t time, int64_t ns) {
  auto di = static_cast<uint8_t>(d);
  uint32_t kg = state_.current_key_group();
  std::string_view key = state_.current_key();
  uint32_t i = find(hash_of(di, time, kg, key, ns), di, time, kg, key, ns);
  if (i == npos) return;
  const bool stored = records_[i].stored;
  unlink(i);
  settle(di);
  if (stored) state_.map_erase(ids_[di], timer_user_key(time, ns).view());
}

void timer_service::advance(domain d, int64_t now, const std::function<void(const timer&)>& fn) {
  auto di = static_cast<uint8_t>(d);
  std::vector<queued_timer>& heap = heaps_[di];
  while (!heap.empty() && heap.front().time <= now) {
    const int64_t time = heap.front().time;
    round_.clear();
    while (!heap.empty() && heap.front().time == time) {
      queued_timer q = heap.front();
      pop(di);
      if (!is_current(q)) continue;
      record& r = records_[q.index];
      r.queued = false;
      round_.push_back(
          due_timer{r.key_group, q.index, q.generation, load_be(r.key, 0), load_be(r.key, 8)});
    }
    std::sort(round_.begin(), round_.end(), [this](const due_timer& a, const due_timer& b) {
      if (a.key_group != b.key_group) return a.key_group < b.key_group;
      if (a.key_hi != b.key_hi) return a.key_hi < b.key_hi;
      if (a.key_lo != b.key_lo) return a.key_lo < b.key_lo;
      const record& ra = records_[a.index];
      const record& rb = records_[b.index];
      if (int c = ra.key.compare(rb.key); c != 0) return c < 0;
      return ra.ns < rb.ns;
    });
    for (const due_timer& due : round_) {
      const record& r = records_[due.index];
      if (!r.live || r.generation != due.generation) continue;  // Deleted by fn in this round.
      // fn may register timers that reuse this record or grow records_: fire from a copy.
      fire_key_.assign(r.key);
      const uint32_t kg = r.key_group;
      const int64_t ns = r.ns;
      const bool stored = r.stored;
      unlink(due.index);
      state_.set_current_key(kg, fire_key_);
      if (stored) state_.map_erase(ids_[di], timer_user_key(time, ns).view());
      fn(timer{time, kg, fire_key_, ns});
    }
  }
  settle(di);
}

std::optional<int64_t> timer_service::next(domain d) const {
  const auto& heap = heaps_[static_cast<uint8_t>(d)];
  if (heap.empty()) return std::nullopt;
  return heap.front().time;  // settle() keeps the top current.
}

uint64_t timer_service::hash_of(uint8_t d, int64_t time, uint32_t key_group, std::string_view key,
                                int64_t ns) {
  uint64_t seed = static_cast<uint64_t>(time) * 0x9e3779b97f4a7c15ull;
  seed ^= (static_cast<uint64_t>(ns) * 0xc2b2ae3d27d4eb4full) + (seed << 6) + (seed >> 2);
  seed ^= (uint64_t{key_group} << 8) | d;
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

uint32_t timer_service::find(uint64_t hash, uint8_t d, int64_t time, uint32_t key_group,
                             std::string_view key, int64_t ns) const {
  uint32_t tag = tag_of(hash);
  size_t mask = slots_.size() - 1;
  for (size_t s = tag & mask;; s = (s + 1) & mask) {
    const slot& sl = slots_[s];
    if (sl.index == 0) return npos;
    if (sl.tag != tag) continue;
    const record& r = records_[sl.index - 1];
    if (r.hash == hash && r.time == time && r.ns == ns && r.key_group == key_group &&
        r.domain == d && r.key == key) {
      return sl.index - 1;
    }
  }
}

uint32_t timer_service::add(uint64_t hash, uint8_t d, int64_t time, uint32_t key_group,
                            std::string_view key, int64_t ns) {
  uint32_t i;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else {
    i = static_cast<uint32_t>(records_.size());
    records_.emplace_back();
  }
  record& r = records_[i];
  r.hash = hash;
  r.time = time;
  r.ns = ns;
  r.key_group = key_group;
  r.domain = d;
  r.live = true;
  r.queued = true;
  r.stored = false;
  r.key.assign(key.data(), key.size());
  ++size_;
  if (size_ * 2 > slots_.size()) {
    rebuild_slots(slots_.size() * 2);
  } else {
    place(i);
  }
  auto& heap = heaps_[d];
  heap.push_back(queued_timer{time, i, r.generation});
  std::push_heap(heap.begin(), heap.end(), later);
  return i;
}

void timer_service::unlink(uint32_t i) {
  record& r = records_[i];
  size_t mask = slots_.size() - 1;
  size_t hole = tag_of(r.hash) & mask;
  while (slots_[hole].index != i + 1) hole = (hole + 1) & mask;
  // Backward-shift deletion: move up every later slot of the run whose home is not between the
  // hole and it, so that every record stays reachable from its home without gaps.
  for (size_t s = (hole + 1) & mask; slots_[s].index != 0; s = (s + 1) & mask) {
    size_t home = slots_[s].tag & mask;
    if (((s - home) & mask) >= ((s - hole) & mask)) {
      slots_[hole] = slots_[s];
      hole = s;
    }
  }
  slots_[hole] = slot{};
  if (r.queued) ++stale_[r.domain];
  r.live = false;
  r.queued = false;
  ++r.generation;
  --size_;
  free_.push_back(i);
}

void timer_service::place(uint32_t i) {
  uint32_t tag = tag_of(records_[i].hash);
  size_t mask = slots_.size() - 1;
  size_t s = tag & mask;
  while (slots_[s].index != 0) s = (s + 1) & mask;
  slots_[s] = slot{tag, i + 1};
}

void timer_service::rebuild_slots(size_t slot_count) {
  slots_.assign(slot_count, slot{});
  for (size_t i = 0; i < records_.size(); ++i) {
    if (records_[i].live) place(static_cast<uint32_t>(i));
  }
}

void timer_service::pop(uint8_t d) {
  auto& heap = heaps_[d];
  std::pop_heap(heap.begin(), heap.end(), later);
  if (!is_current(heap.back())) --stale_[d];
  heap.pop_back();
}

void timer_service::settle(uint8_t d) {
  auto& heap = heaps_[d];
  if (stale_[d] > min_stale_to_rebuild && stale_[d] * 2 > heap.size()) {
    std::erase_if(heap, [this](const queued_timer& q) { return !is_current(q); });
    std::make_heap(heap.begin(), heap.end(), later);
    stale_[d] = 0;
  }
  while (!heap.empty() && !is_current(heap.front())) pop(d);
}

}  // namespace vigil
