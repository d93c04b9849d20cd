// API and cluster security with real processes on 127.0.0.1: TLS and mTLS on the gRPC API,
// bearer tokens with roles, the audit log, and TLS on the CAF transport between the
// coordinator and the workers. Certificates are made at test time with the openssl CLI (a
// test CA, a second CA nobody trusts, and certificates signed by each) in the test's
// temporary directory.
#include <unistd.h>

#include <fstream>
#include <set>

#include "cluster_fixture.hpp"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace vigil::testing;

/// A graph whose generator never ends, so that the job stays running until cancelled.
constexpr const char* kEndless =
    "name: endless\n"
    "nodes:\n"
    "  - {id: gen, operator: generator, config: {keys: 8, rate: 1000, seed: 3}}\n"
    "  - {id: sink, operator: \"null\"}\n"
    "edges:\n"
    "  - {from: gen, to: sink, partitioning: rebalance}\n";

/// A finite keyed job over two workers: subtasks of by_key and sink exchange data between the
/// workers (the hash edge), so the peer connection carries records.
constexpr const char* kKeyed =
    "name: keyed\n"
    "nodes:\n"
    "  - {id: gen, operator: generator, config: {count: 20000, keys: 16, interval: 1ms, seed: 5}}\n"
    "  - {id: by_key, operator: key_by, parallelism: 2, config: {key: key}}\n"
    "  - {id: sink, operator: \"null\", parallelism: 2}\n"
    "edges:\n"
    "  - {from: gen, to: by_key, partitioning: rebalance}\n"
    "  - {from: by_key, to: sink}\n";

class SecurityTest : public cluster_fixture {
 protected:
  void SetUp() override {
    cluster_fixture::SetUp();
    certs_ = dir_ + "/certs";
    std::filesystem::create_directories(certs_);
    ASSERT_NO_FATAL_FAILURE(make_ca("ca"));
    ASSERT_NO_FATAL_FAILURE(make_ca("other-ca"));
    ASSERT_NO_FATAL_FAILURE(make_cert("server", "ca"));
    ASSERT_NO_FATAL_FAILURE(make_cert("client", "ca"));
    ASSERT_NO_FATAL_FAILURE(make_cert("node", "ca"));
    ASSERT_NO_FATAL_FAILURE(make_cert("stranger", "other-ca"));
  }

  std::string pem(const std::string& name) const { return certs_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return certs_ + "/" + name + ".key"; }

