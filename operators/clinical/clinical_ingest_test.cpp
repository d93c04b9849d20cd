#include "operators/clinical/clinical_ingest.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "operators/clinical/clinical_operators.hpp"
#include "operators/clinical/pseudonymize.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;
using strings = std::vector<std::string>;

constexpr std::string_view key = "test-key-0123456789abcdef";
constexpr std::string_view mrn = "MRN004521";

constexpr std::string_view oru =
    "MSH|^~\\&|BEDSIDE_MON|ICU_EAST|SEPSIS_ENGINE|HOSP|20240312143005||ORU^R01^ORU_R01|"
    "MSG000123457|P|2.5\r"
    "PID|1||MRN004521^^^HOSP^MR||DOE^JANE||19580214|F\r"
    "PV1|1|I|MICU^12^B^HOSP||||||||||||||||VN778812\r"
    "OBR|1||VS884512^BEDSIDE_MON|85353-1^Vital signs panel^LN|||20240312143000||||||||||||||||||F\r"
    "OBX|1|NM|8867-4^Heart rate^LN||118|/min^/min^UCUM|||||F|||20240312143000\r"
    "OBX|2|NM|9279-1^Respiratory rate^LN||24|/min^/min^UCUM|||||F|||20240312143000\r"
    "OBX|3|NM|8480-6^Systolic blood pressure^LN||96|mm[Hg]^mmHg^UCUM|||||F|||20240312143000\r"
    "OBX|4|NM|8310-5^Body temperature^LN||101.5|[degF]^degF^UCUM|||||F|||20240312143000\r"
    "OBX|5|NM|59408-5^SpO2 by pulse oximetry^LN||93|%^%^UCUM|||||F|||20240312143000\r";

constexpr std::string_view fhir_hr = R"({
  "resourceType": "Observation",
  "id": "hr-mrn004521-20240312T1430",
  "status": "final",
  "code": { "coding": [ { "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" } ] },
  "subject": { "identifier": { "system": "urn:oid:1.2.3.4.5.HOSP.mrn", "value": "MRN004521" } },
  "encounter": { "identifier": { "value": "VN778812" } },
  "effectiveDateTime": "2024-03-12T14:30:00-05:00",
  "valueQuantity": { "value": 118, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min" }
})";

constexpr int64_t t_1430 = 1710253800LL * 1000000;

class ClinicalIngest : public ::testing::Test {
 protected:
  ClinicalIngest() {
    register_clinical_operators(registry_);
    ::setenv("VIGIL_TEST_INGEST_KEY", std::string(key).c_str(), 1);
    auto p = clinical::pseudonymizer::make(key, "k");
    EXPECT_TRUE(p.ok());
    (*p)->pseudonym(mrn, pseudonym_);
  }
  ~ClinicalIngest() override { ::unsetenv("VIGIL_TEST_INGEST_KEY"); }

  config_map config(std::string_view format) {
    return cfg({{"format", str(std::string(format))},
                {"pseudonym_key_env", str("VIGIL_TEST_INGEST_KEY")}});
  }

  std::vector<stream_info> input() const { return {{schema_, {}}}; }

  batch_ptr messages(const std::vector<std::string>& raw) {
    std::vector<std::vector<testing::cell>> rows;
    std::vector<int64_t> times;
    for (const std::string& r : raw) {
      rows.push_back({int64_t{7}, r});
      times.push_back(1000);
    }
    return make_rows(schema_, rows, times);
  }

  std::string plan_error(const config_map& c, std::vector<stream_info> in = {}) {
    auto p = operator_harness::try_plan(registry_, "clinical_ingest", c, in.empty() ? input() : in);
    return p.ok() ? "<ok>" : p.err().message;
  }

