#include "operators/lake/lake_sink.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "lake/delta_log.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::operator_harness;
using testing::str;

/// lake_sink subtasks driven by hand through their checkpoint hooks: the restores a job goes
/// through after a change of parallelism, including a second restore of the same checkpoint.
class LakeSinkRestore : public ::testing::Test {
 protected:
  LakeSinkRestore() {
    register_lake_operators(registry_);
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-lake-sink-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~LakeSinkRestore() override { std::filesystem::remove_all(dir_); }

  /// Subtask `subtask` of `parallelism`, restored from the states of checkpoint `checkpoint`
  /// (taken at another parallelism) when `states` is not empty.
  std::unique_ptr<operator_harness> subtask(uint32_t subtask, uint32_t parallelism,
                                            const std::vector<std::string>& states = {},
                                            int64_t checkpoint = 0) {
    auto h = std::make_unique<operator_harness>(
        registry_, "lake_sink", cfg({{"path", str((dir_ / "table").string())}}),
        std::vector<stream_info>{{schema_, {}}}, subtask, parallelism);
    if (!states.empty()) {
      h->context().restored_parallelism = static_cast<uint32_t>(states.size());
      h->context().restored_checkpoint_id = checkpoint;
      for (const auto& s : states) {
        auto st = h->op().restore_state(s);
        EXPECT_TRUE(st.ok()) << st.err().message;
      }
    }
    return h;
  }

  /// Writes rows with seq in [from, to).
  void write(operator_harness& h, int64_t from, int64_t to) {
    std::vector<std::vector<testing::cell>> rows;
    std::vector<int64_t> times;
    for (int64_t s = from; s < to; ++s) {
      rows.push_back({s});
      times.push_back(s);
    }
    h.push(0, testing::make_rows(schema_, rows, times));
  }

  /// Rows in the table's live files (their numRecords statistics).
  int64_t rows_in_table() {
    auto snap = lake::read_delta_snapshot((dir_ / "table").string());
    EXPECT_TRUE(snap.ok()) << snap.err().message;
    if (!snap.ok()) return -1;
    int64_t n = 0;
    for (const auto& [path, add] : snap->files) {
      n += nlohmann::json::parse(add.stats).at("numRecords").get<int64_t>();
    }
    return n;
  }

  operator_registry registry_;
  std::filesystem::path dir_;
  schema_ptr schema_ = make_schema({{"seq", type_id::int64, false}});
};

TEST_F(LakeSinkRestore, ZstdLevelIsCheckedAndAppliesOnlyToZstd) {
  const auto plan_error = [&](config_map c) {
    c.emplace_back("path", str((dir_ / "table").string()));
    auto p = operator_harness::try_plan(registry_, "lake_sink", c, {{schema_, {}}});
    return p.ok() ? std::string("<ok>") : p.err().message;
  };
  EXPECT_EQ(plan_error(cfg({{"zstd_level", testing::num(1)}})), "<ok>");
  EXPECT_EQ(plan_error(cfg({{"codec", str("zstd")}, {"zstd_level", testing::num(19)}})), "<ok>");
  EXPECT_EQ(plan_error(cfg({{"zstd_level", testing::num(0)}})),
            "config.zstd_level: must be between 1 and 19, got 0");
  EXPECT_EQ(plan_error(cfg({{"zstd_level", testing::num(20)}})),
            "config.zstd_level: must be between 1 and 19, got 20");
  EXPECT_EQ(plan_error(cfg({{"codec", str("snappy")}, {"zstd_level", testing::num(1)}})),
            "config.zstd_level: applies only to codec zstd, not snappy");
}

TEST_F(LakeSinkRestore, ASecondRescaledRestoreOfOneCheckpointWritesWhatTheFirstDidNotFinish) {
  // The old job, parallelism 2: checkpoint 5 commits 200 rows.
  std::vector<std::string> states;
  {
    auto a = subtask(0, 2);
    auto b = subtask(1, 2);
    write(*a, 0, 100);
    write(*b, 100, 200);
    states = {a->op().snapshot_state(5), b->op().snapshot_state(5)};
    ASSERT_TRUE(a->op().notify_checkpoint_complete(5, {}).ok());
    ASSERT_TRUE(b->op().notify_checkpoint_complete(5, {}).ok());
  }
  ASSERT_EQ(rows_in_table(), 200);

  // Restores checkpoint 5 at parallelism 3 and replays the input after it, 50 rows per
  // subtask; subtasks 0 and 1 reach its end, and subtask 2 too if `third_finishes`.
  auto restore_at_3 = [&](bool third_finishes) {
    std::vector<std::unique_ptr<operator_harness>> subs;
    for (uint32_t i = 0; i < 3; ++i) subs.push_back(subtask(i, 3, states, 5));
    for (uint32_t i = 0; i < 3; ++i) write(*subs[i], 200 + 50 * i, 250 + 50 * i);
    subs[0]->finish();
    subs[1]->finish();
    if (third_finishes) subs[2]->finish();
  };
  // Subtasks 0 and 1 commit their input as their final files; subtask 2 fails first, and no
  // checkpoint completes in between.
  restore_at_3(false);
  ASSERT_EQ(rows_in_table(), 300);

  // The job restores checkpoint 5 at parallelism 3 again and the sources replay the same input:
  // subtasks 0 and 1 know their output is in the table; subtask 2 writes its part.
  restore_at_3(true);
  EXPECT_EQ(rows_in_table(), 350);
}

TEST_F(LakeSinkRestore, ARescaledRestoreAfterSomeOldSubtasksFinishedIsRefused) {
  std::vector<std::string> states;
  {
    auto a = subtask(0, 2);
    auto b = subtask(1, 2);
    write(*a, 0, 10);
    write(*b, 10, 20);
    states = {a->op().snapshot_state(3), b->op().snapshot_state(3)};
    ASSERT_TRUE(a->op().notify_checkpoint_complete(3, {}).ok());
    ASSERT_TRUE(b->op().notify_checkpoint_complete(3, {}).ok());
    write(*a, 20, 30);
    a->finish();  // Old subtask 0 ends; old subtask 1 fails before it does.
  }
  auto h = std::make_unique<operator_harness>(registry_, "lake_sink",
                                              cfg({{"path", str((dir_ / "table").string())}}),
                                              std::vector<stream_info>{{schema_, {}}}, 0, 3);
  h->context().restored_parallelism = 2;
  h->context().restored_checkpoint_id = 3;
  ASSERT_TRUE(h->op().restore_state(states[0]).ok());
  auto refused = h->op().restore_state(states[1]);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().message.find("restore with parallelism 2"), std::string::npos)
      << refused.err().message;
}

}  // namespace
}  // namespace vigil
