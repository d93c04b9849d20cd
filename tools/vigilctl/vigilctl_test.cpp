#include "tools/vigilctl/vigilctl.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/host_port.hpp"
#include "coordinator/api_server.hpp"
#include "coordinator/auth.hpp"
#include "coordinator/testing/fake_coordinator.hpp"

namespace vigil {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGraph = R"(
name: counts
nodes:
  - {id: src, operator: generator, parallelism: 2, config: {count: 10, keys: 2, interval: 1s}}
  - {id: sink, operator: "null"}
edges:
  - {from: src, to: sink, partitioning: rebalance}
)";

constexpr const char* kInvalidGraph = R"(
name: bad
nodes:
  - {id: src, operator: generator, config: {count: 10}}
  - {id: w, operator: tumbling_window, config: {aggregates: [{name: n, fn: count}]}}
  - {id: sink, operator: "null"}
edges:
  - {from: src, to: w}
  - {from: w, to: sink}
)";

struct run_result {
  int code;
  std::string out;
  std::string err;
};

class VigilctlTest : public ::testing::Test {
 protected:
  VigilctlTest()
      : core_({{"w1", "10.0.0.1:7071", 2, 2, 5'000'000, true},
               {"w2", "10.0.0.2:7071", 4, 1, 1'700'000'000'000'000, true},
               {"w3", "10.0.0.3:7071", 8, 8, 0, false}}),
        server_(core_),
        dir_(fs::temp_directory_path() /
             ("vigilctl-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::create_directories(dir_);
  }
  ~VigilctlTest() override { fs::remove_all(dir_); }

  std::string file(const std::string& name, const std::string& text) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  run_result run(std::vector<std::string> args, const std::string& address = {}) {
    args.insert(args.begin(),
                {"vigilctl", "--coordinator", address.empty() ? server_.address() : address});
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out;
    std::ostringstream err;
    int code = run_vigilctl(static_cast<int>(argv.size()), argv.data(), out, err);
    return {code, out.str(), err.str()};
  }

  testing::fake_coordinator core_;
  testing::test_server server_;
  fs::path dir_;
};

TEST_F(VigilctlTest, SubmitPrintsTheNewJob) {
  ASSERT_TRUE(server_.started());
  auto r = run({"submit", file("g.yaml", kGraph)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "submitted job job-1 (counts): pending\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(VigilctlTest, SubmitJsonIsOneDocument) {
  auto r = run({"--json", "submit", file("g.yaml", kGraph)});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["id"], "job-1");
  EXPECT_EQ(j["state"], "pending");
  EXPECT_EQ(j["submitted_at_us"], 1000);
  ASSERT_EQ(j["subtasks"].size(), 3u);
  EXPECT_EQ(j["subtasks"][2]["node_id"], "sink");
  EXPECT_EQ(j["subtasks"][2]["worker_id"], "w2");
}

TEST_F(VigilctlTest, InvalidGraphExitsTwoNamingTheNode) {
  auto r = run({"submit", file("bad.yaml", kInvalidGraph)});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("vigilctl: node 'w': ", 0), 0u) << r.err;
}

TEST_F(VigilctlTest, UnreadableGraphFileExitsTwoNamingTheFile) {
  auto missing = (dir_ / "missing.yaml").string();
  auto r = run({"submit", missing});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;

  r = run({"submit", file("broken.yaml", "name: [unclosed")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("line "), std::string::npos) << r.err;
}

TEST_F(VigilctlTest, TooFewSlotsIsAClearRefusal) {
  auto r = run(
      {"submit", file("big.yaml", std::string(kGraph) + "execution: {default_parallelism: 4}\n")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "vigilctl: resource exhausted: job 'counts' needs 6 task slots, the cluster has 3 "
            "free\n");
}

TEST_F(VigilctlTest, ListPrintsATable) {
  EXPECT_EQ(run({"list"}).out, "no jobs\n");
  ASSERT_EQ(run({"submit", file("g.yaml", kGraph)}).code, 0);
  ASSERT_EQ(run({"submit", file("g.yaml", kGraph)}).code, 0);
  core_.set_state("job-2", job_state::failed, "node 'src': disk full");
  auto r = run({"list"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ID     NAME    STATE    SUBMITTED             SUBTASKS  ERROR\n"
            "job-1  counts  pending  1970-01-01T00:00:00Z  3\n"
            "job-2  counts  failed   1970-01-01T00:00:00Z  3         node 'src': disk full\n");

  r = run({"--json", "list"});
  ASSERT_EQ(r.code, 0);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["jobs"].size(), 2u);
  EXPECT_EQ(j["jobs"][1]["state"], "failed");
  EXPECT_EQ(j["jobs"][1]["error"], "node 'src': disk full");
}

TEST_F(VigilctlTest, StatusShowsPlacementAndWorkerHealth) {
  ASSERT_EQ(run({"submit", file("g.yaml", kGraph)}).code, 0);
  auto r = run({"status", "job-1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "job        job-1\n"
            "name       counts\n"
            "state      pending\n"
            "submitted  1970-01-01T00:00:00Z\n"
            "\n"
            "NODE  SUBTASK  WORKER  HEALTH  STATE\n"
            "src   0        w1      alive   deploying\n"
            "src   1        w1      alive   deploying\n"
            "sink  0        w2      alive   deploying\n");

  r = run({"--json", "status", "job-1"});
  ASSERT_EQ(r.code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["subtasks"][0]["worker_health"], "alive");
}

TEST_F(VigilctlTest, UnknownJobExitsFour) {
  for (const char* cmd : {"status", "cancel"}) {
    auto r = run({cmd, "job-42"});
    EXPECT_EQ(r.code, 4) << cmd;
    EXPECT_EQ(r.err, "vigilctl: no job with id 'job-42'\n") << cmd;
  }
}

TEST_F(VigilctlTest, CancelRequestsCancellation) {
  ASSERT_EQ(run({"submit", file("g.yaml", kGraph)}).code, 0);
  auto r = run({"cancel", "job-1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "cancel requested for job job-1 (counts): cancelling\n");
  r = run({"--json", "cancel", "job-1"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["state"], "cancelling");
}

TEST_F(VigilctlTest, StopDrainRequestsADrain) {
  ASSERT_EQ(run({"submit", file("g.yaml", kGraph)}).code, 0);
  auto r = run({"stop", "--drain", "job-1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("drain requested for job job-1 (counts): ", 0), 0u) << r.out;
  EXPECT_TRUE(core_.drained("job-1"));
  // Exactly one of --savepoint and --drain.
  r = run({"stop", "job-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "vigilctl: stop needs --savepoint or --drain\n");
  EXPECT_EQ(run({"stop", "--drain", "--savepoint", "job-1"}).code, 2);
  // An ended job cannot be drained; an unknown one is not found.
  ASSERT_EQ(run({"cancel", "job-1"}).code, 0);
  r = run({"stop", "--drain", "job-1"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("has ended"), std::string::npos) << r.err;
  EXPECT_EQ(run({"stop", "--drain", "job-9"}).code, 4);
}

TEST_F(VigilctlTest, WorkersPrintsATable) {
  auto r = run({"workers"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ID  ADDRESS        SLOTS  FREE  LAST HEARTBEAT        HEALTH\n"
            "w1  10.0.0.1:7071  2      2     1970-01-01T00:00:05Z  alive\n"
            "w2  10.0.0.2:7071  4      1     2023-11-14T22:13:20Z  alive\n"
            "w3  10.0.0.3:7071  8      8     -                     lost\n");
  r = run({"--json", "workers"});
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["workers"].size(), 3u);
  EXPECT_EQ(j["workers"][2]["alive"], false);
  EXPECT_EQ(j["workers"][1]["free_slots"], 1);
}

TEST_F(VigilctlTest, UnreachableCoordinatorExitsThree) {
  auto address = "127.0.0.1:" + std::to_string(unused_loopback_port());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list"}, std::vector<std::string>{"workers"},
        std::vector<std::string>{"submit", file("g.yaml", kGraph)}}) {
    auto r = run(args, address);
    EXPECT_EQ(r.code, 3) << args[0];
    EXPECT_EQ(r.err.rfind("vigilctl: cannot reach the coordinator at " + address + ": ", 0), 0u)
        << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(VigilctlTest, CoordinatorAddressFromTheEnvironment) {
  ::setenv("VIGIL_COORDINATOR", server_.address().c_str(), 1);
  std::vector<const char*> argv = {"vigilctl", "workers"};
  std::ostringstream out;
  std::ostringstream err;
  int code = run_vigilctl(static_cast<int>(argv.size()), argv.data(), out, err);
  ::unsetenv("VIGIL_COORDINATOR");
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_NE(out.str().find("w1"), std::string::npos);
}

TEST_F(VigilctlTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({}).code, 2);
  EXPECT_EQ(run({"status"}).code, 2);
  EXPECT_EQ(run({"frobnicate"}).code, 2);
  EXPECT_EQ(run({"--timeout", "0", "list"}).code, 2);
  EXPECT_EQ(run({"--help"}).code, 0);
}

TEST_F(VigilctlTest, TheTokenFileIsSentTrimmedAndTheOwnerShown) {
  auto tokens = token_table::parse("ana author " + token_hash_hex("s3cret") + "\n", "tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.err().message;
  auto secured = api_server::start(core_, host_port{"127.0.0.1", 0}, {}, api_security{&*tokens});
  ASSERT_TRUE(secured.ok());
  auto address = (*secured)->address();

  auto anonymous = run({"submit", file("g.yaml", kGraph)}, address);
  EXPECT_EQ(anonymous.code, 1);
  EXPECT_NE(anonymous.err.find("vigilctl: unauthenticated: "), std::string::npos) << anonymous.err;
  auto token = file("ana.token", "  s3cret\n\n");
  auto submitted = run({"--token-file", token, "submit", file("g.yaml", kGraph)}, address);
  ASSERT_EQ(submitted.code, 0) << submitted.err;
  auto status = run({"--token-file", token, "status", "job-1"}, address);
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("\nowner      ana\n"), std::string::npos) << status.out;
  auto json = run({"--token-file", token, "--json", "status", "job-1"}, address);
  EXPECT_EQ(nlohmann::json::parse(json.out)["owner"], "ana");
}

TEST_F(VigilctlTest, BadCredentialFlagsExitTwoNamingTheFlag) {
  auto missing = (dir_ / "missing.token").string();
  auto r = run({"--token-file", missing, "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "vigilctl: --token-file " + missing + ": cannot be read\n");
  r = run({"--token-file", file("empty.token", " \n"), "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(": empty"), std::string::npos) << r.err;
  r = run({"--tls-cert", file("c.pem", "x"), "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "vigilctl: --tls-cert and --tls-key go together: set both\n");
  r = run({"--tls-ca", (dir_ / "no-ca.pem").string(), "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--tls-ca "), std::string::npos) << r.err;
  // A token never crosses a network in clear text; loopback addresses are allowed.
  const std::string token = file("t.token", "s3cret\n");
  for (std::string remote : {"vigil.example.org:7070", "10.0.0.7:7070", "dns:///vigil:7070"}) {
    r = run({"--token-file", token, "list"}, remote);
    EXPECT_EQ(r.code, 2) << remote;
    EXPECT_NE(r.err.find("only over TLS: set --tls-ca"), std::string::npos) << r.err;
  }
  r = run({"--token-file", token, "list"}, "localhost:1");
  EXPECT_EQ(r.err.find("only over TLS"), std::string::npos) << r.err;
}

TEST(TokenHashHex, IsTheSha256OfTheToken) {
  EXPECT_EQ(token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(FormatTable, AlignsColumnsWithoutTrailingSpaces) {
  EXPECT_EQ(format_table({"A", "LONG HEADER", "C"}, {{"wide cell", "x", ""}, {"", "", "z"}}),
            "A          LONG HEADER  C\n"
            "wide cell  x\n"
            "                        z\n");
}

TEST(FormatTime, IsUtcWholeSeconds) {
  EXPECT_EQ(format_time_us(0), "-");
  EXPECT_EQ(format_time_us(1'700'000'000'999'999), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace vigil
