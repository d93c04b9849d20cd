#include "runtime/timer_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/key.hpp"

namespace vigil {
namespace {

using domain = timer_service::domain;

std::string int_key(int64_t v) {
  std::string k(1, '\1');
  put_i64_ordered(k, v);
  return k;
}

/// "time/kg/key/ns" of a fired timer, with the int key decoded.
std::string describe(const timer& t) {
  return std::to_string(t.time) + "/" + std::to_string(t.key_group) + "/" +
         std::to_string(get_i64_ordered(t.key.data() + 1)) + "/" + std::to_string(t.ns);
}

class timer_service_test : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-timer-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    open(true);
  }

  void TearDown() override {
    timers_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// Reopens the backend and the timers from it, as a restore of a snapshot taken now would;
  /// `snapshot`: first write the timers to the state, as a snapshot does.
  void open(bool fresh, bool snapshot = true) {
    if (timers_ && snapshot) timers_->write_to_state();
    timers_.reset();
    state_.reset();
    state_backend::options o;
    o.directory = dir_.string();
    o.fresh = fresh;
    auto st = state_backend::open(o);
    ASSERT_TRUE(st.ok()) << st.err().message;
    state_ = std::move(*st);
    auto ts = timer_service::make(*state_);
    ASSERT_TRUE(ts.ok()) << ts.err().message;
    timers_ = std::move(*ts);
  }

  void at(uint32_t kg, int64_t key) { state_->set_current_key(kg, int_key(key)); }

  /// Fires timers of `d` up to `now`, returning them described.
  std::vector<std::string> fire(domain d, int64_t now) {
    std::vector<std::string> out;
    timers_->advance(d, now, [&](const timer& t) {
      EXPECT_EQ(state_->current_key(), t.key) << "the current key is the timer's";
      EXPECT_EQ(state_->current_key_group(), t.key_group);
      out.push_back(describe(t));
    });
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<state_backend> state_;
  std::unique_ptr<timer_service> timers_;
};

using strings = std::vector<std::string>;

TEST_F(timer_service_test, FiresInTimeOrderUpToNow) {
  at(7, 1);
  timers_->register_event_timer(300);
  timers_->register_event_timer(100, 5);
  at(2, 2);
  timers_->register_event_timer(200);
  timers_->register_event_timer(100);
  at(9, 3);
  timers_->register_event_timer(400);
  EXPECT_EQ(timers_->size(), 5u);
  EXPECT_EQ(timers_->next(domain::event_time), 100);

  EXPECT_TRUE(fire(domain::event_time, 99).empty());
  // Equal times fire in key-group order.
  EXPECT_EQ(fire(domain::event_time, 200), (strings{"100/2/2/0", "100/7/1/5", "200/2/2/0"}));
  EXPECT_EQ(timers_->next(domain::event_time), 300);
  EXPECT_EQ(fire(domain::event_time, 1000), (strings{"300/7/1/0", "400/9/3/0"}));
  EXPECT_EQ(timers_->size(), 0u);
  EXPECT_FALSE(timers_->next(domain::event_time).has_value());
  EXPECT_TRUE(fire(domain::event_time, 2000).empty());
}

TEST_F(timer_service_test, DomainsAreSeparate) {
  at(1, 1);
  timers_->register_timer(domain::processing_time, 50);
  timers_->register_timer(domain::event_time, 100);
  EXPECT_EQ(timers_->next(domain::processing_time), 50);
  EXPECT_EQ(timers_->next(domain::event_time), 100);
  EXPECT_EQ(fire(domain::event_time, 1000), strings{"100/1/1/0"});
  EXPECT_EQ(timers_->next(domain::processing_time), 50);
  EXPECT_EQ(fire(domain::processing_time, 1000), strings{"50/1/1/0"});
}

TEST_F(timer_service_test, RegistrationIsIdempotent) {
  at(1, 1);
  timers_->register_event_timer(100);
  timers_->register_event_timer(100);
  timers_->register_event_timer(100, 1);  // Another namespace: another timer.
  at(1, 2);
  timers_->register_event_timer(100);  // Another key: another timer.
  EXPECT_EQ(timers_->size(), 3u);
  EXPECT_EQ(fire(domain::event_time, 100), (strings{"100/1/1/0", "100/1/1/1", "100/1/2/0"}));
}

TEST_F(timer_service_test, DeleteRemovesOnlyThatTimer) {
  at(1, 1);
  timers_->register_event_timer(100);
  timers_->register_event_timer(200);
  at(1, 2);
  timers_->register_event_timer(100);
  timers_->delete_event_timer(300);  // Absent: no-op.
  at(1, 1);
  timers_->delete_event_timer(100);
  timers_->delete_event_timer(100, 7);  // Absent namespace: no-op.
  EXPECT_EQ(timers_->size(), 2u);
  EXPECT_EQ(fire(domain::event_time, 1000), (strings{"100/1/2/0", "200/1/1/0"}));
}

TEST_F(timer_service_test, TimersRegisteredWhileFiringFireInTheSameCallWhenDue) {
  at(1, 1);
  timers_->register_event_timer(100);
  std::vector<std::string> fired;
  timers_->advance(domain::event_time, 150, [&](const timer& t) {
    fired.push_back(describe(t));
    if (fired.size() == 1) {
      // For the current key, which is the timer's.
      timers_->register_event_timer(120);  // Due: fires in this call.
      timers_->register_event_timer(100);  // The same timer again: due, fires again.
      timers_->register_event_timer(200);  // Not due.
      at(3, 9);
      timers_->register_event_timer(110);
    }
  });
  EXPECT_EQ(fired, (strings{"100/1/1/0", "100/1/1/0", "110/3/9/0", "120/1/1/0"}));
  EXPECT_EQ(timers_->size(), 1u);
  EXPECT_EQ(timers_->next(domain::event_time), 200);
}

TEST_F(timer_service_test, TimerKeyStaysValidWhileFiring) {
  at(1, 1);
  timers_->register_event_timer(100);
  timers_->advance(domain::event_time, 100, [&](const timer& t) {
    std::string before(t.key);
    // Changing the current key and registering timers must not disturb t.key.
    for (int k = 0; k < 100; ++k) {
      at(2, 1000 + k);
      timers_->register_event_timer(500);
    }
    EXPECT_EQ(t.key, before);
  });
}

TEST_F(timer_service_test, DeletingAnotherDueTimerWhileFiringPreventsIt) {
  at(1, 1);
  timers_->register_event_timer(100);
  at(1, 2);
  timers_->register_event_timer(110);
  std::vector<std::string> fired;
  timers_->advance(domain::event_time, 200, [&](const timer& t) {
    fired.push_back(describe(t));
    at(1, 2);
    timers_->delete_event_timer(110);
  });
  EXPECT_EQ(fired, strings{"100/1/1/0"});
}

TEST_F(timer_service_test, RebuildsFromStateAfterReopen) {
  at(5, 1);
  timers_->register_event_timer(100, 3);
  timers_->register_event_timer(-50);  // Negative times keep their order.
  timers_->register_timer(domain::processing_time, 7000);
  at(0, 2);
  timers_->register_event_timer(100);
  timers_->register_event_timer(999);
  timers_->delete_event_timer(999);
  EXPECT_EQ(fire(domain::event_time, 0), strings{"-50/5/1/0"});

  open(false);
  EXPECT_EQ(timers_->size(), 3u);
  EXPECT_EQ(timers_->next(domain::event_time), 100);
  EXPECT_EQ(timers_->next(domain::processing_time), 7000);
  EXPECT_EQ(fire(domain::event_time, 1000), (strings{"100/0/2/0", "100/5/1/3"}));
  EXPECT_EQ(fire(domain::processing_time, 7000), strings{"7000/5/1/0"});

  open(false);
  EXPECT_EQ(timers_->size(), 0u) << "fired timers are gone from the state";

  at(1, 1);
  timers_->register_event_timer(5);
  open(true);
  EXPECT_EQ(timers_->size(), 0u) << "a fresh backend has no timers";
}

TEST_F(timer_service_test, TimersReachTheStateOnlyWhenWrittenBeforeASnapshot) {
  at(3, 1);
  timers_->register_event_timer(100);
  timers_->register_event_timer(200);
  open(false, false);  // A snapshot without write_to_state() has none of them.
  EXPECT_EQ(timers_->size(), 0u);

  at(3, 1);
  timers_->register_event_timer(100);
  timers_->register_event_timer(200);
  timers_->register_event_timer(300);
  timers_->delete_event_timer(300);
  timers_->write_to_state();
  at(4, 2);
  timers_->register_event_timer(400);  // After the write: not in the snapshot.
  EXPECT_EQ(fire(domain::event_time, 100), strings{"100/3/1/0"});
  open(false, false);
  EXPECT_EQ(timers_->size(), 1u) << "200 was written; 100 fired and was erased; 300 and 400 not";
  EXPECT_EQ(fire(domain::event_time, 1000), strings{"200/3/1/0"});

  // A written timer deleted later is erased from the state as well. Writing keeps the current
  // key.
  at(3, 1);
  timers_->register_event_timer(500);
  at(7, 9);
  timers_->write_to_state();
  EXPECT_EQ(state_->current_key_group(), 7u);
  EXPECT_EQ(state_->current_key(), int_key(9));
  at(3, 1);
  timers_->delete_event_timer(500);
  open(false, false);
  EXPECT_EQ(timers_->size(), 0u);

  // Written, deleted, registered again: the next write stores it again.
  at(3, 1);
  timers_->register_event_timer(600);
  timers_->write_to_state();
  timers_->delete_event_timer(600);
  timers_->register_event_timer(600);
  open(false);
  EXPECT_EQ(fire(domain::event_time, 1000), strings{"600/3/1/0"});
  open(false, false);
  EXPECT_EQ(timers_->size(), 0u) << "fired after its restore: erased from the state";
}

TEST_F(timer_service_test, EqualTimesFireByKeyGroupKeyAndNamespaceWhateverTheRegistrationOrder) {
  // Keys that share their first 16 bytes and differ after, or are prefixes of one another.
  std::vector<std::string> keys = {std::string(20, 'k') + "b", std::string(20, 'k') + "a",
                                   std::string(20, 'k'),       "k",
                                   std::string("k\0", 2),      "\xff"};
  using timer_id = std::tuple<uint32_t, std::string, int64_t>;  // The documented tie order.
  std::vector<timer_id> all;
  for (uint32_t kg : {3u, 0u, 1u}) {
    for (const auto& key : keys) {
      for (int64_t ns : {5, -1, 0}) all.emplace_back(kg, key, ns);
    }
  }
  std::vector<timer_id> want = all;
  std::sort(want.begin(), want.end());
  uint64_t x = 42;
  for (size_t i = all.size(); i > 1; --i) {  // A scrambled registration order.
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(all[i - 1], all[(x >> 33) % i]);
  }
  for (const auto& [kg, key, ns] : all) {
    state_->set_current_key(kg, key);
    timers_->register_event_timer(100, ns);
  }
  std::vector<timer_id> fired;
  timers_->advance(domain::event_time, 100, [&](const timer& t) {
    fired.emplace_back(t.key_group, std::string(t.key), t.ns);
  });
  EXPECT_EQ(fired, want);
}

TEST_F(timer_service_test, MatchesAModelThroughDeletesFiringAndReopen) {
  // (time, key group, key, ns) per domain: the std::set order is the documented firing order.
  using model_timer = std::tuple<int64_t, uint32_t, int64_t, int64_t>;
  std::set<model_timer> model[2];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&](uint64_t n) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x % n;
  };
  int64_t now[2] = {0, 0};
  for (int round = 0; round < 30; ++round) {
    // Enough deletes per round that stale heap items pile up and the heap gets rebuilt.
    for (int op = 0; op < 3000; ++op) {
      auto d = static_cast<domain>(next(2));
      auto di = static_cast<size_t>(d);
      int64_t key = static_cast<int64_t>(next(200));
      auto kg = static_cast<uint32_t>(key % 7);
      int64_t time = now[di] + 1 + static_cast<int64_t>(next(50));
      int64_t ns = static_cast<int64_t>(next(3));
      at(kg, key);
      if (next(3) == 0) {
        timers_->delete_timer(d, time, ns);
        model[di].erase({time, kg, key, ns});
      } else {
        timers_->register_timer(d, time, ns);
        model[di].insert({time, kg, key, ns});
      }
    }
    for (size_t di = 0; di < 2; ++di) {
      auto d = static_cast<domain>(di);
      now[di] += 10;
      std::vector<std::string> want;
      while (!model[di].empty() && std::get<0>(*model[di].begin()) <= now[di]) {
        auto [time, kg, key, ns] = *model[di].begin();
        want.push_back(std::to_string(time) + "/" + std::to_string(kg) + "/" + std::to_string(key) +
                       "/" + std::to_string(ns));
        model[di].erase(model[di].begin());
      }
      ASSERT_EQ(fire(d, now[di]), want) << "round " << round;
      ASSERT_EQ(timers_->next(d),
                model[di].empty() ? std::nullopt : std::optional(std::get<0>(*model[di].begin())));
    }
    ASSERT_EQ(timers_->size(), model[0].size() + model[1].size());
    if (round % 10 == 9) open(false);  // Rebuilt from the state backend.
  }
  for (size_t di = 0; di < 2; ++di) {
    EXPECT_EQ(fire(static_cast<domain>(di), max_watermark).size(), model[di].size());
  }
  EXPECT_EQ(timers_->size(), 0u);
}

