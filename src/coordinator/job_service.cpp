#include "coordinator/job_service.hpp"

#include <chrono>
#include <string_view>

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

std::string_view status_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      break;
  }
  return "UNKNOWN";
}

namespace {

constexpr std::string_view kBearer = "bearer ";

bool starts_with_ignore_case(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

grpc::Status require_job_id(const std::string& id) {
  if (id.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "job_id: required"};
  return grpc::Status::OK;
}

}  // namespace

api_call::api_call(api_security security, const grpc::ServerContext& context, api_method method,
                   std::string job_id)
    : security_(security), peer_(context.peer()), method_(method), job_id_(std::move(job_id)) {
  who_ = {"anonymous", role::admin};
  if (security_.tokens == nullptr) return;
  who_ = {"anonymous", role::viewer};
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    authenticated_ = {grpc::StatusCode::UNAUTHENTICATED,
                      "this coordinator requires a bearer token ('authorization: Bearer "
                      "<token>'; vigilctl --token-file)"};
    return;
  }
  std::string_view value(it->second.data(), it->second.size());
  if (!starts_with_ignore_case(value, kBearer)) {
    authenticated_ = {grpc::StatusCode::UNAUTHENTICATED,
                      "the authorization header must be 'Bearer <token>'"};
    return;
  }
  auto found = security_.tokens->authenticate(trim_blanks(value.substr(kBearer.size())));
  if (!found) {
    authenticated_ = {grpc::StatusCode::UNAUTHENTICATED, "unknown bearer token"};
    return;
  }
  who_ = std::move(*found);
}

grpc::Status api_call::authorize(coordinator_api& core) const {
  if (who_.granted >= required_role(method_)) return grpc::Status::OK;
  std::string owner;
  bool owner_may = owner_may_call(method_);
  if (owner_may && who_.granted == role::author && !job_id_.empty()) {
    auto job = core.get(job_id_);
    if (!job) return to_grpc_status(job.err());
    owner = job->owner;
  }
  if (auto denied = vigil::authorize(who_, method_, job_id_, owner)) {
    return {grpc::StatusCode::PERMISSION_DENIED, *denied};
  }
  return grpc::Status::OK;
}

grpc::Status api_call::finish(grpc::Status status) const {
  if (security_.audit == nullptr) return status;
  audit_record record;
  record.time_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  record.principal = authenticated_.ok() ? who_.name : "anonymous";
  record.peer = peer_;
  record.method = std::string(method_name(method_));
  record.job_id = job_id_;
  record.outcome = std::string(status_code_name(status.error_code()));
  record.message = status.error_message();
  security_.audit->write(record);
  return status;
}

grpc::Status job_service::SubmitJob(grpc::ServerContext* context,
                                    const v1::SubmitJobRequest* request,
                                    v1::SubmitJobResponse* response) {
  api_call call(security_, *context, api_method::submit_job);
  return call.finish(submit(call, *request, *response));
}

grpc::Status job_service::submit(api_call& call, const v1::SubmitJobRequest& request,
                                 v1::SubmitJobResponse& response) {
  if (!call.authenticated().ok()) return call.authenticated();
  if (auto s = call.authorize(core_); !s.ok()) return s;
  if (!request.has_graph()) return {grpc::StatusCode::INVALID_ARGUMENT, "graph: required"};
  auto job = core_.submit(request.graph(), request.from_savepoint(), call.owner());
  if (!job) return to_grpc_status(job.err());
  call.set_job_id(job->id);
  *response.mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                 v1::GetJobResponse* response) {
  api_call call(security_, *context, api_method::get_job, request->job_id());
  return call.finish(get(call, *request, *response));
}

grpc::Status job_service::get(const api_call& call, const v1::GetJobRequest& request,
                              v1::GetJobResponse& response) {
  if (!call.authenticated().ok()) return call.authenticated();
  if (auto s = call.authorize(core_); !s.ok()) return s;
  if (auto s = require_job_id(request.job_id()); !s.ok()) return s;
  auto job = core_.get(request.job_id());
  if (!job) return to_grpc_status(job.err());
  *response.mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*,
                                   v1::ListJobsResponse* response) {
  api_call call(security_, *context, api_method::list_jobs);
  if (!call.authenticated().ok()) return call.finish(call.authenticated());
  if (auto s = call.authorize(core_); !s.ok()) return call.finish(s);
  for (const auto& job : core_.list()) *response->add_jobs() = to_proto(job);
  return call.finish(grpc::Status::OK);
}

grpc::Status job_service::CancelJob(grpc::ServerContext* context,
                                    const v1::CancelJobRequest* request,
                                    v1::CancelJobResponse* response) {
  api_call call(security_, *context, api_method::cancel_job, request->job_id());
  return call.finish(cancel(call, *request, *response));
}

grpc::Status job_service::cancel(const api_call& call, const v1::CancelJobRequest& request,
                                 v1::CancelJobResponse& response) {
  if (!call.authenticated().ok()) return call.authenticated();
  if (auto s = require_job_id(request.job_id()); !s.ok()) return s;
  if (auto s = call.authorize(core_); !s.ok()) return s;
  auto job = core_.cancel(request.job_id());
  if (!job) return to_grpc_status(job.err());
  *response.mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::DrainJob(grpc::ServerContext* context, const v1::DrainJobRequest* request,
                                   v1::DrainJobResponse* response) {
  api_call call(security_, *context, api_method::drain_job, request->job_id());
  return call.finish(drain(call, *request, *response));
}

grpc::Status job_service::drain(const api_call& call, const v1::DrainJobRequest& request,
                                v1::DrainJobResponse& response) {
  if (!call.authenticated().ok()) return call.authenticated();
  if (auto s = require_job_id(request.job_id()); !s.ok()) return s;
  if (auto s = call.authorize(core_); !s.ok()) return s;
  if (auto st = core_.end_input(request.job_id()); !st) return to_grpc_status(st.err());
  auto job = core_.get(request.job_id());
  if (!job) return to_grpc_status(job.err());
  *response.mutable_job() = to_proto(*job);
  return grpc::Status::OK;
}

grpc::Status job_service::TriggerSavepoint(grpc::ServerContext* context,
                                           const v1::TriggerSavepointRequest* request,
                                           v1::TriggerSavepointResponse* response) {
  api_call call(security_, *context,
                request->stop() ? api_method::stop_job : api_method::trigger_savepoint,
                request->job_id());
  return call.finish(savepoint(call, *request, *response));
}

grpc::Status job_service::savepoint(const api_call& call,
                                    const v1::TriggerSavepointRequest& request,
                                    v1::TriggerSavepointResponse& response) {
  if (!call.authenticated().ok()) return call.authenticated();
  if (auto s = require_job_id(request.job_id()); !s.ok()) return s;
  if (auto s = call.authorize(core_); !s.ok()) return s;
  auto sp = core_.savepoint(request.job_id(), request.stop());
  if (!sp) return to_grpc_status(sp.err());
  response.set_path(sp->path);
  response.set_checkpoint_id(sp->checkpoint_id);
  *response.mutable_job() = to_proto(sp->job);
  return grpc::Status::OK;
}

}  // namespace vigil
