#include "operators/clinical/clinical_scores.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>

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
constexpr int64_t hour = 60 * minute;
constexpr int64_t t0 = 1710253800LL * 1000000;  // 2024-03-12T14:30:00Z

/// One observation as clinical_ingest emits it.
struct obs {
  std::string patient;
  std::string code;
  double value;
  int64_t time;
  std::string status = "final";
  std::string message_id = "m";
};

class ClinicalScores : public ::testing::Test {
 protected:
  ClinicalScores() { register_clinical_operators(registry_); }

  std::vector<stream_info> input() const { return {{schema_, {0}}}; }

  batch_ptr rows(const std::vector<obs>& o) {
    std::vector<std::vector<cell>> r;
    std::vector<int64_t> times;
    for (const obs& x : o) {
      r.push_back({x.patient, std::monostate{}, x.code, x.value, std::string("u"), x.status, x.time,
                   x.message_id, int64_t{0}});
      times.push_back(x.time);
    }
    return make_rows(schema_, r, times, {0});
  }

  /// Pushes `input` in batches of `batch` rows.
  void push_in_batches(operator_harness& h, const std::vector<obs>& input, size_t batch) {
    for (size_t i = 0; i < input.size(); i += batch) {
      h.push(0, rows(std::vector<obs>(input.begin() + static_cast<std::ptrdiff_t>(i),
                                      input.begin() + static_cast<std::ptrdiff_t>(
                                                          std::min(input.size(), i + batch)))));
    }
  }

  /// `per_patient` random observations of p1, p2 and p3: one of the first `codes` codes of a
  /// fixed list, at one of `times` times 10 minutes apart from t0, final or corrected, under one
  /// of three message ids. After every `dropped_every`-th (0: never) a row of an unused code at
  /// the same time.
  static std::vector<obs> random_observations(std::mt19937& gen, int per_patient, size_t codes,
                                              int times, int dropped_every = 0) {
    static const char* code_list[] = {"8867-4", "9279-1", "8480-6", "8310-5", "2708-6",
                                      "3150-0", "9269-2", "2524-7", "6690-2", "777-3",
                                      "2160-0", "1975-2", "2703-7", "8478-0"};
    static const double value_list[] = {95,  23, 99,  38.4, 92,  0.4, 14,
                                        2.5, 13, 140, 1.5,  2.2, 70,  65};
    std::vector<obs> all;
    for (const std::string p : {"p1", "p2", "p3"}) {
      for (int i = 0; i < per_patient; ++i) {
        const size_t c = gen() % codes;
        all.push_back(
            {p, code_list[c], value_list[c] + static_cast<double>(gen() % 5),
             t0 + static_cast<int64_t>(gen() % static_cast<unsigned>(times)) * 10 * minute,
             gen() % 4 == 0 ? "corrected" : "final", "M" + std::to_string(gen() % 3)});
        if (dropped_every != 0 && i % dropped_every == 0) {
          all.push_back({p, "0000-0", 1, all.back().time});
        }
      }
    }
    return all;
  }

  std::unique_ptr<operator_harness> harness(const config_map& c = {}) {
    return std::make_unique<operator_harness>(registry_, "clinical_scores", c, input());
  }

  /// The score records emitted so far: field name → text, per record.
  static std::vector<std::map<std::string, std::string>> records(operator_harness& h) {
    std::vector<std::map<std::string, std::string>> out;
    for (const batch_ptr& b : h.batches(0)) {
      for (size_t r = 0; r < b->num_rows(); ++r) {
        std::map<std::string, std::string> rec;
        const std::string text = testing::row_text(*b, r);
        size_t start = 0;
        for (size_t c = 0; c < b->schema->size(); ++c) {
          const size_t end = c + 1 == b->schema->size() ? text.rfind('@') : text.find('|', start);
          rec[b->schema->at(c).name] = text.substr(start, end - start);
          start = end + 1;
        }
        out.push_back(std::move(rec));
      }
    }
    return out;
  }

  std::string plan_error(const config_map& c, std::vector<stream_info> in = {}) {
    auto p = operator_harness::try_plan(registry_, "clinical_scores", c, in.empty() ? input() : in);
    return p.ok() ? "<ok>" : p.err().message;
  }

