#include "runtime/output_router.hpp"

#include <gtest/gtest.h>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::make_rows;

/// Records what the router delivers, per channel.
struct recording_transport : channel_transport {
  std::vector<std::vector<channel_item>> got;
  explicit recording_transport(size_t channels) : got(channels) {}
  void deliver(size_t ch, channel_item item) override { got[ch].push_back(std::move(item)); }
  size_t rows(size_t ch) const {
    size_t n = 0;
    for (const auto& i : got[ch]) {
      if (i.k == channel_item::kind::batch) n += i.batch->num_rows();
    }
    return n;
  }
};

schema_ptr kv_schema() {
  return make_schema({{"k", type_id::int64, false}});
}

batch_ptr keyed_batch(int64_t first, int64_t count) {
  std::vector<std::vector<testing::cell>> rows;
  std::vector<int64_t> times;
  for (int64_t i = first; i < first + count; ++i) {
    rows.push_back({i});
    times.push_back(i);
  }
  return make_rows(kv_schema(), rows, times, {0});
}

TEST(OutputRouter, SendsOnlyWithCredit) {
  recording_transport t(1);
  output_router r(t, {{0, partitioning::forward, {0}}}, 1, 0, 128, 1024, 1);
  r.emit(0, keyed_batch(0, 3));
  EXPECT_TRUE(t.got[0].empty());
  EXPECT_TRUE(r.blocked());
  r.add_credit(0, 2);
  EXPECT_EQ(t.got[0].size(), 1u);
  EXPECT_FALSE(r.blocked());
  r.emit(0, keyed_batch(3, 3));
  r.emit(0, keyed_batch(6, 3));  // One credit left: this one waits.
  EXPECT_EQ(t.got[0].size(), 2u);
  EXPECT_TRUE(r.blocked());
  r.add_credit(0, 1);
  EXPECT_EQ(t.got[0].size(), 3u);
  EXPECT_EQ(r.rows_out()[0], 9u);
}

TEST(OutputRouter, ControlItemsNeverOvertakeQueuedBatches) {
  recording_transport t(1);
  output_router r(t, {{0, partitioning::forward, {0}}}, 1, 0, 128, 1024, 1);
  r.broadcast_watermark(5);  // Nothing queued: goes out at once without credit.
  ASSERT_EQ(t.got[0].size(), 1u);
  r.emit(0, keyed_batch(0, 1));
  r.broadcast_watermark(10);
  r.broadcast_eos();
  EXPECT_EQ(t.got[0].size(), 1u);
  r.add_credit(0, 1);
  ASSERT_EQ(t.got[0].size(), 4u);
  EXPECT_EQ(t.got[0][1].k, channel_item::kind::batch);
  EXPECT_EQ(t.got[0][2].k, channel_item::kind::watermark);
  EXPECT_EQ(t.got[0][2].watermark, 10);
  EXPECT_EQ(t.got[0][3].k, channel_item::kind::eos);
}

TEST(OutputRouter, HashRoutesEveryRowToTheOwnerOfItsKeyGroup) {
  const uint32_t max_p = 16;
  recording_transport t(3);
  output_router r(t, {{0, partitioning::hash, {0, 1, 2}}}, 3, 0, max_p, 4, 1);
  for (size_t ch = 0; ch < 3; ++ch) r.add_credit(ch, 100);
  r.emit(0, keyed_batch(0, 50));
  r.flush_partial();
  size_t total = 0;
  for (uint32_t ch = 0; ch < 3; ++ch) {
    total += t.rows(ch);
    auto range = key_group_range_of(ch, 3, max_p);
    for (const auto& item : t.got[ch]) {
      ASSERT_EQ(item.k, channel_item::kind::batch);
      EXPECT_LE(item.batch->num_rows(), 4u + 50u);
      for (uint64_t h : item.batch->key_hash) EXPECT_TRUE(range.contains(key_group_of(h, max_p)));
    }
  }
  EXPECT_EQ(total, 50u);
}

TEST(OutputRouter, HashFlushesPartialBatchesBeforeAWatermark) {
  recording_transport t(2);
  output_router r(t, {{0, partitioning::hash, {0, 1}}}, 2, 0, 128, 1024, 1);
  r.add_credit(0, 10);
  r.add_credit(1, 10);
  r.emit(0, keyed_batch(0, 20));
  EXPECT_EQ(t.rows(0) + t.rows(1), 0u);  // Below batch size: held back.
  r.broadcast_watermark(100);
  EXPECT_EQ(t.rows(0) + t.rows(1), 20u);
  for (size_t ch = 0; ch < 2; ++ch) EXPECT_EQ(t.got[ch].back().k, channel_item::kind::watermark);
}

TEST(OutputRouter, RebalanceRoundRobinsAndBroadcastCopiesToAll) {
  recording_transport t(4);
  output_router r(t, {{0, partitioning::rebalance, {0, 1}}, {0, partitioning::broadcast, {2, 3}}},
                  4, 0, 128, 1024, 1);
  for (size_t ch = 0; ch < 4; ++ch) r.add_credit(ch, 10);
  for (int i = 0; i < 4; ++i) r.emit(0, keyed_batch(i, 1));
  EXPECT_EQ(t.rows(0), 2u);
  EXPECT_EQ(t.rows(1), 2u);
  EXPECT_EQ(t.rows(2), 4u);
  EXPECT_EQ(t.rows(3), 4u);
}

TEST(OutputRouter, QueueIsBoundedByWhatWasEmittedWithoutCredit) {
  recording_transport t(1);
  output_router r(t, {{0, partitioning::forward, {0}}}, 1, 0, 128, 1024, 1);
  r.add_credit(0, 4);
  for (int i = 0; i < 4; ++i) r.emit(0, keyed_batch(i, 1));
  EXPECT_FALSE(r.blocked());
  r.emit(0, keyed_batch(9, 1));
  EXPECT_TRUE(r.blocked());  // The subtask stops taking input now.
  EXPECT_EQ(t.got[0].size(), 4u);
}

}  // namespace
}  // namespace vigil
