// End to end: the bundled PhysioNet stays replayed through examples/sepsis-watch.yaml (the
// demo: embedded Kafka and cluster, HL7 v2 and FHIR, duplicates and shuffled delivery), and
// the gold scores compared with a reference computed here, independently, from the same .psv
// rows with the rules of docs/authoring.md (clinical_scores).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "delta_files.hpp"
#include "operators/kafka/sink/committed_view.hpp"
#include "process.hpp"
#include "tools/demo/demo.hpp"

namespace vigil {
namespace {

namespace fs = std::filesystem;
constexpr int64_t hour_us = 3'600'000'000;
constexpr int64_t base_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

/// The replayed PhysioNet columns: parameter, whether it is a lab, plausible range.
struct column_rule {
  const char* psv;
  const char* param;
  bool lab;
  double lo, hi;
};
constexpr column_rule columns[] = {
    {"HR", "heart_rate", false, 0, 300},    {"O2Sat", "spo2", false, 0, 100},
    {"Temp", "temperature", false, 25, 45}, {"SBP", "sbp", false, 0, 350},
    {"MAP", "map", false, 0, 300},          {"DBP", "dbp", false, 0, 250},
    {"Resp", "resp_rate", false, 0, 100},   {"FiO2", "fio2", false, 0.21, 1},
    {"PaCO2", "paco2", true, 0, 250},       {"Creatinine", "creatinine", true, 0, 40},
    {"Lactate", "lactate", true, 0, 40},    {"Bilirubin_total", "bilirubin", true, 0, 100},
    {"WBC", "wbc", true, 0, 1000},          {"Platelets", "platelets", true, 0, 5000},
};

struct observation {
  int64_t time;
  std::string param;
  double value;
  bool lab;
};

/// One patient's plausible observations, read straight from the .psv file.
struct stay {
  std::string mrn;
  std::vector<observation> observations;
  uint64_t implausible = 0;
};

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, '|');) out.push_back(cell);
  return out;
}

stay read_stay(const fs::path& file) {
  stay s;
  s.mrn = file.stem().string();
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split(line);
  auto index = [&](const std::string& name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  const size_t iculos = index("ICULOS");
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = split(line);
    const int64_t t = base_us + std::stoll(cells.at(iculos)) * hour_us;
    for (const column_rule& c : columns) {
      const std::string& cell = cells.at(index(c.psv));
      if (cell == "NaN" || cell.empty()) continue;
      const double v = std::stod(cell);
      if (v < c.lo || v > c.hi) {
        ++s.implausible;
        continue;
      }
      s.observations.push_back({t, c.param, v, c.lab});
    }
  }
  return s;
}

int band(int v, std::initializer_list<std::pair<int, int>> upper_bounds, int above) {
  for (const auto& [upper, points] : upper_bounds) {
    if (v <= upper) return points;
  }
  return above;
}

