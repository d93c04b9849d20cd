#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "common/key.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

/// The clinical operators chained as a job would chain them: clinical_ingest, key_by patient,
/// clinical_scores, clinical_alerts; and clinical_scores across a checkpoint and restore.

namespace vigil {
namespace {

using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;
using strings = std::vector<std::string>;

constexpr int64_t minute = 60'000'000;
constexpr int64_t t0 = 1710253800LL * 1000000;  // 2024-03-12T14:30:00Z

/// An ORU^R01 for MRN004521 at 2024-03-12 14:<mm> UTC with HR, RR, SBP, temperature (°F),
/// SpO2 and GCS.
std::string oru(const std::string& id, int mm, int hr, int rr, int sbp, double temp_f, int spo2,
                int gcs) {
  const std::string ts = "2024031214" + std::to_string(mm) + "00";
  const auto obx = [&](int n, const std::string& code, const std::string& v,
                       const std::string& unit) {
    return "OBX|" + std::to_string(n) + "|NM|" + code + "^^LN||" + v + "|" + unit + "|||||F|||" +
           ts + "\r";
  };
  char temp[16];
  std::snprintf(temp, sizeof temp, "%.1f", temp_f);
  return "MSH|^~\\&|MON|ICU|ENG|HOSP|" + ts + "||ORU^R01|" + id + "|P|2.5\r" +
         "PID|1||MRN004521^^^HOSP^MR\rPV1|1|I|MICU||||||||||||||||VN1\r" +
         obx(1, "8867-4", std::to_string(hr), "/min") +
         obx(2, "9279-1", std::to_string(rr), "/min") +
         obx(3, "8480-6", std::to_string(sbp), "mm[Hg]") + obx(4, "8310-5", temp, "[degF]") +
         obx(5, "59408-5", std::to_string(spo2), "%") +
         obx(6, "9269-2", std::to_string(gcs), "{score}");
}

/// `b` keyed on field 0, as key_by would key it.
batch_ptr keyed_on_first_field(const record_batch& b) {
  auto copy = std::make_shared<record_batch>(b);
  copy->key_hash.clear();
  std::string k;
  for (size_t r = 0; r < b.num_rows(); ++r) {
    k.clear();
    encode_key(b, {0}, r, k);
    copy->key_hash.push_back(hash_encoded_key(k));
  }
  return copy;
}

class ClinicalPipeline : public ::testing::Test {
 protected:
  ClinicalPipeline() {
    register_clinical_operators(registry_);
    ::setenv("VIGIL_TEST_PIPELINE_KEY", "pipeline-test-key-0123456789", 1);
    std::string templ = (std::filesystem::temp_directory_path() / "vigil-clinical-XXXXXX").string();
    EXPECT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  ~ClinicalPipeline() override {
    ::unsetenv("VIGIL_TEST_PIPELINE_KEY");
    std::filesystem::remove_all(dir_);
  }

  operator_registry registry_;
  std::filesystem::path dir_;
  schema_ptr raw_ = make_schema({{"raw", type_id::string, false}});
};

TEST_F(ClinicalPipeline, Hl7MessagesToScoresToAlerts) {
  operator_harness ingest(
      registry_, "clinical_ingest",
      cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("VIGIL_TEST_PIPELINE_KEY")}}),
      {{raw_, {}}});
  ingest.push(0, make_rows(raw_,
                           {{oru("M1", 30, 80, 16, 125, 98.6, 97, 15)},
                            {oru("M2", 45, 112, 22, 104, 100.9, 94, 15)},
                            {oru("M3", 55, 135, 27, 88, 102.4, 90, 13)}},
                           {0, 0, 0}));
  ASSERT_EQ(ingest.rows(0).size(), 18u);
  EXPECT_TRUE(ingest.rows(1).empty());

  const std::vector<stream_info> observations = {{ingest.plan().outputs[0].schema, {0}}};
  operator_harness scores(registry_, "clinical_scores", {}, observations);
  for (const batch_ptr& b : ingest.batches(0)) scores.push(0, keyed_on_first_field(*b));

