#include "operators/clinical/clinical_alerts.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/key.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "runtime/testing/operator_harness.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;
using strings = std::vector<std::string>;

constexpr int64_t minute = 60'000'000;
constexpr int64_t t0 = 1710253800LL * 1000000;  // 2024-03-12T14:30:00Z

/// A score record (the fields clinical_alerts reads).
struct score {
  std::string patient;
  int64_t time;
  int64_t news2 = 0;
  bool red = false;
  int64_t qsofa = 0;
  int64_t sirs = 0;
  std::optional<double> lactate = std::nullopt;
};

/// Minutes after t0 as text, for expected rows.
std::string at(int64_t minutes) {
  return std::to_string(t0 + minutes * minute);
}

class ClinicalAlerts : public ::testing::Test {
 protected:
  ClinicalAlerts() { register_clinical_operators(registry_); }

  std::vector<stream_info> input() const { return {{schema_, {0}}}; }

  batch_ptr rows(const std::vector<score>& s) {
    std::vector<std::vector<cell>> r;
    std::vector<int64_t> times;
    for (const score& x : s) {
      r.push_back({x.patient, x.news2, x.red, x.qsofa, x.sirs,
                   x.lactate ? cell(*x.lactate) : cell(std::monostate{}), std::string("i")});
      times.push_back(x.time);
    }
    return make_rows(schema_, r, times, {0});
  }

  std::unique_ptr<operator_harness> harness(const config_map& c = {}) {
    return std::make_unique<operator_harness>(registry_, "clinical_alerts", c, input());
  }

  /// Alerts as "rule|level|action|time|score" (patient and reason left out).
  static strings alerts(operator_harness& h) {
    strings out;
    for (const batch_ptr& b : h.batches(0)) {
      for (size_t r = 0; r < b->num_rows(); ++r) {
        out.push_back(
            std::string(b->columns[1].string_at(r)) + "|" + std::to_string(b->columns[2].ints[r]) +
            "|" + std::string(b->columns[3].string_at(r)) + "|" +
            std::to_string(b->columns[4].ints[r]) + "|" + std::to_string(b->columns[5].ints[r]));
      }
    }
    return out;
  }

  std::string plan_error(const config_map& c, std::vector<stream_info> in = {}) {
    auto p = operator_harness::try_plan(registry_, "clinical_alerts", c, in.empty() ? input() : in);
    return p.ok() ? "<ok>" : p.err().message;
  }

  /// Entries of the episode state over all patients.
  static size_t episode_entries(operator_harness& h) {
    auto id = h.context().state->declare("clinical_alerts_episodes", state_backend::kind::value);
    EXPECT_TRUE(id.ok());
    size_t n = 0;
    h.context().state->scan_all(*id, [&](uint32_t, std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, false},
                                    {"news2", type_id::int64, false},
                                    {"news2_red", type_id::boolean, false},
                                    {"qsofa", type_id::int64, false},
                                    {"sirs", type_id::int64, false},
                                    {"lactate", type_id::float64, true},
                                    {"inputs", type_id::string, false}});
};

