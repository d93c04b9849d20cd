#include "coordinator/api_server.hpp"

namespace vigil {

result<std::unique_ptr<api_server>> api_server::start(coordinator_api& core,
                                                      const host_port& listen) {
  std::unique_ptr<api_server> s(new api_server(core));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen.to_string(), grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(&s->jobs_);
  builder.RegisterService(&s->cluster_);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return make_error(errc::io_error, "cannot serve the API on " + listen.to_string() +
                                          " (address in use or not local?)");
  }
  s->address_ = listen.host + ":" + std::to_string(s->port_);
  return s;
}

api_server::~api_server() {
  shutdown();
}

void api_server::shutdown() {
  if (server_) {
    server_->Shutdown();
    server_.reset();
  }
}

}  // namespace vigil