  /// The reference message's vitals (clinical_ingest output) for patient `p` at time `t`.
  static std::vector<obs> vitals(const std::string& p, int64_t t) {
    return {{p, "8867-4", 118, t, "final", "MSG1"},
            {p, "9279-1", 24, t, "final", "MSG1"},
            {p, "8480-6", 96, t, "final", "MSG1"},
            {p, "8310-5", 38.6111, t, "final", "MSG1"},
            {p, "2708-6", 93, t, "final", "MSG1"}};
  }

  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, false},
                                    {"encounter", type_id::string, true},
                                    {"code", type_id::string, false},
                                    {"value", type_id::float64, false},
                                    {"unit", type_id::string, false},
                                    {"status", type_id::string, false},
                                    {"event_time", type_id::timestamp, false},
                                    {"message_id", type_id::string, false},
                                    {"ingest_time", type_id::timestamp, false}});
};

TEST_F(ClinicalScores, PlanChecksInputAndConfig) {
  EXPECT_EQ(plan_error({}), "<ok>");
  EXPECT_NE(plan_error({}, {{schema_, {}}}).find("keyed by 'patient'"), std::string::npos);
  EXPECT_NE(plan_error({}, {{schema_, {2}}}).find("keyed by 'patient'"), std::string::npos);
  auto no_status = make_schema({{"patient", type_id::string, false},
                                {"code", type_id::string, false},
                                {"value", type_id::float64, false},
                                {"message_id", type_id::string, false}});
  EXPECT_NE(plan_error({}, {{no_status, {0}}}).find("'status' is missing"), std::string::npos);
  auto int_value = make_schema({{"patient", type_id::string, false},
                                {"code", type_id::string, false},
                                {"value", type_id::int64, false},
                                {"status", type_id::string, false},
                                {"message_id", type_id::string, false}});
  EXPECT_NE(plan_error({}, {{int_value, {0}}}).find("'value' must be double"), std::string::npos);
  const auto has = [](const std::string& msg, std::string_view k) {
    return msg.find("config." + std::string(k) + ": ") != std::string::npos;
  };
  EXPECT_TRUE(has(plan_error(cfg({{"vitals_validity", str("-1h")}})), "vitals_validity"));
  EXPECT_TRUE(has(plan_error(cfg({{"vitals_validity", str("0s")}})), "vitals_validity"));
  EXPECT_TRUE(has(plan_error(cfg({{"labs_validity", str("soon")}})), "labs_validity"));
  EXPECT_TRUE(has(plan_error(cfg({{"spo2_scale2_code", str("8867-4")}})), "spo2_scale2_code"));
  EXPECT_TRUE(
      has(plan_error(cfg({{"spo2_scale2_code", str("X")}, {"supplemental_o2_code", str("X")}})),
          "supplemental_o2_code"));
  EXPECT_TRUE(has(plan_error(cfg({{"validity", str("1h")}})), "validity"));

  operator_harness h(registry_, "clinical_scores", {}, input());
  ASSERT_EQ(h.plan().outputs.size(), 2u);
  EXPECT_EQ(h.plan().outputs[0].key_fields, std::vector<int>{0});
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string, event_time:timestamp, news2:int64, news2_scale:int64, "
            "news2_band:string, news2_red:bool, qsofa:int64, sirs:int64, sofa:int64, "
            "news2_resp_rate:int64, news2_spo2:int64, news2_air_or_oxygen:int64, "
            "news2_sbp:int64, news2_pulse:int64, news2_consciousness:int64, "
            "news2_temperature:int64, qsofa_resp_rate:int64, qsofa_sbp:int64, "
            "qsofa_mentation:int64, sirs_temperature:int64, sirs_heart_rate:int64, "
            "sirs_respiratory:int64, sirs_white_cells:int64, sofa_respiration:int64, "
            "sofa_coagulation:int64, sofa_liver:int64, sofa_cardiovascular:int64, "
            "sofa_cns:int64, sofa_renal:int64, lactate:double?, missing:string, inputs:string");
  EXPECT_EQ(*h.plan().outputs[1].schema, *schema_);
  const operator_factory* f = registry_.find("clinical_scores");
  EXPECT_TRUE(f->traits().keyed);
  EXPECT_TRUE(f->traits().stateful);
}