/// NEWS2 (Scale 1), qSOFA, SIRS and SOFA of the values valid at one time.
std::string score_line(const std::string& patient, int64_t t,
                       const std::map<std::string, double>& v) {
  auto has = [&](const char* p) { return v.count(p) > 0; };
  auto val = [&](const char* p) { return v.at(p); };
  auto r = [](double x) { return static_cast<int>(std::lround(x)); };
  int news2 = 0;
  if (has("resp_rate")) news2 += band(r(val("resp_rate")), {{8, 3}, {11, 1}, {20, 0}, {24, 2}}, 3);
  if (has("spo2")) news2 += band(r(val("spo2")), {{91, 3}, {93, 2}, {95, 1}}, 0);
  if (has("fio2") && val("fio2") > 0.21) news2 += 2;
  if (has("sbp")) news2 += band(r(val("sbp")), {{90, 3}, {100, 2}, {110, 1}, {219, 0}}, 3);
  if (has("heart_rate")) {
    news2 += band(r(val("heart_rate")), {{40, 3}, {50, 1}, {90, 0}, {110, 1}, {130, 2}}, 3);
  }
  if (has("temperature")) {
    news2 += band(r(val("temperature") * 10), {{350, 3}, {360, 1}, {380, 0}, {390, 1}}, 2);
  }
  int qsofa = 0;
  if (has("resp_rate") && val("resp_rate") >= 22) ++qsofa;
  if (has("sbp") && val("sbp") <= 100) ++qsofa;
  int sirs = 0;
  if (has("temperature") && (val("temperature") > 38 || val("temperature") < 36)) ++sirs;
  if (has("heart_rate") && val("heart_rate") > 90) ++sirs;
  if ((has("resp_rate") && val("resp_rate") > 20) || (has("paco2") && val("paco2") < 32)) ++sirs;
  if (has("wbc") && (val("wbc") > 12 || val("wbc") < 4)) ++sirs;
  int sofa = 0;
  if (has("platelets")) {
    const double p = val("platelets");
    sofa += p < 20 ? 4 : p < 50 ? 3 : p < 100 ? 2 : p < 150 ? 1 : 0;
  }
  if (has("bilirubin")) {
    const double b = val("bilirubin");
    sofa += b >= 12 ? 4 : b >= 6 ? 3 : b >= 2 ? 2 : b >= 1.2 ? 1 : 0;
  }
  if (has("map") && val("map") < 70) ++sofa;
  if (has("creatinine")) {
    const double c = val("creatinine");
    sofa += c >= 5 ? 4 : c >= 3.5 ? 3 : c >= 2 ? 2 : c >= 1.2 ? 1 : 0;
  }
  // The shape of DuckDB's JSON lines: columns in query order, BIGINTs as strings.
  auto q = [](auto x) { return "\"" + std::to_string(x) + "\""; };
  return "{\"patient\":\"" + patient + "\",\"t\":" + q(t) + ",\"news2\":" + q(news2) +
         ",\"qsofa\":" + q(qsofa) + ",\"sirs\":" + q(sirs) + ",\"sofa\":" + q(sofa) + "}";
}

/// One score line per patient and distinct observation time, from the latest value of each
/// parameter within its validity (vitals 4 h, labs 24 h).
std::vector<std::string> reference_scores(const stay& s, const std::string& patient) {
  std::set<int64_t> times;
  for (const auto& o : s.observations) times.insert(o.time);
  std::vector<std::string> out;
  for (int64_t t : times) {
    std::map<std::string, std::pair<int64_t, double>> latest;
    for (const auto& o : s.observations) {
      const int64_t validity = (o.lab ? 24 : 4) * hour_us;
      if (o.time > t || t - o.time > validity) continue;
      auto it = latest.find(o.param);
      if (it == latest.end() || it->second.first <= o.time) latest[o.param] = {o.time, o.value};
    }
    std::map<std::string, double> values;
    for (const auto& [p, tv] : latest) values[p] = tv.second;
    out.push_back(score_line(patient, t, values));
  }
  return out;
}

/// The first 32 hex digits of HMAC-SHA256(key, mrn): clinical_ingest's pseudonym.
std::string pseudonym(const std::string& key, const std::string& mrn) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(mrn.data()), mrn.size(), mac, &len);
  std::string hex;
  for (unsigned int i = 0; i < 16; ++i) {
    static const char digits[] = "0123456789abcdef";
    hex.push_back(digits[mac[i] >> 4]);
    hex.push_back(digits[mac[i] & 15]);
  }
  return hex;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

