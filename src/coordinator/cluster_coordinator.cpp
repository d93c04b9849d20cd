#include "coordinator/cluster_coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <random>

#include "common/ids.hpp"
#include "graph/planner.hpp"
#include "runtime/messages.hpp"
#include "runtime/wire.hpp"
#include "runtime/wiring.hpp"

namespace vigil {

namespace {

using table = cluster_coordinator::table;
using worker_entry = cluster_coordinator::worker_entry;
using job_entry = cluster_coordinator::job_entry;
using clock = std::chrono::steady_clock;

int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Coordinator to itself: (restart, job id, attempt) places and deploys a restarting job.
using restart_atom = caf::atom_constant<caf::atom("restart")>;
/// Coordinator to itself: (ckpttick, job id, attempt) drives a running job's checkpoints.
using checkpoint_tick_atom = caf::atom_constant<caf::atom("ckpttick")>;

bool ended(job_state s) {
  return s == job_state::finished || s == job_state::failed || s == job_state::cancelled;
}

/// Subtasks exist or are being made: a failure now stops them and may restart the job.
bool active(job_state s) {
  return s == job_state::pending || s == job_state::running || s == job_state::restarting;
}

/// Tells the sources of job `j`'s current attempt to end their input (cluster_coordinator::
/// end_input). A template: job_entry is private to cluster_coordinator.
template <class Job>
void send_end_input(const Job& j) {
  if (!j.plan) return;
  const std::vector<bool> is_source = j.plan->source_nodes();
  for (size_t n = 0; n < j.actors.size(); ++n) {
    if (!is_source[n]) continue;
    for (const auto& a : j.actors[n]) caf::anon_send(a, end_input_atom::value);
  }
}

/// Deployed but not yet started.
bool starting(job_state s) {
  return s == job_state::pending || s == job_state::restarting;
}

caf::error refuse(std::string message) {
  return caf::make_error(caf::sec::runtime_error, std::move(message));
}

/// The job's metric series, taken on first use.
metrics::job_metrics& job_metrics_of(job_entry& j) {
  if (!j.metrics) j.metrics = std::make_shared<metrics::job_metrics>(j.stored.info.name);
  return *j.metrics;
}

/// The cluster gauges of the coordinator (docs/operations.md, "Metrics").
struct cluster_gauges {
  metrics::series<prometheus::Gauge> workers{metrics::family().cluster_workers, {}};
  metrics::series<prometheus::Gauge> slots_total{metrics::family().cluster_slots,
                                                 {{"state", "total"}}};
  metrics::series<prometheus::Gauge> slots_used{metrics::family().cluster_slots,
                                                {{"state", "used"}}};
  std::vector<metrics::series<prometheus::Gauge>> jobs;  ///< Indexed by job_state.

  cluster_gauges() {
    for (const char* state :
         {"pending", "running", "finished", "failed", "cancelling", "cancelled", "restarting"}) {
      jobs.emplace_back(metrics::family().cluster_jobs, prometheus::Labels{{"state", state}});
    }
  }

  /// Recounts from the table (its mutex held).
  void update(const table& t) {
    uint32_t live = 0;
    uint64_t total = 0;
    uint64_t used = 0;
    for (const auto& [id, w] : t.workers) {
      if (!w.info.alive) continue;
      ++live;
      total += w.info.slots;
      used += w.info.slots - std::min(w.info.slots, w.info.free_slots);
    }
    workers->Set(live);
    slots_total->Set(static_cast<double>(total));
    slots_used->Set(static_cast<double>(used));
    std::vector<uint32_t> by_state(jobs.size(), 0);
    for (const auto& [id, j] : t.jobs) {
      auto s = static_cast<size_t>(j.stored.info.state);
      if (s < by_state.size()) ++by_state[s];
    }
    for (size_t s = 0; s < jobs.size(); ++s) jobs[s]->Set(by_state[s]);
  }
};

void refresh_free_slots(worker_entry& w) {
  uint32_t used = 0;
  for (const auto& [job, r] : w.slots_by_job) used += r.slots;
  w.info.free_slots = w.info.slots > used ? w.info.slots - used : 0;
}

/// True while some live worker still hosts (or may still be spawning) subtasks of the job.
bool holds_slots(const table& t, const std::string& job_id) {
  const auto& j = t.jobs.at(job_id);
  if (!j.deploying.empty()) return true;
  return std::any_of(t.workers.begin(), t.workers.end(), [&](const auto& w) {
    return w.second.info.alive && w.second.slots_by_job.count(job_id) != 0;
  });
}

void persist(table& t, const job_entry& j) {
  if (!t.store) return;
  if (auto st = t.store->update(j.stored.info); !st) {
    spdlog::error("coordinator: {}", st.err().message);
  }
}

/// "windowed counts" -> "windowed-counts-3fa2c1": readable, path-safe and unique.
std::string new_job_id(const std::string& name, const table& t) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::string base = to_path_safe_id(name);
  for (;;) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rng() & 0xffffff));
    std::string id = base + "-" + suffix;
    if (t.jobs.count(id) == 0) return id;
  }
}

/// Position of a subtask in job_info.subtasks (plan order, then subtask order).
size_t index_of(const job_plan& plan, subtask_ref r) {
  size_t i = 0;
  for (uint32_t n = 0; n < r.node; ++n) i += plan.nodes[n].parallelism;
  return i + r.subtask;
}

/// Chooses a live worker for every subtask of `plan` (plan order, then subtask), one subtask
/// per free slot. A subtask fed by a forward edge goes where its upstream subtask is, if a slot
/// is free there (no network hop). Otherwise the subtasks of each node are spread over the
/// workers: the worker with the fewest subtasks of the same node, then the most free slots,
/// then the lowest id. resource_exhausted when the live workers lack free slots.
result<std::vector<worker_entry*>> place(table& t, const job_plan& plan) {
  uint64_t needed = 0;
  for (const auto& n : plan.nodes) needed += n.parallelism;
  std::vector<worker_entry*> alive;
  uint64_t free = 0;
  for (auto& [id, w] : t.workers) {
    if (!w.info.alive) continue;
    alive.push_back(&w);
    free += w.info.free_slots;
  }
  if (needed > free) {
    return make_error(errc::resource_exhausted,
                      "job '" + plan.name + "' needs " + std::to_string(needed) +
                          " task slots, the cluster has " + std::to_string(free) + " free (" +
                          std::to_string(alive.size()) + " live workers)");
  }
  std::map<const worker_entry*, uint32_t> free_left;
  for (auto* w : alive) free_left[w] = w->info.free_slots;
  std::vector<worker_entry*> out;
  std::vector<std::vector<worker_entry*>> placed(plan.nodes.size());
  for (uint32_t n = 0; n < plan.nodes.size(); ++n) {
    std::optional<size_t> forward_from;
    for (const auto& e : plan.edges) {
      if (e.to == n && e.part == partitioning::forward) forward_from = e.from;
    }
    std::map<const worker_entry*, uint32_t> of_node;
    for (uint32_t s = 0; s < plan.nodes[n].parallelism; ++s) {
      worker_entry* best = nullptr;
      if (forward_from && free_left[placed[*forward_from][s]] > 0) {
        best = placed[*forward_from][s];
      } else {
        for (auto* w : alive) {
          if (free_left[w] == 0) continue;
          if (best == nullptr || of_node[w] < of_node[best] ||
              (of_node[w] == of_node[best] && free_left[w] > free_left[best])) {
            best = w;
          }
        }
      }
      if (best == nullptr) return make_error(errc::internal, "scheduler: no free slot left");
      placed[n].push_back(best);
      --free_left[best];
      ++of_node[best];
      out.push_back(best);
    }
  }
  return out;
}