  std::string open_error(const config_map& c) {
    auto p = operator_harness::try_plan(registry_, "clinical_ingest", c, input());
    if (!p.ok()) return "plan: " + p.err().message;
    struct discard : output {
      void emit(size_t, batch_ptr) override {}
    } out;
    subtask_driver::options opts;
    opts.node_id = "ingest";
    auto d = subtask_driver::make(*registry_.find("clinical_ingest"), **p, opts, out);
    return d.ok() ? "<ok>" : d.err().message;
  }

  /// Every string cell emitted on every port, lowercased.
  static strings all_strings(operator_harness& h) {
    strings all;
    for (size_t port = 0; port < 2; ++port) {
      for (const batch_ptr& b : h.batches(port)) {
        for (const column& c : b->columns) {
          if (c.type != type_id::string) continue;
          for (size_t r = 0; r < c.size(); ++r) {
            std::string s(c.string_at(r));
            std::transform(s.begin(), s.end(), s.begin(),
                           [](unsigned char ch) { return std::tolower(ch); });
            all.push_back(s);
          }
        }
      }
    }
    return all;
  }

  /// Rows of `port` without the ingest_time column (the last), as text.
  static strings rows_without_ingest_time(operator_harness& h, size_t port) {
    strings out;
    for (std::string r : h.rows(port)) {
      const size_t at = r.rfind('@');
      const size_t bar = r.rfind('|', at);
      out.push_back(r.substr(0, bar) + r.substr(at));
    }
    return out;
  }

  operator_registry registry_;
  schema_ptr schema_ =
      make_schema({{"offset", type_id::int64, false}, {"raw", type_id::string, true}});
  std::string pseudonym_;
};

TEST_F(ClinicalIngest, PlanDeclaresObservationAndDeadLetterSchemas) {
  operator_harness h(registry_, "clinical_ingest", config("hl7"), input());
  ASSERT_EQ(h.plan().outputs.size(), 2u);
  EXPECT_EQ(h.plan().outputs[0].schema->to_string(),
            "patient:string, encounter:string?, code:string, value:double, unit:string, "
            "status:string, event_time:timestamp, message_id:string, ingest_time:timestamp");
  EXPECT_EQ(h.plan().outputs[1].schema->to_string(),
            "reason:string, detail:string, raw:string, ingest_time:timestamp");
  EXPECT_FALSE(h.plan().outputs[0].keyed());
  const operator_factory* f = registry_.find("clinical_ingest");
  EXPECT_EQ(f->traits().output_ports, (strings{"out", "dead"}));
  EXPECT_FALSE(f->traits().stateful);
}

TEST_F(ClinicalIngest, RefusedConfigsNameTheirKey) {
  const auto has = [](const std::string& msg, std::string_view k) {
    return msg.find("config." + std::string(k) + ": ") != std::string::npos;
  };
  EXPECT_TRUE(has(plan_error(cfg({{"pseudonym_key_env", str("X")}})), "format"));
  EXPECT_TRUE(
      has(plan_error(cfg({{"format", str("csv")}, {"pseudonym_key_env", str("X")}})), "format"));
  EXPECT_TRUE(has(plan_error(cfg({{"format", str("hl7")}})), "pseudonym_key_file"));
  EXPECT_TRUE(has(plan_error(cfg({{"format", str("hl7")},
                                  {"pseudonym_key_env", str("X")},
                                  {"pseudonym_key_file", str("f")}})),
                  "pseudonym_key_file"));
  EXPECT_TRUE(has(
      plan_error(
          cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("X")}, {"field", str("body")}})),
      "field"));
  EXPECT_TRUE(has(
      plan_error(
          cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("X")}, {"field", str("offset")}})),
      "field"));
  EXPECT_TRUE(has(
      plan_error(
          cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("X")}, {"validity", str("1h")}})),
      "validity"));
}

