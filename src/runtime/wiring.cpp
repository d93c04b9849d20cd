#include "runtime/wiring.hpp"

namespace vigil {

std::vector<std::vector<subtask_wiring>> compute_wiring(
    const job_plan& plan, const std::vector<std::vector<caf::actor>>& actors) {
  std::vector<std::vector<subtask_wiring>> w(plan.nodes.size());
  for (size_t n = 0; n < plan.nodes.size(); ++n) w[n].resize(plan.nodes[n].parallelism);
  for (const auto& e : plan.edges) {
    uint32_t pt = plan.nodes[e.to].parallelism;
    for (uint32_t s = 0; s < plan.nodes[e.from].parallelism; ++s) {
      auto& up = w[e.from][s];
      output_router::edge re;
      re.port = e.from_port;
      re.part = e.part;
      for (uint32_t t = 0; t < pt; ++t) {
        if (e.part == partitioning::forward && t != s) continue;
        auto& down = w[e.to][t];
        uint32_t ch = static_cast<uint32_t>(up.channel_targets.size());
        up.channel_targets.push_back(actors[e.to][t]);
        up.channel_target_input.push_back(static_cast<uint32_t>(down.inputs.size()));
        down.inputs.push_back({e.to_port, actors[e.from][s], ch});
        re.channels.push_back(ch);
      }
      up.edges.push_back(std::move(re));
    }
  }
  return w;
}

}  // namespace vigil