/// Records a placement (from place()) in the job and reserves the slots on the workers.
void reserve(job_entry& j, const std::vector<worker_entry*>& placement) {
  std::map<worker_entry*, uint32_t> taken;
  for (size_t i = 0; i < placement.size(); ++i) {
    auto& sub = j.stored.info.subtasks[i];
    sub.worker_id = placement[i]->info.id;
    sub.state = "deploying";
    ++taken[placement[i]];
  }
  for (auto& [w, n] : taken) {
    w->slots_by_job[j.stored.info.id] = {j.attempt, n};
    refresh_free_slots(*w);
  }
}

/// The checkpoint counters of a job: earlier attempts plus the running one.
void sync_checkpoint_counts(job_entry& j) {
  if (!j.checkpoints) return;
  const auto& s = j.checkpoints->summary();
  auto& info = j.stored.info;
  uint64_t failed = j.checkpoints_failed_before + s.failed;
  if (failed > info.checkpoints_failed) {
    // Visible in the log and in the job's status; the last complete checkpoint stays.
    spdlog::warn("coordinator: job {}: {} ({} failed so far, the newest complete is {})", info.id,
                 s.last_failure, failed, info.last_checkpoint);
    info.last_checkpoint_failure = s.last_failure;
  }
  info.checkpoints_failed = failed;
}

