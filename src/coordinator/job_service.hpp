#pragma once

#include <grpcpp/grpcpp.h>

#include "common/result.hpp"
#include "coordinator/coordinator_api.hpp"
#include "vigil/v1/api.grpc.pb.h"

namespace vigil {

/// The one place where Vigil errors become gRPC statuses. The message is passed through
/// verbatim; the code: invalid_argument, invalid_graph, parse_error -> INVALID_ARGUMENT;
/// not_found -> NOT_FOUND; resource_exhausted -> RESOURCE_EXHAUSTED; io_error, state_error,
/// internal -> INTERNAL. Never UNAVAILABLE: clients read that as "the coordinator cannot be
/// reached".
grpc::Status to_grpc_status(const error& err);

/// vigil.v1.JobService over a coordinator core. Stateless: every call goes to `core`, which
/// must outlive the service and be thread-safe (gRPC calls in from several threads).
class job_service final : public v1::JobService::Service {
 public:
  explicit job_service(coordinator_api& core) : core_(core) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::GetJobResponse* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override;
  grpc::Status TriggerSavepoint(grpc::ServerContext* context,
                                const v1::TriggerSavepointRequest* request,
                                v1::TriggerSavepointResponse* response) override;

 private:
  coordinator_api& core_;
};

}  // namespace vigil