TEST_F(ClinicalIngest, RefusesToStartWithoutAUsableKey) {
  const std::string unset = open_error(
      cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("VIGIL_TEST_NO_SUCH_VAR")}}));
  EXPECT_NE(unset.find("config.pseudonym_key_env: environment variable "
                       "'VIGIL_TEST_NO_SUCH_VAR' is not set"),
            std::string::npos)
      << unset;
  const std::string missing =
      open_error(cfg({{"format", str("hl7")}, {"pseudonym_key_file", str("no-such-dir/key")}}));
  EXPECT_NE(missing.find("config.pseudonym_key_file: cannot read"), std::string::npos) << missing;
  ::setenv("VIGIL_TEST_SHORT_KEY", "tooshort", 1);
  const std::string short_key =
      open_error(cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("VIGIL_TEST_SHORT_KEY")}}));
  ::unsetenv("VIGIL_TEST_SHORT_KEY");
  EXPECT_NE(short_key.find("config.pseudonym_key_env: the pseudonym key has 8 bytes"),
            std::string::npos)
      << short_key;
  EXPECT_EQ(short_key.find("tooshort"), std::string::npos) << "the key is never shown";
  EXPECT_EQ(open_error(config("hl7")), "<ok>");
}

TEST_F(ClinicalIngest, KeyFromAFile) {
  std::string templ = (std::filesystem::temp_directory_path() / "vigil-ingest-XXXXXX").string();
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  const std::filesystem::path dir = templ;
  { std::ofstream(dir / "key") << key << "\n"; }
  operator_harness h(registry_, "clinical_ingest",
                     cfg({{"format", str("hl7")},
                          {"pseudonym_key_file", str((dir / "key").string())},
                          {"field", str("raw")}}),
                     input());
  h.push(0, messages({std::string(oru)}));
  ASSERT_EQ(h.rows(0).size(), 5u);
  EXPECT_EQ(h.rows(0)[0].substr(0, pseudonym_.size()), pseudonym_)
      << "the same key gives the same pseudonym from a file and the environment";
  std::filesystem::remove_all(dir);
}

TEST_F(ClinicalIngest, Hl7MessageBecomesNormalizedObservations) {
  operator_harness h(registry_, "clinical_ingest", config("hl7"), input());
  h.push(0, messages({std::string(oru)}));
  const std::string p = pseudonym_;
  const std::string tail = "|" + std::to_string(t_1430) + "|MSG000123457@" + std::to_string(t_1430);
  EXPECT_EQ(rows_without_ingest_time(h, 0),
            (strings{p + "|VN778812|8867-4|118|/min|final" + tail,
                     p + "|VN778812|9279-1|24|/min|final" + tail,
                     p + "|VN778812|8480-6|96|mm[Hg]|final" + tail,
                     p + "|VN778812|8310-5|38.6111|Cel|final" + tail,
                     p + "|VN778812|2708-6|93|%|final" + tail}));
  EXPECT_TRUE(h.rows(1).empty());
  const batch_ptr& b = h.batches(0).at(0);
  const int64_t ingest = b->columns[8].ints[0];
  EXPECT_GT(ingest, t_1430) << "ingest time is the processing time";
  for (const std::string& s : all_strings(h)) {
    EXPECT_EQ(s.find("mrn004521"), std::string::npos) << s;
  }
}

TEST_F(ClinicalIngest, FhirObservationWithTheMrnInItsId) {
  operator_harness h(registry_, "clinical_ingest", config("fhir"), input());
  h.push(0, messages({std::string(fhir_hr)}));
  const int64_t t = t_1430 + 5LL * 3600 * 1000000;
  EXPECT_EQ(rows_without_ingest_time(h, 0),
            (strings{pseudonym_ + "|VN778812|8867-4|118|/min|final|" + std::to_string(t) + "|hr-" +
                     pseudonym_ + "-20240312T1430@" + std::to_string(t)}));
  for (const std::string& s : all_strings(h)) {
    EXPECT_EQ(s.find("mrn004521"), std::string::npos) << s;
  }
}

