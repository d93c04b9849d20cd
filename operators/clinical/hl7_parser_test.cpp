#include "operators/clinical/hl7_parser.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vigil::clinical {
namespace {

/// Collects what the parser reports, as owned copies.
struct collector : observation_sink {
  struct refusal {
    int index;
    ingest_errc code;
    std::string detail;
  };
  std::vector<::vigil::clinical::observation> obs;
  std::vector<int> indexes;
  std::vector<refusal> refused_;

  void observation(const observation_ref& o) override {
    obs.push_back({std::string(o.patient), std::string(o.encounter), std::string(o.code), o.value,
                   std::string(o.unit), std::string(o.status), o.event_time,
                   std::string(o.message_id)});
    indexes.push_back(o.index);
  }
  void refused(int index, std::string_view, ingest_errc code, std::string_view detail) override {
    refused_.push_back({index, code, std::string(detail)});
  }
};

/// 2024-03-12T14:30:00Z in µs.
constexpr int64_t t_1430 = 1710253800LL * 1000000;

/// The reference ORU^R01 message (shared/data/messages/oru_r01_vitals.hl7).
std::string sample_message() {
  return "MSH|^~\\&|BEDSIDE_MON|ICU_EAST|SEPSIS_ENGINE|HOSP|20240312143005||ORU^R01^ORU_R01|"
         "MSG000123457|P|2.5\r"
         "PID|1||MRN004521^^^HOSP^MR||DOE^JANE||19580214|F\r"
         "PV1|1|I|MICU^12^B^HOSP||||||||||||||||VN778812\r"
         "OBR|1||VS884512^BEDSIDE_MON|85353-1^Vital signs "
         "panel^LN|||20240312143000||||||||||||||||||F\r"
         "OBX|1|NM|8867-4^Heart rate^LN||118|/min^/min^UCUM|||||F|||20240312143000\r"
         "OBX|2|NM|9279-1^Respiratory rate^LN||24|/min^/min^UCUM|||||F|||20240312143000\r"
         "OBX|3|NM|8480-6^Systolic blood pressure^LN||96|mm[Hg]^mmHg^UCUM|||||F|||20240312143000\r"
         "OBX|4|NM|8310-5^Body temperature^LN||101.5|[degF]^degF^UCUM|||||F|||20240312143000\r"
         "OBX|5|NM|59408-5^SpO2 by pulse oximetry^LN||93|%^%^UCUM|||||F|||20240312143000\r";
}

/// A message from segments joined with CR.
std::string msg(std::initializer_list<std::string_view> segments, std::string_view sep = "\r") {
  std::string m;
  for (std::string_view s : segments) {
    m.append(s);
    m.append(sep);
  }
  return m;
}

constexpr std::string_view msh =
    "MSH|^~\\&|MON|ICU|ENG|HOSP|20240312143005||ORU^R01^ORU_R01|MSG1|P|2.5";
constexpr std::string_view pid = "PID|1||MRN1^^^HOSP^MR~OTHER^^^X||DOE^JANE";
constexpr std::string_view pv1 = "PV1|1|I|MICU||||||||||||||||VN1";
constexpr std::string_view obr = "OBR|1||VS1|85353-1^Vital signs^LN|||20240312143000";

TEST(Hl7Timestamp, Formats) {
  EXPECT_EQ(parse_hl7_timestamp("202403121430"), t_1430);
  EXPECT_EQ(parse_hl7_timestamp("20240312143000"), t_1430);
  EXPECT_EQ(parse_hl7_timestamp("20240312143000.5"), t_1430 + 500000);
  EXPECT_EQ(parse_hl7_timestamp("20240312143000.123456"), t_1430 + 123456);
  EXPECT_EQ(parse_hl7_timestamp("20240312093000-0500"), t_1430);
  EXPECT_EQ(parse_hl7_timestamp("20240312160000+0130"), t_1430);
  EXPECT_EQ(parse_hl7_timestamp("20240229000000"), 1709164800LL * 1000000);
  EXPECT_EQ(parse_hl7_timestamp("19691231235959"), -1000000);
  for (const char* bad :
       {"", "2024031214", "20240312143", "20241312143000", "20230229000000", "20240312243000",
        "20240312146000", "20240312143060", "20240312143000.", "20240312143000.1234567",
        "20240312143000+05", "20240312143000+1500", "20240312143000Z", "2024-03-12T14:30"}) {
    EXPECT_FALSE(parse_hl7_timestamp(bad).has_value()) << bad;
  }
}

TEST(Hl7Parser, ReadsTheReferenceMessage) {
  const std::string m = sample_message();
  ASSERT_FALSE(m.empty());
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
  EXPECT_TRUE(c.refused_.empty());
  ASSERT_EQ(c.obs.size(), 5u);
  EXPECT_EQ(c.obs[0].patient, "MRN004521");
  EXPECT_EQ(c.obs[0].encounter, "VN778812");
  EXPECT_EQ(c.obs[0].message_id, "MSG000123457");
  EXPECT_EQ(c.obs[0].code, "8867-4");
  EXPECT_EQ(c.obs[0].value, 118);
  EXPECT_EQ(c.obs[0].unit, "/min");
  EXPECT_EQ(c.obs[0].status, "final");
  EXPECT_EQ(c.obs[0].event_time, t_1430);
  EXPECT_EQ(c.obs[3].code, "8310-5");
  EXPECT_EQ(c.obs[3].value, 101.5);
  EXPECT_EQ(c.obs[3].unit, "[degF]");
  EXPECT_EQ(c.obs[4].code, "59408-5");
  EXPECT_EQ(c.obs[4].unit, "%");
  EXPECT_EQ(c.indexes, (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(Hl7Parser, AcceptsLfAndCrlfSegmentEnds) {
  for (std::string_view sep : {"\n", "\r\n"}) {
    const std::string m =
        msg({msh, pid, pv1, obr, "OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20240312143000"}, sep);
    hl7_parser p;
    collector c;
    std::string detail;
    ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
    ASSERT_EQ(c.obs.size(), 1u);
    EXPECT_EQ(c.obs[0].value, 80);
    EXPECT_EQ(c.obs[0].patient, "MRN1") << "first repetition of PID-3";
  }
}

TEST(Hl7Parser, CustomDelimitersAndEscapes) {
  // Field '#', component '!', repetition '*', escape '$', subcomponent '%'.
  const std::string m = msg({"MSH#!*$%#MON#ICU#ENG#HOSP#20240312143005##ORU!R01#ID$F$1#P#2.5",
                             "PID#1##M$S$R$X4E$N1!!!HOSP",
                             "OBX#1#NM#8867-4!HR!LN##+72.5#$X2F$min#####F###202403121430"});
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
  ASSERT_EQ(c.obs.size(), 1u);
  EXPECT_EQ(c.obs[0].message_id, "ID#1");
  EXPECT_EQ(c.obs[0].patient, "M!RNN1");
  EXPECT_EQ(c.obs[0].unit, "/min");
  EXPECT_EQ(c.obs[0].value, 72.5);
  EXPECT_EQ(c.obs[0].encounter, "");
}

TEST(Hl7Parser, AllEscapes) {
  const std::string m =
      msg({"MSH|^~\\&|A|B|C|D|20240312143005||ORU^R01|a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f|P|2.5", pid,
           obr, "OBX|1|NM|8867-4^HR^LN||80|/min|||||F"});
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
  EXPECT_EQ(p.last_header().message_id, "a|b^c&d~e\\f");
  ASSERT_EQ(c.obs.size(), 1u);
  EXPECT_EQ(c.obs[0].message_id, "a|b^c&d~e\\f");
}

TEST(Hl7Parser, MessageLevelErrors) {
  struct bad {
    std::string message;
    ingest_errc code;
  };
  const std::vector<bad> cases = {
      {"", ingest_errc::truncated},
      {"MSH|^~", ingest_errc::truncated},
      {"MSH|^~\\&|A|B|C|D|2024", ingest_errc::truncated},
      {"PID|1||X", ingest_errc::not_hl7},
      {"MSH|^~\\|A|B", ingest_errc::bad_delimiters},
      {"MSH|^^\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPID|1||M", ingest_errc::bad_delimiters},
      {"MSHA^~\\&A", ingest_errc::bad_delimiters},
      {msg({"MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5", pid}), ingest_errc::unsupported_message},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01||P|2.5", pid}), ingest_errc::missing_message_id},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|\\Q\\|P|2.5", pid}), ingest_errc::bad_escape},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|X\\F|P|2.5", pid}), ingest_errc::bad_escape},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|X\\X4\\|P|2.5", pid}), ingest_errc::bad_escape},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5"}), ingest_errc::missing_patient},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5", "PID|1||^^^HOSP"}),
       ingest_errc::missing_patient},
      {msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5", pid, obr}), ingest_errc::no_observations},
  };
  for (const bad& b : cases) {
    hl7_parser p;
    collector c;
    std::string detail;
    const auto e = p.parse(b.message, c, detail);
    ASSERT_TRUE(e.has_value()) << b.message;
    EXPECT_EQ(to_string(*e), to_string(b.code)) << b.message << ": " << detail;
    EXPECT_FALSE(detail.empty());
    EXPECT_TRUE(c.obs.empty());
  }
}

