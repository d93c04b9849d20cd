#include "coordinator/job_service.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>

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

}  // namespace
}  // namespace vigil
