#include "tools/demo/demo.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/graph_variables.hpp"
#include "graph/yaml_loader.hpp"
#include "lake/delta_log.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/kafka/sink/committed_view.hpp"
#include "operators/kafka/sink/topic_reader.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"
#include "tools/replay/kafka_output.hpp"
#include "tools/replay/replay.hpp"

namespace vigil::demo {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* marker_file = ".vigil-demo";
constexpr const char* tables[] = {"bronze_messages", "silver_observations", "gold_scores",
                                  "gold_alerts"};

/// Creates (or, if an earlier demo made it, empties) the data directory.
status prepare_data_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return make_error(errc::invalid_argument, dir.string() + ": exists and is not a directory");
    }
    const bool empty = fs::is_empty(dir, ec);
    if (!empty && !fs::exists(dir / marker_file, ec)) {
      return make_error(
          errc::invalid_argument,
          dir.string() + ": exists and was not made by vigil-demo; choose another --data-dir");
    }
    fs::remove_all(dir, ec);
    if (ec) return make_error(errc::io_error, dir.string() + ": cannot empty: " + ec.message());
  }
  fs::create_directories(dir / "lake", ec);
  if (ec) return make_error(errc::io_error, dir.string() + ": cannot create: " + ec.message());
  std::ofstream(dir / marker_file) << "made by vigil-demo; removed by its next run\n";
  return {};
}

