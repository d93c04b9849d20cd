#include "coordinator/auth.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace vigil {
namespace {

const std::string kAnaHash = sha256_hex("ana-token");
const std::string kBenHash = sha256_hex("ben-token");

TEST(Sha256Hex, MatchesTheKnownDigest) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("").size(), 64u);
}

TEST(Roles, ParseAndNameRoundTrip) {
  for (role r : {role::viewer, role::author, role::operator_, role::admin}) {
    auto parsed = parse_role(role_name(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(role_name(role::operator_), "operator");
  auto bad = parse_role("root");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("unknown role 'root'"), std::string::npos);
}

TEST(TokenTable, ParsesEntriesCommentsAndBlankLines) {
  std::string text = "# who role hash\n\nana author " + kAnaHash +
                     "\n  \t\n   # indented comment\n" + "ben\toperator\t" + kBenHash + "   \r\n";
  auto table = token_table::parse(text, "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.err().message;
  EXPECT_EQ(table->size(), 2u);
  auto ana = table->authenticate("ana-token");
  ASSERT_TRUE(ana.has_value());
  EXPECT_EQ(ana->name, "ana");
  EXPECT_EQ(ana->granted, role::author);
  auto ben = table->authenticate("ben-token");
  ASSERT_TRUE(ben.has_value());
  EXPECT_EQ(ben->granted, role::operator_);
  EXPECT_FALSE(table->authenticate("ana-token ").has_value());
  EXPECT_FALSE(table->authenticate("").has_value());
  EXPECT_FALSE(table->authenticate(kAnaHash).has_value());  // The hash is not the token.
}

TEST(TokenTable, AcceptsUpperCaseHex) {
  std::string upper = kAnaHash;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto table = token_table::parse("ana viewer " + upper + "\n", "t");
  ASSERT_TRUE(table.ok()) << table.err().message;
  EXPECT_TRUE(table->authenticate("ana-token").has_value());
}

void expect_refused(const std::string& text, const std::string& expected) {
  auto table = token_table::parse(text, "tokens.txt");
  ASSERT_FALSE(table.ok()) << "accepted: " << text;
  EXPECT_EQ(table.err().code, errc::parse_error);
  EXPECT_NE(table.err().message.find(expected), std::string::npos) << table.err().message;
}

TEST(TokenTable, RefusesMalformedFilesNamingTheLine) {
  expect_refused("# c\nana author\n", "tokens.txt:2: expected '<principal> <role> <sha256-hex");
  expect_refused("ana author " + kAnaHash + " extra\n", "tokens.txt:1: expected");
  expect_refused("\n\nana root " + kAnaHash + "\n", "tokens.txt:3: unknown role 'root'");
  expect_refused("ana admin abc\n", "tokens.txt:1: the token hash must be 64 hex digits");
  expect_refused("ana admin " + std::string(64, 'g') + "\n", "tokens.txt:1: the token hash");
  expect_refused("ana admin " + kAnaHash + "\nana viewer " + kBenHash + "\n",
                 "tokens.txt:2: principal 'ana' is listed twice");
  expect_refused("ana admin " + kAnaHash + "\nben viewer " + kAnaHash + "\n",
                 "tokens.txt:2: this token hash is listed twice");
  expect_refused("# only comments\n\n", "tokens.txt: no entries");
  expect_refused("ana admin " + sha256_hex("") + "\n",
                 "tokens.txt:1: this is the hash of an empty token");
}

TEST(TokenTable, LoadNamesTheFlagAndFile) {
  auto missing = token_table::load("no/such/tokens.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::io_error);
  EXPECT_NE(missing.err().message.find("--auth-tokens no/such/tokens.txt"), std::string::npos);

  auto path = std::filesystem::temp_directory_path() / "vigil-auth-test-tokens.txt";
  {
    std::ofstream out(path);
    out << "ana viewer zz\n";
  }
  auto bad = token_table::load(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("--auth-tokens " + path.string() + ":1:"), std::string::npos)
      << bad.err().message;
}

TEST(Authorize, EachRoleGetsItsMethods) {
  principal viewer{"v", role::viewer};
  principal author{"a", role::author};
  principal op{"o", role::operator_};
  principal admin{"x", role::admin};
  for (auto m : {api_method::get_job, api_method::list_jobs, api_method::list_workers}) {
    for (const auto* p : {&viewer, &author, &op, &admin}) {
      EXPECT_FALSE(authorize(*p, m).has_value()) << method_name(m) << " " << p->name;
    }
  }
  EXPECT_TRUE(authorize(viewer, api_method::submit_job).has_value());
  EXPECT_FALSE(authorize(author, api_method::submit_job).has_value());
  EXPECT_FALSE(authorize(op, api_method::submit_job).has_value());
  for (auto m : {api_method::cancel_job, api_method::trigger_savepoint, api_method::stop_job}) {
    EXPECT_TRUE(authorize(viewer, m, "j", "v").has_value());
    EXPECT_FALSE(authorize(op, m, "j", "someone").has_value());
    EXPECT_FALSE(authorize(admin, m, "j", "").has_value());
  }
}

TEST(Authorize, AnAuthorMayCancelAndStopOnlyItsOwnJobs) {
  principal author{"ana", role::author};
  EXPECT_FALSE(authorize(author, api_method::cancel_job, "j1", "ana").has_value());
  EXPECT_FALSE(authorize(author, api_method::stop_job, "j1", "ana").has_value());
  // A plain savepoint is an operator's business, even of one's own job.
  EXPECT_TRUE(authorize(author, api_method::trigger_savepoint, "j1", "ana").has_value());
  EXPECT_TRUE(authorize(author, api_method::cancel_job, "j1", "").has_value());

  auto denied = authorize(author, api_method::cancel_job, "vitals-1", "ben");
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(*denied,
            "CancelJob needs role operator (or author for its own jobs); 'ana' has role author and "
            "job 'vitals-1' belongs to 'ben'");
  // A viewer owning a job (its role was lowered since) may not cancel it.
  principal viewer{"ana", role::viewer};
  auto viewer_denied = authorize(viewer, api_method::cancel_job, "j1", "ana");
  ASSERT_TRUE(viewer_denied.has_value());
  EXPECT_NE(viewer_denied->find("'ana' has role viewer"), std::string::npos);
}

TEST(Authorize, MessagesNameTheMethodAndTheRoleNeeded) {
  auto submit = authorize({"v", role::viewer}, api_method::submit_job);
  ASSERT_TRUE(submit.has_value());
  EXPECT_EQ(*submit, "SubmitJob needs role author; 'v' has role viewer");
  auto stop = authorize({"v", role::viewer}, api_method::stop_job, "j");
  ASSERT_TRUE(stop.has_value());
  EXPECT_NE(stop->find("TriggerSavepoint with stop needs role operator"), std::string::npos);
}

}  // namespace
}  // namespace vigil