TEST_F(timer_service_test, ManyDeletesKeepNextExactAndTheRestFiring) {
  at(1, 1);
  for (int64_t t = 0; t < 5000; ++t) timers_->register_event_timer(1000 + t);
  // Deleting the latest timers leaves stale items deep in the heap (it is rebuilt without them
  // once they are most of it); deleting the earliest ones leaves them on top.
  for (int64_t t = 4999; t >= 1000; --t) {
    timers_->delete_event_timer(1000 + t);
    ASSERT_EQ(timers_->next(domain::event_time), 1000);
  }
  for (int64_t t = 0; t < 500; ++t) {
    timers_->delete_event_timer(1000 + t);
    ASSERT_EQ(timers_->next(domain::event_time), 1000 + t + 1);
  }
  EXPECT_EQ(timers_->size(), 500u);
  std::vector<std::string> fired = fire(domain::event_time, max_watermark);
  ASSERT_EQ(fired.size(), 500u);
  EXPECT_EQ(fired.front(), "1500/1/1/0");
  EXPECT_EQ(fired.back(), "1999/1/1/0");
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
  EXPECT_FALSE(timers_->next(domain::event_time).has_value());
  EXPECT_EQ(timers_->size(), 0u);
}

TEST_F(timer_service_test, TimersUseReservedStateIds) {
  auto user = state_->declare("user_state", state_backend::kind::map);
  ASSERT_TRUE(user.ok());
  at(1, 1);
  timers_->register_event_timer(100);
  timers_->write_to_state();
  int timer_entries = 0;
  auto timer_state = state_->declare("__timers_event", state_backend::kind::map);
  ASSERT_TRUE(timer_state.ok());
  EXPECT_GE(*timer_state, 0xff00);
  state_->scan_all(*timer_state, [&](uint32_t, std::string_view, std::string_view) {
    return ++timer_entries > 0;
  });
  EXPECT_EQ(timer_entries, 1) << "the timer is in the reserved state";
  int user_entries = 0;
  state_->scan_all(
      *user, [&](uint32_t, std::string_view, std::string_view) { return ++user_entries > 0; });
  EXPECT_EQ(user_entries, 0);
  EXPECT_LT(*user, 0xff00);
}

}  // namespace
}  // namespace vigil
