#include "operators/clinical/normalize.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace vigil::clinical {
namespace {

struct normalized {
  std::optional<ingest_errc> error;
  observation_ref obs;
};

normalized run(std::string_view code, double value, std::string_view unit) {
  normalized n;
  n.obs.code = code;
  n.obs.value = value;
  n.obs.unit = unit;
  std::string detail;
  n.error = normalize(n.obs, detail);
  if (n.error) {
    EXPECT_FALSE(detail.empty());
  }
  return n;
}

TEST(Normalize, ConvertsToCanonicalUnitsAndCodes) {
  struct c {
    std::string_view code;
    double value;
    std::string_view unit;
    std::string_view want_code;
    double want;
    std::string_view want_unit;
  };
  for (const c& t : std::vector<c>{
           {"8310-5", 101.5, "[degF]", "8310-5", 38.6111, "Cel"},
           {"8310-5", 98.6, "[degF]", "8310-5", 37.0, "Cel"},
           {"8331-1", 37.2, "Cel", "8310-5", 37.2, "Cel"},
           {"14682-9", 88.42, "umol/L", "2160-0", 1.0, "mg/dL"},
           {"2160-0", 176.84, "umol/L", "2160-0", 2.0, "mg/dL"},
           {"14631-6", 34.2, "umol/L", "1975-2", 2.0, "mg/dL"},
           {"2524-7", 18.016, "mg/dL", "2524-7", 2.0, "mmol/L"},
           {"3150-0", 40, "%", "3150-0", 0.4, "1"},
           {"3150-0", 0.4, "1", "3150-0", 0.4, "1"},
           {"2703-7", 10, "kPa", "2703-7", 75.0062, "mm[Hg]"},
           {"8480-6", 96, "mm[Hg]", "8480-6", 96, "mm[Hg]"},
           {"8480-6", 96, "mmHg", "8480-6", 96, "mm[Hg]"},
           {"59408-5", 93, "%", "2708-6", 93, "%"},
           {"9269-2", 14, "", "9269-2", 14, "{score}"},
           {"26515-7", 150, "10*9/L", "777-3", 150, "10*3/uL"},
       }) {
    const normalized n = run(t.code, t.value, t.unit);
    ASSERT_FALSE(n.error.has_value()) << t.code << " " << t.unit;
    EXPECT_EQ(n.obs.code, t.want_code);
    EXPECT_NEAR(n.obs.value, t.want, 1e-3) << t.code;
    EXPECT_EQ(n.obs.unit, t.want_unit);
  }
}

TEST(Normalize, UnknownCodesPassUnchanged) {
  const normalized n = run("1234-5", 7, "whatever");
  EXPECT_FALSE(n.error.has_value());
  EXPECT_EQ(n.obs.code, "1234-5");
  EXPECT_EQ(n.obs.unit, "whatever");
  EXPECT_EQ(n.obs.value, 7);
}

TEST(Normalize, UnknownUnitsAndImplausibleValues) {
  EXPECT_EQ(run("8867-4", 80, "mmol/L").error, ingest_errc::unknown_unit);
  EXPECT_EQ(run("8867-4", 80, "").error, ingest_errc::unknown_unit);
  EXPECT_EQ(run("8310-5", 37, "[degC]").error, ingest_errc::unknown_unit);
  EXPECT_EQ(run("8867-4", 301, "/min").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("8867-4", -1, "/min").error, ingest_errc::implausible_value);
  EXPECT_FALSE(run("8867-4", 300, "/min").error.has_value()) << "bounds are inclusive";
  EXPECT_EQ(run("8310-5", 98.6, "Cel").error, ingest_errc::implausible_value)
      << "Fahrenheit sent as Celsius";
  EXPECT_EQ(run("8310-5", 24.9, "Cel").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("3150-0", 0.4, "%").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("3150-0", 1.2, "1").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("3150-0", 0.2, "1").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("2708-6", 101, "%").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("9269-2", 2, "{score}").error, ingest_errc::implausible_value);
  EXPECT_EQ(run("8867-4", std::nan(""), "/min").error, ingest_errc::implausible_value);
}

TEST(Normalize, ParameterTables) {
  for (size_t i = 0; i < parameter_count; ++i) {
    const auto p = static_cast<parameter>(i);
    EXPECT_EQ(info(p).id, p);
    EXPECT_EQ(parameter_of_code(info(p).loinc), p);
    EXPECT_EQ(parameter_of_name(info(p).name), p);
  }
  EXPECT_EQ(parameter_of_code("14682-9"), parameter::creatinine);
  EXPECT_EQ(parameter_of_code("1234-5"), std::nullopt);
  EXPECT_EQ(to_string(ingest_errc::bad_escape), "bad_escape");
  EXPECT_EQ(to_string(ingest_errc::empty_bundle), "empty_bundle");
}

}  // namespace
}  // namespace vigil::clinical
