#include "operators/clinical/pseudonymize.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vigil::clinical {
namespace {

TEST(Pseudonymizer, MatchesRfc4231AndReusesItsContext) {
  // RFC 4231 test cases 1 and 4 (HMAC-SHA256), first 128 bits.
  auto p1 = pseudonymizer::make(std::string(20, '\x0b'), "k");
  ASSERT_TRUE(p1.ok()) << p1.err().message;
  std::string out;
  for (int i = 0; i < 2; ++i) {
    (*p1)->pseudonym("Hi There", out);
    EXPECT_EQ(out, "b0344c61d8db38535ca8afceaf0bf12b");
  }
  std::string key4;
  for (char c = 1; c <= 25; ++c) key4.push_back(c);
  auto p4 = pseudonymizer::make(key4, "k");
  ASSERT_TRUE(p4.ok());
  (*p4)->pseudonym(std::string(50, '\xcd'), out);
  EXPECT_EQ(out, "82558a389a443c0ea4cc819899f2083a");
  (*p1)->pseudonym("Hi There", out);
  EXPECT_EQ(out, "b0344c61d8db38535ca8afceaf0bf12b") << "instances do not share keys";
}

TEST(Pseudonymizer, RefusesShortKeys) {
  auto p = pseudonymizer::make("short-key", "pseudonym_key_env");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("config.pseudonym_key_env: "), std::string::npos);
  EXPECT_EQ(p.err().message.find("short-key"), std::string::npos) << "never shows the key";
}

TEST(Pseudonymizer, ReadsKeysFromFilesAndEnvironment) {
  std::string templ = (std::filesystem::temp_directory_path() / "vigil-key-XXXXXX").string();
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  const std::filesystem::path dir = templ;
  { std::ofstream(dir / "key") << "0123456789abcdef\n"; }
  auto k = read_key_file((dir / "key").string(), "pseudonym_key_file");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, "0123456789abcdef") << "the trailing newline is not part of the key";
  auto missing = read_key_file((dir / "nope").string(), "pseudonym_key_file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().message.rfind("config.pseudonym_key_file: ", 0), 0u);

  ::setenv("VIGIL_TEST_PSEUDONYM_KEY", "fedcba9876543210", 1);
  auto e = read_key_env("VIGIL_TEST_PSEUDONYM_KEY", "pseudonym_key_env");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, "fedcba9876543210");
  ::unsetenv("VIGIL_TEST_PSEUDONYM_KEY");
  auto unset = read_key_env("VIGIL_TEST_PSEUDONYM_KEY", "pseudonym_key_env");
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.err().message.rfind("config.pseudonym_key_env: ", 0), 0u);
  std::filesystem::remove_all(dir);
}

TEST(Redact, ReplacesEveryCaseInsensitiveOccurrence) {
  std::string s = "hr-mrn004521-x-MRN004521";
  redact(s, "MRN004521", "abc");
  EXPECT_EQ(s, "hr-abc-x-abc");
  std::string t = "unchanged";
  redact(t, "", "abc");
  EXPECT_EQ(t, "unchanged");
  std::string u = "aaaa";
  redact(u, "a", "aa");
  EXPECT_EQ(u, "aaaaaaaa") << "replacements are not scanned again";
  std::string v = "mRn-7:Mrn-7/mrn-8 MRN-7";
  redact(v, "Mrn-7", "p");
  EXPECT_EQ(v, "p:p/mrn-8 p") << "digits and punctuation match exactly, letters in any case";
  std::string w = "[]{";
  redact(w, "{", "(");
  EXPECT_EQ(w, "[](") << "only A-Z fold: '[' is not '{'";
}

}  // namespace
}  // namespace vigil::clinical
