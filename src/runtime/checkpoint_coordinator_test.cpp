#include "runtime/checkpoint_coordinator.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vigil {
namespace {

namespace fs = std::filesystem;

/// Two nodes of parallelism 2 ("src" and "win"); no operators are needed to coordinate.
class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  CheckpointCoordinatorTest() {
    plan_.name = "demo";
    plan_.nodes.push_back({"src", nullptr, nullptr, 2});
    plan_.nodes.push_back({"win", nullptr, nullptr, 2});
    plan_.checkpoint_interval_us = 1000;
    plan_.checkpoint_timeout_us = 5000;
    plan_.checkpoint_retain = 2;
    plan_.tolerable_checkpoint_failures = 1;
    dir_ = fs::temp_directory_path() / ("vigil-chk-coord-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  ~CheckpointCoordinatorTest() override { fs::remove_all(dir_); }

  checkpoint_coordinator make() {
    return checkpoint_coordinator(
        plan_, std::make_shared<checkpoint_storage>(dir_),
        [this](int64_t id) { triggered_.push_back(id); },
        [this](int64_t id) { notified_.push_back(id); });
  }

  status ack_all(checkpoint_coordinator& c, int64_t id, int64_t now) {
    for (size_t n = 0; n < 2; ++n) {
      for (uint32_t s = 0; s < 2; ++s) {
        if (auto st = c.on_ack({id, n, s, 10, 5, 1}, now); !st) return st;
      }
    }
    return {};
  }

  job_plan plan_;
  fs::path dir_;
  std::vector<int64_t> triggered_;
  std::vector<int64_t> notified_;
};

// Completions and failures reach the job's metric series, which outlive the coordinator.
TEST_F(CheckpointCoordinatorTest, CountsCheckpointsInTheJobsMetrics) {
  auto m = std::make_shared<metrics::job_metrics>("metrics-demo");
  {
    checkpoint_coordinator c(
        plan_, std::make_shared<checkpoint_storage>(dir_),
        [this](int64_t id) { triggered_.push_back(id); },
        [this](int64_t id) { notified_.push_back(id); }, m);
    c.start(0);
    ASSERT_TRUE(c.tick(1000).ok());
    ASSERT_TRUE(ack_all(c, 1, 3500).ok());
    ASSERT_TRUE(c.tick(4500).ok());
    ASSERT_TRUE(c.on_decline(2, 1, 0, "disk full", 4600).ok());
  }
  EXPECT_EQ(m->checkpoint_last_completed_id->Value(), 1);
  EXPECT_EQ(m->checkpoint_size->Value(), 40);
  EXPECT_EQ(m->checkpoints_completed->Value(), 1);
  EXPECT_EQ(m->checkpoint_failures->Value(), 1);
  std::string text = metrics::serialize();
  EXPECT_NE(text.find("vigil_checkpoint_duration_seconds_sum{job=\"metrics-demo\"} 0.0025"),
            std::string::npos)
      << text;
}

TEST_F(CheckpointCoordinatorTest, TriggersCompletesAndNotifiesInOrder) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(999).ok());
  EXPECT_TRUE(triggered_.empty()) << "not due before one interval";
  ASSERT_TRUE(c.tick(1000).ok());
  EXPECT_EQ(triggered_, std::vector<int64_t>{1});
  ASSERT_TRUE(c.tick(1500).ok());
  EXPECT_EQ(triggered_.size(), 1u) << "one checkpoint at a time";

  ASSERT_TRUE(c.on_ack({1, 0, 0, 10, 5, 1}, 1600).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 10, 5, 1}, 1600).ok());  // A duplicate changes nothing.
  EXPECT_TRUE(notified_.empty());
  ASSERT_TRUE(ack_all(c, 1, 1700).ok());
  EXPECT_EQ(notified_, std::vector<int64_t>{1});
  EXPECT_EQ(c.summary().completed, 1u);
  EXPECT_EQ(c.summary().last_completed, 1);
  EXPECT_EQ(c.summary().last_bytes, 40u);
  std::ifstream meta(dir_ / "chk-1" / "_metadata");
  std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"id\":1,\"job\":\"demo\""), std::string::npos) << text;

  // The next one is due an interval after the completion.
  ASSERT_TRUE(c.tick(2600).ok());
  EXPECT_EQ(triggered_.size(), 1u);
  ASSERT_TRUE(c.tick(2700).ok());
  EXPECT_EQ(triggered_, (std::vector<int64_t>{1, 2}));
}