  operator_harness alerts(registry_, "clinical_alerts", {}, {scores.plan().outputs[0]});
  const auto step = [&](int64_t wm) {
    const size_t before = scores.batches(0).size();
    scores.watermark(wm);
    for (size_t i = before; i < scores.batches(0).size(); ++i) {
      alerts.push(0, scores.batches(0)[i]);
    }
    alerts.watermark(wm);
  };
  step(t0);
  step(t0 + 15 * minute);
  step(t0 + 25 * minute);
  ASSERT_EQ(scores.batches(0).size(), 3u);
  strings news2;
  for (const batch_ptr& b : scores.batches(0)) {
    news2.push_back(std::to_string(b->columns[2].ints[0]) + "/" +
                    std::string(b->columns[4].string_at(0)));
  }
  // 14:30 all normal (air/oxygen unknown); 14:45 HR 112: 2, RR 22: 2, SBP 104: 1, T 38.3: 1,
  // SpO2 94: 1; 14:55 HR 135: 3, RR 27: 3, SBP 88: 3, T 39.1: 2, SpO2 90: 3, GCS 13: 3.
  EXPECT_EQ(news2, (strings{"0/low", "7/high", "17/high"}));
  const strings got = alerts.rows(0);
  // 14:45: NEWS2 7 opens the emergency episode (qSOFA 1); 14:55: NEWS2 17 stays in it (no
  // level above 2), qSOFA 3 opens sepsis_qsofa; SIRS 3 has no lactate.
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("|news2_emergency|2|open|" + std::to_string(t0 + 15 * minute)),
            std::string::npos)
      << got[0];
  EXPECT_NE(got[1].find("|sepsis_qsofa|1|open|" + std::to_string(t0 + 25 * minute) + "|3|"),
            std::string::npos)
      << got[1];
  for (operator_harness* h : {&ingest, &scores, &alerts}) {
    for (const std::string& row : h->rows(0)) {
      EXPECT_EQ(row.find("MRN004521"), std::string::npos) << row;
    }
  }
}

TEST_F(ClinicalPipeline, ScoresSurviveACheckpointAndRestore) {
  const schema_ptr obs = make_schema({{"patient", type_id::string, false},
                                      {"code", type_id::string, false},
                                      {"value", type_id::float64, false},
                                      {"status", type_id::string, false},
                                      {"message_id", type_id::string, false}});
  config_map no_config;
  plan_context pc;
  pc.node_id = "scores";
  pc.config = &no_config;
  pc.inputs = {{obs, {0}}};
  const operator_factory& f = *registry_.find("clinical_scores");
  auto plan = f.plan(pc);
  ASSERT_TRUE(plan.ok()) << plan.err().message;
  const auto before = make_rows(
      obs,
      {{std::string("p1"), std::string("8867-4"), 131.0, std::string("final"), std::string("a")},
       {std::string("p1"), std::string("9279-1"), 25.0, std::string("final"), std::string("a")}},
      {t0, t0 + minute}, {0});
  const auto after = make_rows(
      obs,
      {{std::string("p1"), std::string("8480-6"), 85.0, std::string("final"), std::string("b")}},
      {t0 + 2 * minute}, {0});
  struct collect : output {
    strings rows;
    void emit(size_t port, batch_ptr b) override {
      for (size_t r = 0; r < b->num_rows(); ++r) {
        rows.push_back(std::to_string(port) + ":" + testing::row_text(*b, r));
      }
    }
  };

  // Uninterrupted.
  collect straight;
  subtask_driver::options opts;
  opts.node_id = "scores";
  opts.state_dir = (dir_ / "straight").string();
  auto d = subtask_driver::make(f, **plan, opts, straight);
  ASSERT_TRUE(d.ok()) << d.err().message;
  (*d)->process(0, before);
  (*d)->advance_watermark(t0);
  (*d)->process(0, after);
  (*d)->advance_watermark(t0 + 10 * minute);
  ASSERT_TRUE((*d)->finish().ok());
  ASSERT_EQ(straight.rows.size(), 3u);

  // Checkpoint with one observation applied and one pending, then a crash and a restore.
  checkpoint_storage storage(dir_ / "checkpoints");
  collect first;
  opts.state_dir = (dir_ / "first").string();
  auto d1 = subtask_driver::make(f, **plan, opts, first);
  ASSERT_TRUE(d1.ok());
  (*d1)->process(0, before);
  (*d1)->advance_watermark(t0);
  ASSERT_TRUE((*d1)->snapshot(1, storage, "scores-0").ok());
  ASSERT_TRUE(storage.complete(1, "{}").ok());
  d1->reset();

  collect second;
  opts.state_dir = (dir_ / "second").string();
  opts.restore_from = &storage;
  opts.restore_id = 1;
  auto d2 = subtask_driver::make(f, **plan, opts, second);
  ASSERT_TRUE(d2.ok()) << d2.err().message;
  (*d2)->advance_watermark(t0);
  (*d2)->process(0, after);
  (*d2)->advance_watermark(t0 + 10 * minute);
  ASSERT_TRUE((*d2)->finish().ok());
  strings combined = first.rows;
  combined.insert(combined.end(), second.rows.begin(), second.rows.end());
  EXPECT_EQ(combined, straight.rows);
}

}  // namespace
}  // namespace vigil
