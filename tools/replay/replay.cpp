#include "tools/replay/replay.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <tuple>

#include "operators/connectors/json_format.hpp"
#include "tools/replay/kafka_output.hpp"

namespace vigil::replay {
namespace {

constexpr int64_t us_per_hour = int64_t{3600} * 1000000;

/// A uniform double in [0, 1) from 53 bits of the generator (std::uniform_real_distribution
/// differs between standard libraries; this does not).
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

/// A uniform integer in [lo, hi].
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

/// A message with where it is sent: after the on-time message at position `slot`
/// (order = 2 * slot for on-time messages, 2 * slot + 1 for moved ones), then by `seq`.
struct slotted {
  uint64_t order;
  uint64_t seq;
  planned_message m;
};

}  // namespace

std::vector<planned_message> plan_replay(const std::vector<patient_stay>& stays,
                                         message_format format, const fault_options& faults,
                                         replay_counts& counts) {
  counts = replay_counts{};
  counts.patients = stays.size();

  // Rows by (ICULOS, stay, row).
  struct row_key {
    int64_t iculos;
    uint32_t stay;
    uint32_t row;
  };
  std::vector<row_key> rows;
  for (uint32_t s = 0; s < stays.size(); ++s) {
    for (uint32_t r = 0; r < stays[s].rows.size(); ++r) {
      const size_t n = measured_count(stays[s].rows[r]);
      if (n == 0) continue;
      rows.push_back({stays[s].rows[r].iculos, s, r});
      counts.observations += n;
    }
  }
  counts.rows = rows.size();
  std::sort(rows.begin(), rows.end(), [](const row_key& a, const row_key& b) {
    return std::tie(a.iculos, a.stay, a.row) < std::tie(b.iculos, b.stay, b.row);
  });

  std::vector<planned_message> base;
  for (const row_key& k : rows) {
    if (format != message_format::fhir) {
      base.push_back({k.stay, k.row});
      continue;
    }
    const psv_row& row = stays[k.stay].rows[k.row];
    for (uint8_t c = 0; c < replay_column_count; ++c) {
      if (!std::isnan(row.values[c])) base.push_back({k.stay, k.row, c});
    }
  }

  std::mt19937_64 rng(faults.seed);
  std::vector<slotted> out;
  out.reserve(base.size() + base.size() / 8);
  uint64_t seq = 0;
  for (uint64_t i = 0; i < base.size(); ++i) {
    // Every message draws all its dice, so that one probability does not change the others'
    // choices.
    const bool dup = uniform(rng) < faults.duplicates;
    const bool late = uniform(rng) < faults.out_of_order;
    const bool bad = uniform(rng) < faults.malformed;
    const int64_t delay = uniform_int(rng, 1, faults.max_delay);
    const int64_t dup_delay = uniform_int(rng, 0, faults.max_delay);
    const auto kind = static_cast<malformed_kind>(uniform_int(rng, 0, malformed_kind_count - 1));

    planned_message m = base[i];
    if (bad) {
      m.malformed = true;
      m.kind = kind;
      ++counts.malformed;
    }
    planned_message original = m;
    original.delayed = late;
    counts.shuffled += late ? 1 : 0;
    out.push_back({late ? 2 * (i + delay) + 1 : 2 * i, seq++, original});
    if (dup) {
      planned_message copy = m;
      copy.duplicate = true;
      out.push_back({2 * (i + dup_delay) + 1, seq++, copy});
      ++counts.duplicates;
    }
  }
  std::sort(out.begin(), out.end(), [](const slotted& a, const slotted& b) {
    return std::tie(a.order, a.seq) < std::tie(b.order, b.seq);
  });
  std::vector<planned_message> plan;
  plan.reserve(out.size());
  for (const slotted& s : out) plan.push_back(s.m);
  return plan;
}

status jsonl_output::send(std::string_view, std::string_view payload, int64_t sent_at_us) {
  line_.assign(R"({"raw":)");
  append_json_string(line_, payload);
  line_.append(R"(,"received_at":")");
  append_timestamp_iso(line_, sent_at_us);
  line_.append("\"}\n");
  out_.write(line_.data(), static_cast<std::streamsize>(line_.size()));
  if (!out_) return make_error(errc::io_error, "writing the output failed");
  return {};
}

status jsonl_output::finish() {
  out_.flush();
  if (!out_) return make_error(errc::io_error, "writing the output failed");
  return {};
}

result<replay_counts> replay(const std::vector<patient_stay>& stays, const replay_options& options,
                             message_output& output) {
  replay_counts counts;
  const std::vector<planned_message> plan =
      plan_replay(stays, options.format, options.faults, counts);

  const auto start = std::chrono::steady_clock::now();
  int64_t first_hour = 0;
  int64_t latest_hour = 0;  // The latest event hour sent (delayed messages do not go back).
  std::string msg;
  for (size_t i = 0; i < plan.size(); ++i) {
    const planned_message& m = plan[i];
    const patient_stay& stay = stays[m.stay];
    const psv_row& row = stay.rows[m.row];
    if (i == 0) first_hour = latest_hour = row.iculos;
    if (row.iculos > latest_hour) {
      latest_hour = row.iculos;
      if (options.speed > 0) {
        const auto due =
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>((latest_hour - first_hour) / options.speed));
        std::this_thread::sleep_until(due);
      }
    }
    const row_ref ref{stay.patient, &row, options.base_time + row.iculos * us_per_hour};
    msg.clear();
    switch (options.format) {
      case message_format::hl7:
        append_hl7_row(msg, ref);
        break;
      case message_format::fhir:
        append_fhir_observation(msg, ref, m.column);
        break;
      case message_format::fhir_bundle:
        append_fhir_bundle(msg, ref);
        break;
    }
    if (m.malformed) make_malformed(msg, options.format, m.kind);
    VIGIL_TRY(output.send(stay.patient, msg, options.base_time + latest_hour * us_per_hour));
    ++counts.messages;
  }
  VIGIL_TRY(output.finish());
  return counts;
}

