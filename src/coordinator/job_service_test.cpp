#include "coordinator/job_service.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "coordinator/api_server.hpp"
#include "coordinator/testing/fake_coordinator.hpp"
#include "graph/yaml_loader.hpp"
#include "vigil/v1/api.grpc.pb.h"

namespace vigil {
namespace {

constexpr const char* kGraph = R"(
name: counts
nodes:
  - {id: src, operator: generator, parallelism: 2, config: {count: 10, keys: 2, interval: 1s}}
  - {id: sink, operator: "null"}
edges:
  - {from: src, to: sink, partitioning: rebalance}
)";

v1::JobGraph graph(const char* yaml) {
  auto g = parse_graph_yaml(yaml);
  EXPECT_TRUE(g.ok()) << g.err().message;
  return g.ok() ? *g : v1::JobGraph{};
}

std::vector<worker_info> two_workers() {
  return {{"w1", "10.0.0.1:7071", 2, 2, 5'000'000, true},
          {"w2", "10.0.0.2:7071", 4, 1, 6'000'000, true},
          {"w3", "10.0.0.3:7071", 8, 8, 1'000'000, false}};
}

class JobServiceTest : public ::testing::Test {
 protected:
  JobServiceTest() : core_(two_workers()), server_(core_) {
    auto channel = grpc::CreateChannel(server_.address(), grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel);
    cluster_ = v1::ClusterService::NewStub(channel);
  }

  std::unique_ptr<grpc::ClientContext> context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  grpc::Status submit(const v1::JobGraph& g, v1::SubmitJobResponse* response) {
    v1::SubmitJobRequest request;
    *request.mutable_graph() = g;
    return jobs_->SubmitJob(context().get(), request, response);
  }

