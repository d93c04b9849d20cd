#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.hpp"

namespace vigil {

/// One API call as the audit log records it.
struct audit_record {
  int64_t time_us = 0;    ///< When the call ended: µs since the Unix epoch, UTC.
  std::string principal;  ///< The authenticated caller; "anonymous" when it has none.
  std::string peer;       ///< The caller's address as gRPC reports it, e.g. "ipv4:127.0.0.1:5012".
  std::string method;     ///< gRPC method name, e.g. "CancelJob".
  std::string job_id;     ///< The job the call was about; empty if none.
  std::string outcome;    ///< gRPC status code name: "OK", "PERMISSION_DENIED", ...
  std::string message;    ///< The status message; empty for OK.
};

/// µs since the Unix epoch as RFC 3339 UTC with milliseconds, "2026-11-22T12:00:00.123Z".
std::string format_rfc3339_ms(int64_t time_us);

/// The JSON line of a record (with its trailing '\n'): an object with the keys time,
/// principal, peer, method, job_id (only when set), outcome and message, in this order.
std::string format_audit_line(const audit_record& record);

/// The API's append-only audit log (--audit-log): one JSON line per call, refused calls
/// included. The file is opened with O_APPEND and every line goes out in one write(2), so
/// lines from concurrent calls never interleave and nothing waits in a user-space buffer.
/// Thread-safe; called from the gRPC threads only, never from actors.
class audit_log {
 public:
  /// Opens (creating with mode 0640) `file` for appending; io_error naming the file when it
  /// cannot.
  static result<std::unique_ptr<audit_log>> open(const std::filesystem::path& file);

  ~audit_log();
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  /// Appends a record. A failed write is logged (once until a write succeeds again) and
  /// otherwise ignored: auditing never takes the API down.
  void write(const audit_record& record);

  /// Writes that failed so far.
  uint64_t failed_writes() const;

  const std::filesystem::path& path() const { return path_; }

 private:
  audit_log(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::filesystem::path path_;
  int fd_ = -1;
  mutable std::mutex mutex_;
  bool failing_ = false;
  uint64_t failed_writes_ = 0;
};

}  // namespace vigil