TEST_F(ClinicalAlerts, PlanChecksInputAndConfig) {
  EXPECT_EQ(plan_error({}), "<ok>");
  EXPECT_NE(plan_error({}, {{schema_, {}}}).find("keyed by 'patient'"), std::string::npos);
  auto no_sirs = make_schema({{"patient", type_id::string, false},
                              {"news2", type_id::int64, false},
                              {"news2_red", type_id::boolean, false},
                              {"qsofa", type_id::int64, false},
                              {"lactate", type_id::float64, true}});
  EXPECT_NE(plan_error({}, {{no_sirs, {0}}}).find("'sirs' is missing"), std::string::npos);
  const auto has = [](const std::string& msg, std::string_view k) {
    return msg.find("config." + std::string(k) + ": ") != std::string::npos;
  };
  EXPECT_TRUE(
      has(plan_error(cfg({{"rules", testing::list({"news2_urgent", "page_all"})}})), "rules"));
  EXPECT_TRUE(has(plan_error(cfg({{"rules", testing::list({})}})), "rules"));
  EXPECT_TRUE(has(plan_error(cfg({{"news2_urgent", testing::num(0)}})), "news2_urgent"));
  EXPECT_TRUE(has(plan_error(cfg({{"news2_emergency", testing::num(5)}})), "news2_emergency"));
  EXPECT_TRUE(has(plan_error(cfg({{"qsofa_threshold", testing::num(-1)}})), "qsofa_threshold"));
  EXPECT_TRUE(has(plan_error(cfg({{"sirs_threshold", str("two")}})), "sirs_threshold"));
  EXPECT_TRUE(has(plan_error(cfg({{"lactate_threshold", config_value::of_double(-1)}})),
                  "lactate_threshold"));
  EXPECT_TRUE(has(plan_error(cfg({{"news2_red_urgent", str("yes")}})), "news2_red_urgent"));
  EXPECT_TRUE(has(plan_error(cfg({{"refractory", str("-1m")}})), "refractory"));
  EXPECT_TRUE(has(plan_error(cfg({{"resolve_after", str("0s")}})), "resolve_after"));
  EXPECT_TRUE(has(plan_error(cfg({{"cooldown", str("1h")}})), "cooldown"));
  EXPECT_EQ(plan_error(cfg({{"rules", testing::list({"news2_urgent"})},
                            {"news2_emergency", testing::num(3)}})),
            "<ok>")
      << "the emergency threshold is only checked when both rules are on";

  operator_harness h(registry_, "clinical_alerts", {}, input());
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string, rule:string, level:int64, action:string, event_time:timestamp, "
            "score:int64, reason:string");
  EXPECT_EQ(h.plan().outputs[0].key_fields, std::vector<int>{0});
}

TEST_F(ClinicalAlerts, OpenEscalateResolve) {
  auto h = harness();
  h->push(0, rows({{"p1", t0, 5},
                   {"p1", t0 + 5 * minute, 6},
                   {"p1", t0 + 10 * minute, 8},
                   {"p1", t0 + 20 * minute, 2},
                   {"p1", t0 + 60 * minute, 1}}));
  h->watermark(t0 + 60 * minute);
  EXPECT_EQ(alerts(*h), (strings{"news2_urgent|1|open|" + at(0) + "|5",
                                 "news2_emergency|2|escalate|" + at(10) + "|8"}));
  h->watermark(t0 + 139 * minute);
  EXPECT_EQ(alerts(*h).size(), 2u);
  h->watermark(t0 + 140 * minute);
  EXPECT_EQ(alerts(*h).back(), "news2_emergency|2|resolve|" + at(140) + "|1")
      << "two hours after the score fell below the threshold";
  const record_batch& b = *h->batches(0)[0];
  EXPECT_EQ(b.columns[0].string_at(0), "p1");
  EXPECT_EQ(b.columns[6].string_at(0), "NEWS2 5 >= 5; inputs: i");
  EXPECT_EQ(b.columns[6].string_at(1), "NEWS2 8 >= 7; inputs: i");
  EXPECT_EQ(h->batches(0).back()->columns[6].string_at(0),
            "below the threshold since 2024-03-12T14:50:00Z");
}

TEST_F(ClinicalAlerts, ACrossingBeforeResolveKeepsTheEpisodeOpen) {
  auto h = harness();
  h->push(0, rows({{"p1", t0, 7},
                   {"p1", t0 + 10 * minute, 2},
                   {"p1", t0 + 100 * minute, 5},  // Level 1 < 2: no escalation, no resolve.
                   {"p1", t0 + 110 * minute, 3}}));
  h->watermark(t0 + 229 * minute);
  EXPECT_EQ(alerts(*h), strings{"news2_emergency|2|open|" + at(0) + "|7"});
  h->watermark(t0 + 230 * minute);
  EXPECT_EQ(alerts(*h).back(), "news2_emergency|2|resolve|" + at(230) + "|3");
}