/// Counts what a replay has sent, for the progress line.
class counting_output final : public replay::message_output {
 public:
  explicit counting_output(std::unique_ptr<replay::message_output> inner)
      : inner_(std::move(inner)) {}
  status send(std::string_view key, std::string_view payload, int64_t sent_at_us) override {
    VIGIL_TRY(inner_->send(key, payload, sent_at_us));
    sent_.fetch_add(1, std::memory_order_relaxed);
    clock_us_.store(sent_at_us, std::memory_order_relaxed);
    return {};
  }
  status finish() override { return inner_->finish(); }
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  int64_t clock_us() const { return clock_us_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<replay::message_output> inner_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<int64_t> clock_us_{0};
};

/// One replay (a message format and its stays) running on its own thread.
struct replay_run {
  std::string topic;
  std::vector<replay::patient_stay> stays;
  replay::replay_options options;
  std::unique_ptr<counting_output> output;
  std::future<result<replay::replay_counts>> done;
};

std::string state_text(job_state s) {
  static const char* const names[] = {"pending",    "running",   "finished",  "failed",
                                      "cancelling", "cancelled", "restarting"};
  return names[static_cast<int>(s)];
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

/// Reads the summary of the alerts topic's committed view into `r`.
status read_alerts(const std::string& bootstrap, demo_result& r) {
  kafka::committed_view_options vo;
  vo.bootstrap = bootstrap;
  vo.topic = "alerts";
  auto view = kafka::read_committed_view(vo);
  if (!view) return view.err();
  std::set<std::string> patients;
  for (const auto& rec : view->records) {
    auto j = nlohmann::json::parse(rec.value, nullptr, false);
    if (!j.is_object()) continue;
    ++r.alerts_in_topic;
    const std::string patient = j.value("patient", "");
    const std::string rule = j.value("rule", "");
    const std::string action = j.value("action", "");
    const int64_t level = j.value("level", int64_t{0});
    ++r.alert_actions[rule + " level " + std::to_string(level) + " " + action];
    if (action == "open" || action == "escalate") patients.insert(patient);
    if (action == "open" && r.first_alerts.size() < 8) {
      std::string reason = j.value("reason", "");
      if (reason.size() > 110) reason = reason.substr(0, 107) + "...";
      r.first_alerts.push_back(patient.substr(0, 8) + "… " + rule + " at " +
                               j.value("event_time", "") + ": " + reason);
    }
  }
  r.patients_alerted = patients.size();
  return {};
}

status read_dead_letters(const std::string& bootstrap, demo_result& r) {
  kafka::topic_read_options o;
  o.bootstrap = bootstrap;
  o.topic = "dead-letters";
  o.read_committed = false;
  return kafka::read_topic(o, [&](const kafka::consumed_record& rec) {
    ++r.dead_letters;
    auto j = nlohmann::json::parse(rec.value, nullptr, false);
    ++r.dead_letter_reasons[j.is_object() ? j.value("reason", "?") : "?"];
  });
}

void print_summary(const demo_options& o, const demo_result& r, std::ostream& out) {
  out << "\n== sepsis-watch summary (job " << r.job_id << ") ==\n"
      << "replayed: " << r.patients << " ICU stays, " << r.observations_replayed
      << " observations in " << r.messages_sent << " messages (HL7 v2 and FHIR, with "
      << o.duplicates * 100 << "% duplicates, " << o.out_of_order * 100 << "% out of order, "
      << o.malformed * 100 << "% malformed)\n";
  out << "lake tables (Delta, committed rows):\n";
  for (const char* t : tables) {
    out << "  " << (r.lake_dir / t).string() << ": " << r.table_rows.at(t) << "\n";
  }
  out << "dead letters (topic dead-letters): " << r.dead_letters;
  std::string sep = " (";
  for (const auto& [reason, n] : r.dead_letter_reasons) {
    out << sep << reason << " " << n;
    sep = ", ";
  }
  out << (r.dead_letter_reasons.empty() ? "" : ")") << "\n";
  out << "alerts (topic alerts, committed): " << r.alerts_in_topic << " actions for "
      << r.patients_alerted << " of " << r.patients << " patients\n";
  for (const auto& [what, n] : r.alert_actions) out << "  " << what << ": " << n << "\n";
  if (!r.first_alerts.empty()) out << "first alerts:\n";
  for (const auto& a : r.first_alerts) out << "  " << a << "\n";
  out << "inspect: build/tools/vigil-lake history " << (r.lake_dir / "gold_alerts").string()
      << "\n";
}

}  // namespace

uint64_t delta_table_rows(const fs::path& table) {
  std::error_code ec;
  if (!fs::exists(table / "_delta_log", ec)) return 0;
  auto snap = lake::read_delta_snapshot(table.string());
  if (!snap) return 0;
  uint64_t rows = 0;
  for (const auto& [path, add] : snap->files) {
    auto stats = nlohmann::json::parse(add.stats, nullptr, false);
    if (stats.is_object() && stats.contains("numRecords")) {
      rows += stats["numRecords"].get<uint64_t>();
    }
  }
  return rows;
}

status write_pseudonym_key(const fs::path& path) {
  std::random_device rd;
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back("0123456789abcdef"[rd() % 16]);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return make_error(errc::io_error, path.string() + ": cannot create");
  const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::close(fd);
  if (!ok) return make_error(errc::io_error, path.string() + ": cannot write");
  return {};
}

status wait_until_running(cluster_coordinator& coordinator, const std::string& id,
                          std::chrono::milliseconds timeout) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout;;) {
    auto j = coordinator.wait(id, 20ms);
    if (!j) return j.err();
    if (j->state == job_state::running) return {};
    if (j->state != job_state::pending && j->state != job_state::restarting) {
      return make_error(errc::internal,
                        "job " + id + " did not start: " + state_text(j->state) + " " + j->error);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error(
          errc::failed_precondition,
          "job " + id + " did not start within " + std::to_string(timeout.count() / 1000) + " s");
    }
  }
}