TEST(SepsisWatch, ScoresEqualAnIndependentReferenceDespiteDuplicatesAndShuffling) {
  const std::string node = testing::find_node();
  if (node.empty()) GTEST_SKIP() << "node not found (tools/bootstrap.sh installs it)";
  const fs::path dir = testing::make_temp_dir("vigil-sepsis-watch");
  demo::demo_options o;
  o.graph = fs::path(VIGIL_SOURCE_DIR) / "examples/sepsis-watch.yaml";
  o.stays = fs::path(VIGIL_SOURCE_DIR) / "examples/data/physionet2019";
  o.data_dir = dir / "demo";
  o.speed = 0;  // As fast as possible: the job reads a backlog.
  o.duplicates = 0.05;
  o.out_of_order = 0.05;
  o.malformed = 0;  // The reference cannot know what a broken message held.
  o.seed = 11;
  o.progress = false;
  o.drain_timeout = std::chrono::seconds(90);
  std::ostringstream log;
  auto result = demo::run_demo(o, log);
  ASSERT_TRUE(result.ok()) << result.err().message << "\n" << log.str();

  const std::string key = testing::read_file((o.data_dir / "pseudonym.key").string());
  std::vector<std::string> expected;
  uint64_t observations = 0, implausible = 0;
  std::map<std::string, std::string> mrn_of;
  for (const auto& entry : fs::directory_iterator(o.stays)) {
    if (entry.path().extension() != ".psv") continue;
    const stay s = read_stay(entry.path());
    const std::string patient = pseudonym(key, s.mrn);
    mrn_of[patient] = s.mrn;
    for (auto& line : reference_scores(s, patient)) expected.push_back(std::move(line));
    observations += s.observations.size();
    implausible += s.implausible;
  }
  std::sort(expected.begin(), expected.end());

  auto query = [&](const std::string& sql) {
    auto r = testing::run_process({node, VIGIL_DUCKDB_QUERY, sql});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::string lake = result->lake_dir.string();
  std::vector<std::string> got = lines_of(
      query("SELECT patient, CAST(epoch_us(event_time) AS VARCHAR) AS t, news2, qsofa, sirs, "
            "sofa FROM read_parquet(" +
            testing::delta_live_files(lake + "/gold_scores") + ")"));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got.size(), expected.size());
  std::vector<std::string> missing, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  EXPECT_TRUE(missing.empty() && extra.empty())
      << missing.size() << " expected score records missing, e.g. "
      << (missing.empty() ? "" : missing[0]) << "; " << extra.size() << " unexpected, e.g. "
      << (extra.empty() ? "" : extra[0]);

  // Every message once in bronze (duplicates included); every plausible observation once in
  // silver (duplicates removed); each implausible one a dead letter.
  EXPECT_EQ(result->table_rows.at("bronze_messages"), result->messages_sent);
  EXPECT_EQ(result->observations_replayed, observations + implausible);
  EXPECT_EQ(result->table_rows.at("silver_observations"), observations);
  EXPECT_EQ(result->dead_letters, implausible);
  std::map<std::string, uint64_t> reasons;
  if (implausible > 0) reasons["implausible_value"] = implausible;
  EXPECT_EQ(result->dead_letter_reasons, reasons);
  // No MRN reaches silver or gold.
  const std::string mrns =
      query("SELECT count(*) AS n FROM read_parquet(" +
            testing::delta_live_files(lake + "/silver_observations") +
            ") WHERE patient LIKE 'p0%' OR message_id LIKE 'p0%' OR encounter LIKE 'p0%'");
  EXPECT_EQ(mrns, "{\"n\":\"0\"}\n");

  // The alerts topic (exactly once) and the gold alerts table hold the same actions, and a
  // patient's episodes of one rule family open at least the refractory period (60 min) apart.
  EXPECT_EQ(result->alerts_in_topic, result->table_rows.at("gold_alerts"));
  EXPECT_GT(result->alerts_in_topic, 0u);
  const std::vector<std::string> opens = lines_of(query(
      "SELECT patient, CASE WHEN rule LIKE 'news2%' THEN 'news2' ELSE rule END AS family, "
      "CAST(epoch_us(event_time) AS VARCHAR) AS t, action FROM read_parquet(" +
      testing::delta_live_files(lake + "/gold_alerts") +
      ") WHERE action IN ('open', 'escalate') ORDER BY patient, family, epoch_us(event_time)"));
  std::map<std::pair<std::string, std::string>, int64_t> last_page;
  for (const auto& line : opens) {
    const auto j = nlohmann::json::parse(line);
    const auto k = std::make_pair(j["patient"].get<std::string>(), j["family"].get<std::string>());
    const int64_t t = std::stoll(j["t"].get<std::string>());
    if (j["action"] == "open" && last_page.count(k)) {
      EXPECT_GE(t - last_page[k], hour_us) << line;
    }
    last_page[k] = t;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vigil
