#include "runtime/watermark_tracker.hpp"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(WatermarkTracker, CombinedIsMinimumOverInputs) {
  watermark_tracker t(2);
  EXPECT_EQ(t.on_watermark(0, 100), std::nullopt);  // Input 1 has no watermark yet.
  EXPECT_EQ(t.on_watermark(1, 50), 50);
  EXPECT_EQ(t.on_watermark(1, 150), 100);
  EXPECT_EQ(t.on_watermark(0, 120), 120);
  EXPECT_EQ(t.current(), 120);
}

TEST(WatermarkTracker, NeverGoesBack) {
  watermark_tracker t(1);
  EXPECT_EQ(t.on_watermark(0, 100), 100);
  EXPECT_EQ(t.on_watermark(0, 90), std::nullopt);
  EXPECT_EQ(t.current(), 100);
}

TEST(WatermarkTracker, IdleInputStopsHoldingBack) {
  watermark_tracker t(2);
  EXPECT_EQ(t.on_watermark(0, 10), std::nullopt);
  EXPECT_EQ(t.on_watermark(1, 500), 10);
  EXPECT_EQ(t.on_idle(0), 500);
  EXPECT_FALSE(t.all_idle());
  // The idle input comes back behind the combined watermark: nothing goes back.
  EXPECT_EQ(t.on_watermark(0, 20), std::nullopt);
  EXPECT_EQ(t.current(), 500);
  EXPECT_EQ(t.on_watermark(1, 800), std::nullopt);  // Input 0 (at 20) holds it again.
  EXPECT_EQ(t.on_watermark(0, 900), 800);
}

TEST(WatermarkTracker, AllIdleHolds) {
  watermark_tracker t(2);
  t.on_watermark(0, 10);
  t.on_watermark(1, 20);
  EXPECT_EQ(t.on_idle(0), 20);
  EXPECT_EQ(t.on_idle(1), std::nullopt);
  EXPECT_TRUE(t.all_idle());
  EXPECT_EQ(t.current(), 20);
  t.on_data(1);
  EXPECT_FALSE(t.all_idle());
}

TEST(WatermarkTracker, EndedInputsCountAsMax) {
  watermark_tracker t(2);
  t.on_watermark(0, 10);
  t.on_watermark(1, 20);
  EXPECT_EQ(t.on_end(0), 20);
  EXPECT_FALSE(t.all_ended());
  EXPECT_EQ(t.on_end(1), max_watermark);
  EXPECT_TRUE(t.all_ended());
}

TEST(WatermarkTracker, OneInputEndedAndTheOthersIdleHolds) {
  watermark_tracker t(2);
  t.on_watermark(0, 10);
  t.on_watermark(1, 20);
  EXPECT_EQ(t.on_idle(1), std::nullopt);  // Input 0 (at 10) still holds it.
  EXPECT_EQ(t.on_end(0), std::nullopt);   // Input 1 is idle, not ended: time is not over.
  EXPECT_EQ(t.current(), 10);
  EXPECT_TRUE(t.all_idle());
  EXPECT_EQ(t.on_watermark(1, 30), 30);
  EXPECT_EQ(t.on_end(1), max_watermark);
}

}  // namespace
}  // namespace vigil