TEST_F(ClinicalScores, ScoresTheReferenceVitalsOnceTheWatermarkPasses) {
  auto h = harness();
  h->push(0, rows(vitals("p1", t0)));
  h->watermark(t0 - 1);
  EXPECT_TRUE(h->rows(0).empty()) << "buffered until the watermark passes the event time";
  h->watermark(t0);
  const auto recs = records(*h);
  ASSERT_EQ(recs.size(), 1u);
  const auto& r = recs[0];
  EXPECT_EQ(r.at("patient"), "p1");
  EXPECT_EQ(r.at("event_time"), std::to_string(t0));
  // RR 24: 2, SpO2 93: 2, air/O2 unknown: 0, SBP 96: 2, HR 118: 2, GCS missing: 0, T 38.6: 1.
  EXPECT_EQ(r.at("news2"), "9");
  EXPECT_EQ(r.at("news2_band"), "high");
  EXPECT_EQ(r.at("news2_red"), "false");
  EXPECT_EQ(r.at("news2_scale"), "1");
  EXPECT_EQ(r.at("news2_temperature"), "1");
  EXPECT_EQ(r.at("qsofa"), "2");
  EXPECT_EQ(r.at("sirs"), "3");
  EXPECT_EQ(r.at("sofa"), "0") << "MAP is missing; SBP does not count for SOFA";
  EXPECT_EQ(r.at("lactate"), "null");
  EXPECT_EQ(r.at("missing"),
            "map,fio2,gcs,lactate,wbc,bands,platelets,creatinine,bilirubin,pao2,paco2");
  EXPECT_EQ(r.at("inputs"),
            "heart_rate=118@2024-03-12T14:30:00Z, resp_rate=24@2024-03-12T14:30:00Z, "
            "sbp=96@2024-03-12T14:30:00Z, temperature=38.6111@2024-03-12T14:30:00Z, "
            "spo2=93@2024-03-12T14:30:00Z");
  ASSERT_EQ(h->batches(0).size(), 1u);
  EXPECT_EQ(h->batches(0)[0]->key_hash, rows({{"p1", "8867-4", 1, t0}})->key_hash)
      << "the output is keyed on patient";
}

TEST_F(ClinicalScores, OneRecordPerDistinctTimeWithLatestValuesWithinValidity) {
  auto h = harness(cfg({{"vitals_validity", str("1h")}}));
  h->push(0, rows({{"p1", "8867-4", 118, t0},
                   {"p1", "2524-7", 3.1, t0 + minute},
                   {"p1", "9279-1", 24, t0 + 61 * minute},
                   {"p1", "9279-1", 26, t0 + 30 * hour}}));
  h->watermark(t0 + 30 * hour);
  const auto recs = records(*h);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].at("inputs"), "heart_rate=118@2024-03-12T14:30:00Z");
  EXPECT_EQ(recs[1].at("inputs"),
            "heart_rate=118@2024-03-12T14:30:00Z, lactate=3.1@2024-03-12T14:31:00Z");
  EXPECT_EQ(recs[1].at("lactate"), "3.1");
  EXPECT_EQ(recs[2].at("inputs"),
            "resp_rate=24@2024-03-12T15:31:00Z, lactate=3.1@2024-03-12T14:31:00Z")
      << "heart rate is older than the 1h vitals validity; lactate is within 24h";
  EXPECT_NE(recs[2].at("missing").find("heart_rate"), std::string::npos);
  EXPECT_EQ(recs[3].at("inputs"), "resp_rate=26@2024-03-13T20:30:00Z");
  EXPECT_EQ(recs[3].at("lactate"), "null");
  EXPECT_EQ(recs[3].at("news2_resp_rate"), "3");
  EXPECT_EQ(recs[3].at("news2_band"), "low_medium");
  EXPECT_EQ(recs[3].at("news2_red"), "true");
}

