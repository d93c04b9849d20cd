#include "runtime/timer_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
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

  void open(bool fresh) {
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

TEST_F(timer_service_test, TimersUseReservedStateIds) {
  auto user = state_->declare("user_state", state_backend::kind::map);
  ASSERT_TRUE(user.ok());
  at(1, 1);
  timers_->register_event_timer(100);
  int user_entries = 0;
  state_->scan_all(
      *user, [&](uint32_t, std::string_view, std::string_view) { return ++user_entries > 0; });
  EXPECT_EQ(user_entries, 0);
  EXPECT_LT(*user, 0xff00);
}

}  // namespace
}  // namespace vigil
