// The clinical layer's metrics: dead letters by reason (clinical_ingest).
#include <gtest/gtest.h>
#include <stdlib.h>

#include "metrics/registry.hpp"
#include "operators/clinical/clinical_operators.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::operator_harness;
using testing::str;

/// vigil_clinical_dead_letters_total for `reason` (job "" in the harness); -1 if absent.
double dead_letters(const std::string& reason) {
  std::string text = metrics::serialize();
  std::string prefix = "vigil_clinical_dead_letters_total{job=\"\",reason=\"" + reason + "\"} ";
  auto at = text.find(prefix);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + prefix.size()));
}

TEST(ClinicalMetrics, CountsDeadLettersByReason) {
  operator_registry registry;
  register_clinical_operators(registry);
  ::setenv("VIGIL_TEST_METRICS_KEY", "test-key-0123456789abcdef", 1);
  auto schema = make_schema({{"offset", type_id::int64, false}, {"raw", type_id::string, true}});
  {
    operator_harness h(
        registry, "clinical_ingest",
        cfg({{"format", str("hl7")}, {"pseudonym_key_env", str("VIGIL_TEST_METRICS_KEY")}}),
        {{schema, {}}});
    EXPECT_EQ(dead_letters("not_hl7"), -1) << "taken at the first dead letter of a reason";
    h.push(0, testing::make_rows(schema,
                                 {{int64_t{1}, std::string("garbage")},
                                  {int64_t{2}, std::string("more garbage")},
                                  {int64_t{3}, std::string("")}},
                                 {1000, 1000, 1000}));
    EXPECT_EQ(h.rows(1).size(), 3u);
    EXPECT_EQ(dead_letters("not_hl7"), 2);
    EXPECT_EQ(dead_letters("truncated"), 1);
  }
  EXPECT_EQ(dead_letters("not_hl7"), -1) << "removed with the subtask";
  ::unsetenv("VIGIL_TEST_METRICS_KEY");
}

}  // namespace
}  // namespace vigil