  static void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv);
    ASSERT_EQ(r.exit_code, 0) << "openssl " << args.front() << ": " << r.err;
  }

  void make_ca(const std::string& name) {
    openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key(name), "-out",
             pem(name), "-days", "2", "-subj", "/CN=" + name});
  }

  /// A certificate for 127.0.0.1 signed by `ca`.
  void make_cert(const std::string& name, const std::string& ca) {
    std::string csr = certs_ + "/" + name + ".csr";
    std::string ext = certs_ + "/" + name + ".ext";
    write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", key(name), "-out", csr, "-subj",
             "/CN=" + name});
    openssl({"x509", "-req", "-in", csr, "-CA", pem(ca), "-CAkey", key(ca), "-CAcreateserial",
             "-out", pem(name), "-days", "2", "-extfile", ext});
  }

  /// Writes a token to a file for vigilctl --token-file and returns the file.
  std::string token_file(const std::string& token) {
    std::string path = dir_ + "/" + token + ".token";
    write_file(path, token + "\n");
    return path;
  }

  /// The tokens file: vera viewer, ana and ben authors, ola operator, each with the token
  /// "<name>-secret", hashed with `vigilctl hash-token`.
  std::string tokens_file() {
    std::string text = "# principal role sha256(token)\n";
    for (auto [name, role] :
         {std::pair{"vera", "viewer"}, {"ana", "author"}, {"ben", "author"}, {"ola", "operator"}}) {
      std::string token_path = token_file(std::string(name) + "-secret");
      auto r = run_process({"/bin/sh", "-c", vigilctl_bin + " hash-token < " + token_path});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      std::string hash = r.out.substr(0, r.out.find('\n'));
      EXPECT_EQ(hash.size(), 64u) << r.out;
      text += std::string(name) + " " + role + " " + hash + "\n";
    }
    std::string path = dir_ + "/tokens.txt";
    write_file(path, text);
    return path;
  }

  /// Starts a coordinator with `extra` flags; keeps its addresses in api_ and cluster_.
  void start_secured_coordinator(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {coordinator_bin,           "--listen",    "127.0.0.1:0",
                                     "--cluster-listen",        "127.0.0.1:0", "--data-dir",
                                     dir_ + "/coordinator-data"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string line;
    coordinator_ = &spawn("coordinator", argv, line);
    api_ = word_after(line, "api");
    cluster_ = word_after(line, "cluster");
    ASSERT_FALSE(api_.empty() || cluster_.empty()) << "startup line: '" << line << "'";
  }

  /// Starts worker `id` with `extra` flags (e.g. its cluster certificate).
  child_process& start_worker_with(const std::string& id, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {worker_bin,
                                     "--id",
                                     id,
                                     "--coordinator",
                                     cluster_,
                                     "--slots",
                                     "4",
                                     "--state-dir",
                                     dir_ + "/" + id + "-state",
                                     "--heartbeat-ms",
                                     "200"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string line;
    return spawn(id, argv, line);
  }

  /// vigilctl with `global` flags (TLS, token) before `args`.
  process_result ctl_with(const std::vector<std::string>& global,
                          const std::vector<std::string>& args) {
    std::vector<std::string> argv = {vigilctl_bin, "--coordinator", api_, "--timeout",
                                     "5",          "--json"};
    argv.insert(argv.end(), global.begin(), global.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  std::vector<std::string> as(const std::string& who) {
    return {"--token-file", dir_ + "/" + who + "-secret.token"};
  }

  std::vector<json> audit_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<json> out;
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
      out.push_back(j);
    }
    return out;
  }

  std::string certs_;
};

TEST_F(SecurityTest, MutualTlsRefusesClientsWithoutATrustedCertificate) {
  ASSERT_NO_FATAL_FAILURE(start_secured_coordinator(
      {"--tls-cert", pem("server"), "--tls-key", key("server"), "--tls-client-ca", pem("ca")}));
  std::vector<std::string> trusted = {"--tls-ca",    pem("ca"),   "--tls-cert",
                                      pem("client"), "--tls-key", key("client")};
  auto ok = ctl_with(trusted, {"workers"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;

  auto no_cert = ctl_with({"--tls-ca", pem("ca")}, {"workers"});
  EXPECT_EQ(no_cert.exit_code, 3) << no_cert.out << no_cert.err;  // The handshake fails.
  auto untrusted =
      ctl_with({"--tls-ca", pem("ca"), "--tls-cert", pem("stranger"), "--tls-key", key("stranger")},
               {"workers"});
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.out << untrusted.err;
  auto plaintext = ctl_with({}, {"workers"});
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.out << plaintext.err;
  // A client that does not trust the server's CA refuses the server.
  auto wrong_ca = ctl_with(
      {"--tls-ca", pem("other-ca"), "--tls-cert", pem("client"), "--tls-key", key("client")},
      {"workers"});
  EXPECT_EQ(wrong_ca.exit_code, 3) << wrong_ca.out << wrong_ca.err;

  auto missing = ctl_with({"--tls-ca", dir_ + "/no-such-ca.pem"}, {"workers"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--tls-ca " + dir_ + "/no-such-ca.pem: cannot be read"),
            std::string::npos)
      << missing.err;
}

TEST_F(SecurityTest, BadSecurityFilesAreRefusedAtStartupNamingTheFlag) {
  write_file(dir_ + "/garbage.pem", "not a certificate\n");
  write_file(dir_ + "/bad-tokens.txt", "ana author " + std::string(64, 'a') + "\nben boss x\n");
  struct refusal {
    std::vector<std::string> flags;
    std::string message;
  };
  std::vector<refusal> cases = {
      {{"--tls-cert", dir_ + "/none.pem", "--tls-key", key("server")},
       "--tls-cert " + dir_ + "/none.pem: cannot be read"},
      {{"--tls-cert", dir_ + "/garbage.pem", "--tls-key", key("server")},
       "--tls-cert " + dir_ + "/garbage.pem: no PEM certificate"},
      {{"--tls-cert", pem("server"), "--tls-key", key("client")},
       "--tls-key " + key("client") + ": not the private key of the certificate in --tls-cert"},
      {{"--tls-cert", pem("server"), "--tls-key", key("server"), "--tls-client-ca",
        dir_ + "/garbage.pem"},
       "--tls-client-ca " + dir_ + "/garbage.pem: no PEM certificate"},
      {{"--auth-tokens", dir_ + "/bad-tokens.txt"},
       "--auth-tokens " + dir_ + "/bad-tokens.txt:2: unknown role 'boss'"},
      {{"--audit-log", dir_ + "/no/such/dir/audit.jsonl"},
       "--audit-log " + dir_ + "/no/such/dir/audit.jsonl: cannot be opened"},
      {{"--cluster-tls-cert", pem("node"), "--cluster-tls-key", key("node")},
       "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {coordinator_bin,       "--listen",    "127.0.0.1:0",
                                     "--cluster-listen",    "127.0.0.1:0", "--data-dir",
                                     dir_ + "/refused-data"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    auto r = run_process(argv);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos)
        << "expected: " << c.message << "\nstderr: " << r.err;
  }
  auto worker = run_process({worker_bin, "--id", "w", "--coordinator", "127.0.0.1:1", "--state-dir",
                             dir_ + "/w-state", "--cluster-tls-cert", dir_ + "/garbage.pem",
                             "--cluster-tls-key", key("node"), "--cluster-tls-ca", pem("ca")});
  EXPECT_NE(worker.exit_code, 0);
  EXPECT_NE(worker.err.find("--cluster-tls-cert " + dir_ + "/garbage.pem: no PEM certificate"),
            std::string::npos)
      << worker.err;
}

TEST_F(SecurityTest, TokensRolesAndTheAuditLog) {
  std::string audit = dir_ + "/audit.jsonl";
  ASSERT_NO_FATAL_FAILURE(start_secured_coordinator(
      {"--tls-cert", pem("server"), "--tls-key", key("server"), "--auth-tokens", tokens_file(),
       "--audit-log", audit, "--heartbeat-timeout-ms", "2000"}));
  start_worker_with("w1", {});
  std::vector<std::string> tls = {"--tls-ca", pem("ca")};
  auto with = [&](std::vector<std::string> who) {
    who.insert(who.begin(), tls.begin(), tls.end());
    return who;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = ctl_with(with(as("vera")), {"workers"});
        auto j = json::parse(r.out, nullptr, false);
        return r.exit_code == 0 && j.is_object() && j["workers"].size() == 1;
      },
      startup_timeout));
  write_file(dir_ + "/endless.yaml", kEndless);

  // 1: no token.
  auto anonymous = ctl_with(tls, {"list"});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.err.find("unauthenticated"), std::string::npos) << anonymous.err;
  // 2: an unknown token.
  write_file(dir_ + "/guess.token", "guess\n");
  auto guess = ctl_with(with({"--token-file", dir_ + "/guess.token"}), {"list"});
  EXPECT_EQ(guess.exit_code, 1);
  EXPECT_NE(guess.err.find("unknown bearer token"), std::string::npos) << guess.err;
  // 3: a viewer may not submit.
  auto viewer_submit = ctl_with(with(as("vera")), {"submit", dir_ + "/endless.yaml"});
  EXPECT_EQ(viewer_submit.exit_code, 1);
  EXPECT_NE(viewer_submit.err.find("permission denied: SubmitJob needs role author"),
            std::string::npos)
      << viewer_submit.err;
  // 4: ana submits; the job is hers.
  auto submitted = ctl_with(with(as("ana")), {"submit", dir_ + "/endless.yaml"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string id = text(json::parse(submitted.out), "id");
  ASSERT_FALSE(id.empty());
  // 5: the viewer sees it, with its owner (the environment variable names the token file).
  auto status =
      run_process({"/usr/bin/env", "VIGIL_TOKEN_FILE=" + dir_ + "/vera-secret.token", vigilctl_bin,
                   "--coordinator", api_, "--tls-ca", pem("ca"), "status", id});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("owner      ana"), std::string::npos) << status.out;
  // 6: ben, another author, may not cancel it.
  auto ben_cancel = ctl_with(with(as("ben")), {"cancel", id});
  EXPECT_EQ(ben_cancel.exit_code, 1);
  EXPECT_NE(ben_cancel.err.find("belongs to 'ana'"), std::string::npos) << ben_cancel.err;
  auto still = ctl_with(with(as("vera")), {"status", id});
  ASSERT_EQ(still.exit_code, 0) << still.err;
  const std::string state = text(json::parse(still.out, nullptr, false), "state");
  EXPECT_TRUE(state == "running" || state == "pending") << still.out;
  // 7: the operator may.
  auto ola_cancel = ctl_with(with(as("ola")), {"cancel", id});
  EXPECT_EQ(ola_cancel.exit_code, 0) << ola_cancel.err;

  auto lines = audit_lines(audit);
  // The readiness polls (ListWorkers by vera) come first; then one line per call above.
  std::vector<json> calls;
  for (const auto& l : lines) {
    if (text(l, "method") != "ListWorkers") calls.push_back(l);
  }
  struct expected_line {
    std::string principal, method, job_id, outcome;
  };
  std::vector<expected_line> expected = {
      {"anonymous", "ListJobs", "", "UNAUTHENTICATED"},
      {"anonymous", "ListJobs", "", "UNAUTHENTICATED"},
      {"vera", "SubmitJob", "", "PERMISSION_DENIED"},
      {"ana", "SubmitJob", id, "OK"},
      {"vera", "GetJob", id, "OK"},
      {"ben", "CancelJob", id, "PERMISSION_DENIED"},
      {"vera", "GetJob", id, "OK"},
      {"ola", "CancelJob", id, "OK"},
  };
  ASSERT_EQ(calls.size(), expected.size()) << json(lines).dump(1);
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(calls[i].dump());
    EXPECT_EQ(text(calls[i], "principal"), expected[i].principal);
    EXPECT_EQ(text(calls[i], "method"), expected[i].method);
    EXPECT_EQ(text(calls[i], "job_id"), expected[i].job_id);
    EXPECT_EQ(text(calls[i], "outcome"), expected[i].outcome);
    EXPECT_EQ(text(calls[i], "peer").rfind("ipv4:127.0.0.1:", 0), 0u);
    EXPECT_EQ(text(calls[i], "time").size(), 24u);
  }
  // Tokens never reach the audit log or the coordinator's log.
  std::string everything = read_file(audit) + coordinator_->stderr_text();
  for (const char* token : {"vera-secret", "ana-secret", "ben-secret", "ola-secret", "guess"}) {
    EXPECT_EQ(everything.find(token), std::string::npos) << token;
  }
}

TEST_F(SecurityTest, OnlyWorkersWithTheClusterCertificateJoinAndRunJobs) {
  std::vector<std::string> node_tls = {"--cluster-tls-cert", pem("node"),
                                       "--cluster-tls-key",  key("node"),
                                       "--cluster-tls-ca",   pem("ca")};
  ASSERT_NO_FATAL_FAILURE(start_secured_coordinator(node_tls));
  // Strangers first: a worker without TLS and one with a certificate of another CA. They keep
  // knocking while the real workers join, which must not disturb those.
  auto& plain = start_worker_with("plain", {});
  auto& stranger =
      start_worker_with("stranger", {"--cluster-tls-cert", pem("stranger"), "--cluster-tls-key",
                                     key("stranger"), "--cluster-tls-ca", pem("ca")});
  start_worker_with("w1", node_tls);
  start_worker_with("w2", node_tls);
  ASSERT_TRUE(wait_until(
      [&] {
        auto ws = list_workers();
        return ws.size() == 2 && std::all_of(ws.begin(), ws.end(),
                                             [](const json& w) { return w.value("alive", false); });
      },
      startup_timeout))
      << list_workers().dump(2);
  EXPECT_TRUE(wait_until(
      [&] {
        return plain.stderr_text().find("cannot reach the coordinator") != std::string::npos &&
               stranger.stderr_text().find("cannot reach the coordinator") != std::string::npos;
      },
      startup_timeout));
  EXPECT_NE(plain.stderr_text().find("start this worker with --cluster-tls-cert"),
            std::string::npos)
      << plain.stderr_text();

  write_file(dir_ + "/keyed.yaml", kKeyed);
  std::string id = submit(dir_ + "/keyed.yaml");
  ASSERT_FALSE(id.empty());
  auto job = wait_for_state(id, "finished", job_timeout);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  auto sinks = workers_of(job, "sink");
  EXPECT_EQ(std::set<std::string>(sinks.begin(), sinks.end()), (std::set<std::string>{"w1", "w2"}))
      << "the job must span both workers: " << job.dump(2);

  // Only w1 and w2 ever registered, and neither lost its connection to the strangers.
  auto ws = list_workers();
  ASSERT_EQ(ws.size(), 2u) << ws.dump(2);
  std::string log = coordinator_->stderr_text();
  EXPECT_EQ(log.find("worker plain registered"), std::string::npos) << log;
  EXPECT_EQ(log.find("worker stranger registered"), std::string::npos) << log;
  EXPECT_EQ(log.find(" lost"), std::string::npos) << log;
}

}  // namespace
}  // namespace vigil
