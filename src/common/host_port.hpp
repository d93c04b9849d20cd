#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace vigil {

/// A TCP endpoint as the cluster flags write it: "host:port" ("127.0.0.1:7071",
/// "vigil-coordinator-0.vigil:7071"). Port 0 means "any free port" where a process listens.
struct host_port {
  std::string host;
  uint16_t port = 0;

  std::string to_string() const { return host + ":" + std::to_string(port); }
};

/// Parses "host:port"; `what` names the flag or setting in the error, e.g.
/// "--coordinator: expected host:port, got 'localhost'".
result<host_port> parse_host_port(std::string_view text, std::string_view what);

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (bound, read back, released):
/// a dead endpoint for tests, or a port to hand to a process they start. 0 if none could be
/// bound.
uint16_t unused_loopback_port();

}  // namespace vigil