result<demo_result> run_demo(const demo_options& o, std::ostream& out) {
  const auto started = std::chrono::steady_clock::now();
  VIGIL_TRY(prepare_data_dir(o.data_dir));
  demo_result r;
  r.lake_dir = o.data_dir / "lake";
  const fs::path key_file = o.data_dir / "pseudonym.key";
  VIGIL_TRY(write_pseudonym_key(key_file));

  // Declared first, so that it stops last: after the cluster and the replays' producers.
  auto kafka = tools::mock_kafka_cluster::start(1, {{"hl7.raw", 4, 1},
                                                    {"fhir.raw", 4, 1},
                                                    {"dead-letters", 1, 1},
                                                    {"alerts", 2, 1},
                                                    {"alerts.progress", 1, 1}});
  if (!kafka) return with_context("embedded Kafka: ", kafka.err());
  const std::string bootstrap = (*kafka)->bootstrap();

  // The stays: even ones are sent as HL7 v2, odd ones as FHIR Observations.
  auto files = replay::list_psv_files({o.stays.string()});
  if (!files) return files.err();
  std::vector<replay_run> runs(2);
  runs[0].topic = "hl7.raw";
  runs[0].options.format = replay::message_format::hl7;
  runs[1].topic = "fhir.raw";
  runs[1].options.format = replay::message_format::fhir;
  for (size_t i = 0; i < files->size(); ++i) {
    auto stay = replay::read_psv((*files)[i]);
    if (!stay) return stay.err();
    runs[i % 2].stays.push_back(std::move(*stay));
  }
  r.patients = files->size();

  // The graph, with its ${...} settings pointing at this run.
  std::ifstream graph_in(o.graph);
  if (!graph_in) return make_error(errc::io_error, o.graph.string() + ": cannot open file");
  std::stringstream graph_text;
  graph_text << graph_in.rdbuf();
  const std::map<std::string, std::string, std::less<>> settings = {
      {"VIGIL_KAFKA", bootstrap},
      {"VIGIL_LAKE", r.lake_dir.string()},
      {"VIGIL_PSEUDONYM_KEY_FILE", key_file.string()},
      {"VIGIL_KAFKA_FETCH_WAIT_MS", "10"},
      {"VIGIL_ALERTS_MODE", "exactly_once"}};  // The summary reads the committed view.
  auto expanded = expand_graph_variables(graph_text.str(),
                                         [&](std::string_view name) -> std::optional<std::string> {
                                           if (auto it = settings.find(name); it != settings.end())
                                             return it->second;
                                           return environment_variable(name);
                                         });
  if (!expanded) return with_context(o.graph.string() + ": ", expanded.err());
  auto graph = parse_graph_yaml(*expanded);
  if (!graph) return with_context(o.graph.string() + ": ", graph.err());

  static const operator_registry registry = make_builtin_registry();
  embedded_cluster_options co;
  co.workers = o.workers;
  co.slots_per_worker = o.slots_per_worker;
  co.state_dir = o.data_dir / "state";
  co.checkpoint_dir = o.data_dir / "checkpoints";
  auto cluster = embedded_cluster::start(co, registry);
  if (!cluster) return with_context("embedded cluster: ", cluster.err());
  cluster_coordinator& coordinator = (*cluster)->coordinator();
  auto job = coordinator.submit(*graph);
  if (!job) return job.err();
  r.job_id = job->id;
  out << "vigil-demo: Kafka at " << bootstrap << ", " << o.workers << " workers, job " << job->id
      << " (" << graph->name() << "), data in " << o.data_dir.string() << "\n";

  // The replays start once the job runs; each paces itself by the ICU clock.
  VIGIL_TRY(wait_until_running(coordinator, job->id, 30s));
  for (auto& run : runs) {
    auto output = replay::kafka_output::connect(bootstrap, run.topic, 10s);
    if (!output) return output.err();
    run.output = std::make_unique<counting_output>(std::move(*output));
    run.options.base_time = *parse_timestamp_iso("2026-01-01T00:00:00Z");
    run.options.speed = o.speed;
    run.options.faults = {o.duplicates, o.out_of_order, o.malformed, o.seed, 8};
    run.done = std::async(std::launch::async,
                          [&run] { return replay::replay(run.stays, run.options, *run.output); });
  }

  // Progress until the replays are done and the bronze table holds every message sent.
  bool replays_done = false;
  bool drained = false;
  std::chrono::steady_clock::time_point replays_ended;
  for (;;) {
    auto j = coordinator.wait(job->id, 1s);
    if (!j) return j.err();
    if (j->state != job_state::running && j->state != job_state::restarting) {
      if (j->state == job_state::finished && drained) break;
      return make_error(errc::internal, "job " + job->id + " " + state_text(j->state) +
                                            (j->error.empty() ? "" : ": " + j->error));
    }
    uint64_t sent = 0;
    int64_t clock = 0;
    for (auto& run : runs) {
      sent += run.output->sent();
      clock = std::max(clock, run.output->clock_us());
    }
    std::map<std::string, uint64_t> rows;
    for (const char* t : tables) rows[t] = delta_table_rows(r.lake_dir / t);
    if (o.progress) {
      out << seconds_text(std::chrono::steady_clock::now() - started) << "  ICU clock "
          << (clock > 0 ? format_timestamp_iso(clock).substr(0, 16) : std::string("-")) << "  sent "
          << sent << "  behind " << (sent - std::min(sent, rows["bronze_messages"]))
          << "  observations " << rows["silver_observations"] << "  scores " << rows["gold_scores"]
          << "  alert actions " << rows["gold_alerts"]
          << (j->restarts > 0 ? "  restarts " + std::to_string(j->restarts) : "") << "\n";
    }
    if (!replays_done && std::all_of(runs.begin(), runs.end(), [](replay_run& run) {
          return run.done.wait_for(0s) == std::future_status::ready;
        })) {
      replays_done = true;
      replays_ended = std::chrono::steady_clock::now();
      for (auto& run : runs) {
        auto counts = run.done.get();
        if (!counts) return with_context("replay to " + run.topic + ": ", counts.err());
        r.messages_sent += counts->messages;
        r.observations_replayed += counts->observations;
      }
    }
    if (replays_done) {
      if (!drained && rows["bronze_messages"] >= r.messages_sent) {
        // A job that is restarting right now is drained once its next attempt runs.
        VIGIL_TRY(coordinator.end_input(job->id));
        drained = true;
      }
      if (std::chrono::steady_clock::now() - replays_ended > o.drain_timeout) {
        return make_error(errc::failed_precondition,
                          std::string(drained ? "the job did not finish draining"
                                              : "the job did not read the replayed messages") +
                              " within " + std::to_string(o.drain_timeout.count()) + " s");
      }
    }
  }

  for (const char* t : tables) r.table_rows[t] = delta_table_rows(r.lake_dir / t);
  VIGIL_TRY(read_alerts(bootstrap, r));
  VIGIL_TRY(read_dead_letters(bootstrap, r));
  print_summary(o, r, out);
  out << "done in " << seconds_text(std::chrono::steady_clock::now() - started) << "\n";
  return r;
}