/// The coordinator's one actor: worker registry, heartbeats, and the job masters' protocol for
/// every job. It writes the job store (an fsync per job state change, which is rare) on a
/// scheduler thread; a detached actor would not shut down while its pending delayed messages
/// hold references to it (CAF 0.17).
class coordinator_actor : public caf::event_based_actor {
 public:
  coordinator_actor(caf::actor_config& cfg, table& t) : caf::event_based_actor(cfg), t_(t) {}

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& down) { on_down(down); });
    send(this, tick_atom::value);
    {
      // Jobs recovered from the job store (cluster_coordinator::start) wait for workers.
      lock_t lock(t_.mutex);
      for (auto& [id, j] : t_.jobs) {
        if (j.stored.info.state == job_state::restarting) schedule_restart(j);
      }
    }
    return {
        [this](register_atom, const std::string& id, const std::string& address, uint32_t slots,
               uint32_t heartbeat_ms) -> caf::result<caf::atom_value> {
          return on_register(id, address, slots, heartbeat_ms);
        },
        [this](heartbeat_atom, const std::string& id) { on_heartbeat(id); },
        [this](leave_atom, const std::string& id) {
          lock_t lock(t_.mutex);
          auto it = t_.workers.find(id);
          if (it == t_.workers.end() || it->second.handle != current_sender()) return;
          it->second.left = true;
          if (it->second.info.alive) lose_worker(id, "it stopped", false);
        },
        [this](released_atom, const std::string& worker_id, const std::string& job_id,
               uint32_t attempt) { on_released(worker_id, job_id, attempt); },
        [this](tick_atom) { on_tick(); },
        [this](const local_request& r) {
          lock_t lock(t_.mutex);
          auto it = t_.jobs.find(r.job_id);
          if (it == t_.jobs.end()) return;
          if (r.savepoint != 0) {
            on_savepoint(it->second, r.savepoint);
          } else if (r.cancel) {
            on_cancel(it->second);
          } else if (it->second.stored.info.state == job_state::pending &&
                     it->second.attempt == 0) {
            deploy(it->second);  // A failure before this arrived restarts the job instead.
          }
        },
        [this](done_atom, const subtask_stats& stats) { on_done(stats); },
        [this](failed_atom, size_t node, uint32_t subtask, const std::string& message) {
          on_failed(node, subtask, message);
        },
        [this](ack_atom, const checkpoint_ack& ack) {
          with_checkpoints([&](job_entry& j) { return j.checkpoints->on_ack(ack, now_us()); });
        },
        [this](decline_atom, int64_t id, size_t node, uint32_t subtask, const std::string& why) {
          with_checkpoints([&](job_entry& j) {
            return j.checkpoints->on_decline(id, node, subtask, why, now_us());
          });
        },
        [this](checkpoint_tick_atom, const std::string& job_id, uint32_t attempt) {
          on_checkpoint_tick(job_id, attempt);
        },
        [this](restart_atom, const std::string& job_id, uint32_t attempt) {
          on_restart(job_id, attempt);
        },
    };
  }

 private:
  using lock_t = std::unique_lock<std::mutex>;

  static int64_t now_us() { return operator_context::now_us(); }

  caf::result<caf::atom_value> on_register(const std::string& id, const std::string& address,
                                           uint32_t slots, uint32_t heartbeat_ms) {
    auto sender = caf::actor_cast<caf::actor>(current_sender());
    if (!sender) return refuse("register: anonymous sender");
    if (!is_path_safe_id(id)) return refuse("register: invalid worker id '" + id + "'");
    if (slots == 0) return refuse("register: worker '" + id + "' offers no slots");
    if (2 * static_cast<int64_t>(heartbeat_ms) > t_.heartbeat_timeout.count()) {
      return refuse("worker '" + id + "' heartbeats every " + std::to_string(heartbeat_ms) +
                    " ms; the coordinator's heartbeat timeout of " +
                    std::to_string(t_.heartbeat_timeout.count()) + " ms needs at most half that");
    }
    lock_t lock(t_.mutex);
    auto it = t_.workers.find(id);
    if (it != t_.workers.end() && it->second.info.alive && it->second.handle != sender) {
      return refuse("a live worker with id '" + id + "' is already registered (at " +
                    it->second.info.address + ")");
    }
    worker_entry& w = t_.workers[id];
    w.info = worker_info{id, address, slots, slots, unix_now_us(), true};
    w.handle = sender;
    w.last_seen = clock::now();
    w.left = false;
    w.slots_by_job.clear();
    monitor(sender);
    spdlog::info("coordinator: worker {} registered ({} slots, data at {})", id, slots, address);
    t_.changed.notify_all();
    return caf::atom("ok");
  }

  void on_heartbeat(const std::string& id) {
    lock_t lock(t_.mutex);
    auto it = t_.workers.find(id);
    if (it == t_.workers.end() || it->second.handle != current_sender()) return;
    auto& w = it->second;
    if (w.left) return;  // A heartbeat late behind `leave` does not revive a stopped worker.
    w.last_seen = clock::now();
    w.info.last_heartbeat_us = unix_now_us();
    if (!w.info.alive) {
      spdlog::info("coordinator: worker {} is back", id);
      w.info.alive = true;
      t_.changed.notify_all();
    }
  }

  void on_tick() {
    {
      lock_t lock(t_.mutex);
      gauges_.update(t_);
      auto now = clock::now();
      std::vector<std::string> late;
      for (const auto& [id, w] : t_.workers) {
        if (w.info.alive && now - w.last_seen > t_.heartbeat_timeout) late.push_back(id);
      }
      for (const auto& id : late) {
        lose_worker(id, "no heartbeat for " + std::to_string(t_.heartbeat_timeout.count()) + " ms");
      }
    }
    auto period = std::max(std::chrono::milliseconds(20), t_.heartbeat_timeout / 10);
    delayed_send(this, period, tick_atom::value);
  }

  void on_down(const caf::down_msg& down) {
    lock_t lock(t_.mutex);
    for (auto& [id, w] : t_.workers) {
      if (w.handle.address() == down.source) {
        if (w.info.alive) lose_worker(id, "connection lost: " + error_text(down.reason));
        return;
      }
    }
    auto [j, idx] = find_subtask(down.source);
    if (j == nullptr) return;
    auto& sub = j->stored.info.subtasks[idx];
    if (sub.state == "finished" || sub.state == "failed" || sub.state == "lost") return;
    sub.state = "failed";
    on_job_failure(*j, "node '" + sub.node_id + "' subtask " + std::to_string(sub.subtask) +
                           " on worker '" + sub.worker_id +
                           "' stopped: " + error_text(down.reason));
  }

  void on_released(const std::string& worker_id, const std::string& job_id, uint32_t attempt) {
    lock_t lock(t_.mutex);
    auto w = t_.workers.find(worker_id);
    if (w == t_.workers.end() || w->second.handle != current_sender()) return;
    // A release of an earlier attempt must not free the slots of the current one.
    auto r = w->second.slots_by_job.find(job_id);
    if (r != w->second.slots_by_job.end() && r->second.attempt == attempt) {
      w->second.slots_by_job.erase(r);
      refresh_free_slots(w->second);
    }
    if (auto j = t_.jobs.find(job_id); j != t_.jobs.end()) check_cancelled(j->second);
    t_.changed.notify_all();
  }

  void on_done(const subtask_stats& stats) {
    lock_t lock(t_.mutex);
    auto [j, idx] =
        find_subtask(current_sender() ? current_sender()->address() : caf::actor_addr{});
    if (j == nullptr) return;
    auto& sub = j->stored.info.subtasks[idx];
    if (sub.state == "finished") return;
    sub.state = "finished";
    add_stats(j->summary, stats);
    if (j->checkpoints) {
      auto st = j->checkpoints->on_finished(j->refs[idx].node, j->refs[idx].subtask, now_us());
      sync_checkpoint_counts(*j);
      if (!st) {
        on_job_failure(*j, st.err().message);
        return;
      }
    }
    if (++j->finished_subtasks == j->refs.size() && j->stored.info.state == job_state::running) {
      j->stored.info.state = job_state::finished;
      retire(*j);
      j->metrics.reset();  // An ended job leaves no series behind.
      j->summary.seconds = std::chrono::duration<double>(clock::now() - j->started).count();
      spdlog::info("coordinator: job {} finished in {:.3f} s", j->stored.info.id,
                   j->summary.seconds);
      persist(t_, *j);
    }
    t_.changed.notify_all();
  }

  void on_failed(size_t node, uint32_t subtask, const std::string& message) {
    lock_t lock(t_.mutex);
    auto [j, idx] =
        find_subtask(current_sender() ? current_sender()->address() : caf::actor_addr{});
    if (j == nullptr) return;
    auto& sub = j->stored.info.subtasks[idx];
    sub.state = "failed";
    on_job_failure(*j, "node '" + sub.node_id + "' subtask " + std::to_string(sub.subtask) +
                           " on worker '" + sub.worker_id + "': " + message);
  }

  void on_cancel(job_entry& j) {
    cancel_on_workers(j);
    check_cancelled(j);
  }

  // --- Checkpoints: the job master drives a checkpoint_coordinator per running job. ---

  /// Runs `step` on the checkpoint coordinator of the job the sending subtask belongs to; an
  /// error (more failed checkpoints in a row than tolerated) is a job failure.
  template <class Step>
  void with_checkpoints(Step step) {
    lock_t lock(t_.mutex);
    auto [j, idx] =
        find_subtask(current_sender() ? current_sender()->address() : caf::actor_addr{});
    if (j == nullptr || !j->checkpoints || j->stored.info.state != job_state::running) return;
    auto st = step(*j);
    sync_checkpoint_counts(*j);
    if (!st) on_job_failure(*j, st.err().message);
  }

  void start_checkpoints(job_entry& j) {
    const job_plan& plan = *j.plan;
    auto trigger = [this, &j](int64_t id) {
      const std::vector<bool> is_source = j.plan->source_nodes();
      for (size_t n = 0; n < j.actors.size(); ++n) {
        if (!is_source[n]) continue;
        for (const auto& a : j.actors[n]) send(a, trigger_atom::value, id);
      }
    };
    auto notify = [this, &j](int64_t id, const std::string& sources) {
      for (const auto& node : j.actors) {
        for (const auto& a : node) send(a, complete_atom::value, id, sources);
      }
      auto& info = j.stored.info;
      info.last_checkpoint = id;
      ++info.checkpoints_completed;
      info.restart_attempts = 0;  // Progress: the restart budget starts afresh.
      complete_savepoints(j, id);
      persist(t_, j);
    };
    job_metrics_of(j);
    j.checkpoints = std::make_unique<checkpoint_coordinator>(
        plan, std::make_shared<checkpoint_storage>(j.checkpoint_dir), trigger, notify, j.metrics);
    j.checkpoints->start(now_us(), j.restore_id);
    send(this, checkpoint_tick_atom::value, j.stored.info.id, j.attempt);
  }

  void on_checkpoint_tick(const std::string& job_id, uint32_t attempt) {
    lock_t lock(t_.mutex);
    auto it = t_.jobs.find(job_id);
    if (it == t_.jobs.end()) return;
    job_entry& j = it->second;
    if (j.attempt != attempt || j.stored.info.state != job_state::running || !j.checkpoints) {
      return;
    }
    auto st = j.checkpoints->tick(now_us());
    sync_checkpoint_counts(j);
    if (!st) {
      on_job_failure(j, st.err().message);
      return;
    }
    auto period = std::chrono::microseconds(
        std::clamp<int64_t>(j.plan->checkpoint_interval_us / 4, 5'000, 100'000));
    delayed_send(this, period, checkpoint_tick_atom::value, job_id, attempt);
  }

  // --- Savepoints: the next checkpoint after the request, exported to a directory of its own.

  void on_savepoint(job_entry& j, uint64_t request) {
    auto it = j.savepoints.find(request);
    if (it == j.savepoints.end()) return;  // The caller gave up waiting.
    if (j.stored.info.state != job_state::running || !j.checkpoints) {
      it->second.failure =
          make_error(errc::failed_precondition, "job '" + j.stored.info.id + "' is not running");
      it->second.done = true;
      t_.changed.notify_all();
      return;
    }
    auto& ck = *j.checkpoints;
    if (ck.draining()) {
      it->second.failure = make_error(
          errc::failed_precondition,
          "job '" + j.stored.info.id +
              "' is finishing (a subtask ended its input), so it takes no further checkpoint");
      it->second.done = true;
      t_.changed.notify_all();
      return;
    }
    it->second.min_id = ck.in_progress() != 0 ? ck.in_progress() + 1 : ck.next_id();
    ck.request(now_us());
  }

  /// Checkpoint `id` completed: writes the savepoints waiting for it and, for a stop, cancels
  /// the job (by a message to itself: this runs inside the checkpoint coordinator).
  void complete_savepoints(job_entry& j, int64_t id) {
    std::string path;
    std::optional<error> failure;
    bool stop = false;
    for (auto& [n, w] : j.savepoints) {
      if (w.done || w.min_id == 0 || id < w.min_id) continue;
      if (path.empty() && !failure) {
        auto target = t_.savepoint_root / (j.stored.info.id + "-" + std::to_string(id));
        auto st = checkpoint_storage(j.checkpoint_dir).export_checkpoint(id, target);
        if (st) {
          path = target.string();
          j.stored.info.last_savepoint = path;
          spdlog::info("coordinator: job {}: savepoint {} written to {}", j.stored.info.id, id,
                       path);
        } else {
          failure = st.err();
          spdlog::warn("coordinator: job {}: savepoint {} failed: {}", j.stored.info.id, id,
                       st.err().message);
        }
      }
      w.done = true;
      w.id = id;
      w.path = path;
      w.failure = failure;
      stop = stop || (w.stop && !failure);
    }
    if (stop) {
      j.stored.info.state = job_state::cancelling;
      send(this, local_request{j.stored.info.id, true, 0});
    }
    t_.changed.notify_all();
  }

  // --- Deployment: deploy on every worker, then wire every subtask, then start them all. ---

  void deploy(job_entry& j) {
    if (!starting(j.stored.info.state) || j.deploying_attempt) return;
    j.deploying_attempt = true;
    const std::string& job_id = j.stored.info.id;
    std::map<std::string, std::vector<subtask_ref>> by_worker;
    for (size_t i = 0; i < j.refs.size(); ++i) {
      by_worker[j.stored.info.subtasks[i].worker_id].push_back(j.refs[i]);
    }
    std::vector<std::string> peers;
    for (const auto& [wid, refs] : by_worker) peers.push_back(t_.workers.at(wid).info.address);
    j.actors.assign(j.plan->nodes.size(), {});
    for (size_t n = 0; n < j.plan->nodes.size(); ++n) {
      j.actors[n].resize(j.plan->nodes[n].parallelism);
    }
    j.subtask_of.clear();
    j.finished_subtasks = 0;
    j.pending_replies = by_worker.size();
    std::string graph = j.stored.graph.SerializeAsString();
    deploy_settings settings{j.attempt, j.checkpoint_dir.string(), j.restore_dir.string(),
                             j.restore_id};
    for (auto& [wid, refs] : by_worker) {
      const auto& w = t_.workers.at(wid);
      if (!w.info.alive) {
        on_job_failure(j, "worker '" + wid + "' was lost before the job was deployed");
        return;
      }
      j.deploying[wid] = j.attempt;
      request(w.handle, t_.deploy_timeout, deploy_atom::value, job_id, graph, peers, refs, settings,
              caf::actor_cast<caf::actor>(this))
          .then(
              [this, job_id, wid = wid, refs = refs,
               attempt = j.attempt](std::vector<caf::actor>& actors) {
                on_deployed(job_id, attempt, wid, refs, actors);
              },
              [this, job_id, wid = wid, attempt = j.attempt](caf::error& err) {
                on_deploy_failed(job_id, attempt, wid, err);
              });
    }
  }

  void on_deployed(const std::string& job_id, uint32_t attempt, const std::string& wid,
                   const std::vector<subtask_ref>& refs, std::vector<caf::actor>& actors) {
    lock_t lock(t_.mutex);
    auto it = t_.jobs.find(job_id);
    if (it == t_.jobs.end()) return;
    job_entry& j = it->second;
    auto w = t_.workers.find(wid);
    forget_deploy(j, wid, attempt);
    if (attempt != j.attempt) {
      // An earlier attempt's answer: that attempt failed meanwhile; stop what it spawned.
      if (w != t_.workers.end() && w->second.info.alive) {
        send(w->second.handle, cancel_atom::value, job_id, attempt);
      }
      check_cancelled(j);
      t_.changed.notify_all();
      return;
    }
    if (!starting(j.stored.info.state)) {
      // Cancelled or failed meanwhile: stop what was just spawned.
      if (w != t_.workers.end() && w->second.info.alive) {
        send(w->second.handle, cancel_atom::value, job_id, attempt);
      }
      check_cancelled(j);
      t_.changed.notify_all();
      return;
    }
    if (actors.size() != refs.size()) {
      on_job_failure(j, "worker '" + wid + "' answered the deploy with " +
                            std::to_string(actors.size()) + " subtasks, expected " +
                            std::to_string(refs.size()));
      return;
    }
    for (size_t i = 0; i < refs.size(); ++i) {
      j.actors[refs[i].node][refs[i].subtask] = actors[i];
      size_t idx = index_of(*j.plan, refs[i]);
      j.subtask_of[actors[i].address()] = idx;
      j.stored.info.subtasks[idx].state = "deployed";
      monitor(actors[i]);
    }
    if (--j.pending_replies == 0) wire(j);
    t_.changed.notify_all();
  }

  void on_deploy_failed(const std::string& job_id, uint32_t attempt, const std::string& wid,
                        const caf::error& err) {
    lock_t lock(t_.mutex);
    auto it = t_.jobs.find(job_id);
    if (it == t_.jobs.end()) return;
    job_entry& j = it->second;
    forget_deploy(j, wid, attempt);
    if (auto w = t_.workers.find(wid); w != t_.workers.end()) {
      // Nothing runs there; a late spawn after a timeout is stopped by the cancel.
      auto r = w->second.slots_by_job.find(job_id);
      if (r != w->second.slots_by_job.end() && r->second.attempt == attempt) {
        w->second.slots_by_job.erase(r);
        refresh_free_slots(w->second);
      }
      if (w->second.info.alive) send(w->second.handle, cancel_atom::value, job_id, attempt);
    }
    if (attempt != j.attempt) return;
    if (starting(j.stored.info.state)) {
      on_job_failure(j, "deploying on worker '" + wid + "' failed: " + error_text(err));
    } else {
      check_cancelled(j);
    }
    t_.changed.notify_all();
  }

  /// The deploy of `attempt` on worker `wid` answered (or can no longer answer).
  static void forget_deploy(job_entry& j, const std::string& wid, uint32_t attempt) {
    auto d = j.deploying.find(wid);
    if (d != j.deploying.end() && d->second == attempt) j.deploying.erase(d);
  }

  void wire(job_entry& j) {
    auto wiring = compute_wiring(*j.plan, j.actors);
    j.pending_replies = j.refs.size();
    std::string job_id = j.stored.info.id;
    uint32_t attempt = j.attempt;
    for (size_t n = 0; n < wiring.size(); ++n) {
      for (size_t s = 0; s < wiring[n].size(); ++s) {
        request(j.actors[n][s], t_.deploy_timeout, wire_atom::value, std::move(wiring[n][s]))
            .then([this, job_id, attempt](caf::atom_value) { on_wired(job_id, attempt); },
                  [this, job_id, attempt, n, s](caf::error& err) {
                    lock_t lock(t_.mutex);
                    auto it = t_.jobs.find(job_id);
                    if (it == t_.jobs.end() || it->second.attempt != attempt) return;
                    if (starting(it->second.stored.info.state)) {
                      on_job_failure(it->second, "wiring node '" + it->second.plan->nodes[n].id +
                                                     "' subtask " + std::to_string(s) +
                                                     " failed: " + error_text(err));
                    }
                  });
      }
    }
  }

  void on_wired(const std::string& job_id, uint32_t attempt) {
    lock_t lock(t_.mutex);
    auto it = t_.jobs.find(job_id);
    if (it == t_.jobs.end()) return;
    job_entry& j = it->second;
    if (j.attempt != attempt || !starting(j.stored.info.state) || --j.pending_replies != 0) return;
    j.started = clock::now();
    for (const auto& node : j.actors) {
      for (const auto& a : node) send(a, start_atom::value);
    }
    for (auto& sub : j.stored.info.subtasks) sub.state = "running";
    bool restarted = j.stored.info.state == job_state::restarting;
    j.stored.info.state = job_state::running;
    if (!j.checkpoint_dir.empty()) start_checkpoints(j);
    if (j.drain_requested) send_end_input(j);  // A restarted attempt of a drained job ends too.
    if (restarted) {
      spdlog::info("coordinator: job {} running again (restart {}, from checkpoint {})", job_id,
                   j.stored.info.restarts, j.restore_id);
    } else {
      spdlog::info("coordinator: job {} running ({} subtasks)", job_id, j.refs.size());
    }
    persist(t_, j);
    t_.changed.notify_all();
  }

  // --- Failures and recovery (called with the lock held). ---

  /// A subtask or worker of an active job failed. A job with checkpoints and restart attempts
  /// left stops every subtask and restarts from its newest complete checkpoint after a
  /// backoff; any other job fails.
  void on_job_failure(job_entry& j, const std::string& message) {
    auto& info = j.stored.info;
    if (!active(info.state)) return;
    if (info.state == job_state::restarting && !j.deploying_attempt) return;  // Already stopping.
    if (!j.plan || j.checkpoint_dir.empty()) {
      fail_job(j, message);
      return;
    }
    if (j.stored.info.restart_attempts >= j.plan->restart_max_attempts) {
      fail_job(j, message + " (gave up after " + std::to_string(j.stored.info.restart_attempts) +
                      " restarts without a completed checkpoint)");
      return;
    }
    ++j.stored.info.restart_attempts;
    ++info.restarts;
    job_metrics_of(j).restarts->Increment();
    j.restart_cause = message;
    info.last_failure = message;
    info.state = job_state::restarting;
    spdlog::warn("coordinator: job {} failed ({}); restarting from checkpoint (attempt {} of {})",
                 info.id, message, j.stored.info.restart_attempts, j.plan->restart_max_attempts);
    cancel_on_workers(j);
    retire(j);
    for (auto& sub : info.subtasks) {
      if (sub.state != "lost" && sub.state != "failed") sub.state = "stopping";
    }
    schedule_restart(j);
    persist(t_, j);
    t_.changed.notify_all();
  }

  /// Starts the next attempt's backoff: 2^(failures - 1) times the graph's backoff, at most its
  /// maximum.
  void schedule_restart(job_entry& j) {
    ++j.attempt;
    j.deploying_attempt = false;
    int64_t delay = j.plan->restart_backoff_us;
    for (uint32_t i = 1;
         i < j.stored.info.restart_attempts && delay < j.plan->restart_max_backoff_us; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, j.plan->restart_max_backoff_us);
    delayed_send(this, std::chrono::microseconds(delay), restart_atom::value, j.stored.info.id,
                 j.attempt);
  }

  void on_restart(const std::string& job_id, uint32_t attempt) {
    lock_t lock(t_.mutex);
    auto it = t_.jobs.find(job_id);
    if (it == t_.jobs.end()) return;
    job_entry& j = it->second;
    auto& info = j.stored.info;
    if (j.attempt != attempt || info.state != job_state::restarting || j.deploying_attempt) return;
    if (holds_slots(t_, job_id)) {
      // The stopped subtasks have not all released their slots yet.
      delayed_send(this, std::chrono::milliseconds(20), restart_atom::value, job_id, attempt);
      return;
    }
    auto placement = place(t_, *j.plan);
    if (!placement) {
      if (j.stored.info.restart_attempts >= j.plan->restart_max_attempts) {
        fail_job(j, "cannot restart: " + placement.err().message);
        return;
      }
      ++j.stored.info.restart_attempts;
      info.last_failure = j.restart_cause + "; not restarted yet: " + placement.err().message;
      spdlog::warn("coordinator: job {}: cannot restart yet: {}", info.id, placement.err().message);
      schedule_restart(j);
      persist(t_, j);
      t_.changed.notify_all();
      return;
    }
    // Old attempts' reservations on workers that were lost are void.
    for (auto& [wid, w] : t_.workers) {
      if (!w.info.alive && w.slots_by_job.erase(job_id) != 0) refresh_free_slots(w);
    }
    reserve(j, *placement);
    info.last_failure = j.restart_cause;
    // The newest own checkpoint, else the savepoint the job started from, else nothing.
    auto done = checkpoint_storage(j.checkpoint_dir).completed();
    if (!done.empty()) {
      j.restore_dir = j.checkpoint_dir;
      j.restore_id = done.back();
      info.last_checkpoint = j.restore_id;
    } else if (!info.from_savepoint.empty()) {
      auto saved = checkpoint_storage(info.from_savepoint).completed();
      j.restore_dir = info.from_savepoint;
      j.restore_id = saved.empty() ? 0 : saved.back();
    } else {
      j.restore_id = 0;
    }
    j.summary = empty_summary(*j.plan);
    spdlog::info("coordinator: job {}: restoring from checkpoint {} (restart {})", info.id,
                 j.restore_id, info.restarts);
    deploy(j);
    t_.changed.notify_all();
  }

  void fail_job(job_entry& j, const std::string& message) {
    auto& info = j.stored.info;
    if (!active(info.state)) return;
    info.state = job_state::failed;
    info.error = message;
    retire(j);
    j.metrics.reset();
    for (auto& sub : info.subtasks) {
      if (sub.state != "finished" && sub.state != "failed" && sub.state != "lost") {
        sub.state = "cancelled";
      }
    }
    spdlog::warn("coordinator: job {} failed: {}", info.id, message);
    cancel_on_workers(j);
    persist(t_, j);
    t_.changed.notify_all();
  }

  /// Tells every live worker holding slots of the job to stop its subtasks. Workers still
  /// answering a deploy are told when they answer (on_deployed).
  void cancel_on_workers(job_entry& j) {
    const auto& id = j.stored.info.id;
    for (const auto& [wid, w] : t_.workers) {
      auto r = w.slots_by_job.find(id);
      if (w.info.alive && r != w.slots_by_job.end() && j.deploying.count(wid) == 0) {
        send(w.handle, cancel_atom::value, id, r->second.attempt);
      }
    }
  }

  void lose_worker(const std::string& id, const std::string& reason, bool unexpected = true) {
    auto& w = t_.workers.at(id);
    w.info.alive = false;
    if (unexpected) {
      spdlog::warn("coordinator: worker {} lost: {}", id, reason);
    } else {
      spdlog::info("coordinator: worker {} left: {}", id, reason);
    }
    // The slots stay reserved: a worker that was only slow (and comes back) may still run
    // subtasks until it has handled the cancel below and released them. A worker that
    // registers again is a new process and starts empty.
    for (const auto& [job_id, r] : w.slots_by_job) {
      auto it = t_.jobs.find(job_id);
      if (it == t_.jobs.end()) continue;
      job_entry& j = it->second;
      j.deploying.erase(id);
      for (auto& sub : j.stored.info.subtasks) {
        if (sub.worker_id == id && sub.state != "finished") sub.state = "lost";
      }
      // In case the worker is only slow, not gone: it must not keep running the job.
      send(w.handle, cancel_atom::value, job_id, r.attempt);
      if (active(j.stored.info.state)) {
        on_job_failure(j, "worker '" + id + "' lost (" + reason + ")");
      } else {
        check_cancelled(j);
        persist(t_, j);
      }
    }
    t_.changed.notify_all();
  }

  /// A job's subtasks stopped or the job reached an end state: forget its subtask actors and
  /// checkpoints (late reports and acknowledgements are ignored).
  static void retire(job_entry& j) {
    for (auto& [n, w] : j.savepoints) {
      if (w.done) continue;
      w.done = true;
      w.failure = make_error(errc::failed_precondition,
                             "job '" + j.stored.info.id +
                                 "' stopped running (it failed, restarted or was cancelled) "
                                 "before the savepoint completed");
    }
    j.actors.clear();
    j.subtask_of.clear();
    j.deploying_attempt = false;
    if (j.checkpoints) j.checkpoints_failed_before += j.checkpoints->summary().failed;
    j.checkpoints.reset();
  }

  void check_cancelled(job_entry& j) {
    if (j.stored.info.state != job_state::cancelling || holds_slots(t_, j.stored.info.id)) return;
    j.stored.info.state = job_state::cancelled;
    retire(j);
    j.metrics.reset();
    for (auto& sub : j.stored.info.subtasks) {
      if (sub.state != "finished" && sub.state != "lost") sub.state = "cancelled";
    }
    spdlog::info("coordinator: job {} cancelled", j.stored.info.id);
    persist(t_, j);
    t_.changed.notify_all();
  }

  std::pair<job_entry*, size_t> find_subtask(const caf::actor_addr& addr) {
    if (!addr) return {nullptr, 0};
    for (auto& [id, j] : t_.jobs) {
      auto it = j.subtask_of.find(addr);
      if (it != j.subtask_of.end()) return {&j, it->second};
    }
    return {nullptr, 0};
  }

  table& t_;
  cluster_gauges gauges_;
};

}  // namespace