TEST_F(ClinicalScores, CorrectionsReplaceTheValueTheyCorrectInAnyArrivalOrder) {
  const std::vector<obs> base = {
      {"p1", "8867-4", 118, t0, "final", "MSG1"},
      {"p1", "8867-4", 80, t0, "corrected", "MSG2"},  // Same code and time.
      {"p1", "9279-1", 30, t0, "final", "MSG1"},
      {"p1", "9279-1", 16, t0, "amended", "MSG1"},  // Same message id and code.
      {"p1", "8480-6", 150, t0, "preliminary", "MSG0"},
      {"p1", "8480-6", 120, t0, "final", "MSG9"},
  };
  std::vector<obs> order = base;
  std::sort(order.begin(), order.end(), [](const obs& a, const obs& b) {
    return a.message_id < b.message_id || (a.message_id == b.message_id && a.value < b.value);
  });
  std::string first;
  do {
    auto h = harness();
    h->push(0, rows(order));
    h->watermark(t0);
    const auto recs = records(*h);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].at("inputs"),
              "heart_rate=80@2024-03-12T14:30:00Z, resp_rate=16@2024-03-12T14:30:00Z, "
              "sbp=120@2024-03-12T14:30:00Z");
  } while (std::next_permutation(order.begin(), order.begin() + 4,
                                 [](const obs& a, const obs& b) { return a.value < b.value; }));
}

TEST_F(ClinicalScores, ShuffledArrivalGivesIdenticalRecords) {
  std::mt19937 gen(42);
  const std::vector<obs> all = random_observations(gen, 40, 14, 12);
  const auto run = [&](const std::vector<obs>& input, size_t batch) {
    auto h = harness();
    push_in_batches(*h, input, batch);
    h->watermark(t0 + 55 * minute);
    h->watermark(t0 + 3 * hour);
    h->finish();
    return h->rows(0);
  };
  const strings expected = run(all, all.size());
  EXPECT_GE(expected.size(), 30u);
  for (int round = 0; round < 5; ++round) {
    std::vector<obs> shuffled = all;
    std::shuffle(shuffled.begin(), shuffled.end(), gen);
    EXPECT_EQ(run(shuffled, 1 + round * 7), expected) << "round " << round;
  }
}

TEST_F(ClinicalScores, RowsOfOneTimeInARowGiveTheRecordsOfOneByOne) {
  // Consecutive rows of one patient and time share one read and one write of their pending
  // blob (a measurement's observations arrive together); the records must not change.
  std::mt19937 gen(11);
  // Dropped rows (a code the scores do not use) inside the runs.
  const std::vector<obs> all = random_observations(gen, 60, 8, 6, 4);
  const auto run = [&](const std::vector<obs>& input, size_t batch) {
    auto h = harness();
    push_in_batches(*h, input, batch);
    h->watermark(t0 + 3 * hour);
    h->finish();
    return h->rows(0);
  };
  const strings one_by_one = run(all, 1);
  EXPECT_EQ(one_by_one.size(), 18u);  // 3 patients, 6 times.
  // By patient and time: runs of rows share a blob, also across batch boundaries (a group
  // ends with its batch) and with duplicates inside a run.
  std::vector<obs> by_patient_time = all;
  std::stable_sort(by_patient_time.begin(), by_patient_time.end(), [](const obs& a, const obs& b) {
    return std::tie(a.patient, a.time) < std::tie(b.patient, b.time);
  });
  // By time, patients interleaved every few rows: a patient's time comes back after another's.
  std::vector<obs> interleaved = by_patient_time;
  std::stable_sort(interleaved.begin(), interleaved.end(),
                   [](const obs& a, const obs& b) { return a.time < b.time; });
  for (size_t i = 0; i + 3 < interleaved.size(); i += 4) {
    std::swap(interleaved[i + 1], interleaved[i + 3]);
  }
  for (size_t batch : {size_t{1}, size_t{5}, size_t{17}, all.size()}) {
    EXPECT_EQ(run(by_patient_time, batch), one_by_one) << "by patient and time, batch " << batch;
    EXPECT_EQ(run(interleaved, batch), one_by_one) << "interleaved, batch " << batch;
  }
}

