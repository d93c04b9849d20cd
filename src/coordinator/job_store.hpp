#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "coordinator/coordinator_api.hpp"
#include "vigil/v1/graph.pb.h"

namespace vigil {

/// A job as the store keeps it: what the coordinator knows about it and the graph it runs.
struct stored_job {
  job_info info;
  v1::JobGraph graph;
};

/// The coordinator's durable job table, so that a restarted coordinator knows every job it
/// accepted. One file per job, "<job id>.job" in one directory, replaced atomically on every
/// change (written to "<job id>.job.tmp", fsynced, renamed over the old file, directory
/// fsynced): a crash leaves either the old or the new version, never a torn one.
///
/// File format (little-endian): "VIGILJOB", u32 format version (1), u32 length of the
/// vigil.v1.Job bytes, u32 length of the vigil.v1.JobGraph bytes, u64 XXH64 (seed 0) of the
/// bytes that follow, then the Job bytes and the JobGraph bytes.
///
/// Not thread-safe: the coordinator core calls it under its own lock. Every write blocks on
/// fsync, so it belongs off the gRPC threads' hot path only as far as job changes are rare
/// (submission, state transitions), which they are.
class job_store {
 public:
  /// Opens `dir`, creating it if needed, and loads every "*.job" file. A file that cannot be
  /// read, has a bad header or checksum, or does not parse is skipped and reported in
  /// load_errors() with its path; temporary files of an interrupted write are deleted; other
  /// files are ignored. Fails (io_error) only when the directory itself is unusable.
  static result<job_store> open(const std::filesystem::path& dir);

  /// Every job, oldest submission first (ties by id).
  std::vector<const stored_job*> jobs() const;

  /// The job with this id, or nullptr.
  const stored_job* find(std::string_view job_id) const;

  /// Persists a new job, or replaces a known one (its info and graph). Refuses ids that are
  /// empty, longer than 128 characters, start with '.' or use characters other than
  /// [A-Za-z0-9_.-] (invalid_argument); io_error when the file cannot be written.
  status put(const job_info& info, const v1::JobGraph& graph);

  /// Persists a known job's changed info (state, error, placement), keeping its graph.
  /// not_found for an id the store does not hold.
  status update(const job_info& info);

  /// Problems found by open(), one per skipped file: "job store: <path>: <reason>".
  const std::vector<error>& load_errors() const { return load_errors_; }

  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit job_store(std::filesystem::path dir) : dir_(std::move(dir)) {}

  status write(const stored_job& job) const;

  std::filesystem::path dir_;
  std::map<std::string, stored_job, std::less<>> jobs_;
  std::vector<error> load_errors_;
};

}  // namespace vigil
