#include "coordinator/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <iterator>
#include <set>

namespace vigil {
namespace {

constexpr std::string_view kBlank = " \t\r";

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < line.size()) {
    auto start = line.find_first_not_of(kBlank, pos);
    if (start == std::string_view::npos) break;
    auto end = line.find_first_of(kBlank, start);
    if (end == std::string_view::npos) end = line.size();
    out.push_back(line.substr(start, end - start));
    pos = end;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::array<uint8_t, 32>> parse_hash(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return out;
}

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

}  // namespace

std::string_view trim_blanks(std::string_view s) {
  auto first = s.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(kBlank);
  return s.substr(first, last - first + 1);
}

std::string_view role_name(role r) {
  switch (r) {
    case role::viewer:
      return "viewer";
    case role::author:
      return "author";
    case role::operator_:
      return "operator";
    case role::admin:
      return "admin";
  }
  return "viewer";
}

result<role> parse_role(std::string_view name) {
  for (role r : {role::viewer, role::author, role::operator_, role::admin}) {
    if (name == role_name(r)) return r;
  }
  return make_error(errc::invalid_argument, "unknown role '" + std::string(name) +
                                                "' (roles: viewer, author, operator, admin)");
}

std::string sha256_hex(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  auto hash = sha256(data);
  std::string out;
  out.reserve(64);
  for (uint8_t b : hash) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

result<token_table> token_table::parse(std::string_view text, const std::string& source) {
  token_table table;
  std::set<std::string, std::less<>> names;
  std::set<std::array<uint8_t, 32>> hashes;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = trim_blanks(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const std::string& what) {
      return make_error(errc::parse_error, source + ":" + std::to_string(line_no) + ": " + what);
    };
    auto f = fields(line);
    if (f.size() != 3) {
      return fail("expected '<principal> <role> <sha256-hex-of-token>', found " +
                  std::to_string(f.size()) + " field" + (f.size() == 1 ? "" : "s"));
    }
    auto r = parse_role(f[1]);
    if (!r) return fail(r.err().message);
    auto hash = parse_hash(f[2]);
    if (!hash) return fail("the token hash must be 64 hex digits (vigilctl hash-token prints it)");
    if (*hash == sha256("")) return fail("this is the hash of an empty token");
    if (!names.insert(std::string(f[0])).second) {
      return fail("principal '" + std::string(f[0]) + "' is listed twice");
    }
    if (!hashes.insert(*hash).second) return fail("this token hash is listed twice");
    table.entries_.push_back({{std::string(f[0]), *r}, *hash});
  }
  if (table.entries_.empty()) {
    return make_error(errc::parse_error, source + ": no entries (every call would be refused)");
  }
  return table;
}

result<token_table> token_table::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in.is_open()) {
    return make_error(errc::io_error, "--auth-tokens " + file.string() + ": cannot be read");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return make_error(errc::io_error, "--auth-tokens " + file.string() + ": cannot be read");
  }
  return parse(text, "--auth-tokens " + file.string());
}

std::optional<principal> token_table::authenticate(std::string_view token) const {
  if (token.empty()) return std::nullopt;  // Never matches, not even the hash of "".
  auto hash = sha256(token);
  const entry* found = nullptr;
  for (const auto& e : entries_) {
    // CRYPTO_memcmp takes the same time whether or not the hashes match.
    bool equal = CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0;
    if (equal) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->who;
}

std::string_view method_name(api_method m) {
  switch (m) {
    case api_method::submit_job:
      return "SubmitJob";
    case api_method::get_job:
      return "GetJob";
    case api_method::list_jobs:
      return "ListJobs";
    case api_method::cancel_job:
      return "CancelJob";
    case api_method::trigger_savepoint:
    case api_method::stop_job:
      return "TriggerSavepoint";
    case api_method::list_workers:
      return "ListWorkers";
    case api_method::drain_job:
      return "DrainJob";
  }
  return "unknown";
}

role required_role(api_method m) {
  switch (m) {
    case api_method::get_job:
    case api_method::list_jobs:
    case api_method::list_workers:
      return role::viewer;
    case api_method::submit_job:
      return role::author;
    case api_method::cancel_job:
    case api_method::trigger_savepoint:
    case api_method::stop_job:
    case api_method::drain_job:
      return role::operator_;
  }
  return role::admin;
}

std::optional<std::string> authorize(const principal& who, api_method m, std::string_view job_id,
                                     std::string_view job_owner) {
  role needed = required_role(m);
  if (who.granted >= needed) return std::nullopt;
  bool owner_may = owner_may_call(m);
  std::string what = std::string(method_name(m));
  if (m == api_method::stop_job) what += " with stop";
  std::string reason = what + " needs role " + std::string(role_name(needed));
  if (owner_may) {
    if (who.granted == role::author && !job_owner.empty() && job_owner == who.name) {
      return std::nullopt;
    }
    reason += " (or author for its own jobs)";
  }
  reason += "; '" + who.name + "' has role " + std::string(role_name(who.granted));
  if (owner_may && who.granted == role::author && !job_id.empty()) {
    reason += " and job '" + std::string(job_id) + "' " +
              (job_owner.empty() ? std::string("has no owner")
                                 : "belongs to '" + std::string(job_owner) + "'");
  }
  return reason;
}

}  // namespace vigil