result<std::unique_ptr<cluster_coordinator>> cluster_coordinator::start(
    coordinator_options opts, const operator_registry& registry) {
  if (opts.heartbeat_timeout.count() <= 0) {
    return make_error(errc::invalid_argument, "heartbeat timeout: must be positive");
  }
  if (opts.deploy_timeout.count() <= 0) {
    return make_error(errc::invalid_argument, "deploy timeout: must be positive");
  }
  std::unique_ptr<cluster_coordinator> c(new cluster_coordinator(registry));
  c->table_.heartbeat_timeout = opts.heartbeat_timeout;
  c->table_.checkpoint_root = opts.checkpoint_dir;
  c->table_.savepoint_root = !opts.savepoint_dir.empty()   ? opts.savepoint_dir
                             : opts.checkpoint_dir.empty() ? std::filesystem::path()
                                                           : opts.checkpoint_dir / "savepoints";
  c->table_.deploy_timeout = opts.deploy_timeout;
  if (!opts.data_dir.empty()) {
    auto store = job_store::open(opts.data_dir);
    if (!store) return store.err();
    c->store_errors_ = store->load_errors();
    c->table_.store.emplace(std::move(*store));
    for (const stored_job* sj : c->table_.store->jobs()) {
      job_entry j;
      j.stored = *sj;
      auto& info = j.stored.info;
      if (!ended(info.state)) {
        c->recover(j, opts.checkpoint_dir);
        if (auto st = c->table_.store->update(info); !st) c->store_errors_.push_back(st.err());
      }
      c->table_.job_order.push_back(info.id);
      c->table_.jobs.emplace(info.id, std::move(j));
    }
  }
  auto cfg = std::make_unique<caf::actor_system_config>();
  cfg->load<caf::io::middleman>();
  if (opts.tls.enabled()) VIGIL_TRY(enable_cluster_tls(*cfg, opts.tls));
  c->tls_ = opts.tls.enabled();
  configure_scheduler(*cfg, opts.threads != 0 ? opts.threads : size_t{2});
  add_message_types(*cfg);
  c->cfg_ = std::move(cfg);
  c->sys_ = std::make_unique<caf::actor_system>(*c->cfg_);
  c->actor_ = c->sys_->spawn<coordinator_actor>(std::ref(c->table_));
  auto port = c->tls_ ? caf::openssl::publish(c->actor_, opts.cluster_listen.port,
                                              opts.cluster_listen.host.c_str(), true)
                      : c->sys_->middleman().publish(c->actor_, opts.cluster_listen.port,
                                                     opts.cluster_listen.host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(c->actor_, caf::exit_reason::user_shutdown);
    return make_error(errc::io_error, "cannot listen for workers on " +
                                          opts.cluster_listen.to_string() + ": " +
                                          c->sys_->render(port.error()));
  }
  c->cluster_port_ = *port;
  return c;
}

