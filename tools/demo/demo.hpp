#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "coordinator/cluster_coordinator.hpp"

/// vigil-demo: the README's first command. Runs examples/sepsis-watch.yaml on an embedded Kafka
/// broker (librdkafka's mock cluster) and an embedded cluster (a coordinator and workers in this
/// process, over 127.0.0.1), replays the bundled PhysioNet 2019 sample into it as HL7 v2 and
/// FHIR messages, shows progress, drains the job when the replay has been read, and summarizes
/// the alerts. The Delta tables stay in the data directory.

namespace vigil::demo {

struct demo_options {
  std::filesystem::path graph = "examples/sepsis-watch.yaml";
  std::filesystem::path stays = "examples/data/physionet2019";  ///< .psv files or a directory.
  /// Everything the run writes: lake/ (the tables), checkpoints/, state/, pseudonym.key. An
  /// existing directory is reused only if an earlier demo made it (it holds .vigil-demo).
  std::filesystem::path data_dir = "vigil-demo";
  double speed = 5;  ///< ICU hours replayed per second; 0: as fast as possible.
  double duplicates = 0.02;
  double out_of_order = 0.02;
  double malformed = 0.005;
  uint64_t seed = 7;
  size_t workers = 2;
  uint32_t slots_per_worker = 16;
  bool progress = true;  ///< Print a progress line every second.
  /// Bound of the whole run after the replay: reading the backlog and draining.
  std::chrono::seconds drain_timeout{120};
};

/// What a run did; the summary is printed from it.
struct demo_result {
  std::string job_id;
  uint64_t messages_sent = 0;  ///< Duplicates and malformed ones included.
  uint64_t observations_replayed = 0;
  uint64_t patients = 0;
  std::map<std::string, uint64_t> table_rows;  ///< Committed rows by table name.
  uint64_t dead_letters = 0;
  std::map<std::string, uint64_t> dead_letter_reasons;
  /// Alert actions by "rule level action", from the committed view of the alerts topic.
  std::map<std::string, uint64_t> alert_actions;
  uint64_t alerts_in_topic = 0;
  uint64_t patients_alerted = 0;
  std::vector<std::string> first_alerts;  ///< "patient rule (level) at time: reason".
  std::filesystem::path lake_dir;
};

/// Committed rows of a Delta table (the numRecords of its live files); 0 before its first commit
/// or when its log cannot be read.
uint64_t delta_table_rows(const std::filesystem::path& table);

/// Writes a fresh random pseudonymization key (32 hex digits) readable by the owner only.
status write_pseudonym_key(const std::filesystem::path& path);

/// Waits until job `id` runs: an error when it fails or ends first, or after `timeout`.
status wait_until_running(cluster_coordinator& coordinator, const std::string& id,
                          std::chrono::milliseconds timeout);

/// Runs the demo; progress and the summary go to `out`. An error when something could not be
/// set up or the job did not finish.
result<demo_result> run_demo(const demo_options& options, std::ostream& out);

/// vigil-demo's command line; returns the exit code (0 done, 1 failed, 2 bad usage).
int run_demo_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace vigil::demo