TEST(Hl7Parser, ObxErrorsRefuseOnlyThatObx) {
  const std::string m = msg({
      msh, pid, pv1, obr,
      "OBX|1|ST|8867-4^HR^LN||high|/min|||||F",                  // 1: not NM.
      "OBX|2|NM|1234^HR^99LOCAL||80|/min|||||F",                 // 2: not LOINC.
      "OBX|3|NM|||80|/min|||||F",                                // 3: no code.
      "OBX|4|NM|8867-4^HR^LN||eighty|/min|||||F",                // 4: not a number.
      "OBX|5|NM|8867-4^HR^LN|||/min|||||F",                      // 5: empty.
      "OBX|6|NM|8867-4^HR^LN||80|/min|||||",                     // 6: no status.
      "OBX|7|NM|8867-4^HR^LN||80|/min|||||Q",                    // 7: unknown status.
      "OBX|8|NM|8867-4^HR^LN||80|/min|||||F|||2024031214",       // 8: bad time.
      "OBX|9|NM|8867-4^HR^LN||80|\\Z\\|||||F",                   // 9: bad escape.
      "OBX|10|NM|8867-4^HR^LN||81|/min|||||C|||20240312143100",  // 10: good.
      "OBX|11|NM|LOC1^HR^L^8867-4^HR^LN||82|/min|||||P",         // 11: alt LOINC; OBR-7.
      "OBX|12|NM|8867-4||83|/min|||||F",                         // 12: no system: LOINC.
  });
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
  std::vector<std::string> got;
  for (const auto& r : c.refused_) {
    got.push_back(std::to_string(r.index) + ":" + std::string(to_string(r.code)));
    EXPECT_EQ(r.detail.rfind("OBX #" + std::to_string(r.index) + ": ", 0), 0u) << r.detail;
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"1:non_numeric_value", "2:not_loinc", "3:missing_code",
                                      "4:non_numeric_value", "5:missing_value", "6:missing_status",
                                      "7:unknown_status", "8:bad_timestamp", "9:bad_escape"}));
  ASSERT_EQ(c.obs.size(), 3u);
  EXPECT_EQ(c.obs[0].status, "corrected");
  EXPECT_EQ(c.obs[0].event_time, t_1430 + 60000000);
  EXPECT_EQ(c.obs[1].code, "8867-4");
  EXPECT_EQ(c.obs[1].status, "preliminary");
  EXPECT_EQ(c.obs[1].event_time, t_1430) << "OBR-7 when OBX-14 is empty";
  EXPECT_EQ(c.obs[2].value, 83);
  EXPECT_EQ(c.indexes, (std::vector<int>{10, 11, 12}));
}