void cluster_coordinator::recover(job_entry& j, const std::filesystem::path& checkpoint_root) {
  auto& info = j.stored.info;
  for (auto& sub : info.subtasks) {
    if (sub.state != "finished") sub.state = "stopped";
  }
  if (info.state == job_state::cancelling) {
    info.state = job_state::cancelled;
    return;
  }
  std::string why = "the coordinator restarted while the job was running; its subtasks stopped";
  auto planned = plan_job(j.stored.graph, registry_);
  if (planned && planned->checkpoint_interval_us > 0 && !checkpoint_root.empty()) {
    planned->job_id = info.id;
    j.plan = std::make_shared<const job_plan>(std::move(*planned));
    j.summary = empty_summary(*j.plan);
    info.subtasks.clear();
    for (uint32_t n = 0; n < j.plan->nodes.size(); ++n) {
      for (uint32_t s = 0; s < j.plan->nodes[n].parallelism; ++s) {
        info.subtasks.push_back({j.plan->nodes[n].id, s, "", "stopped"});
        j.refs.push_back({n, s});
      }
    }
    j.checkpoint_dir = checkpoint_root / info.id;
    info.state = job_state::restarting;
    ++info.restarts;
    info.last_failure = why;
    j.restart_cause = why;
    return;  // The coordinator actor schedules the restart when it starts.
  }
  info.state = job_state::failed;
  if (!planned) {
    info.error = why + "; its graph no longer plans: " + planned.err().message;
  } else if (planned->checkpoint_interval_us == 0) {
    info.error = why + " (the job takes no checkpoints, so it cannot resume)";
  } else {
    info.error = why + " (this coordinator has no --checkpoint-dir to resume it from)";
  }
}

