#include "common/host_port.hpp"

#include <charconv>

namespace vigil {

result<host_port> parse_host_port(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::invalid_argument, std::string(what) + ": " + std::string(why) +
                                                  ", got '" + std::string(text) + "'");
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("expected host:port");
  std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty() ||
      port > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  return host_port{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

}  // namespace vigil
