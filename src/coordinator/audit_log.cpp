#include "coordinator/audit_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

namespace vigil {

std::string format_rfc3339_ms(int64_t time_us) {
  auto seconds = static_cast<std::time_t>(time_us / 1'000'000);
  auto millis = static_cast<int>((time_us % 1'000'000) / 1000);
  if (time_us < 0 && time_us % 1'000'000 != 0) {
    seconds -= 1;
    millis = static_cast<int>((1'000'000 + time_us % 1'000'000) / 1000);
  }
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", millis);
  return buf;
}

std::string format_audit_line(const audit_record& record) {
  nlohmann::ordered_json line;
  line["time"] = format_rfc3339_ms(record.time_us);
  line["principal"] = record.principal.empty() ? "anonymous" : record.principal;
  line["peer"] = record.peer;
  line["method"] = record.method;
  if (!record.job_id.empty()) line["job_id"] = record.job_id;
  line["outcome"] = record.outcome;
  line["message"] = record.message;
  // Invalid UTF-8 (a job id is checked, a message may quote anything) is replaced, not thrown.
  auto out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

result<std::unique_ptr<audit_log>> audit_log::open(const std::filesystem::path& file) {
  // O_NOFOLLOW: a symbolic link planted at the path cannot redirect the audit trail.
  int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    return make_error(errc::io_error, "--audit-log " + file.string() +
                                          ": cannot be opened: " + std::strerror(errno));
  }
  return std::unique_ptr<audit_log>(new audit_log(file, fd));
}

audit_log::~audit_log() {
  if (fd_ >= 0) ::close(fd_);
}

void audit_log::write(const audit_record& record) {
  auto line = format_audit_line(record);
  std::lock_guard lock(mutex_);
  // A short write is finished, so a line is never cut (and the next one never glued to it).
  size_t done = 0;
  int write_errno = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errno = n < 0 ? errno : 0;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (done == line.size()) {
    if (failing_) spdlog::info("audit log {}: writing again", path_.string());
    failing_ = false;
    return;
  }
  ++failed_writes_;
  if (!failing_) {
    spdlog::error(
        "audit log {}: cannot append a record ({}); API calls go on unaudited until "
        "a write succeeds",
        path_.string(), write_errno != 0 ? std::strerror(write_errno) : "nothing written");
  }
  failing_ = true;
}

uint64_t audit_log::failed_writes() const {
  std::lock_guard lock(mutex_);
  return failed_writes_;
}

}  // namespace vigil
