#include "tools/replay/replay.hpp"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "operators/clinical/fhir_parser.hpp"
#include "operators/clinical/hl7_parser.hpp"
#include "operators/clinical/normalize.hpp"
#include "operators/connectors/json_format.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"
#include "tools/replay/kafka_output.hpp"

namespace vigil::replay {
namespace {

namespace fs = std::filesystem;
using clinical::ingest_errc;
using clinical::observation;
using clinical::observation_ref;

constexpr int64_t us_per_hour = int64_t{3600} * 1000000;
/// 2026-01-01T00:00:00Z.
constexpr int64_t base_2026 = int64_t{1767225600} * 1000000;

const fs::path data_dir{VIGIL_REPLAY_DATA_DIR};

/// Collects what a clinical parser reports.
struct collecting_sink : clinical::observation_sink {
  std::vector<clinical::observation> obs;
  std::vector<ingest_errc> refusals;
  void observation(const observation_ref& o) override {
    obs.push_back({std::string(o.patient), std::string(o.encounter), std::string(o.code), o.value,
                   std::string(o.unit), std::string(o.status), o.event_time,
                   std::string(o.message_id)});
  }
  void refused(int, std::string_view, ingest_errc code, std::string_view) override {
    refusals.push_back(code);
  }
};

/// A temporary directory, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "vigil-replay-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::vector<patient_stay> load_sample() {
  auto files = list_psv_files({data_dir.string()});
  EXPECT_TRUE(files.ok()) << files.err().message;
  std::vector<patient_stay> stays;
  for (const auto& f : *files) {
    auto stay = read_psv(f);
    EXPECT_TRUE(stay.ok()) << stay.err().message;
    stays.push_back(std::move(*stay));
  }
  return stays;
}

/// The observations a row should give: (code, value) of its measured cells, in column order.
std::vector<std::pair<std::string, double>> expected_cells(const psv_row& row) {
  std::vector<std::pair<std::string, double>> cells;
  for (size_t c = 0; c < replay_column_count; ++c) {
    if (!std::isnan(row.values[c])) {
      cells.emplace_back(std::string(replay_columns[c].loinc), row.values[c]);
    }
  }
  return cells;
}

int run_tool(std::vector<std::string> args, std::string& out, std::string& err) {
  args.insert(args.begin(), "vigil-replay");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream o, e;
  const int code = run_replay_tool(static_cast<int>(argv.size()), argv.data(), o, e);
  out = o.str();
  err = e.str();
  return code;
}

TEST(PsvReaderTest, ParsesHeaderValuesAndNaN) {
  const std::string text =
      "HR|O2Sat|Temp|EtCO2|FiO2|ICULOS|SepsisLabel\r\n"
      "NaN|NaN|NaN|NaN|NaN|1|0\r\n"
      "61|99|36.44|NaN|0.4|2|0\r\n"
      "80.5|NaN|NaN|35|NaN|3|1";
  auto stay = parse_psv(text, "p1.psv", "p1");
  ASSERT_TRUE(stay.ok()) << stay.err().message;
  EXPECT_EQ(stay->patient, "p1");
  ASSERT_EQ(stay->rows.size(), 3u);
  EXPECT_EQ(stay->rows[0].iculos, 1);
  EXPECT_EQ(measured_count(stay->rows[0]), 0u);
  EXPECT_EQ(stay->rows[1].iculos, 2);
  EXPECT_EQ(stay->rows[1].values[0], 61);     // HR
  EXPECT_EQ(stay->rows[1].values[1], 99);     // O2Sat
  EXPECT_EQ(stay->rows[1].values[2], 36.44);  // Temp
  EXPECT_EQ(stay->rows[1].values[7], 0.4);    // FiO2
  EXPECT_EQ(measured_count(stay->rows[1]), 4u);
  EXPECT_TRUE(std::isnan(stay->rows[1].values[3]));  // SBP: no column.
  EXPECT_EQ(stay->rows[2].values[0], 80.5);
  EXPECT_EQ(measured_count(stay->rows[2]), 1u);  // EtCO2 is not replayed.
}

TEST(PsvReaderTest, RefusesBadFilesNamingFileAndLine) {
  struct bad {
    std::string text;
    std::string want;
  };
  const bad cases[] = {
      {"HR|ICULOS\n61|1\n62|2|0\n", "p9.psv:3: 3 columns, but the header has 2"},
      {"HR|ICULOS\n61\n", "p9.psv:2: 1 columns, but the header has 2"},
      {"HR|ICULOS\n61|1\n\n62|3\n", "p9.psv:3: 1 columns"},
      {"HR|ICULOS\nfast|1\n", "p9.psv:2: column HR: 'fast' is neither a number nor NaN"},
      {"HR|ICULOS\n61|1.5\n", "p9.psv:2: ICULOS '1.5' is not a whole number of hours"},
      {"HR|ICULOS\n61|NaN\n", "p9.psv:2: ICULOS 'NaN'"},
      {"HR,ICULOS\n61,1\n", "p9.psv:1: the header has no ICULOS column"},
      {"", "p9.psv:1: empty file"},
  };
  for (const bad& b : cases) {
    auto stay = parse_psv(b.text, "p9.psv", "p9");
    ASSERT_FALSE(stay.ok()) << b.text;
    EXPECT_EQ(stay.err().code, errc::parse_error);
    EXPECT_NE(stay.err().message.find(b.want), std::string::npos) << stay.err().message;
  }
}

TEST(PsvReaderTest, ReadsTheSampleAndChecksFileNames) {
  const std::vector<patient_stay> stays = load_sample();
  ASSERT_EQ(stays.size(), 27u);
  EXPECT_EQ(stays[0].patient, "p000002");
  size_t rows = 0;
  for (const auto& s : stays) rows += s.rows.size();
  EXPECT_EQ(rows, 1310u - 27u);  // Lines of all files minus their headers.

  temp_dir dir;
  std::ofstream(dir.path / "bad name.psv") << "HR|ICULOS\n61|1\n";
  auto bad = read_psv(dir.path / "bad name.psv");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  EXPECT_NE(bad.err().message.find("'bad name'"), std::string::npos) << bad.err().message;

  auto missing = list_psv_files({(dir.path / "nope").string()});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::not_found);
  fs::create_directory(dir.path / "empty");
  EXPECT_FALSE(list_psv_files({(dir.path / "empty").string()}).ok());
}