TEST_F(ClinicalAlerts, RefractoryPeriodIsRespected) {
  auto h = harness(cfg({{"resolve_after", str("10m")}, {"refractory", str("60m")}}));
  h->push(0, rows({{"p1", t0, 5},
                   {"p1", t0 + 5 * minute, 1},
                   {"p1", t0 + 30 * minute, 6},  // Resolved at 15, but within refractory.
                   {"p1", t0 + 59 * minute, 6},
                   {"p1", t0 + 61 * minute, 6},     // Refractory over: opens.
                   {"p1", t0 + 62 * minute, 7}}));  // Escalation is never held back.
  h->watermark(t0 + 62 * minute);
  EXPECT_EQ(alerts(*h), (strings{"news2_urgent|1|open|" + at(0) + "|5",
                                 "news2_urgent|1|resolve|" + at(15) + "|1",
                                 "news2_urgent|1|open|" + at(61) + "|6",
                                 "news2_emergency|2|escalate|" + at(62) + "|7"}));
}

TEST_F(ClinicalAlerts, RedScoreRuleAndItsSwitch) {
  auto on = harness();
  on->push(0, rows({{"p1", t0, 3, true}}));
  on->watermark(t0);
  EXPECT_EQ(alerts(*on), strings{"news2_urgent|1|open|" + at(0) + "|3"});
  EXPECT_EQ(on->batches(0)[0]->columns[6].string_at(0),
            "NEWS2 3 with a single parameter scoring 3; inputs: i");
  auto off = harness(cfg({{"news2_red_urgent", config_value::of_bool(false)}}));
  off->push(0, rows({{"p1", t0, 3, true}}));
  off->watermark(t0);
  EXPECT_TRUE(alerts(*off).empty());
}

TEST_F(ClinicalAlerts, SepsisRules) {
  auto h = harness();
  h->push(0, rows({{"p1", t0, 0, false, 2},
                   {"p2", t0, 0, false, 0, 2, 2.5},
                   {"p3", t0, 0, false, 1, 2, 2.0},  // Lactate must exceed 2.
                   {"p4", t0, 0, false, 1, 3, std::nullopt},
                   {"p5", t0, 0, false, 1, 1, 4.0}}));
  h->watermark(t0);
  strings got = alerts(*h);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (strings{"sepsis_qsofa|1|open|" + at(0) + "|2",
                          "sepsis_sirs_lactate|1|open|" + at(0) + "|2"}));
  for (const batch_ptr& b : h->batches(0)) {
    for (size_t r = 0; r < b->num_rows(); ++r) {
      if (b->columns[1].string_at(r) == "sepsis_sirs_lactate") {
        EXPECT_EQ(b->columns[0].string_at(r), "p2");
        EXPECT_EQ(b->columns[6].string_at(r), "SIRS 2 >= 2 and lactate 2.5 > 2 mmol/L; inputs: i");
      }
    }
  }
}

TEST_F(ClinicalAlerts, RulesCanBeSwitchedOff) {
  auto h = harness(cfg({{"rules", testing::list({"news2_urgent", "sepsis_sirs_lactate"})}}));
  h->push(0, rows({{"p1", t0, 9, false, 3}}));
  h->watermark(t0);
  EXPECT_EQ(alerts(*h), strings{"news2_urgent|1|open|" + at(0) + "|9"});
}

