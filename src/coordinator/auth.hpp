#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace vigil {

/// What a caller of the job API may do. Each role includes the ones before it:
/// viewer < author < operator_ < admin (the enumerator has a trailing underscore because
/// `operator` is a C++ keyword; its name everywhere else is "operator").
enum class role : uint8_t { viewer, author, operator_, admin };

/// "viewer", "author", "operator", "admin".
std::string_view role_name(role r);

/// The role named `name` (exactly as role_name spells it); invalid_argument otherwise.
result<role> parse_role(std::string_view name);

/// An authenticated caller.
struct principal {
  std::string name;  ///< As in the tokens file; "anonymous" when authentication is off.
  role granted = role::viewer;
};

/// The lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);

/// The bearer tokens the coordinator accepts (--auth-tokens). The file is text, one entry per
/// line: `<principal> <role> <sha256-hex-of-token>`, separated by spaces or tabs; blank lines
/// and lines whose first non-blank character is '#' are ignored. It holds only hashes: a
/// token is never stored. Immutable once loaded, so any thread may use it.
class token_table {
 public:
  /// Parses the text of a tokens file. `source` names it in errors, which are parse_error
  /// "<source>:<line>: <what is wrong>": a line without exactly three fields, an unknown role,
  /// a hash that is not 64 hex digits, a principal listed twice (a principal has one role)
  /// or a hash listed twice. A file without entries is refused too (it would lock everyone
  /// out).
  static result<token_table> parse(std::string_view text, const std::string& source);

  /// Reads and parses `file`; io_error naming the file when it cannot be read.
  static result<token_table> load(const std::filesystem::path& file);

  /// The principal whose token hashes to an entry, or nothing. Hashes `token` and compares it
  /// with every entry in constant time (no early exit), so timing tells nothing about which
  /// bytes matched.
  std::optional<principal> authenticate(std::string_view token) const;

  /// Number of entries.
  size_t size() const { return entries_.size(); }

 private:
  struct entry {
    principal who;
    std::array<uint8_t, 32> hash{};
  };
  std::vector<entry> entries_;
};

/// The job API's calls, as authorization sees them. `stop_job` is TriggerSavepoint with
/// stop = true.
enum class api_method {
  submit_job,
  get_job,
  list_jobs,
  cancel_job,
  trigger_savepoint,
  stop_job,
  list_workers,
  drain_job
};

/// `s` without leading and trailing blanks (space, tab, CR).
std::string_view trim_blanks(std::string_view s);

/// The gRPC method name, e.g. "CancelJob"; stop_job is "TriggerSavepoint".
std::string_view method_name(api_method m);

/// The least role that may call `m` on any job: viewer for get_job, list_jobs and
/// list_workers; author for submit_job; operator for cancel_job, trigger_savepoint, stop_job
/// and drain_job.
role required_role(api_method m);

/// Whether an author may call `m` on its own jobs: cancel_job, stop_job and drain_job.
inline bool owner_may_call(api_method m) {
  return m == api_method::cancel_job || m == api_method::stop_job || m == api_method::drain_job;
}

/// Whether `who` may call `m`. `job_owner` is the owner of the job the call is about (only
/// looked at for cancel_job and stop_job: an author may cancel or stop the jobs it owns).
/// Returns nothing when allowed, else the reason for PERMISSION_DENIED, naming the method
/// and the role it needs, e.g. "CancelJob needs role operator (or author for its own jobs);
/// 'ana' has role author and job 'vitals-1' belongs to 'ben'".
std::optional<std::string> authorize(const principal& who, api_method m,
                                     std::string_view job_id = {}, std::string_view job_owner = {});

}  // namespace vigil
