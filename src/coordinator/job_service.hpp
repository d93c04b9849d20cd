#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "common/result.hpp"
#include "coordinator/audit_log.hpp"
#include "coordinator/auth.hpp"
#include "coordinator/coordinator_api.hpp"
#include "vigil/v1/api.grpc.pb.h"

namespace vigil {

/// The one place where Vigil errors become gRPC statuses. The message is passed through
/// verbatim; the code: invalid_argument, invalid_graph, parse_error -> INVALID_ARGUMENT;
/// not_found -> NOT_FOUND; resource_exhausted -> RESOURCE_EXHAUSTED; io_error, state_error,
/// internal -> INTERNAL. Never UNAVAILABLE: clients read that as "the coordinator cannot be
/// reached".
grpc::Status to_grpc_status(const error& err);

/// The name of a gRPC status code as the audit log writes it: "OK", "PERMISSION_DENIED", ...
std::string_view status_code_name(grpc::StatusCode code);

/// How the API services authenticate, authorize and audit calls. Both parts are optional and
/// must outlive the services.
struct api_security {
  /// Accepted bearer tokens; null: authentication is off and every caller acts as an admin
  /// named "anonymous".
  const token_table* tokens = nullptr;
  /// Where every call is recorded; null: nowhere.
  audit_log* audit = nullptr;
};

/// The security side of one API call, made first thing in every service method: finds the
/// caller from the "authorization: Bearer <token>" metadata, checks its role, and on finish()
/// writes the call's audit record. Lives on the gRPC thread of the call.
class api_call {
 public:
  api_call(api_security security, const grpc::ServerContext& context, api_method method,
           std::string job_id = {});

  /// OK, or UNAUTHENTICATED when authentication is on and the call carried no known token.
  const grpc::Status& authenticated() const { return authenticated_; }
  /// The caller; meaningful once authenticated() is OK.
  const principal& who() const { return who_; }
  /// The principal to record as a new job's owner: the caller, or empty when authentication
  /// is off.
  std::string owner() const { return security_.tokens != nullptr ? who_.name : std::string(); }

  /// OK if the caller's role allows the method on any job; otherwise, for the methods an
  /// author may call on its own jobs (CancelJob, TriggerSavepoint with stop), looks up the
  /// job in `core` (NOT_FOUND if unknown) and allows its owner; else PERMISSION_DENIED.
  grpc::Status authorize(coordinator_api& core) const;

  /// The job the call turned out to be about (a submitted job's new id).
  void set_job_id(std::string job_id) { job_id_ = std::move(job_id); }

  /// Writes the audit record with `status` as the outcome and returns `status`.
  grpc::Status finish(grpc::Status status) const;

 private:
  api_security security_;
  std::string peer_;
  api_method method_;
  std::string job_id_;
  principal who_;
  grpc::Status authenticated_;
};

/// vigil.v1.JobService over a coordinator core. Stateless: every call goes to `core`, which
/// must outlive the service and be thread-safe (gRPC calls in from several threads).
class job_service final : public v1::JobService::Service {
 public:
  /// The tokens and audit log `security` points to must outlive the service.
  explicit job_service(coordinator_api& core, api_security security = {})
      : core_(core), security_(security) {}

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
  grpc::Status DrainJob(grpc::ServerContext* context, const v1::DrainJobRequest* request,
                        v1::DrainJobResponse* response) override;

 private:
  grpc::Status submit(api_call& call, const v1::SubmitJobRequest& request,
                      v1::SubmitJobResponse& response);
  grpc::Status get(const api_call& call, const v1::GetJobRequest& request,
                   v1::GetJobResponse& response);
  grpc::Status cancel(const api_call& call, const v1::CancelJobRequest& request,
                      v1::CancelJobResponse& response);
  grpc::Status savepoint(const api_call& call, const v1::TriggerSavepointRequest& request,
                         v1::TriggerSavepointResponse& response);
  grpc::Status drain(const api_call& call, const v1::DrainJobRequest& request,
                     v1::DrainJobResponse& response);

  coordinator_api& core_;
  api_security security_;
};

}  // namespace vigil