int run_demo_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  demo_options o;
  CLI::App app{
      "vigil-demo: sepsis-watch on an embedded Kafka broker and cluster, fed with the "
      "bundled PhysioNet 2019 ICU stays"};
  std::string graph = o.graph.string(), stays = o.stays.string(), data_dir = o.data_dir.string();
  app.add_option("--graph", graph, "The job graph")->capture_default_str();
  app.add_option("--stays", stays, "PhysioNet .psv files or a directory of them")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir,
                 "Where the tables, checkpoints and state go (emptied if an earlier demo made it)")
      ->capture_default_str();
  app.add_option("--speed", o.speed, "ICU hours replayed per second (0: as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--duplicates", o.duplicates, "Share of messages sent twice")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--out-of-order", o.out_of_order, "Share of messages delayed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--malformed", o.malformed, "Share of messages broken")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "Seed of the injected faults")->capture_default_str();
  app.add_option("--workers", o.workers, "Workers of the embedded cluster")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "No progress lines");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : 2;
  }
  o.graph = graph;
  o.stays = stays;
  o.data_dir = data_dir;
  o.progress = !quiet;
  auto r = run_demo(o, out);
  if (!r) {
    err << "vigil-demo: " << r.err().message << "\n";
    return 1;
  }
  return 0;
}

}  // namespace vigil::demo
