#include "operators/kafka/sink/progress_marker.hpp"

#include <nlohmann/json.hpp>
#include <random>

namespace vigil::kafka {

std::string encode_marker(const progress_marker& m) {
  nlohmann::json j = {{"sink", m.sink}, {"epoch", m.epoch},     {"attempt", m.attempt},
                      {"run", m.run},   {"records", m.records}, {"final", m.final}};
  return j.dump();
}

result<progress_marker> parse_marker(std::string_view json) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return make_error(errc::parse_error, "progress marker is not a JSON object");
  }
  progress_marker m;
  try {
    m.sink = doc.at("sink").get<std::string>();
    m.epoch = doc.at("epoch").get<int64_t>();
    m.attempt = doc.at("attempt").get<std::string>();
    m.run = doc.at("run").get<std::string>();
    m.records = doc.at("records").get<int64_t>();
    m.final = doc.value("final", false);
  } catch (const nlohmann::json::exception& e) {
    return make_error(errc::parse_error, std::string("progress marker: ") + e.what());
  }
  return m;
}

std::string to_hex64(uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = digits[v & 0xf];
  return out;
}

std::string random_id() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  return to_hex64(v);
}

}  // namespace vigil::kafka
