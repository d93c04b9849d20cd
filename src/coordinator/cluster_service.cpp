#include "coordinator/cluster_service.hpp"

#include "coordinator/proto_convert.hpp"

namespace vigil {

grpc::Status cluster_service::ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                                          v1::ListWorkersResponse* response) {
  for (const auto& w : core_.workers()) *response->add_workers() = to_proto(w);
  return grpc::Status::OK;
}

}  // namespace vigil
