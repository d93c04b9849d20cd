#pragma once

#include <grpcpp/grpcpp.h>

#include "coordinator/coordinator_api.hpp"
#include "coordinator/job_service.hpp"
#include "vigil/v1/api.grpc.pb.h"

namespace vigil {

/// vigil.v1.ClusterService over a coordinator core. Stateless: every call goes to `core`,
/// which must outlive the service and be thread-safe.
class cluster_service final : public v1::ClusterService::Service {
 public:
  /// The tokens and audit log `security` points to must outlive the service.
  explicit cluster_service(coordinator_api& core, api_security security = {})
      : core_(core), security_(security) {}

  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;

 private:
  coordinator_api& core_;
  api_security security_;
};

}  // namespace vigil