TEST_F(ClinicalIngest, OneBadObxGoesToDeadTheOthersGoOut) {
  std::string m(oru);
  m += "OBX|6|NM|8867-4^Heart rate^LN||950|/min^/min^UCUM|||||F|||20240312143000\r";
  operator_harness h(registry_, "clinical_ingest", config("hl7"), input());
  h.push(0, messages({m}));
  EXPECT_EQ(h.rows(0).size(), 5u);
  ASSERT_EQ(h.batches(1).size(), 1u);
  const record_batch& dead = *h.batches(1)[0];
  ASSERT_EQ(dead.num_rows(), 1u);
  EXPECT_EQ(dead.columns[0].string_at(0), "implausible_value");
  EXPECT_EQ(dead.columns[1].string_at(0),
            "OBX #6: heart_rate 950 is outside the plausible range 0..300 /min");
  EXPECT_NE(dead.columns[2].string_at(0).find("OBX|6|NM|8867-4"), std::string::npos);
  EXPECT_EQ(dead.event_time[0], 1000) << "dead letters keep the input record's event time";
  for (const std::string& s : all_strings(h)) {
    EXPECT_EQ(s.find("mrn004521"), std::string::npos) << "redacted in the raw text too: " << s;
  }
}

TEST_F(ClinicalIngest, MessageErrorsAndNullInputGoToDead) {
  operator_harness h(registry_, "clinical_ingest", config("hl7"), input());
  std::string no_id(oru);
  no_id.replace(no_id.find("MSG000123457"), 12, "");
  auto b = make_rows(schema_,
                     {{int64_t{1}, std::string("garbage")},
                      {int64_t{2}, std::monostate{}},
                      {int64_t{3}, no_id},
                      {int64_t{4}, std::string("MSH|^~\\&|")}},
                     {10, 20, 30, 40});
  h.push(0, b);
  EXPECT_TRUE(h.rows(0).empty());
  ASSERT_EQ(h.batches(1).size(), 1u);
  const record_batch& dead = *h.batches(1)[0];
  strings reasons;
  for (size_t r = 0; r < dead.num_rows(); ++r) {
    reasons.push_back(std::string(dead.columns[0].string_at(r)) + "@" +
                      std::to_string(dead.event_time[r]));
  }
  EXPECT_EQ(reasons,
            (strings{"not_hl7@10", "missing_input@20", "missing_message_id@30", "truncated@40"}));
  EXPECT_EQ(dead.columns[2].string_at(0), "garbage");
  EXPECT_EQ(dead.columns[2].string_at(2).find("MRN004521"), std::string::npos);
  EXPECT_NE(dead.columns[2].string_at(2).find(pseudonym_), std::string::npos);
}

TEST_F(ClinicalIngest, DeadLetterRawIsCutAt64KiB) {
  operator_harness h(registry_, "clinical_ingest", config("fhir"), input());
  std::string big = "{\"resourceType\": \"Observation\", \"note\": \"" + std::string(70000, 'x') +
                    "\"";  // Unterminated object.
  h.push(0, messages({big}));
  ASSERT_EQ(h.batches(1).size(), 1u);
  EXPECT_EQ(h.batches(1)[0]->columns[0].string_at(0), "invalid_json");
  EXPECT_EQ(h.batches(1)[0]->columns[2].string_at(0).size(), 64u * 1024);
}

TEST_F(ClinicalIngest, LargeBatchesAreSplitAtTheBatchSize) {
  operator_harness h(registry_, "clinical_ingest", config("hl7"), input(), 0, 1, 4);
  h.push(0, messages({std::string(oru), std::string(oru)}));
  size_t rows = 0;
  for (const batch_ptr& b : h.batches(0)) {
    EXPECT_LE(b->num_rows(), 4u);
    rows += b->num_rows();
  }
  EXPECT_EQ(rows, 10u);
}

}  // namespace
}  // namespace vigil
