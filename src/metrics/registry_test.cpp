#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/record_batch.hpp"
#include "metrics/job_metrics.hpp"
#include "metrics/operator_metrics.hpp"

namespace vigil::metrics {
namespace {

bool exposed(const std::string& needle) {
  return serialize().find(needle) != std::string::npos;
}

TEST(metrics_registry, series_is_shared_and_removed_with_the_last_handle) {
  prometheus::Labels labels{{"job", "shared"}};
  {
    series<prometheus::Counter> a(family().checkpoint_failures, labels);
    a->Increment();
    {
      series<prometheus::Counter> b(family().checkpoint_failures, labels);
      EXPECT_EQ(&*a, &*b);
      b->Increment();
    }
    EXPECT_TRUE(exposed("vigil_checkpoint_failures_total{job=\"shared\"} 2"));
    series<prometheus::Counter> moved = std::move(a);
    EXPECT_FALSE(static_cast<bool>(a));
    EXPECT_TRUE(exposed("vigil_checkpoint_failures_total{job=\"shared\"} 2"));
  }
  EXPECT_FALSE(exposed("job=\"shared\""));
}

TEST(metrics_registry, operator_metrics_labels_and_removal) {
  {
    operator_metrics m("j1", "window", 3);
    m.records_in->Increment(10);
    m.batch_duration->Observe(0.002);
    m.watermark->Set(1700000000);
    std::string text = serialize();
    EXPECT_NE(text.find("vigil_operator_records_in_total{job=\"j1\",operator=\"window\","
                        "subtask=\"3\"} 10"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("vigil_operator_batch_duration_seconds_count{job=\"j1\","
                        "operator=\"window\",subtask=\"3\"} 1"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("vigil_operator_busy_seconds_total{job=\"j1\""), std::string::npos);
    EXPECT_EQ(text.find("vigil_state_size_bytes{job=\"j1\""), std::string::npos)
        << "state size only for stateful operators";
  }
  EXPECT_FALSE(exposed("job=\"j1\""));
}

TEST(metrics_registry, job_metrics_checkpoint_completed) {
  job_metrics m("ckpt-job");
  m.checkpoint_completed(7, 4096, 250000);
  m.checkpoint_completed(8, 8192, 1500000);
  m.checkpoint_failed();
  std::string text = serialize();
  EXPECT_NE(text.find("vigil_checkpoint_last_completed_id{job=\"ckpt-job\"} 8"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_checkpoint_size_bytes{job=\"ckpt-job\"} 8192"), std::string::npos);
  EXPECT_NE(text.find("vigil_checkpoints_completed_total{job=\"ckpt-job\"} 2"), std::string::npos);
  EXPECT_NE(text.find("vigil_checkpoint_failures_total{job=\"ckpt-job\"} 1"), std::string::npos);
  EXPECT_NE(text.find("vigil_checkpoint_duration_seconds_sum{job=\"ckpt-job\"} 1.75"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_checkpoint_duration_seconds_bucket{job=\"ckpt-job\",le=\"0.25\"} 1"),
            std::string::npos)
      << text;
}

TEST(metrics_registry, build_info) {
  EXPECT_TRUE(
      exposed("vigil_build_info{commit=\"" VIGIL_BUILD "\",version=\"" VIGIL_VERSION "\"} 1"))
      << serialize();
}

TEST(metrics_registry, batch_payload_bytes) {
  record_batch b;
  b.event_time = {1, 2, 3};
  b.key_hash = {4, 5, 6};
  column ints(type_id::int64);
  for (int i = 0; i < 3; ++i) ints.push_int64(i);
  column strs(type_id::string);
  strs.push_string("ab");
  strs.push_string("");
  strs.push_null();
  b.columns.push_back(ints);
  b.columns.push_back(strs);
  // event time 24 + key hash 24 + ints (3 valid + 24) + strings (3 valid + 4 offsets * 4 + 2).
  EXPECT_EQ(batch_payload_bytes(b), 24u + 24 + 27 + 3 + 16 + 2);
}

TEST(activity_clock, splits_wall_time) {
  constexpr int64_t ms = 1000000;
  activity_clock c(0);
  c.add_busy(2 * ms);
  c.set_backpressured(true, 3 * ms);
  c.set_backpressured(false, 5 * ms);
  c.set_backpressured(true, 8 * ms);
  auto s = c.take(10 * ms);  // busy 2, blocked 2 + 2 (still blocked), idle 4.
  EXPECT_DOUBLE_EQ(s.busy, 0.002);
  EXPECT_DOUBLE_EQ(s.backpressured, 0.004);
  EXPECT_DOUBLE_EQ(s.idle, 0.004);
  c.set_backpressured(false, 11 * ms);
  s = c.take(20 * ms);
  EXPECT_DOUBLE_EQ(s.busy, 0);
  EXPECT_DOUBLE_EQ(s.backpressured, 0.001);
  EXPECT_DOUBLE_EQ(s.idle, 0.009);
  // Busy and blocked overlap: never more than the wall time, busy wins.
  c.add_busy(8 * ms);
  c.set_backpressured(true, 20 * ms);
  s = c.take(30 * ms);
  EXPECT_DOUBLE_EQ(s.busy, 0.008);
  EXPECT_DOUBLE_EQ(s.backpressured, 0.002);
  EXPECT_DOUBLE_EQ(s.idle, 0);
}

}  // namespace
}  // namespace vigil::metrics
