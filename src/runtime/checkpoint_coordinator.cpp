#include "runtime/checkpoint_coordinator.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vigil {

checkpoint_coordinator::checkpoint_coordinator(
    const job_plan& plan, std::shared_ptr<checkpoint_storage> storage,
    std::function<void(int64_t)> trigger, std::function<void(int64_t, const std::string&)> notify,
    std::shared_ptr<metrics::job_metrics> metrics)
    : plan_(plan),
      storage_(std::move(storage)),
      trigger_(std::move(trigger)),
      notify_(std::move(notify)),
      metrics_(metrics ? std::move(metrics) : std::make_shared<metrics::job_metrics>(plan.name)) {
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    for (uint32_t s = 0; s < plan.nodes[n].parallelism; ++s) live_.insert({n, s});
  }
  // Ids keep growing across runs into the same storage: a rerun never writes into a
  // checkpoint directory, complete or left over from a crash, and sinks that key their commits
  // by checkpoint id (lake_sink's txn versions) see them only grow.
  next_id_ = storage_->highest_id() + 1;
}

void checkpoint_coordinator::start(int64_t now_us, int64_t restored_id) {
  next_id_ = std::max(next_id_, restored_id + 1);
  next_due_us_ = now_us + plan_.checkpoint_interval_us;
}

void checkpoint_coordinator::request(int64_t now_us) {
  requested_ = true;
  if (current_ == 0) next_due_us_ = now_us;
}

status checkpoint_coordinator::tick(int64_t now_us) {
  if (current_ != 0) {
    if (now_us - started_us_ <= plan_.checkpoint_timeout_us) return {};
    return failure("checkpoint " + std::to_string(current_) + " timed out after " +
                       std::to_string(plan_.checkpoint_timeout_us / 1000) + " ms (" +
                       std::to_string(pending_.size()) + " subtasks had not acknowledged it)",
                   now_us);
  }
  if (now_us < next_due_us_ || live_.empty() || draining_) return {};
  current_ = next_id_++;
  requested_ = false;
  started_us_ = now_us;
  pending_ = live_;
  acks_.clear();
  trigger_(current_);
  return {};
}

status checkpoint_coordinator::on_ack(const checkpoint_ack& ack, int64_t now_us) {
  if (ack.id != current_) return {};  // Late: for an abandoned checkpoint.
  if (pending_.erase({ack.node, ack.subtask}) == 0) return {};
  acks_.push_back(ack);
  if (!pending_.empty()) return {};
  return complete(now_us);
}

status checkpoint_coordinator::on_decline(int64_t id, size_t node, uint32_t subtask,
                                          const std::string& reason, int64_t now_us) {
  if (id != current_) return {};
  std::string who = node < plan_.nodes.size() ? plan_.nodes[node].id : std::to_string(node);
  return failure("checkpoint " + std::to_string(id) + " declined by node '" + who + "' subtask " +
                     std::to_string(subtask) + ": " + reason,
                 now_us);
}

status checkpoint_coordinator::on_finished(size_t node, uint32_t subtask, int64_t now_us) {
  live_.erase({node, subtask});
  draining_ = true;
  if (current_ != 0 && pending_.erase({node, subtask}) != 0) {
    storage_->abandon(current_);
    current_ = 0;
  }
  (void)now_us;
  return {};
}

status checkpoint_coordinator::complete(int64_t now_us) {
  int64_t id = current_;
  uint64_t bytes = 0;
  uint64_t copied = 0;
  std::string subtasks;
  std::sort(acks_.begin(), acks_.end(), [](const checkpoint_ack& a, const checkpoint_ack& b) {
    return std::pair(a.node, a.subtask) < std::pair(b.node, b.subtask);
  });
  for (const auto& a : acks_) {
    bytes += a.bytes;
    copied += a.bytes_copied;
    if (!subtasks.empty()) subtasks += ",";
    subtasks += "{\"node\":\"" + plan_.nodes[a.node].id +
                "\",\"subtask\":" + std::to_string(a.subtask) +
                ",\"bytes\":" + std::to_string(a.bytes) +
                ",\"bytes_copied\":" + std::to_string(a.bytes_copied) + "}";
  }
  // Node ids are restricted to [A-Za-z0-9_.-] and job names are escaped: plain JSON.
  auto escape = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out;
  };
  const std::string job = escape(plan_.name);
  // Source positions per source node, in subtask order (acks_ is sorted); a subtask that
  // reported none, or no valid JSON, has null.
  const std::vector<bool> is_source = plan_.source_nodes();
  std::string sources = "{";
  for (size_t n = 0; n < plan_.nodes.size(); ++n) {
    if (!is_source[n]) continue;
    std::string list;
    for (const auto& a : acks_) {
      if (a.node != n) continue;
      if (!list.empty()) list += ",";
      bool valid = !a.position.empty() && nlohmann::json::accept(a.position);
      list += valid ? a.position : std::string("null");
    }
    if (sources.size() > 1) sources += ",";
    sources += "\"" + plan_.nodes[n].id + "\":[" + list + "]";
  }
  sources += "}";
  std::string nodes;
  for (const auto& n : plan_.nodes) {
    if (!nodes.empty()) nodes += ",";
    nodes += "{\"id\":\"" + n.id + "\",\"parallelism\":" + std::to_string(n.parallelism) + "}";
  }
  std::string metadata =
      "{\"version\":1,\"id\":" + std::to_string(id) + ",\"job\":\"" + job + "\",\"job_id\":\"" +
      (plan_.job_id.empty() ? job : escape(plan_.job_id)) + "\",\"graph_version\":\"" +
      plan_.graph_version + "\",\"max_parallelism\":" + std::to_string(plan_.max_parallelism) +
      ",\"nodes\":[" + nodes + "]" + ",\"duration_us\":" + std::to_string(now_us - started_us_) +
      ",\"bytes\":" + std::to_string(bytes) + ",\"bytes_copied\":" + std::to_string(copied) +
      ",\"subtasks\":[" + subtasks + "],\"sources\":" + sources + "}\n";
  if (auto st = storage_->complete(id, metadata); !st) {
    return failure("checkpoint " + std::to_string(id) + ": " + st.err().message, now_us);
  }
  current_ = 0;
  consecutive_failures_ = 0;
  next_due_us_ = requested_ ? now_us : now_us + plan_.checkpoint_interval_us;
  ++summary_.completed;
  summary_.last_completed = id;
  summary_.last_bytes = bytes;
  summary_.bytes_copied += copied;
  metrics_->checkpoint_completed(id, bytes, now_us - started_us_);
  if (auto st = storage_->retain(plan_.checkpoint_retain); !st) return st;
  notify_(id, sources);
  return {};
}

status checkpoint_coordinator::failure(const std::string& why, int64_t now_us) {
  storage_->abandon(current_);
  current_ = 0;
  ++summary_.failed;
  metrics_->checkpoint_failed();
  summary_.last_failure = why;
  next_due_us_ = requested_ ? now_us : now_us + plan_.checkpoint_interval_us;
  if (++consecutive_failures_ > plan_.tolerable_checkpoint_failures) {
    return make_error(errc::state_error,
                      why + "; " + std::to_string(consecutive_failures_) +
                          " consecutive checkpoint failures exceed the tolerated " +
                          std::to_string(plan_.tolerable_checkpoint_failures));
  }
  return {};
}

}  // namespace vigil