cluster_coordinator::~cluster_coordinator() {
  if (!actor_) return;
  if (tls_) {
    auto unpublish = caf::make_function_view(sys_->openssl_manager().actor_handle());
    (void)unpublish(caf::unpublish_atom::value, caf::actor_addr(actor_.address()), cluster_port_);
  } else {
    (void)sys_->middleman().unpublish(actor_, cluster_port_);
  }
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  actor_ = nullptr;
}

result<job_info> cluster_coordinator::submit(const v1::JobGraph& graph,
                                             const std::string& from_savepoint,
                                             const std::string& owner) {
  auto planned = plan_job(graph, registry_);
  if (!planned) return planned.err();
  auto plan = std::make_shared<job_plan>(std::move(*planned));
  int64_t savepoint_id = 0;
  std::filesystem::path savepoint_dir;
  if (!from_savepoint.empty()) {
    // Only the cluster's own savepoints and checkpoints: an API caller must not make the
    // coordinator read (or probe) other directories.
    // Checked and then used in its resolved form, so a symbolic link swapped afterwards
    // cannot redirect the restore.
    std::error_code canonical_ec;
    savepoint_dir = std::filesystem::weakly_canonical(from_savepoint, canonical_ec);
    auto inside = [&](const std::filesystem::path& root) {
      if (root.empty() || canonical_ec) return false;
      std::error_code ec;
      const auto rel =
          savepoint_dir.lexically_relative(std::filesystem::weakly_canonical(root, ec));
      return !ec && !rel.empty() && *rel.begin() != "..";
    };
    if (!inside(table_.savepoint_root) && !inside(table_.checkpoint_root)) {
      return make_error(errc::invalid_argument,
                        "from_savepoint: '" + from_savepoint +
                            "' is not under the coordinator's savepoint directory (" +
                            table_.savepoint_root.string() + ") or checkpoint directory");
    }
    checkpoint_storage saved(savepoint_dir);
    auto done = saved.completed();
    if (done.empty()) {
      return make_error(errc::invalid_argument,
                        "from_savepoint: no complete savepoint in '" + from_savepoint + "'");
    }
    savepoint_id = done.back();
    auto shape = saved.shape(savepoint_id);
    if (!shape) return with_context("from_savepoint: ", shape.err());
    if (shape->max_parallelism != 0 && shape->max_parallelism != plan->max_parallelism) {
      return make_error(errc::invalid_argument, "from_savepoint: the savepoint has " +
                                                    std::to_string(shape->max_parallelism) +
                                                    " key groups (max_parallelism), the graph " +
                                                    std::to_string(plan->max_parallelism) +
                                                    "; they must be equal");
    }
  }
  if (plan->checkpoint_interval_us > 0 && table_.checkpoint_root.empty()) {
    return make_error(errc::invalid_argument,
                      "checkpoints.interval_ms: job '" + graph.name() +
                          "' asks for checkpoints but the coordinator has no checkpoint storage "
                          "(start it with --checkpoint-dir)");
  }
  std::unique_lock lock(table_.mutex);
  // A job's name identifies its Kafka sinks' transactional ids, its lake commits and its
  // metrics: two active jobs of one name would fence each other's producers.
  for (const auto& [id, other] : table_.jobs) {
    if (other.stored.info.name == graph.name() &&
        (active(other.stored.info.state) || other.stored.info.state == job_state::cancelling)) {
      return make_error(errc::failed_precondition,
                        "a job named '" + graph.name() + "' is already active (" + id +
                            "); job names identify Kafka sinks, lake commits and metrics: "
                            "cancel it first or give the graph another name");
    }
  }
  auto placement = place(table_, *plan);
  if (!placement) return placement.err();
  job_entry j;
  job_info& info = j.stored.info;
  info.id = new_job_id(graph.name(), table_);
  plan->job_id = info.id;
  info.name = graph.name();
  info.owner = owner;
  info.state = job_state::pending;
  info.submitted_at_us = unix_now_us();
  for (uint32_t n = 0; n < plan->nodes.size(); ++n) {
    for (uint32_t s = 0; s < plan->nodes[n].parallelism; ++s) {
      info.subtasks.push_back({plan->nodes[n].id, s, "", "deploying"});
      j.refs.push_back({n, s});
    }
  }
  j.stored.graph = graph;
  j.plan = plan;
  j.summary = empty_summary(*plan);
  if (plan->checkpoint_interval_us > 0) j.checkpoint_dir = table_.checkpoint_root / info.id;
  if (savepoint_id > 0) {
    info.from_savepoint = from_savepoint;
    j.restore_dir = savepoint_dir;
    j.restore_id = savepoint_id;
  }
  for (size_t i = 0; i < placement->size(); ++i) {
    info.subtasks[i].worker_id = (*placement)[i]->info.id;
  }
  if (table_.store) {
    if (auto st = table_.store->put(info, graph); !st) return st.err();
  }
  reserve(j, *placement);
  job_info out = info;
  table_.job_order.push_back(info.id);
  table_.jobs.emplace(info.id, std::move(j));
  table_.changed.notify_all();
  lock.unlock();
  spdlog::info("coordinator: job {} ('{}') accepted, {} subtasks", out.id, out.name,
               out.subtasks.size());
  caf::anon_send(actor_, local_request{out.id, false});
  return out;
}

