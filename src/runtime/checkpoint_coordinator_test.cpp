#include "runtime/checkpoint_coordinator.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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
        [this](int64_t id, const std::string& sources) {
          notified_.push_back(id);
          notified_sources_.push_back(sources);
        });
  }

  status ack_all(checkpoint_coordinator& c, int64_t id, int64_t now) {
    for (size_t n = 0; n < 2; ++n) {
      for (uint32_t s = 0; s < 2; ++s) {
        if (auto st = c.on_ack({id, n, s, 10, 5, 1, {}}, now); !st) return st;
      }
    }
    return {};
  }

  job_plan plan_;
  fs::path dir_;
  std::vector<int64_t> triggered_;
  std::vector<int64_t> notified_;
  std::vector<std::string> notified_sources_;
};

// Completions and failures reach the job's metric series, which outlive the coordinator.
TEST_F(CheckpointCoordinatorTest, CountsCheckpointsInTheJobsMetrics) {
  auto m = std::make_shared<metrics::job_metrics>("metrics-demo");
  {
    checkpoint_coordinator c(
        plan_, std::make_shared<checkpoint_storage>(dir_),
        [this](int64_t id) { triggered_.push_back(id); },
        [this](int64_t id, const std::string&) { notified_.push_back(id); }, m);
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

  ASSERT_TRUE(c.on_ack({1, 0, 0, 10, 5, 1, {}}, 1600).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 10, 5, 1, {}}, 1600).ok());  // A duplicate changes nothing.
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

// The positions the source subtasks acknowledged with go into the checkpoint's _metadata (per
// source node, in subtask order, whatever order the acks came in) and into the notification;
// operators that are no source, and invalid positions, add nothing / null.
TEST_F(CheckpointCoordinatorTest, RecordsTheSourcePositionsInTheMetadataAndTheNotification) {
  plan_.edges.push_back({0, 0, 1, 0, partitioning::forward});  // src -> win: one source node.
  plan_.name = "demo";
  plan_.job_id = "demo-7";
  plan_.graph_version = "00112233aabbccdd";
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  checkpoint_ack a1{1, 0, 1, 10, 5, 1, R"({"next_seq":9,"emitted":4})"};
  checkpoint_ack a0{1, 0, 0, 10, 5, 1, R"({"next_seq":8,"emitted":4})"};
  checkpoint_ack w0{1, 1, 0, 10, 5, 1, ""};
  checkpoint_ack w1{1, 1, 1, 10, 5, 1, "{not json"};
  for (const auto& a : {a1, w0, a0, w1}) ASSERT_TRUE(c.on_ack(a, 1500).ok());
  const std::string expected = R"({"src":[{"next_seq":8,"emitted":4},{"next_seq":9,"emitted":4}]})";
  ASSERT_EQ(notified_, std::vector<int64_t>{1});
  EXPECT_EQ(notified_sources_, std::vector<std::string>{expected});
  std::ifstream meta(dir_ / "chk-1" / "_metadata");
  std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(R"("sources":)" + expected + "}"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("job_id":"demo-7","graph_version":"00112233aabbccdd")"), std::string::npos)
      << text;
  auto stored = checkpoint_storage(dir_).source_positions(1);
  ASSERT_TRUE(stored.ok()) << stored.err().message;
  EXPECT_EQ(nlohmann::json::parse(*stored), nlohmann::json::parse(expected));

  // A source that reports no valid position has null at its index.
  ASSERT_TRUE(c.tick(2500).ok());
  ASSERT_TRUE(c.on_ack({2, 0, 0, 1, 1, 1, "{not json"}, 2600).ok());
  ASSERT_TRUE(c.on_ack({2, 0, 1, 1, 1, 1, R"({"next_seq":11,"emitted":5})"}, 2600).ok());
  ASSERT_TRUE(c.on_ack({2, 1, 0, 1, 1, 1, ""}, 2600).ok());
  ASSERT_TRUE(c.on_ack({2, 1, 1, 1, 1, 1, ""}, 2600).ok());
  ASSERT_EQ(notified_sources_.size(), 2u);
  EXPECT_EQ(notified_sources_[1], R"({"src":[null,{"next_seq":11,"emitted":5}]})");
}

// A checkpoint that recorded no source positions (written by an earlier version) has none.
TEST_F(CheckpointCoordinatorTest, ACheckpointWithoutSourcePositionsHasNone) {
  checkpoint_storage storage(dir_);
  ASSERT_TRUE(storage.complete(3, R"({"version":1,"id":3,"job":"demo"})").ok());
  auto positions = storage.source_positions(3);
  ASSERT_TRUE(positions.ok()) << positions.err().message;
  EXPECT_EQ(*positions, "");
  EXPECT_FALSE(storage.source_positions(4).ok());
}

// A checkpoint without a finished subtask's state would restart that subtask from nothing: one
// in progress that the subtask had not acknowledged is abandoned, and none is taken after.
TEST_F(CheckpointCoordinatorTest, AFinishedSubtaskEndsCheckpointing) {
  auto c = make();
  c.start(0);
  ASSERT_TRUE(c.tick(1000).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0, {}}, 1100).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 1, 0, 0, 0, {}}, 1100).ok());
  ASSERT_TRUE(c.on_ack({1, 1, 0, 0, 0, 0, {}}, 1100).ok());
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
  ASSERT_TRUE(c.on_ack({1, 1, 1, 0, 0, 0, {}}, 1100).ok());
  ASSERT_TRUE(c.on_finished(1, 1, 1150).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0, {}}, 1200).ok());
  ASSERT_TRUE(c.on_ack({1, 0, 1, 0, 0, 0, {}}, 1200).ok());
  ASSERT_TRUE(c.on_ack({1, 1, 0, 0, 0, 0, {}}, 1200).ok());
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
  ASSERT_TRUE(c.on_ack({1, 0, 0, 0, 0, 0, {}}, 6002).ok());
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
