#include "coordinator/cluster_service.hpp"

#include "coordinator/proto_convert.hpp"

namespace vigil {

grpc::Status cluster_service::ListWorkers(grpc::ServerContext* context,
                                          const v1::ListWorkersRequest*,
                                          v1::ListWorkersResponse* response) {
  api_call call(security_, *context, api_method::list_workers);
  if (!call.authenticated().ok()) return call.finish(call.authenticated());
  if (auto s = call.authorize(core_); !s.ok()) return call.finish(s);
  for (const auto& w : core_.workers()) *response->add_workers() = to_proto(w);
  return call.finish(grpc::Status::OK);
}

}  // namespace vigil