namespace {

std::string mapping_text() {
  std::string text = "Replayed columns (PhysioNet column -> LOINC, UCUM unit):\n";
  for (const replay_column& c : replay_columns) {
    text += "  " + std::string(c.psv_name) + " -> " + std::string(c.loinc) + " (" +
            std::string(c.display) + "), " + std::string(c.ucum) + "\n";
  }
  text +=
      "FiO2 is sent as the fraction PhysioNet stores (unit \"1\"). Message ids: HL7 MSH-10 and "
      "FHIR Bundle.id are <patient>-<ICULOS>; a FHIR Observation.id is "
      "<patient>-<ICULOS>-<LOINC>; a duplicate carries the same id. Patient = file name without "
      ".psv; encounter = <patient>-icu; event time = --base-time + ICULOS hours.";
  return text;
}

status check_probability(const char* flag, double p) {
  if (p >= 0 && p <= 1) return {};
  return make_error(errc::invalid_argument,
                    std::string(flag) + " " + std::to_string(p) + ": a probability is 0..1");
}

}  // namespace

int run_replay_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "vigil-replay: replays PhysioNet 2019 .psv stays as HL7 v2.5 ORU^R01 or FHIR R4 "
      "Observations into Kafka or a JSON-lines file, in event-time order across patients"};
  app.footer(mapping_text());
  std::vector<std::string> inputs;
  std::string format = "hl7";
  bool bundle = false;
  std::string base_time = "2026-01-01T00:00:00Z";
  replay_options options;
  std::string bootstrap;
  std::string topic;
  std::string output;
  double timeout_s = 30;
  app.add_option("inputs", inputs, ".psv files, or directories whose .psv files are replayed")
      ->required();
  app.add_option("--format", format, "hl7 (one ORU^R01 per row) or fhir")->capture_default_str();
  app.add_flag("--bundle", bundle,
               "With --format fhir: one Bundle per row, not one Observation "
               "per measured cell");
  app.add_option("--base-time", base_time,
                 "Event time of ICULOS 0 (ISO 8601 with a zone, whole seconds)")
      ->capture_default_str();
  app.add_option("--speed", options.speed,
                 "Event hours replayed per wall-clock second; 0 = as fast as possible")
      ->capture_default_str();
  app.add_option("--duplicates", options.faults.duplicates,
                 "Probability that a message is sent twice (same id)")
      ->capture_default_str();
  app.add_option("--out-of-order", options.faults.out_of_order,
                 "Probability that a message is delayed by 1..--max-delay positions")
      ->capture_default_str();
  app.add_option("--malformed", options.faults.malformed,
                 "Probability that a message is broken (truncated, bad delimiter or non-numeric "
                 "value) instead of sent intact")
      ->capture_default_str();
  app.add_option("--max-delay", options.faults.max_delay,
                 "Positions a delayed message or a duplicate moves back, at most")
      ->capture_default_str();
  app.add_option("--seed", options.faults.seed, "Seed of the fault injection")
      ->capture_default_str();
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers HOST:PORT[,...]");
  app.add_option("--topic", topic, "Kafka topic (with --bootstrap); record key = patient id");
  app.add_option("--output", output, "Write {\"raw\": message} lines to FILE, or - for stdout");
  app.add_option("--timeout", timeout_s,
                 "Seconds to wait for Kafka (metadata, each delivery, the final flush)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);  // --help prints and gives 0.
    return code == 0 ? replay_exit_ok : replay_exit_invalid;
  }

  auto refuse = [&](const std::string& msg) {
    err << "vigil-replay: " << msg << "\n";
    return replay_exit_invalid;
  };
  if (format == "hl7") {
    options.format = message_format::hl7;
    if (bundle) return refuse("--bundle: only with --format fhir");
  } else if (format == "fhir") {
    options.format = bundle ? message_format::fhir_bundle : message_format::fhir;
  } else {
    return refuse("--format '" + format + "': expected hl7 or fhir");
  }
  const std::optional<int64_t> base = parse_timestamp_iso(base_time);
  if (!base || *base % 1000000 != 0) {
    return refuse("--base-time '" + base_time +
                  "': expected an ISO 8601 time with a zone and whole seconds, e.g. "
                  "2026-01-01T00:00:00Z");
  }
  options.base_time = *base;
  if (!(options.speed >= 0) || options.speed > 1e9) {
    return refuse("--speed: event hours per second must be 0 (as fast as possible) or more");
  }
  for (const auto& [flag, p] : {std::pair{"--duplicates", options.faults.duplicates},
                                {"--out-of-order", options.faults.out_of_order},
                                {"--malformed", options.faults.malformed}}) {
    if (status s = check_probability(flag, p); !s) return refuse(s.err().message);
  }
  if (options.faults.max_delay < 1 || options.faults.max_delay > 1000000) {
    return refuse("--max-delay " + std::to_string(options.faults.max_delay) +
                  ": expected 1..1000000 positions");
  }
  if (bootstrap.empty() == output.empty()) {
    return refuse("give exactly one of --bootstrap (with --topic) and --output");
  }
  if (!bootstrap.empty() && topic.empty()) return refuse("--topic: required with --bootstrap");
  if (bootstrap.empty() && !topic.empty()) return refuse("--topic: only with --bootstrap");
  if (!(timeout_s > 0) || timeout_s > 86400) {
    return refuse("--timeout: expected more than 0 and at most 86400 seconds");
  }

  auto files = list_psv_files(inputs);
  if (!files) {
    err << "vigil-replay: " << files.err().message << "\n";
    return files.err().code == errc::io_error ? replay_exit_failed : replay_exit_invalid;
  }
  std::vector<patient_stay> stays;
  stays.reserve(files->size());
  for (const auto& f : *files) {
    auto stay = read_psv(f);
    if (!stay) {
      err << "vigil-replay: " << stay.err().message << "\n";
      return stay.err().code == errc::invalid_argument ? replay_exit_invalid : replay_exit_failed;
    }
    stays.push_back(std::move(*stay));
  }

  std::unique_ptr<message_output> sink;
  std::ofstream file;
  if (!bootstrap.empty()) {
    auto kafka = kafka_output::connect(
        bootstrap, topic, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    if (!kafka) {
      err << "vigil-replay: " << kafka.err().message << "\n";
      return kafka.err().code == errc::invalid_argument ? replay_exit_invalid : replay_exit_failed;
    }
    sink = std::move(*kafka);
  } else if (output == "-") {
    sink = std::make_unique<jsonl_output>(out);
  } else {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) {
      err << "vigil-replay: --output '" << output << "': cannot open for writing\n";
      return replay_exit_failed;
    }
    sink = std::make_unique<jsonl_output>(file);
  }

  auto counts = replay(stays, options, *sink);
  if (!counts) {
    err << "vigil-replay: " << counts.err().message << "\n";
    return replay_exit_failed;
  }
  err << "vigil-replay: " << counts->messages << " messages, " << counts->observations
      << " observations, " << counts->duplicates << " duplicates, " << counts->shuffled
      << " shuffled, " << counts->malformed << " malformed, " << counts->patients << " patients, "
      << counts->rows << " rows\n";
  return replay_exit_ok;
}

}  // namespace vigil::replay