TEST_F(ClinicalAlerts, ShuffledArrivalGivesIdenticalAlerts) {
  std::vector<score> all;
  std::mt19937 gen(7);
  for (const std::string p : {"p1", "p2", "p3", "p4"}) {
    for (int i = 0; i < 60; ++i) {
      all.push_back({p, t0 + i * 5 * minute, static_cast<int64_t>(gen() % 9), gen() % 7 == 0,
                     static_cast<int64_t>(gen() % 3), static_cast<int64_t>(gen() % 4),
                     static_cast<double>(gen() % 40) / 10});
    }
  }
  const auto run = [&](const std::vector<score>& input) {
    auto h = harness(cfg({{"resolve_after", str("30m")}}));
    for (size_t i = 0; i < input.size(); i += 13) {
      h->push(0, rows(std::vector<score>(
                     input.begin() + static_cast<std::ptrdiff_t>(i),
                     input.begin() + static_cast<std::ptrdiff_t>(std::min(input.size(), i + 13)))));
    }
    h->watermark(t0 + 100 * minute);
    h->finish();
    return h->rows(0);
  };
  const strings expected = run(all);
  EXPECT_GE(expected.size(), 10u);
  for (int round = 0; round < 4; ++round) {
    std::vector<score> shuffled = all;
    std::shuffle(shuffled.begin(), shuffled.end(), gen);
    EXPECT_EQ(run(shuffled), expected) << "round " << round;
  }
}

TEST_F(ClinicalAlerts, ATimerAppliesExactlyTheRecordOfItsTime) {
  auto h = harness();
  // The second record at t0 + 1 min replaces the first (NEWS2 7 escalates, 3 would not).
  h->push(0, rows({{"p1", t0 + 2 * minute, 1},
                   {"p1", t0 + minute, 3},
                   {"p1", t0, 5},
                   {"p1", t0 + minute, 7}}));
  auto pending =
      h->context().state->declare("clinical_alerts_pending_by_time", state_backend::kind::value);
  ASSERT_TRUE(pending.ok());
  // The namespaces (event times) of the pending entries.
  const auto pending_times = [&] {
    return testing::value_state_namespaces(*h->context().state, *pending);
  };
  EXPECT_EQ(pending_times(), (std::vector<int64_t>{t0, t0 + minute, t0 + 2 * minute}));
  h->watermark(t0);
  EXPECT_EQ(alerts(*h), strings{"news2_urgent|1|open|" + at(0) + "|5"});
  EXPECT_EQ(pending_times(), (std::vector<int64_t>{t0 + minute, t0 + 2 * minute}));
  h->watermark(t0 + minute);
  EXPECT_EQ(alerts(*h), (strings{"news2_urgent|1|open|" + at(0) + "|5",
                                 "news2_emergency|2|escalate|" + at(1) + "|7"}));
  EXPECT_EQ(pending_times(), std::vector<int64_t>{t0 + 2 * minute});
  h->watermark(t0 + 2 * minute);
  EXPECT_EQ(alerts(*h).size(), 2u);
  EXPECT_TRUE(pending_times().empty());
  h->watermark(t0 + 122 * minute);
  EXPECT_EQ(alerts(*h).back(), "news2_emergency|2|resolve|" + at(122) + "|1");
}

TEST_F(ClinicalAlerts, LateRecordsGoToTheLatePort) {
  auto h = harness();
  h->watermark(t0);
  h->push(0, rows({{"p1", t0, 9}, {"p1", t0 + 1, 9}}));
  EXPECT_EQ(h->rows(1).size(), 1u);
  EXPECT_EQ(h->context().late_records, 1u);
  h->watermark(t0 + 1);
  EXPECT_EQ(alerts(*h).size(), 1u);
}

TEST_F(ClinicalAlerts, StateIsReleasedAfterResolveAndRefractory) {
  auto h = harness(cfg({{"resolve_after", str("10m")}, {"refractory", str("60m")}}));
  h->push(0, rows({{"p1", t0, 5}, {"p1", t0 + minute, 0}, {"p2", t0, 0}}));
  h->watermark(t0 + minute);
  EXPECT_EQ(episode_entries(*h), 1u) << "a patient who never alerted keeps no state";
  h->watermark(t0 + 11 * minute);
  EXPECT_EQ(alerts(*h).back(), "news2_urgent|1|resolve|" + at(11) + "|0");
  EXPECT_EQ(episode_entries(*h), 1u) << "kept for the refractory period";
  h->watermark(t0 + 60 * minute);
  EXPECT_EQ(episode_entries(*h), 0u);
  EXPECT_EQ(h->context().timers->size(), 0u);
}

}  // namespace
}  // namespace vigil
