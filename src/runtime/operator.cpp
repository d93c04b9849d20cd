#include "runtime/operator.hpp"

#include <chrono>

#include "runtime/job_plan.hpp"

namespace vigil {

void operator_registry::add(std::unique_ptr<operator_factory> factory) {
  factories_.push_back(std::move(factory));
}

const operator_factory* operator_registry::find(std::string_view name) const {
  for (const auto& f : factories_) {
    if (f->traits().name == name) return f.get();
  }
  return nullptr;
}

int64_t operator_context::now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

const char* to_string(partitioning p) {
  switch (p) {
    case partitioning::forward:
      return "forward";
    case partitioning::hash:
      return "hash";
    case partitioning::broadcast:
      return "broadcast";
    case partitioning::rebalance:
      return "rebalance";
  }
  return "unknown";
}

}  // namespace vigil
