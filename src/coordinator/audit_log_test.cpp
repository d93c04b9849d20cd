#include "coordinator/audit_log.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace vigil {
namespace {

std::filesystem::path temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "vigil-audit-XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(AuditLine, HasEveryFieldInOrder) {
  audit_record r;
  r.time_us = 1'763'812'800'123'456;  // 2025-11-22T12:00:00.123456Z
  r.principal = "ana";
  r.peer = "ipv4:127.0.0.1:5012";
  r.method = "CancelJob";
  r.job_id = "vitals-1";
  r.outcome = "PERMISSION_DENIED";
  r.message = "CancelJob needs role operator";
  EXPECT_EQ(format_audit_line(r),
            R"({"time":"2025-11-22T12:00:00.123Z","principal":"ana","peer":"ipv4:127.0.0.1:5012",)"
            R"("method":"CancelJob","job_id":"vitals-1","outcome":"PERMISSION_DENIED",)"
            R"("message":"CancelJob needs role operator"})"
            "\n");
}

TEST(AuditLine, OmitsAMissingJobAndNamesAnonymousCallers) {
  audit_record r;
  r.time_us = 0;
  r.method = "ListJobs";
  r.outcome = "UNAUTHENTICATED";
  r.message = "quote \" and\nnewline";
  auto line = format_audit_line(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // Escaped: one record, one line.
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(j["principal"], "anonymous");
  EXPECT_FALSE(j.contains("job_id"));
  EXPECT_EQ(j["message"], "quote \" and\nnewline");
}

TEST(AuditLine, ReplacesInvalidUtf8InsteadOfThrowing) {
  audit_record r;
  r.method = "GetJob";
  r.outcome = "NOT_FOUND";
  r.message = std::string("bad \xff byte");
  auto j = nlohmann::json::parse(format_audit_line(r));
  EXPECT_NE(j["message"].get<std::string>().find("bad "), std::string::npos);
}

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(1'999), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(format_rfc3339_ms(86'400'000'000 + 999'999), "1970-01-02T00:00:00.999Z");
}

TEST(AuditLog, AppendsLinesToAnExistingFile) {
  auto dir = temp_dir();
  auto file = dir / "audit.jsonl";
  {
    std::ofstream out(file);
    out << "{\"earlier\":true}\n";
  }
  {
    auto log = audit_log::open(file);
    ASSERT_TRUE(log.ok()) << log.err().message;
    audit_record r;
    r.method = "ListJobs";
    r.outcome = "OK";
    (*log)->write(r);
    r.method = "GetJob";
    (*log)->write(r);
    EXPECT_EQ((*log)->failed_writes(), 0u);
  }
  auto lines = lines_of(file);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["method"], "ListJobs");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["method"], "GetJob");
  std::filesystem::remove_all(dir);
}

TEST(AuditLog, ConcurrentWritersNeverInterleave) {
  auto dir = temp_dir();
  auto file = dir / "audit.jsonl";
  auto log = audit_log::open(file);
  ASSERT_TRUE(log.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      audit_record r;
      r.method = "GetJob";
      r.outcome = "OK";
      r.message = std::string(500, static_cast<char>('a' + t));
      for (int i = 0; i < 200; ++i) (*log)->write(r);
    });
  }
  for (auto& t : threads) t.join();
  auto lines = lines_of(file);
  ASSERT_EQ(lines.size(), 800u);
  for (const auto& l : lines) {
    auto msg = nlohmann::json::parse(l)["message"].get<std::string>();
    EXPECT_EQ(msg, std::string(500, msg[0]));
  }
  std::filesystem::remove_all(dir);
}

TEST(AuditLog, OpenNamesTheFlagAndFile) {
  auto log = audit_log::open("no/such/dir/audit.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.err().code, errc::io_error);
  EXPECT_NE(log.err().message.find("--audit-log no/such/dir/audit.jsonl: cannot be opened"),
            std::string::npos);
}

TEST(AuditLog, AFailedWriteIsCountedNotFatal) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto log = audit_log::open("/dev/full");
  ASSERT_TRUE(log.ok());
  audit_record r;
  r.method = "ListJobs";
  r.outcome = "OK";
  (*log)->write(r);
  (*log)->write(r);
  EXPECT_EQ((*log)->failed_writes(), 2u);
}

}  // namespace
}  // namespace vigil