result<job_info> cluster_coordinator::get(std::string_view job_id) {
  std::lock_guard lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end()) {
    return make_error(errc::not_found, "no job '" + std::string(job_id) + "'");
  }
  return it->second.stored.info;
}

std::vector<job_info> cluster_coordinator::list() {
  std::lock_guard lock(table_.mutex);
  std::vector<job_info> out;
  for (const auto& id : table_.job_order) out.push_back(table_.jobs.at(id).stored.info);
  return out;
}

result<job_info> cluster_coordinator::cancel(std::string_view job_id) {
  std::unique_lock lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end()) {
    return make_error(errc::not_found, "no job '" + std::string(job_id) + "'");
  }
  auto& info = it->second.stored.info;
  if (!active(info.state)) return info;
  info.state = job_state::cancelling;
  if (table_.store) {
    if (auto st = table_.store->update(info); !st)
      spdlog::error("coordinator: {}", st.err().message);
  }
  job_info out = info;
  table_.changed.notify_all();
  lock.unlock();
  caf::anon_send(actor_, local_request{out.id, true});
  return out;
}

status cluster_coordinator::end_input(std::string_view job_id) {
  std::unique_lock lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end()) {
    return make_error(errc::not_found, "no job '" + std::string(job_id) + "'");
  }
  job_entry& j = it->second;
  const job_state state = j.stored.info.state;
  if (state != job_state::running && state != job_state::restarting &&
      state != job_state::pending) {
    return make_error(errc::failed_precondition, "job '" + it->first + "' is not running");
  }
  j.drain_requested = true;
  if (state == job_state::running) send_end_input(j);  // Otherwise once the attempt runs.
  return {};
}

