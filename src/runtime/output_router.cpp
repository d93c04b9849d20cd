#include "runtime/output_router.hpp"

#include <cassert>

#include "common/key.hpp"
#include "metrics/operator_metrics.hpp"

namespace vigil {

output_router::output_router(channel_transport& transport, std::vector<edge> edges,
                             size_t num_channels, uint32_t subtask_index, uint32_t max_parallelism,
                             size_t batch_size, size_t num_ports)
    : transport_(transport),
      edges_(std::move(edges)),
      hash_state_(edges_.size()),
      channels_(num_channels),
      round_robin_(edges_.size()),
      rows_out_(num_ports),
      max_parallelism_(max_parallelism),
      batch_size_(batch_size) {
  // Spread the rebalance starting points of sibling subtasks.
  for (size_t e = 0; e < edges_.size(); ++e) {
    round_robin_[e] = edges_[e].channels.empty() ? 0 : subtask_index % edges_[e].channels.size();
    if (edges_[e].part == partitioning::hash) {
      hash_state_[e].selection.resize(edges_[e].channels.size());
    }
  }
}

void output_router::enqueue(size_t ch, channel_item item) {
  auto& c = channels_[ch];
  bool is_batch = item.k == channel_item::kind::batch;
  if (c.queue.empty() && (!is_batch || c.credits > 0)) {
    if (is_batch) --c.credits;
    transport_.deliver(ch, std::move(item));
    return;
  }
  c.queue.push_back(std::move(item));
  ++queued_;
}

void output_router::add_credit(size_t ch, uint32_t n) {
  auto& c = channels_[ch];
  c.credits += n;
  while (!c.queue.empty()) {
    auto& front = c.queue.front();
    if (front.k == channel_item::kind::batch) {
      if (c.credits == 0) break;
      --c.credits;
    }
    transport_.deliver(ch, std::move(front));
    c.queue.pop_front();
    --queued_;
  }
}

void output_router::emit(size_t port, batch_ptr batch) {
  if (batch->num_rows() == 0) return;
  rows_out_[port] += batch->num_rows();
  bytes_out_ += metrics::batch_payload_bytes(*batch);
  for (size_t e = 0; e < edges_.size(); ++e) {
    auto& ed = edges_[e];
    if (ed.port != port || ed.channels.empty()) continue;
    switch (ed.part) {
      case partitioning::forward:
        // The planner guarantees equal parallelism: one channel, to the same subtask index.
        assert(ed.channels.size() == 1);
        enqueue(ed.channels[0], {channel_item::kind::batch, batch, 0});
        break;
      case partitioning::rebalance:
        enqueue(ed.channels[round_robin_[e]], {channel_item::kind::batch, batch, 0});
        round_robin_[e] = (round_robin_[e] + 1) % ed.channels.size();
        break;
      case partitioning::broadcast:
        for (size_t ch : ed.channels) enqueue(ch, {channel_item::kind::batch, batch, 0});
        break;
      case partitioning::hash:
        route_hash(e, batch);
        break;
    }
  }
}

void output_router::route_hash(size_t e, const batch_ptr& batch) {
  auto& ed = edges_[e];
  auto& hs = hash_state_[e];
  const uint32_t p = static_cast<uint32_t>(ed.channels.size());
  if (p == 1 && (hs.builders.empty() || hs.builders[0].empty())) {
    enqueue(ed.channels[0], {channel_item::kind::batch, batch, 0});
    return;
  }
  if (hs.builders.empty()) {
    for (uint32_t t = 0; t < p; ++t) hs.builders.emplace_back(batch->schema, batch_size_);
  }
  for (auto& sel : hs.selection) sel.clear();
  const size_t n = batch->num_rows();
  const uint64_t* hashes = batch->key_hash.data();
  for (size_t r = 0; r < n; ++r) {
    uint32_t kg = key_group_of(hashes[r], max_parallelism_);
    hs.selection[subtask_of_key_group(kg, p, max_parallelism_)].push_back(static_cast<uint32_t>(r));
  }
  for (uint32_t t = 0; t < p; ++t) {
    const auto& sel = hs.selection[t];
    if (sel.empty()) continue;
    auto& b = hs.builders[t];
    if (sel.size() == n && b.empty()) {  // Every row goes to one subtask: no copy.
      enqueue(ed.channels[t], {channel_item::kind::batch, batch, 0});
      continue;
    }
    b.append_rows(*batch, sel.data(), sel.size());
    if (b.size() >= batch_size_) {
      enqueue(ed.channels[t], {channel_item::kind::batch, b.finish(), 0});
    } else {
      partial_ = true;
    }
  }
}

void output_router::flush_partial() {
  partial_ = false;
  for (size_t e = 0; e < edges_.size(); ++e) {
    auto& hs = hash_state_[e];
    for (size_t t = 0; t < hs.builders.size(); ++t) {
      if (!hs.builders[t].empty()) {
        enqueue(edges_[e].channels[t], {channel_item::kind::batch, hs.builders[t].finish(), 0});
      }
    }
  }
}

void output_router::broadcast_control(channel_item::kind k, int64_t wm) {
  flush_partial();
  for (size_t ch = 0; ch < channels_.size(); ++ch) enqueue(ch, {k, nullptr, wm});
}

void output_router::broadcast_watermark(int64_t wm) {
  broadcast_control(channel_item::kind::watermark, wm);
}

void output_router::broadcast_idle() {
  broadcast_control(channel_item::kind::idle, 0);
}

void output_router::broadcast_barrier(int64_t id) {
  broadcast_control(channel_item::kind::barrier, id);
}

void output_router::broadcast_eos() {
  broadcast_control(channel_item::kind::eos, 0);
}

}  // namespace vigil
