#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "metrics/registry.hpp"

namespace vigil::metrics {
namespace {

/// The names of every family in family().
std::set<std::string> family_names() {
  const families& f = family();
  return {f.operator_records_in.GetName(),
          f.operator_records_out.GetName(),
          f.operator_bytes_in.GetName(),
          f.operator_bytes_out.GetName(),
          f.operator_batch_duration.GetName(),
          f.operator_busy.GetName(),
          f.operator_idle.GetName(),
          f.operator_backpressured.GetName(),
          f.operator_watermark.GetName(),
          f.operator_event_time_lag.GetName(),
          f.operator_late_records.GetName(),
          f.state_size.GetName(),
          f.checkpoint_duration.GetName(),
          f.checkpoint_size.GetName(),
          f.checkpoint_last_completed_id.GetName(),
          f.checkpoints_completed.GetName(),
          f.checkpoint_failures.GetName(),
          f.job_restarts.GetName(),
          f.cluster_workers.GetName(),
          f.cluster_slots.GetName(),
          f.cluster_jobs.GetName(),
          f.kafka_consumer_lag.GetName(),
          f.kafka_sink_records_committed.GetName(),
          f.clinical_alerts.GetName(),
          f.clinical_dead_letters.GetName(),
          f.clinical_duplicates_dropped.GetName()};
}

/// The vigil_* names in the PromQL of a Grafana dashboard, histogram suffixes removed.
std::set<std::string> dashboard_names(const nlohmann::json& j) {
  std::set<std::string> names;
  static const std::regex name("vigil_[a-z0-9_]+");
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_array()) {
      for (const auto& e : v) walk(e);
      return;
    }
    if (!v.is_object()) return;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() != "expr" || !it.value().is_string()) {
        walk(it.value());
        continue;
      }
      std::string expr = it.value();
      for (std::sregex_iterator m(expr.begin(), expr.end(), name), end; m != end; ++m) {
        std::string n = m->str();
        for (std::string suffix : {"_bucket", "_sum", "_count"}) {
          if (n.size() > suffix.size() &&
              n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
            n.resize(n.size() - suffix.size());
          }
        }
        names.insert(n);
      }
    }
  };
  walk(j);
  return names;
}

// The dashboard uses only metric names Vigil registers, and shows every one of them.
TEST(dashboard, uses_exactly_the_registered_families) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/deploy/helm/vigil/dashboards/vigil.json");
  ASSERT_TRUE(in.good());
  auto dashboard = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded());
  EXPECT_EQ(dashboard.value("schemaVersion", 0), 38);
  auto used = dashboard_names(dashboard);
  auto known = family_names();
  for (const auto& n : used) EXPECT_TRUE(known.count(n) != 0) << n << " is not a Vigil metric";
  for (const auto& n : known) EXPECT_TRUE(used.count(n) != 0) << n << " is not on the dashboard";
  // Every panel queries through the data source variable.
  for (const auto& p : dashboard["panels"]) {
    if (p.value("type", "") == "row") continue;
    EXPECT_EQ(p["datasource"].value("uid", ""), "${datasource}") << p.value("title", "");
  }
}

}  // namespace
}  // namespace vigil::metrics