  testing::fake_coordinator core_;
  testing::test_server server_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::ClusterService::Stub> cluster_;
};

TEST_F(JobServiceTest, SubmitReturnsThePendingJobWithItsPlacement) {
  ASSERT_TRUE(server_.started());
  v1::SubmitJobResponse response;
  auto status = submit(graph(kGraph), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto& job = response.job();
  EXPECT_EQ(job.id(), "job-1");
  EXPECT_EQ(job.name(), "counts");
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(job.submitted_at_us(), 1000);
  ASSERT_EQ(job.subtasks_size(), 3);
  EXPECT_EQ(job.subtasks(0).node_id(), "src");
  EXPECT_EQ(job.subtasks(0).subtask(), 0u);
  EXPECT_EQ(job.subtasks(0).worker_id(), "w1");
  EXPECT_EQ(job.subtasks(1).subtask(), 1u);
  EXPECT_EQ(job.subtasks(1).worker_id(), "w1");
  EXPECT_EQ(job.subtasks(2).node_id(), "sink");
  EXPECT_EQ(job.subtasks(2).worker_id(), "w2");
  EXPECT_EQ(job.subtasks(2).state(), "deploying");
}

TEST_F(JobServiceTest, InvalidGraphIsInvalidArgumentNamingTheNodeAndField) {
  v1::SubmitJobResponse response;
  auto status = submit(graph(R"(
name: bad
nodes:
  - {id: src, operator: generator, config: {count: 10}}
  - {id: w, operator: tumbling_window, config: {aggregates: [{name: n, fn: count}]}}
  - {id: sink, operator: "null"}
edges:
  - {from: src, to: w}
  - {from: w, to: sink}
)"),
                       &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("node 'w'"), std::string::npos) << status.error_message();
}

TEST_F(JobServiceTest, UnknownOperatorIsInvalidArgumentNamingTheNode) {
  v1::SubmitJobResponse response;
  auto status = submit(graph(R"(
name: bad
nodes:
  - {id: src, operator: teleport}
)"),
                       &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("node 'src'"), std::string::npos) << status.error_message();
}

TEST_F(JobServiceTest, MissingGraphIsInvalidArgument) {
  v1::SubmitJobRequest request;
  v1::SubmitJobResponse response;
  auto status = jobs_->SubmitJob(context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "graph: required");
}

TEST_F(JobServiceTest, TooFewSlotsIsRefusedSayingHowManyAreNeeded) {
  // Alive workers have 2 + 1 free slots; the dead worker's 8 do not count.
  auto g = graph(kGraph);
  g.mutable_nodes(0)->set_parallelism(3);
  v1::SubmitJobResponse response;
  auto status = submit(g, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "job 'counts' needs 4 task slots, the cluster has 3 free");
}

TEST_F(JobServiceTest, UnknownJobIsNotFound) {
  v1::GetJobRequest get;
  get.set_job_id("job-42");
  v1::GetJobResponse got;
  auto status = jobs_->GetJob(context().get(), get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no job with id 'job-42'");

  v1::CancelJobRequest cancel;
  cancel.set_job_id("job-42");
  v1::CancelJobResponse cancelled;
  status = jobs_->CancelJob(context().get(), cancel, &cancelled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(JobServiceTest, EmptyJobIdIsInvalidArgument) {
  v1::GetJobRequest get;
  v1::GetJobResponse got;
  auto status = jobs_->GetJob(context().get(), get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "job_id: required");
}

TEST_F(JobServiceTest, GetListAndCancelRoundTrip) {
  v1::SubmitJobResponse first;
  v1::SubmitJobResponse second;
  ASSERT_TRUE(submit(graph(kGraph), &first).ok());
  ASSERT_TRUE(submit(graph(kGraph), &second).ok());
  core_.set_state("job-2", job_state::failed, "node 'src': disk full");

  v1::ListJobsResponse list;
  ASSERT_TRUE(jobs_->ListJobs(context().get(), v1::ListJobsRequest{}, &list).ok());
  ASSERT_EQ(list.jobs_size(), 2);
  EXPECT_EQ(list.jobs(0).id(), "job-1");
  EXPECT_EQ(list.jobs(1).id(), "job-2");
  EXPECT_EQ(list.jobs(1).state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(list.jobs(1).error(), "node 'src': disk full");

  v1::GetJobRequest get;
  get.set_job_id("job-1");
  v1::GetJobResponse got;
  ASSERT_TRUE(jobs_->GetJob(context().get(), get, &got).ok());
  EXPECT_EQ(got.job().SerializeAsString(), first.job().SerializeAsString());

  v1::CancelJobRequest cancel;
  cancel.set_job_id("job-1");
  v1::CancelJobResponse cancelled;
  ASSERT_TRUE(jobs_->CancelJob(context().get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.job().state(), v1::JOB_STATE_CANCELLING);

  // A job that already ended is returned unchanged.
  cancel.set_job_id("job-2");
  ASSERT_TRUE(jobs_->CancelJob(context().get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.job().state(), v1::JOB_STATE_FAILED);
}

TEST_F(JobServiceTest, ListWorkersRoundTrip) {
  v1::ListWorkersResponse response;
  ASSERT_TRUE(cluster_->ListWorkers(context().get(), v1::ListWorkersRequest{}, &response).ok());
  ASSERT_EQ(response.workers_size(), 3);
  const auto& w = response.workers(1);
  EXPECT_EQ(w.id(), "w2");
  EXPECT_EQ(w.address(), "10.0.0.2:7071");
  EXPECT_EQ(w.slots(), 4u);
  EXPECT_EQ(w.free_slots(), 1u);
  EXPECT_EQ(w.last_heartbeat_us(), 6'000'000);
  EXPECT_TRUE(w.alive());
  EXPECT_FALSE(response.workers(2).alive());
}

TEST(ToGrpcStatus, MapsEveryCodeAndKeepsTheMessage) {
  struct row {
    errc code;
    grpc::StatusCode expected;
  };
  for (auto [code, expected] : {row{errc::invalid_argument, grpc::StatusCode::INVALID_ARGUMENT},
                                row{errc::invalid_graph, grpc::StatusCode::INVALID_ARGUMENT},
                                row{errc::parse_error, grpc::StatusCode::INVALID_ARGUMENT},
                                row{errc::not_found, grpc::StatusCode::NOT_FOUND},
                                row{errc::resource_exhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
                                row{errc::io_error, grpc::StatusCode::INTERNAL},
                                row{errc::state_error, grpc::StatusCode::INTERNAL},
                                row{errc::internal, grpc::StatusCode::INTERNAL}}) {
    auto s = to_grpc_status(make_error(code, "node 'w': config.size: required"));
    EXPECT_EQ(s.error_code(), expected) << to_string(code);
    EXPECT_EQ(s.error_message(), "node 'w': config.size: required");
  }
}

/// The API with authentication and an audit log: tokens "viewer-t", "ana-t" (author),
/// "ben-t" (author), "ops-t" (operator), "root-t" (admin).
class SecuredApiTest : public ::testing::Test {
 protected:
  SecuredApiTest() : core_(two_workers()) {
    auto pattern = (std::filesystem::temp_directory_path() / "vigil-api-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto tokens = token_table::parse(
        "vera viewer " + sha256_hex("viewer-t") + "\nana author " + sha256_hex("ana-t") +
            "\nben author " + sha256_hex("ben-t") + "\nola operator " + sha256_hex("ops-t") +
            "\nroot admin " + sha256_hex("root-t") + "\n",
        "tokens");
    EXPECT_TRUE(tokens.ok());
    tokens_ = std::move(*tokens);
    auto audit = audit_log::open(dir_ / "audit.jsonl");
    EXPECT_TRUE(audit.ok());
    audit_ = std::move(*audit);
    auto server = api_server::start(core_, host_port{"127.0.0.1", 0}, {},
                                    api_security{&tokens_, audit_.get()});
    EXPECT_TRUE(server.ok());
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel);
    cluster_ = v1::ClusterService::NewStub(channel);
  }
  ~SecuredApiTest() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<grpc::ClientContext> as(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }

  grpc::Status submit_as(const std::string& token, std::string* id = nullptr) {
    v1::SubmitJobRequest request;
    *request.mutable_graph() = graph(kGraph);
    v1::SubmitJobResponse response;
    auto s = jobs_->SubmitJob(as(token).get(), request, &response);
    if (id != nullptr) *id = response.job().id();
    return s;
  }

  grpc::Status cancel_as(const std::string& token, const std::string& id) {
    v1::CancelJobRequest request;
    request.set_job_id(id);
    v1::CancelJobResponse response;
    return jobs_->CancelJob(as(token).get(), request, &response);
  }

  std::vector<nlohmann::json> audit_lines() {
    std::ifstream in(dir_ / "audit.jsonl");
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  std::filesystem::path dir_;
  testing::fake_coordinator core_;
  token_table tokens_;
  std::unique_ptr<audit_log> audit_;
  std::unique_ptr<api_server> server_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::ClusterService::Stub> cluster_;
};

TEST_F(SecuredApiTest, NoOrUnknownTokenIsUnauthenticated) {
  v1::ListJobsResponse jobs;
  auto none = jobs_->ListJobs(as("").get(), {}, &jobs);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(none.error_message().find("requires a bearer token"), std::string::npos);
  auto unknown = jobs_->ListJobs(as("guess").get(), {}, &jobs);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(unknown.error_message(), "unknown bearer token");
  v1::ListWorkersResponse workers;
  EXPECT_EQ(cluster_->ListWorkers(as("").get(), {}, &workers).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto basic = std::make_unique<grpc::ClientContext>();
  basic->AddMetadata("authorization", "Basic dmlld2VyLXQ=");
  EXPECT_EQ(jobs_->ListJobs(basic.get(), {}, &jobs).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Nothing was submitted: an unauthenticated caller cannot reach the core.
  EXPECT_EQ(submit_as("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(core_.list().empty());
}

TEST_F(SecuredApiTest, ViewersReadButCannotSubmit) {
  v1::ListJobsResponse jobs;
  EXPECT_TRUE(jobs_->ListJobs(as("viewer-t").get(), {}, &jobs).ok());
  v1::ListWorkersResponse workers;
  EXPECT_TRUE(cluster_->ListWorkers(as("viewer-t").get(), {}, &workers).ok());
  EXPECT_EQ(workers.workers_size(), 3);
  auto s = submit_as("viewer-t");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "SubmitJob needs role author; 'vera' has role viewer");
}

TEST_F(SecuredApiTest, JobsRecordTheirOwnerAndAuthorsCancelOnlyTheirOwn) {
  std::string anas;
  std::string bens;
  ASSERT_TRUE(submit_as("ana-t", &anas).ok());
  ASSERT_TRUE(submit_as("ben-t", &bens).ok());
  v1::GetJobRequest get;
  get.set_job_id(anas);
  v1::GetJobResponse got;
  ASSERT_TRUE(jobs_->GetJob(as("viewer-t").get(), get, &got).ok());
  EXPECT_EQ(got.job().owner(), "ana");

  auto denied = cancel_as("ana-t", bens);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("CancelJob needs role operator"), std::string::npos);
  EXPECT_NE(denied.error_message().find("belongs to 'ben'"), std::string::npos);
  EXPECT_EQ(core_.get(bens)->state, job_state::pending);
  EXPECT_EQ(cancel_as("viewer-t", anas).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(cancel_as("ana-t", "no-such-job").error_code(), grpc::StatusCode::NOT_FOUND);

  EXPECT_TRUE(cancel_as("ana-t", anas).ok());
  EXPECT_EQ(core_.get(anas)->state, job_state::cancelling);
  EXPECT_TRUE(cancel_as("ops-t", bens).ok());
  EXPECT_EQ(core_.get(bens)->state, job_state::cancelling);
}

TEST_F(SecuredApiTest, SavepointsNeedAnOperatorAndStopsTheOwner) {
  std::string id;
  ASSERT_TRUE(submit_as("ana-t", &id).ok());
  core_.set_state(id, job_state::running);
  v1::TriggerSavepointRequest request;
  request.set_job_id(id);
  v1::TriggerSavepointResponse response;
  auto plain = jobs_->TriggerSavepoint(as("ana-t").get(), request, &response);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(jobs_->TriggerSavepoint(as("ops-t").get(), request, &response).ok());
  request.set_stop(true);
  EXPECT_EQ(jobs_->TriggerSavepoint(as("ben-t").get(), request, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(jobs_->TriggerSavepoint(as("ana-t").get(), request, &response).ok());
  EXPECT_EQ(response.job().state(), v1::JOB_STATE_CANCELLING);
}

TEST_F(SecuredApiTest, DrainNeedsAnOperatorOrTheOwner) {
  std::string id;
  ASSERT_TRUE(submit_as("ana-t", &id).ok());
  core_.set_state(id, job_state::running);
  v1::DrainJobRequest request;
  request.set_job_id(id);
  v1::DrainJobResponse response;
  auto denied = jobs_->DrainJob(as("ben-t").get(), request, &response);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("DrainJob needs role operator (or author for its own "
                                        "jobs)"),
            std::string::npos)
      << denied.error_message();
  EXPECT_EQ(jobs_->DrainJob(as("viewer-t").get(), request, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(core_.drained(id));
  EXPECT_TRUE(jobs_->DrainJob(as("ana-t").get(), request, &response).ok());
  EXPECT_TRUE(core_.drained(id));
  EXPECT_EQ(response.job().id(), id);
  EXPECT_TRUE(jobs_->DrainJob(as("ops-t").get(), request, &response).ok());
  request.set_job_id("no-such-job");
  EXPECT_EQ(jobs_->DrainJob(as("ops-t").get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SecuredApiTest, EveryCallLandsInTheAuditLogWithItsOutcome) {
  std::string id;
  ASSERT_TRUE(submit_as("ana-t", &id).ok());
  EXPECT_FALSE(submit_as("viewer-t").ok());
  EXPECT_FALSE(cancel_as("", id).ok());
  EXPECT_FALSE(cancel_as("ben-t", id).ok());
  EXPECT_TRUE(cancel_as("root-t", id).ok());
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 5u);
  struct expected_line {
    const char* principal;
    const char* method;
    std::string job_id;
    const char* outcome;
  };
  std::vector<expected_line> expected = {{"ana", "SubmitJob", id, "OK"},
                                         {"vera", "SubmitJob", "", "PERMISSION_DENIED"},
                                         {"anonymous", "CancelJob", id, "UNAUTHENTICATED"},
                                         {"ben", "CancelJob", id, "PERMISSION_DENIED"},
                                         {"root", "CancelJob", id, "OK"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& l = lines[i];
    SCOPED_TRACE(l.dump());
    EXPECT_EQ(l["principal"], expected[i].principal);
    EXPECT_EQ(l["method"], expected[i].method);
    EXPECT_EQ(l.value("job_id", ""), expected[i].job_id);
    EXPECT_EQ(l["outcome"], expected[i].outcome);
    EXPECT_NE(l["peer"].get<std::string>().find("127.0.0.1"), std::string::npos);
    EXPECT_EQ(l["time"].get<std::string>().size(), 24u);  // YYYY-MM-DDTHH:MM:SS.mmmZ
  }
  EXPECT_NE(lines[1]["message"].get<std::string>().find("needs role author"), std::string::npos);
  // Tokens never reach the log.
  std::ifstream in(dir_ / "audit.jsonl");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* token : {"ana-t", "viewer-t", "ben-t", "root-t"}) {
    EXPECT_EQ(all.find(token), std::string::npos) << token;
  }
}

TEST(ApiCredentials, RefuseIncompleteTlsSettingsNamingTheFlags) {
  auto cert_only = make_api_credentials({"server.pem", "", ""});
  ASSERT_FALSE(cert_only.ok());
  EXPECT_NE(cert_only.err().message.find("--tls-cert and --tls-key go together"),
            std::string::npos);
  auto ca_only = make_api_credentials({"", "", "ca.pem"});
  ASSERT_FALSE(ca_only.ok());
  EXPECT_NE(ca_only.err().message.find("--tls-client-ca needs --tls-cert"), std::string::npos);
  auto missing = make_api_credentials({"no/such/cert.pem", "no/such/key.pem", ""});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.err().message.find("--tls-cert no/such/cert.pem: cannot be read"),
            std::string::npos);
  EXPECT_TRUE(make_api_credentials({}).ok());
}

}  // namespace
}  // namespace vigil
