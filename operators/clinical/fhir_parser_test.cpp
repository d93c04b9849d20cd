#include "operators/clinical/fhir_parser.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vigil::clinical {
namespace {

struct collector : observation_sink {
  std::vector<::vigil::clinical::observation> obs;
  std::vector<int> indexes;
  std::vector<std::string> refusals;  ///< "index:reason".
  std::vector<std::string> details;

  void observation(const observation_ref& o) override {
    obs.push_back({std::string(o.patient), std::string(o.encounter), std::string(o.code), o.value,
                   std::string(o.unit), std::string(o.status), o.event_time,
                   std::string(o.message_id)});
    indexes.push_back(o.index);
  }
  void refused(int index, std::string_view, ingest_errc code, std::string_view detail) override {
    refusals.push_back(std::to_string(index) + ":" + std::string(to_string(code)));
    details.emplace_back(detail);
  }
};

/// 2024-03-12T19:30:00Z (14:30 at -05:00) in µs.
constexpr int64_t t_1930 = 1710271800LL * 1000000;

/// The reference Observation (shared/data/messages/fhir_r4_heartrate.json).
constexpr std::string_view heart_rate = R"({
  "resourceType": "Observation",
  "id": "hr-mrn004521-20240312T1430",
  "meta": { "profile": [ "http://hl7.org/fhir/StructureDefinition/heartrate" ] },
  "identifier": [ { "system": "urn:oid:1.2.3.4.5.ICU_EAST.obs", "value": "MSG000123457-1" } ],
  "status": "final",
  "category": [ { "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs", "display": "Vital Signs" } ] } ],
  "code": { "coding": [ { "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" } ] },
  "subject": { "identifier": { "system": "urn:oid:1.2.3.4.5.HOSP.mrn", "value": "MRN004521" } },
  "encounter": { "identifier": { "value": "VN778812" } },
  "effectiveDateTime": "2024-03-12T14:30:00-05:00",
  "issued": "2024-03-12T14:30:05-05:00",
  "valueQuantity": { "value": 118, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min" }
})";

constexpr std::string_view blood_pressure = R"({
  "resourceType": "Observation", "id": "bp-1", "status": "amended",
  "code": { "coding": [ { "system": "http://loinc.org", "code": "85354-9" } ] },
  "subject": { "reference": "Patient/MRN7" },
  "encounter": { "reference": "Encounter/E9" },
  "effectiveDateTime": "2024-03-12T19:30:00Z",
  "component": [
    { "code": { "coding": [ { "system": "http://snomed.info/sct", "code": "271649006" },
                            { "system": "http://loinc.org", "code": "8480-6" } ] },
      "valueQuantity": { "value": 107.5, "unit": "mmHg", "code": "mm[Hg]" } },
    { "code": { "coding": [ { "system": "http://loinc.org", "code": "8462-4" } ] },
      "valueQuantity": { "value": 60, "unit": "mmHg" } },
    { "code": { "coding": [ { "system": "http://snomed.info/sct", "code": "1" } ] },
      "valueQuantity": { "value": 60, "code": "mm[Hg]" } }
  ]
})";

TEST(FhirParser, ReadsTheReferenceObservation) {
  fhir_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(heart_rate, c, detail), std::nullopt) << detail;
  ASSERT_EQ(c.obs.size(), 1u);
  const auto& o = c.obs[0];
  EXPECT_EQ(o.patient, "MRN004521");
  EXPECT_EQ(o.encounter, "VN778812");
  EXPECT_EQ(o.code, "8867-4");
  EXPECT_EQ(o.value, 118);
  EXPECT_EQ(o.unit, "/min") << "the UCUM code, not the display unit";
  EXPECT_EQ(o.status, "final");
  EXPECT_EQ(o.event_time, t_1930);
  EXPECT_EQ(o.message_id, "hr-mrn004521-20240312T1430");
}

TEST(FhirParser, ComponentsAreObservations) {
  fhir_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(blood_pressure, c, detail), std::nullopt) << detail;
  ASSERT_EQ(c.obs.size(), 2u);
  EXPECT_EQ(c.obs[0].code, "8480-6");
  EXPECT_EQ(c.obs[0].value, 107.5);
  EXPECT_EQ(c.obs[0].unit, "mm[Hg]");
  EXPECT_EQ(c.obs[0].patient, "MRN7");
  EXPECT_EQ(c.obs[0].encounter, "E9");
  EXPECT_EQ(c.obs[0].status, "amended");
  EXPECT_EQ(c.obs[0].message_id, "bp-1");
  EXPECT_EQ(c.obs[1].code, "8462-4");
  EXPECT_EQ(c.obs[1].unit, "mmHg") << "the display unit when there is no code";
  EXPECT_EQ(c.indexes, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.refusals, std::vector<std::string>{"4:not_loinc"});
}

