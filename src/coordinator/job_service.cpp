#include "coordinator/job_service.hpp"

#include "coordinator/proto_convert.hpp"

namespace vigil {

grpc::Status to_grpc_status(const error& err) {
  switch (err.code) {
    case errc::invalid_argument:
    case errc::invalid_graph:
    case errc::parse_error:
      return {grpc::StatusCode::INVALID_ARGUMENT, err.message};
    case errc::not_found:
      return {grpc::StatusCode::NOT_FOUND, err.message};
    case errc::resource_exhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, err.message};
    case errc::failed_precondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, err.message};
    case errc::io_error:
    case errc::state_error:
    case errc::internal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, err.message};
}

namespace {

grpc::Status require_job_id(const std::string& id) {
  if (id.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "job_id: required"};
  return grpc::Status::OK;
}

}  // namespace

grpc::Status job_service::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                                    v1::SubmitJobResponse* response) {
  if (!request->has_graph()) return {grpc::StatusCode::INVALID_ARGUMENT, "graph: required"};
  auto job = core_.submit(request->graph(), request->from_savepoint());
  if (!job) return to_grpc_status(job.err());
  *response->mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                 v1::GetJobResponse* response) {
  if (auto s = require_job_id(request->job_id()); !s.ok()) return s;
  auto job = core_.get(request->job_id());
  if (!job) return to_grpc_status(job.err());
  *response->mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                   v1::ListJobsResponse* response) {
  for (const auto& job : core_.list()) *response->add_jobs() = to_proto(job);
  return grpc::Status::OK;
}

grpc::Status job_service::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                    v1::CancelJobResponse* response) {
  if (auto s = require_job_id(request->job_id()); !s.ok()) return s;
  auto job = core_.cancel(request->job_id());
  if (!job) return to_grpc_status(job.err());
  *response->mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::TriggerSavepoint(grpc::ServerContext*,
                                           const v1::TriggerSavepointRequest* request,
                                           v1::TriggerSavepointResponse* response) {
  if (auto s = require_job_id(request->job_id()); !s.ok()) return s;
  auto sp = core_.savepoint(request->job_id(), request->stop());
  if (!sp) return to_grpc_status(sp.err());
  response->set_path(sp->path);
  response->set_checkpoint_id(sp->checkpoint_id);
  *response->mutable_job() = to_proto(sp->job);
  return grpc::Status::OK;
}

}  // namespace vigil