TEST_F(ClinicalScores, ATimerAppliesExactlyTheObservationsOfItsTime) {
  auto h = harness();
  h->push(0, rows({{"p1", "8867-4", 80, t0 + 2 * minute},
                   {"p1", "9279-1", 24, t0 + minute},
                   {"p1", "8867-4", 118, t0},
                   {"p2", "8867-4", 90, t0}}));
  auto pending =
      h->context().state->declare("clinical_scores_pending_by_time", state_backend::kind::value);
  ASSERT_TRUE(pending.ok());
  // The namespaces (event times) of the pending entries, over all patients.
  const auto pending_times = [&] {
    return testing::value_state_namespaces(*h->context().state, *pending);
  };
  EXPECT_EQ(pending_times(), (std::vector<int64_t>{t0, t0, t0 + minute, t0 + 2 * minute}));
  h->watermark(t0);
  auto recs = records(*h);
  ASSERT_EQ(recs.size(), 2u);
  for (const auto& r : recs) {
    EXPECT_EQ(r.at("event_time"), std::to_string(t0));
    EXPECT_EQ(r.at("inputs").find("resp_rate"), std::string::npos) << r.at("inputs");
  }
  EXPECT_EQ(pending_times(), (std::vector<int64_t>{t0 + minute, t0 + 2 * minute}));
  h->watermark(t0 + minute);
  recs = records(*h);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[2].at("inputs"),
            "heart_rate=118@2024-03-12T14:30:00Z, resp_rate=24@2024-03-12T14:31:00Z");
  EXPECT_EQ(pending_times(), std::vector<int64_t>{t0 + 2 * minute});
  h->watermark(t0 + 2 * minute);
  recs = records(*h);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[3].at("inputs"),
            "heart_rate=80@2024-03-12T14:32:00Z, resp_rate=24@2024-03-12T14:31:00Z");
  EXPECT_TRUE(pending_times().empty());
}

TEST_F(ClinicalScores, DuplicatesAtOneTimeKeepTheDocumentedWinnerInAnyOrder) {
  const std::vector<obs> all = {
      // Heart rate: final beats preliminary, then the greatest message id wins; per (code,
      // message id) the greater value.
      {"p1", "8867-4", 90, t0, "final", "M1"},
      {"p1", "8867-4", 95, t0, "final", "M1"},
      {"p1", "8867-4", 130, t0, "preliminary", "M4"},
      {"p1", "8867-4", 60, t0, "final", "M3"},
      {"p1", "8867-4", 70, t0, "final", "M2"},
      // Respiratory rate: one message id, the greater value among the finals.
      {"p1", "9279-1", 20, t0, "final", "M1"},
      {"p1", "9279-1", 24, t0, "final", "M1"},
      {"p1", "9279-1", 30, t0, "preliminary", "M1"},
      // Systolic pressure: a correction beats a final with a greater message id.
      {"p1", "8480-6", 120, t0, "final", "M5"},
      {"p1", "8480-6", 100, t0, "corrected", "M1"},
      // A later time, which the first timer must not apply.
      {"p1", "8867-4", 50, t0 + minute, "final", "M9"},
  };
  std::mt19937 gen(7);
  for (int round = 0; round < 40; ++round) {
    std::vector<obs> order = all;
    std::shuffle(order.begin(), order.end(), gen);
    auto h = harness();
    const size_t batch = 1 + static_cast<size_t>(round) % 4;
    push_in_batches(*h, order, batch);
    h->watermark(t0);
    auto recs = records(*h);
    ASSERT_EQ(recs.size(), 1u) << "round " << round;
    EXPECT_EQ(recs[0].at("inputs"),
              "heart_rate=60@2024-03-12T14:30:00Z, resp_rate=24@2024-03-12T14:30:00Z, "
              "sbp=100@2024-03-12T14:30:00Z")
        << "round " << round;
    h->watermark(t0 + minute);
    recs = records(*h);
    ASSERT_EQ(recs.size(), 2u) << "round " << round;
    EXPECT_EQ(recs[1].at("inputs"),
              "heart_rate=50@2024-03-12T14:31:00Z, resp_rate=24@2024-03-12T14:30:00Z, "
              "sbp=100@2024-03-12T14:30:00Z")
        << "round " << round;
  }
}