TEST(FhirParser, BundleOfObservations) {
  const std::string bundle = std::string(R"({"resourceType": "Bundle", "type": "collection",
    "entry": [ {"resource": )") +
                             std::string(heart_rate) +
                             R"(}, {"resource": {"resourceType": "Patient", "id": "x"}},
    {"resource": )" + std::string(blood_pressure) +
                             "}]}";
  fhir_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(bundle, c, detail), std::nullopt) << detail;
  ASSERT_EQ(c.obs.size(), 3u);
  EXPECT_EQ(c.indexes, (std::vector<int>{1, 4, 5}));
  EXPECT_EQ(c.refusals, (std::vector<std::string>{"2:wrong_resource_type", "6:not_loinc"}));
}

TEST(FhirParser, DocumentErrors) {
  struct bad {
    std::string_view doc;
    ingest_errc code;
  };
  for (const bad& b : std::vector<bad>{
           {"", ingest_errc::invalid_json},
           {"{\"resourceType\": \"Observation\"", ingest_errc::invalid_json},
           {"[1]", ingest_errc::wrong_resource_type},
           {R"({"resourceType": "Patient"})", ingest_errc::wrong_resource_type},
           {R"({"resourceType": "Bundle", "entry": []})", ingest_errc::empty_bundle},
       }) {
    fhir_parser p;
    collector c;
    std::string detail;
    const auto e = p.parse(b.doc, c, detail);
    ASSERT_TRUE(e.has_value()) << b.doc;
    EXPECT_EQ(*e, b.code) << b.doc << ": " << detail;
  }
}

/// An Observation with `fields` replacing the defaults of the same names.
std::string observation_with(std::string_view id, std::string_view status, std::string_view subject,
                             std::string_view time, std::string_view value) {
  std::string s = R"({"resourceType": "Observation")";
  if (!id.empty()) s += std::string(R"(, "id": )") + std::string(id);
  if (!status.empty()) s += std::string(R"(, "status": )") + std::string(status);
  if (!subject.empty()) s += std::string(R"(, "subject": )") + std::string(subject);
  if (!time.empty()) s += std::string(R"(, "effectiveDateTime": )") + std::string(time);
  s += R"(, "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]})";
  if (!value.empty()) s += ", " + std::string(value);
  return s + "}";
}

TEST(FhirParser, ObservationErrors) {
  const std::string_view id = R"("o1")", st = R"("final")", subj = R"({"reference": "Patient/P1"})",
                         t = R"("2024-03-12T19:30:00Z")",
                         v = R"("valueQuantity": {"value": 80, "code": "/min"})";
  struct bad {
    std::string doc;
    ingest_errc code;
  };
  for (const bad& b : std::vector<bad>{
           {observation_with("", st, subj, t, v), ingest_errc::missing_message_id},
           {observation_with(id, "", subj, t, v), ingest_errc::missing_status},
           {observation_with(id, R"("done")", subj, t, v), ingest_errc::unknown_status},
           {observation_with(id, st, "", t, v), ingest_errc::missing_patient},
           {observation_with(id, st, R"({"reference": "Group/G1"})", t, v),
            ingest_errc::missing_patient},
           {observation_with(id, st, subj, "", v), ingest_errc::missing_effective_time},
           {observation_with(id, st, subj, R"("2024-03-12T19:30:00")", v),
            ingest_errc::bad_timestamp},
           {observation_with(id, st, subj, t, ""), ingest_errc::missing_value},
           {observation_with(id, st, subj, t, R"("valueString": "high")"),
            ingest_errc::non_numeric_value},
           {observation_with(id, st, subj, t, R"("valueQuantity": {"value": "80"})"),
            ingest_errc::non_numeric_value},
           {observation_with(id, st, subj, t, R"("valueQuantity": {"unit": "/min"})"),
            ingest_errc::missing_value},
           {observation_with(id, st, subj, t, R"("component": [])"), ingest_errc::missing_value},
       }) {
    fhir_parser p;
    collector c;
    std::string detail;
    ASSERT_EQ(p.parse(b.doc, c, detail), std::nullopt) << b.doc;
    EXPECT_TRUE(c.obs.empty()) << b.doc;
    EXPECT_EQ(c.refusals, std::vector<std::string>{"1:" + std::string(to_string(b.code))}) << b.doc;
  }
  fhir_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(observation_with(id, st, subj, t, v), c, detail), std::nullopt);
  ASSERT_EQ(c.obs.size(), 1u) << "the base case is valid";
  EXPECT_EQ(c.obs[0].patient, "P1");
  EXPECT_EQ(c.obs[0].encounter, "");
}

TEST(FhirParser, EffectiveInstantAndPeriod) {
  fhir_parser p;
  for (std::string_view when : {R"("effectiveInstant": "2024-03-12T19:30:00.000Z")",
                                R"("effectivePeriod": {"start": "2024-03-12T20:30:00+01:00"})"}) {
    const std::string doc = std::string(R"({"resourceType": "Observation", "id": "a",
      "status": "final", "subject": {"reference": "Patient/P"},
      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
      "valueQuantity": {"value": 1.5e2, "code": "/min"}, )") +
                            std::string(when) + "}";
    collector c;
    std::string detail;
    ASSERT_EQ(p.parse(doc, c, detail), std::nullopt) << detail;
    ASSERT_EQ(c.obs.size(), 1u) << doc;
    EXPECT_EQ(c.obs[0].event_time, t_1930);
    EXPECT_EQ(c.obs[0].value, 150);
  }
}

}  // namespace
}  // namespace vigil::clinical
