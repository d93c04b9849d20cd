#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "tools/replay/psv_reader.hpp"
#include "tools/replay/replay_messages.hpp"

/// vigil-replay: replays PhysioNet 2019 stays as HL7 v2 or FHIR messages, in event-time order
/// across patients, optionally paced and with injected faults, into Kafka or a JSON-lines file.

namespace vigil::replay {

/// Fault injection. Each message draws its faults independently from a generator seeded with
/// `seed` (std::mt19937_64), so a seed gives the same run on every platform.
struct fault_options {
  double duplicates = 0;    ///< Probability that a message is sent once more (same id).
  double out_of_order = 0;  ///< Probability that a message is delayed by 1..max_delay places.
  double malformed = 0;     ///< Probability that a message is broken (malformed_kind).
  uint64_t seed = 1;
  int max_delay = 8;  ///< Positions a delayed message or a duplicate moves back, at most.
};

/// What to replay and how.
struct replay_options {
  message_format format = message_format::hl7;
  int64_t base_time = 0;  ///< µs since the epoch, UTC; event time = base + ICULOS hours.
  /// Event hours replayed per wall-clock second; 0 sends as fast as possible.
  double speed = 0;
  fault_options faults;
};

/// A message of the replay plan. Messages refer to their row; the text is built when sent.
struct planned_message {
  uint32_t stay = 0;       ///< Index into the stays.
  uint32_t row = 0;        ///< Index into the stay's rows.
  uint8_t column = 0;      ///< The cell (message_format::fhir only).
  bool duplicate = false;  ///< A second copy of an earlier (or later, when delayed) message.
  bool delayed = false;    ///< Sent after messages that follow it in event time.
  bool malformed = false;
  malformed_kind kind = malformed_kind::truncated;  ///< When malformed.
};

/// What a replay did.
struct replay_counts {
  uint64_t messages = 0;      ///< Messages sent, duplicates and malformed ones included.
  uint64_t observations = 0;  ///< Measured cells replayed (each counted once).
  uint64_t duplicates = 0;    ///< Extra copies sent.
  uint64_t shuffled = 0;      ///< Messages sent out of order.
  uint64_t malformed = 0;     ///< Messages sent broken (duplicate copies not counted).
  uint64_t patients = 0;
  uint64_t rows = 0;  ///< Rows with at least one measured cell.
};

/// The order in which messages are sent: rows by event time (ICULOS), then by the stays' order,
/// then by file order; rows without a measured replayed cell send nothing. Then the faults of
/// `faults` are applied. `counts` receives everything but `messages` sent so far (it is set to
/// the plan's size).
std::vector<planned_message> plan_replay(const std::vector<patient_stay>& stays,
                                         message_format format, const fault_options& faults,
                                         replay_counts& counts);

/// Where messages go.
class message_output {
 public:
  virtual ~message_output() = default;
  /// Sends `payload` with the record key `key` (the patient id). `sent_at_us` is when the
  /// simulated sender sends it (µs since the epoch): the replay's clock, the latest event hour
  /// sent so far, so it never goes back and a delayed message is sent after its event time.
  virtual status send(std::string_view key, std::string_view payload, int64_t sent_at_us) = 0;
  /// Delivers everything sent; an error when something was not delivered.
  virtual status finish() = 0;
};

/// Writes one JSON object per line, {"raw":"<message>","received_at":"<ISO sent_at>"}, the
/// shape the file source reads.
class jsonl_output final : public message_output {
 public:
  /// Writes to `out`, which must outlive this object.
  explicit jsonl_output(std::ostream& out) : out_(out) {}
  status send(std::string_view key, std::string_view payload, int64_t sent_at_us) override;
  status finish() override;

 private:
  std::ostream& out_;
  std::string line_;  ///< Reused from message to message.
};

/// Replays `stays` into `output`: plans (plan_replay), paces by `options.speed`, writes each
/// message and finally calls output.finish().
result<replay_counts> replay(const std::vector<patient_stay>& stays, const replay_options& options,
                             message_output& output);

/// vigil-replay's exit codes.
enum replay_exit : int {
  replay_exit_ok = 0,
  replay_exit_failed = 1,   ///< Reading input or delivering messages failed.
  replay_exit_invalid = 2,  ///< Bad usage.
};

/// The whole of vigil-replay: parses `argv` (argv[0] is the program name), writes messages to
/// `out` with `--output -`, diagnostics and the summary to `err`, returns the exit code.
int run_replay_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace vigil::replay