TEST(ReplayMessagesTest, Hl7RowsParseBackWithVigilsParser) {
  const std::vector<patient_stay> stays = load_sample();
  clinical::hl7_parser parser;
  std::string msg, detail, id;
  size_t checked = 0;
  for (const patient_stay& stay : stays) {
    for (const psv_row& row : stay.rows) {
      if (measured_count(row) == 0) continue;
      const int64_t t = base_2026 + row.iculos * us_per_hour;
      msg.clear();
      append_hl7_row(msg, {stay.patient, &row, t});
      collecting_sink sink;
      ASSERT_FALSE(parser.parse(msg, sink, detail).has_value()) << detail << "\n" << msg;
      ASSERT_TRUE(sink.refusals.empty()) << msg;
      const auto cells = expected_cells(row);
      ASSERT_EQ(sink.obs.size(), cells.size());
      id = stay.patient + "-" + std::to_string(row.iculos);
      for (size_t i = 0; i < cells.size(); ++i) {
        observation& o = sink.obs[i];
        EXPECT_EQ(o.patient, stay.patient);
        EXPECT_EQ(o.encounter, stay.patient + "-icu");
        EXPECT_EQ(o.message_id, id);
        EXPECT_EQ(o.status, "final");
        EXPECT_EQ(o.event_time, t);
        EXPECT_EQ(o.code, cells[i].first);
        EXPECT_EQ(o.value, cells[i].second);
        // Every code and unit is one the silver normalization knows; values pass unchanged.
        observation_ref ref;
        ref.code = o.code;
        ref.value = o.value;
        ref.unit = o.unit;
        ASSERT_TRUE(clinical::parameter_of_code(ref.code).has_value()) << o.code;
        const auto nerr = clinical::normalize(ref, detail);
        if (nerr) {
          EXPECT_EQ(*nerr, ingest_errc::implausible_value) << detail;
        } else {
          EXPECT_EQ(ref.value, cells[i].second) << o.code;
          EXPECT_EQ(ref.code, cells[i].first);
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 5000u);
}

TEST(ReplayMessagesTest, FhirObservationsAndBundlesParseBackWithVigilsParser) {
  const std::vector<patient_stay> stays = load_sample();
  clinical::fhir_parser parser;
  std::string msg, detail;
  size_t checked = 0;
  for (const patient_stay& stay : stays) {
    for (const psv_row& row : stay.rows) {
      const auto cells = expected_cells(row);
      if (cells.empty()) continue;
      const int64_t t = base_2026 + row.iculos * us_per_hour;
      const row_ref ref{stay.patient, &row, t};
      const std::string row_id = stay.patient + "-" + std::to_string(row.iculos);

      msg.clear();
      append_fhir_bundle(msg, ref);
      collecting_sink bundle;
      ASSERT_FALSE(parser.parse(msg, bundle, detail).has_value()) << detail << "\n" << msg;
      ASSERT_TRUE(bundle.refusals.empty()) << msg;
      ASSERT_EQ(bundle.obs.size(), cells.size());

      size_t i = 0;
      for (size_t c = 0; c < replay_column_count; ++c) {
        if (std::isnan(row.values[c])) continue;
        msg.clear();
        append_fhir_observation(msg, ref, c);
        collecting_sink single;
        ASSERT_FALSE(parser.parse(msg, single, detail).has_value()) << detail << "\n" << msg;
        ASSERT_EQ(single.obs.size(), 1u) << msg;
        for (const observation& o : {single.obs[0], bundle.obs[i]}) {
          EXPECT_EQ(o.patient, stay.patient);
          EXPECT_EQ(o.encounter, stay.patient + "-icu");
          EXPECT_EQ(o.message_id, row_id + "-" + cells[i].first);
          EXPECT_EQ(o.status, "final");
          EXPECT_EQ(o.event_time, t);
          EXPECT_EQ(o.code, cells[i].first);
          EXPECT_EQ(o.value, cells[i].second);
          EXPECT_EQ(o.unit, replay_columns[c].ucum);
        }
        ++i;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 5000u);
}

TEST(ReplayMessagesTest, FiO2FractionNormalizesUnchanged) {
  psv_row row;
  row.values.fill(std::nan(""));
  row.values[7] = 0.4;  // FiO2
  std::string msg, detail;
  append_hl7_row(msg, {"p1", &row, base_2026});
  clinical::hl7_parser parser;
  collecting_sink sink;
  ASSERT_FALSE(parser.parse(msg, sink, detail).has_value()) << detail;
  ASSERT_EQ(sink.obs.size(), 1u);
  observation_ref ref;
  ref.code = sink.obs[0].code;
  ref.value = sink.obs[0].value;
  ref.unit = sink.obs[0].unit;
  ASSERT_FALSE(clinical::normalize(ref, detail).has_value()) << detail;
  EXPECT_EQ(ref.value, 0.4);
  EXPECT_EQ(ref.code, "3150-0");
}

TEST(ReplayMessagesTest, MalformedMessagesAreDeadLettered) {
  psv_row row;
  row.values.fill(std::nan(""));
  row.iculos = 5;
  row.values[0] = 88;    // HR
  row.values[6] = 21.5;  // Resp
  const row_ref ref{"p000042", &row, base_2026 + 5 * us_per_hour};
  clinical::hl7_parser hl7;
  clinical::fhir_parser fhir;
  std::string msg, detail;
  for (message_format format :
       {message_format::hl7, message_format::fhir, message_format::fhir_bundle}) {
    for (int k = 0; k < malformed_kind_count; ++k) {
      msg.clear();
      if (format == message_format::hl7) append_hl7_row(msg, ref);
      if (format == message_format::fhir) append_fhir_observation(msg, ref, 0);
      if (format == message_format::fhir_bundle) append_fhir_bundle(msg, ref);
      make_malformed(msg, format, static_cast<malformed_kind>(k));
      collecting_sink sink;
      const auto err = format == message_format::hl7 ? hl7.parse(msg, sink, detail)
                                                     : fhir.parse(msg, sink, detail);
      const auto kind = static_cast<malformed_kind>(k);
      SCOPED_TRACE(msg);
      if (kind == malformed_kind::non_numeric) {
        // The first observation is refused as non-numeric; the rest of the message is intact.
        EXPECT_FALSE(err.has_value()) << detail;
        ASSERT_EQ(sink.refusals.size(), 1u);
        EXPECT_EQ(sink.refusals[0], ingest_errc::non_numeric_value);
        EXPECT_EQ(sink.obs.size(), format == message_format::fhir ? 0u : 1u);
      } else {
        ASSERT_TRUE(err.has_value());
        EXPECT_TRUE(sink.obs.empty());
        if (format != message_format::hl7) {
          EXPECT_EQ(*err, ingest_errc::invalid_json);
        }
        if (format == message_format::hl7 && kind == malformed_kind::bad_delimiter) {
          EXPECT_EQ(*err, ingest_errc::bad_delimiters);
        }
      }
    }
  }
}

TEST(ReplayPlanTest, OrdersByEventTimeAcrossPatientsWithoutFaults) {
  const std::vector<patient_stay> stays = load_sample();
  replay_counts counts;
  const auto plan = plan_replay(stays, message_format::hl7, {}, counts);
  EXPECT_EQ(plan.size(), counts.rows);
  EXPECT_EQ(counts.patients, 27u);
  EXPECT_EQ(counts.duplicates + counts.shuffled + counts.malformed, 0u);
  for (size_t i = 1; i < plan.size(); ++i) {
    const int64_t prev = stays[plan[i - 1].stay].rows[plan[i - 1].row].iculos;
    const int64_t cur = stays[plan[i].stay].rows[plan[i].row].iculos;
    ASSERT_LE(prev, cur) << i;
    if (prev == cur) {
      ASSERT_LT(plan[i - 1].stay, plan[i].stay);
    }
  }
  replay_counts fhir_counts;
  const auto fhir_plan = plan_replay(stays, message_format::fhir, {}, fhir_counts);
  EXPECT_EQ(fhir_plan.size(), fhir_counts.observations);
  EXPECT_EQ(fhir_counts.observations, counts.observations);
}

TEST(ReplayPlanTest, FaultInjectionIsDeterministicAndMatchesTheRates) {
  const std::vector<patient_stay> stays = load_sample();
  const fault_options faults{0.05, 0.1, 0.02, 42, 8};
  replay_counts a_counts, b_counts, c_counts;
  const auto a = plan_replay(stays, message_format::fhir, faults, a_counts);
  const auto b = plan_replay(stays, message_format::fhir, faults, b_counts);
  fault_options other = faults;
  other.seed = 43;
  const auto c = plan_replay(stays, message_format::fhir, other, c_counts);

  auto same = [](const std::vector<planned_message>& x, const std::vector<planned_message>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].stay != y[i].stay || x[i].row != y[i].row || x[i].column != y[i].column ||
          x[i].duplicate != y[i].duplicate || x[i].delayed != y[i].delayed ||
          x[i].malformed != y[i].malformed || x[i].kind != y[i].kind) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(same(a, b));
  EXPECT_FALSE(same(a, c));

  const double n = static_cast<double>(a_counts.observations);
  ASSERT_GT(n, 5000);
  EXPECT_EQ(a.size(), a_counts.observations + a_counts.duplicates);
  EXPECT_NEAR(a_counts.duplicates / n, 0.05, 0.01);
  EXPECT_NEAR(a_counts.shuffled / n, 0.1, 0.015);
  EXPECT_NEAR(a_counts.malformed / n, 0.02, 0.006);

  // The flags agree with the counts, every kind of malformation occurs, and each duplicate is a
  // copy of a message that is also sent as itself.
  size_t dups = 0, delayed = 0, malformed = 0;
  std::set<int> kinds;
  std::map<std::tuple<uint32_t, uint32_t, uint8_t>, int> sent;
  for (const planned_message& m : a) {
    dups += m.duplicate;
    delayed += m.delayed;
    malformed += m.malformed && !m.duplicate;
    if (m.malformed) kinds.insert(static_cast<int>(m.kind));
    ++sent[{m.stay, m.row, m.column}];
  }
  EXPECT_EQ(dups, a_counts.duplicates);
  EXPECT_EQ(delayed, a_counts.shuffled);
  EXPECT_EQ(malformed, a_counts.malformed);
  EXPECT_EQ(kinds.size(), static_cast<size_t>(malformed_kind_count));
  size_t twice = 0;
  for (const auto& [k, count] : sent) {
    ASSERT_LE(count, 2);
    twice += count == 2;
  }
  EXPECT_EQ(twice, a_counts.duplicates);

  // Out-of-order messages really go behind later event times.
  size_t inversions = 0;
  for (size_t i = 1; i < a.size(); ++i) {
    inversions +=
        stays[a[i].stay].rows[a[i].row].iculos < stays[a[i - 1].stay].rows[a[i - 1].row].iculos;
  }
  EXPECT_GT(inversions, 0u);
}

TEST(ReplayToolTest, WritesJsonLinesAndASummary) {
  temp_dir dir;
  const fs::path out_file = dir.path / "out.jsonl";
  std::string out, err;
  ASSERT_EQ(run_tool({(data_dir / "p000002.psv").string(), (data_dir / "p000003.psv").string(),
                      "--format", "hl7", "--duplicates", "0.1", "--malformed", "0.1", "--seed", "7",
                      "--output", out_file.string()},
                     out, err),
            replay_exit_ok)
      << err;
  EXPECT_NE(err.find(" messages, "), std::string::npos) << err;
  EXPECT_NE(err.find("2 patients"), std::string::npos) << err;
  std::ifstream in(out_file);
  std::string line;
  size_t lines = 0, parsed = 0;
  clinical::hl7_parser parser;
  std::string detail;
  std::string last_received;
  while (std::getline(in, line)) {
    ++lines;
    const auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("raw"));
    // The replay's clock: an ISO timestamp that never goes back.
    ASSERT_TRUE(j.contains("received_at")) << line;
    const std::string received = j["received_at"].get<std::string>();
    ASSERT_TRUE(parse_timestamp_iso(received).has_value()) << received;
    EXPECT_GE(received, last_received);
    last_received = received;
    collecting_sink sink;
    if (!parser.parse(j["raw"].get<std::string>(), sink, detail) && sink.refusals.empty()) {
      ++parsed;
    }
  }
  EXPECT_NE(err.find(std::to_string(lines) + " messages"), std::string::npos) << err;
  EXPECT_GT(parsed, lines / 2);
  EXPECT_LT(parsed, lines);  // Some are malformed.

  // The same seed gives the same bytes; stdout works too.
  std::string again;
  ASSERT_EQ(run_tool({(data_dir / "p000002.psv").string(), (data_dir / "p000003.psv").string(),
                      "--duplicates", "0.1", "--malformed", "0.1", "--seed", "7", "--output", "-"},
                     again, err),
            replay_exit_ok)
      << err;
  std::ifstream in2(out_file);
  std::stringstream first;
  first << in2.rdbuf();
  EXPECT_EQ(first.str(), again);
}

TEST(ReplayToolTest, RefusesBadUsageNamingTheFlag) {
  const std::string psv = (data_dir / "p000002.psv").string();
  struct bad {
    std::vector<std::string> args;
    std::string want;
  };
  const bad cases[] = {
      {{psv, "--output", "-", "--format", "csv"}, "--format 'csv'"},
      {{psv, "--output", "-", "--bundle"}, "--bundle"},
      {{psv, "--output", "-", "--base-time", "2026-01-01T00:00:00"}, "--base-time"},
      {{psv, "--output", "-", "--base-time", "2026-01-01T00:00:00.5Z"}, "--base-time"},
      {{psv, "--output", "-", "--speed", "-1"}, "--speed"},
      {{psv, "--output", "-", "--duplicates", "1.5"}, "--duplicates"},
      {{psv, "--output", "-", "--out-of-order", "-0.1"}, "--out-of-order"},
      {{psv, "--output", "-", "--malformed", "2"}, "--malformed"},
      {{psv, "--output", "-", "--max-delay", "0"}, "--max-delay"},
      {{psv, "--output", "-", "--timeout", "0"}, "--timeout"},
      {{psv}, "--bootstrap"},
      {{psv, "--output", "-", "--bootstrap", "127.0.0.1:9092", "--topic", "t"}, "--bootstrap"},
      {{psv, "--bootstrap", "127.0.0.1:9092"}, "--topic"},
      {{psv, "--output", "-", "--topic", "t"}, "--topic"},
      {{"--output", "-"}, "inputs"},
      {{psv, "--output", "-", "--duplicates", "x"}, "--duplicates"},
  };
  for (const bad& b : cases) {
    std::string out, err;
    EXPECT_EQ(run_tool(b.args, out, err), replay_exit_invalid) << b.want;
    EXPECT_NE(err.find(b.want), std::string::npos) << err;
  }

  // Input errors name the file (and line).
  temp_dir dir;
  std::ofstream(dir.path / "p1.psv") << "HR|ICULOS\n61|1\n62\n";
  std::string out, err;
  EXPECT_EQ(run_tool({(dir.path / "p1.psv").string(), "--output", "-"}, out, err),
            replay_exit_failed);
  EXPECT_NE(err.find("p1.psv:3: 1 columns, but the header has 2"), std::string::npos) << err;
  EXPECT_EQ(run_tool({(dir.path / "none.psv").string(), "--output", "-"}, out, err),
            replay_exit_invalid);
  EXPECT_NE(err.find("none.psv: no such file"), std::string::npos) << err;

  EXPECT_EQ(run_tool({"--help"}, out, err), replay_exit_ok);
  EXPECT_NE(out.find("FiO2 -> 3150-0"), std::string::npos) << out;
}

TEST(ReplayToolTest, PacesByEventHours) {
  // 3 stays' first 4 hours at 40 event hours per second: about 3/40 s between hour 1 and 4.
  temp_dir dir;
  for (const char* p : {"pa", "pb", "pc"}) {
    std::ofstream(dir.path / (std::string(p) + ".psv")) << "HR|ICULOS\n70|1\n71|2\n72|3\n73|4\n";
  }
  std::string out, err;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_tool({dir.path.string(), "--speed", "40", "--output", "-"}, out, err),
            replay_exit_ok)
      << err;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(70));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_NE(err.find("12 messages"), std::string::npos) << err;
}

/// Reads partitions 0..partitions-1 of `topic` from the start until `want` records arrived or
/// 10 s passed; returns (key, partition, Kafka timestamp in ms) per record, in partition order.
std::vector<std::tuple<std::string, int32_t, int64_t>> consume_all(const std::string& bootstrap,
                                                                   const std::string& topic,
                                                                   int partitions, size_t want) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : {std::pair{"bootstrap.servers", bootstrap},
                             {"group.id", std::string("replay-test")},
                             {"enable.auto.commit", std::string("false")}}) {
    EXPECT_EQ(rd_kafka_conf_set(conf, k, v.c_str(), errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  EXPECT_NE(rk, nullptr) << errstr;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  EXPECT_EQ(rd_kafka_assign(rk, assignment), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(assignment);
  std::vector<std::tuple<std::string, int32_t, int64_t>> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      got.emplace_back(std::string(static_cast<const char*>(m->key), m->key_len), m->partition,
                       rd_kafka_message_timestamp(m, nullptr));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got;
}

TEST(ReplayKafkaTest, DeliversEveryMessageKeyedByPatient) {
  auto cluster = tools::mock_kafka_cluster::start(1, {{"vitals.raw", 3, 1}});
  ASSERT_TRUE(cluster.ok()) << cluster.err().message;
  std::string out, err;
  ASSERT_EQ(run_tool({data_dir.string(), "--format", "fhir", "--bundle", "--duplicates", "0.05",
                      "--out-of-order", "0.05", "--malformed", "0.02", "--seed", "3", "--bootstrap",
                      (*cluster)->bootstrap(), "--topic", "vitals.raw", "--timeout", "10"},
                     out, err),
            replay_exit_ok)
      << err;
  std::vector<patient_stay> stays = load_sample();
  replay_counts counts;
  const size_t planned =
      plan_replay(stays, message_format::fhir_bundle, {0.05, 0.05, 0.02, 3, 8}, counts).size();
  EXPECT_NE(err.find(std::to_string(planned) + " messages"), std::string::npos) << err;

  const auto got = consume_all((*cluster)->bootstrap(), "vitals.raw", 3, planned);
  EXPECT_EQ(got.size(), planned);
  std::map<std::string, std::set<int32_t>> partitions;
  std::map<int32_t, int64_t> last_timestamp_ms;
  const int64_t base_ms = *parse_timestamp_iso("2026-01-01T00:00:00Z") / 1000;
  for (const auto& [key, partition, timestamp_ms] : got) {
    partitions[key].insert(partition);
    // Kafka timestamps are the replay's clock: whole event hours after the base time, never
    // going back within a partition.
    EXPECT_GE(timestamp_ms, base_ms);
    EXPECT_EQ((timestamp_ms - base_ms) % 3'600'000, 0) << timestamp_ms;
    EXPECT_GE(timestamp_ms, last_timestamp_ms[partition]);
    last_timestamp_ms[partition] = timestamp_ms;
  }
  EXPECT_EQ(partitions.size(), 27u);
  std::set<int32_t> used;
  for (const auto& [key, parts] : partitions) {
    EXPECT_EQ(parts.size(), 1u) << key;
    used.insert(*parts.begin());
  }
  EXPECT_GT(used.size(), 1u);  // Patients spread over the partitions.
}

TEST(ReplayKafkaTest, ReportsADeadBrokerWithinTheTimeout) {
  // A loopback port that nothing listens on: bound, then closed.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const std::string dead = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  const auto start = std::chrono::steady_clock::now();
  auto out = kafka_output::connect(dead, "t", std::chrono::milliseconds(1500));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.err().code, errc::io_error);
  EXPECT_NE(out.err().message.find("Kafka at " + dead + ": no broker answered within 1500 ms"),
            std::string::npos)
      << out.err().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  std::string stdout_text, err;
  EXPECT_EQ(run_tool({(data_dir / "p000002.psv").string(), "--bootstrap", dead, "--topic", "t",
                      "--timeout", "1"},
                     stdout_text, err),
            replay_exit_failed);
  EXPECT_NE(err.find("Kafka at " + dead), std::string::npos) << err;
}

}  // namespace
}  // namespace vigil::replay