// A checkpoint without a finished subtask's state would restart that subtask from nothing: one
// in progress that the subtask had not acknowledged is abandoned, and none is taken after.
TEST_F(CheckpointCoordinatorTest, AFinishedSubtaskEndsCheckpointing) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0}, 1100).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 1, 0, 0, 0}, 1100).ok());
  ASSERT_TRUE(c.on_ack({1, 1, 0, 0, 0, 0}, 1100).ok());
  ASSERT_TRUE(c.on_finished(1, 1, 1200).ok());  // Ended before its barrier came.
  EXPECT_TRUE(notified_.empty());
  EXPECT_EQ(c.in_progress(), 0);
  EXPECT_EQ(c.summary().failed, 0u);
  ASSERT_TRUE(c.tick(5000).ok());
  EXPECT_EQ(triggered_, std::vector<int64_t>{1});
}

// A subtask that acknowledged the checkpoint in progress before it finished is in it.
TEST_F(CheckpointCoordinatorTest, ACheckpointAcknowledgedBeforeAFinishCompletes) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  ASSERT_TRUE(c.on_ack({1, 1, 1, 0, 0, 0}, 1100).ok());
  ASSERT_TRUE(c.on_finished(1, 1, 1150).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0}, 1200).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 1, 0, 0, 0}, 1200).ok());
  ASSERT_TRUE(c.on_ack({1, 1, 0, 0, 0, 0}, 1200).ok());
  EXPECT_EQ(notified_, std::vector<int64_t>{1});
}

TEST_F(CheckpointCoordinatorTest, FailsTheJobAfterTooManyConsecutiveFailures) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  // Timeout: abandoned, tolerated once; the late ack of checkpoint 1 is ignored.
  ASSERT_TRUE(c.tick(6001).ok());
  EXPECT_EQ(c.summary().failed, 1u);
  EXPECT_EQ(c.in_progress(), 0);
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0}, 6002).ok());
  ASSERT_TRUE(c.tick(7001).ok());
  ASSERT_EQ(triggered_, (std::vector<int64_t>{1, 2}));
  auto st = c.on_decline(2, 1, 0, "disk full", 7100);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("checkpoint 2 declined by node 'win' subtask 0: disk full"),
            std::string::npos)
      << st.err().message;
  EXPECT_NE(st.err().message.find("2 consecutive checkpoint failures exceed the tolerated 1"),
            std::string::npos)
      << st.err().message;
}

TEST_F(CheckpointCoordinatorTest, ASuccessResetsTheFailureCount) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  ASSERT_TRUE(c.on_decline(1, 0, 0, "x", 1100).ok());
  ASSERT_TRUE(c.tick(2100).ok());
  ASSERT_TRUE(ack_all(c, 2, 2200).ok());
  ASSERT_TRUE(c.tick(3200).ok());
  EXPECT_TRUE(c.on_decline(3, 0, 0, "x", 3300).ok()) << "one failure since the last success";
}

TEST_F(CheckpointCoordinatorTest, IdsContinueAfterTheNewestStoredCheckpoint) {
  {
    auto c = make();
    c.start(0);
    ASSERT_TRUE(c.tick(1000).ok());
    ASSERT_TRUE(ack_all(c, 1, 1100).ok());
  }
  triggered_.clear();
  auto again = make();
  again.start(0);
  ASSERT_TRUE(again.tick(1000).ok());
  EXPECT_EQ(triggered_, std::vector<int64_t>{2});
}

}  // namespace
}  // namespace vigil