TEST(Hl7Parser, MissingTimeWithoutObr) {
  const std::string m = msg({msh, pid, "OBX|1|NM|8867-4^HR^LN||80|/min|||||F"});
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt);
  ASSERT_EQ(c.refused_.size(), 1u);
  EXPECT_EQ(c.refused_[0].code, ingest_errc::missing_effective_time);
}

TEST(Hl7Parser, ReusesTheParserAcrossMessages) {
  hl7_parser p;
  std::string detail;
  for (int i = 0; i < 3; ++i) {
    collector c;
    const std::string id = "ID\\E\\" + std::to_string(i);
    const std::string m = msg({"MSH|^~\\&|A|B|C|D|1||ORU^R01|" + id + "|P|2.5", pid, obr,
                               "OBX|1|NM|8867-4^HR^LN||80|/min|||||F"});
    ASSERT_EQ(p.parse(m, c, detail), std::nullopt);
    ASSERT_EQ(c.obs.size(), 1u);
    EXPECT_EQ(c.obs[0].message_id, "ID\\" + std::to_string(i));
  }
}

// Regression (tests/fuzz/hl7_fuzz.cpp, minimized input): std::from_chars reads "inf", "infinity"
// and "nan", and such an OBX-5 was accepted; for a code normalize() does not know, the infinite or
// NaN value reached the output.
TEST(Hl7Parser, NonFiniteValueIsNotANumber) {
  hl7_parser p;
  std::string detail;
  {
    collector c;
    ASSERT_EQ(p.parse("MSH|^~\\&|||||||ORU^R01|2\rPID|||0\rOBX||NM|8||inf||||||F|||202601011000", c,
                      detail),
              std::nullopt)
        << detail;
    EXPECT_TRUE(c.obs.empty());
    ASSERT_EQ(c.refused_.size(), 1u);
    EXPECT_EQ(c.refused_[0].code, ingest_errc::non_numeric_value);
  }
  for (std::string_view v : {"inf", "-inf", "+INF", "infinity", "nan", "-nan", "NAN(1)", "1e999"}) {
    collector c;
    const std::string m =
        msg({msh, pid, obr, "OBX|1|NM|2345-7^Glucose^LN||" + std::string(v) + "|mmol/L|||||F"});
    ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
    EXPECT_TRUE(c.obs.empty()) << v;
    ASSERT_EQ(c.refused_.size(), 1u) << v;
    EXPECT_EQ(c.refused_[0].code, ingest_errc::non_numeric_value) << v;
  }
}

// Regression (found by the invariants of tests/fuzz/hl7_fuzz.cpp): an OBX-3 code of blanks was
// trimmed after the check for an empty code, and the observation was accepted with an empty code.
TEST(Hl7Parser, BlankCodeIsMissing) {
  const std::string m =
      msg({msh, pid, obr, "OBX|1|NM| ^HR^LN||80|/min|||||F", "OBX|2|NM|\\X2020\\||80|/min|||||F",
           "OBX|3|NM| 8867-4 ||80|/min|||||F"});
  hl7_parser p;
  collector c;
  std::string detail;
  ASSERT_EQ(p.parse(m, c, detail), std::nullopt) << detail;
  ASSERT_EQ(c.refused_.size(), 2u);
  EXPECT_EQ(c.refused_[0].code, ingest_errc::missing_code);
  EXPECT_EQ(c.refused_[1].code, ingest_errc::missing_code);
  ASSERT_EQ(c.obs.size(), 1u);
  EXPECT_EQ(c.obs[0].code, "8867-4");
}

}  // namespace
}  // namespace vigil::clinical
