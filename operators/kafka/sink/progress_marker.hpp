#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

/// The records that make a Kafka sink's output exactly once: every message carries three
/// headers naming its sink subtask, epoch and attempt, and each committed epoch has one marker
/// record in the progress topic (key: the sink id; value: a JSON object). See DESIGN.md,
/// "Exactly-once sinks".

namespace vigil::kafka {

/// Header with the sink id, "<job>/<node>/<subtask>".
inline constexpr const char* header_sink = "vigil.sink";
/// Header with the epoch (the checkpoint id that closed it) in decimal.
inline constexpr const char* header_epoch = "vigil.epoch";
/// Header with the attempt id: 16 hex digits, random per sink instance.
inline constexpr const char* header_attempt = "vigil.attempt";

/// A marker: sink `sink` committed epoch `epoch` (`records` records) in attempt `attempt`.
struct progress_marker {
  std::string sink;
  int64_t epoch = 0;
  std::string attempt;
  /// The run the epoch belongs to: 16 hex digits drawn when a job starts without a checkpoint
  /// and kept across restores, so that markers of an earlier run of the same job never count.
  std::string run;
  int64_t records = 0;
  /// Set on the epochs committed when the input ended: everything this run received is in
  /// Kafka, so a restore of the same run writes nothing more.
  bool final = false;

  friend bool operator==(const progress_marker&, const progress_marker&) = default;
};

/// The marker's JSON value:
/// {"sink":"job/node/0","epoch":7,"attempt":"..","run":"..","records":120,"final":false}.
std::string encode_marker(const progress_marker& m);

/// Parses encode_marker()'s output; parse_error for anything else.
result<progress_marker> parse_marker(std::string_view json);

/// `v` as 16 lower-case hex digits.
std::string to_hex64(uint64_t v);

/// A random 64-bit id as 16 hex digits (std::random_device).
std::string random_id();

}  // namespace vigil::kafka