result<savepoint_info> cluster_coordinator::savepoint(std::string_view job_id, bool stop) {
  std::unique_lock lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end()) {
    return make_error(errc::not_found, "no job '" + std::string(job_id) + "'");
  }
  job_entry& j = it->second;
  std::string id = it->first;
  if (j.checkpoint_dir.empty() || table_.savepoint_root.empty()) {
    return make_error(errc::failed_precondition,
                      "job '" + id +
                          "' takes no checkpoints (checkpoints.interval_ms), so it cannot take a "
                          "savepoint");
  }
  if (j.stored.info.state != job_state::running) {
    return make_error(errc::failed_precondition, "job '" + id + "' is not running");
  }
  uint64_t request = ++table_.savepoint_requests;
  j.savepoints[request].stop = stop;
  caf::anon_send(actor_, local_request{id, false, request});
  // A checkpoint in progress may have to finish (or time out) first, then the savepoint's own.
  auto timeout =
      std::chrono::microseconds(2 * j.plan->checkpoint_timeout_us) + std::chrono::seconds(10);
  table_.changed.wait_for(lock, timeout, [&] { return j.savepoints.at(request).done; });
  auto w = std::move(j.savepoints.at(request));
  j.savepoints.erase(request);
  if (!w.done) {
    return make_error(errc::internal, "savepoint of job '" + id + "': no checkpoint completed in " +
                                          std::to_string(timeout.count() / 1000000) + " s");
  }
  if (w.failure) return *w.failure;
  return savepoint_info{w.path, w.id, j.stored.info};
}

std::vector<worker_info> cluster_coordinator::workers() {
  std::lock_guard lock(table_.mutex);
  std::vector<worker_info> out;
  for (const auto& [id, w] : table_.workers) out.push_back(w.info);
  return out;
}

result<job_info> cluster_coordinator::wait(std::string_view job_id,
                                           std::chrono::milliseconds timeout) {
  std::unique_lock lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end()) {
    return make_error(errc::not_found, "no job '" + std::string(job_id) + "'");
  }
  std::string id = it->first;
  table_.changed.wait_for(lock, timeout, [&] {
    return ended(table_.jobs.at(id).stored.info.state) && !holds_slots(table_, id);
  });
  return table_.jobs.at(id).stored.info;
}

size_t cluster_coordinator::wait_for_workers(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(table_.mutex);
  auto alive = [&] {
    return static_cast<size_t>(std::count_if(table_.workers.begin(), table_.workers.end(),
                                             [](const auto& w) { return w.second.info.alive; }));
  };
  table_.changed.wait_for(lock, timeout, [&] { return alive() >= n; });
  return alive();
}

result<job_summary> cluster_coordinator::summary(std::string_view job_id) {
  std::lock_guard lock(table_.mutex);
  auto it = table_.jobs.find(job_id);
  if (it == table_.jobs.end() || !it->second.plan) {
    return make_error(errc::not_found, "no summary for job '" + std::string(job_id) + "'");
  }
  return it->second.summary;
}

}  // namespace vigil