TEST_F(ClinicalScores, DuplicatesDoNotChangeTheOutput) {
  std::vector<obs> once = vitals("p1", t0);
  std::vector<obs> twice = once;
  twice.insert(twice.end(), once.begin(), once.end());
  auto a = harness();
  a->push(0, rows(once));
  a->watermark(t0);
  auto b = harness();
  b->push(0, rows(twice));
  b->push(0, rows(once));
  b->watermark(t0);
  EXPECT_EQ(a->rows(0), b->rows(0));
  EXPECT_EQ(a->rows(0).size(), 1u);
}

TEST_F(ClinicalScores, LateObservationsGoToTheLatePort) {
  auto h = harness();
  h->push(0, rows({{"p1", "8867-4", 118, t0}}));
  h->watermark(t0);
  h->push(0, rows({{"p1", "8867-4", 80, t0, "corrected", "M2"},
                   {"p1", "8867-4", 70, t0 - minute},
                   {"p1", "8867-4", 90, t0 + 1}}));
  EXPECT_EQ(h->rows(1).size(), 2u);
  EXPECT_EQ(h->context().late_records, 2u);
  h->watermark(t0 + 1);
  const auto recs = records(*h);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].at("inputs"), "heart_rate=90@2024-03-12T14:30:00.000001Z");
}

TEST_F(ClinicalScores, UnusedCodesAndStatusesAreDroppedAndCounted) {
  auto h = harness();
  h->push(0, rows({{"p1", "1234-5", 1, t0},
                   {"p1", "8867-4", 118, t0, "cancelled"},
                   {"p1", "8867-4", 118, t0, "entered-in-error"},
                   {"p1", "14682-9", 100, t0}}));  // A variant code: clinical_ingest maps it.
  h->watermark(t0 + hour);
  EXPECT_TRUE(h->rows(0).empty());
  EXPECT_EQ(h->context().dropped_records, 4u);
  EXPECT_EQ(h->context().timers->size(), 0u);
}

TEST_F(ClinicalScores, Scale2AndOxygenFlags) {
  auto h = harness(
      cfg({{"spo2_scale2_code", str("LOCAL-SCALE2")}, {"supplemental_o2_code", str("LOCAL-O2")}}));
  h->push(0, rows({{"p1", "2708-6", 97, t0},
                   {"p1", "LOCAL-SCALE2", 1, t0 + minute},
                   {"p1", "LOCAL-O2", 1, t0 + 2 * minute},
                   {"p1", "LOCAL-O2", 0, t0 + 3 * minute}}));
  h->watermark(t0 + hour);
  const auto recs = records(*h);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].at("news2_spo2"), "0");
  EXPECT_EQ(recs[0].at("news2_scale"), "1");
  EXPECT_EQ(recs[1].at("news2_scale"), "2");
  EXPECT_EQ(recs[1].at("news2_spo2"), "0") << "97 % on Scale 2, air or oxygen unknown";
  EXPECT_EQ(recs[2].at("news2_spo2"), "3") << "97 % on oxygen, Scale 2";
  EXPECT_EQ(recs[2].at("news2_air_or_oxygen"), "2");
  EXPECT_NE(recs[2].at("inputs").find("supplemental_o2=1@"), std::string::npos);
  EXPECT_EQ(recs[3].at("news2_spo2"), "0");
  EXPECT_EQ(recs[3].at("news2_air_or_oxygen"), "0");
}

TEST_F(ClinicalScores, StateIsCleanedUpAfterTheLongestValidity) {
  auto h = harness();
  h->push(0, rows({{"p1", "8867-4", 118, t0}, {"p2", "8867-4", 90, t0 + hour}}));
  h->watermark(t0 + hour);
  EXPECT_EQ(records(*h).size(), 2u);
  auto latest = h->context().state->declare("clinical_scores_latest", state_backend::kind::value);
  ASSERT_TRUE(latest.ok());
  const auto entries = [&] {
    size_t n = 0;
    h->context().state->scan_all(*latest, [&](uint32_t, std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  };
  EXPECT_EQ(entries(), 2u);
  h->watermark(t0 + 24 * hour);
  EXPECT_EQ(entries(), 2u);
  h->watermark(t0 + 24 * hour + 1);
  EXPECT_EQ(entries(), 1u);
  h->watermark(t0 + 25 * hour + 1);
  EXPECT_EQ(entries(), 0u);
  EXPECT_EQ(h->context().timers->size(), 0u);
}

}  // namespace
}  // namespace vigil
