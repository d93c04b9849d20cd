#include "worker/worker.hpp"

#include <spdlog/spdlog.h>

#include <caf/openssl/manager.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>

#include "common/ids.hpp"
#include "graph/planner.hpp"
#include "runtime/messages.hpp"
#include "runtime/subtask_actor.hpp"
#include "runtime/wire.hpp"

namespace vigil {

namespace {

caf::error refuse(std::string message) {
  return caf::make_error(caf::sec::runtime_error, std::move(message));
}

/// A deliberate refusal by a Vigil actor (made by refuse()), not a transport failure.
bool is_refusal(const caf::error& err) {
  return err.category() == caf::atom("system") &&
         err.code() == static_cast<uint8_t>(caf::sec::runtime_error);
}

/// Whether the node's supervisor thread heartbeats for the worker actor. The lock orders the
/// switch against a heartbeat being sent: none goes out after the worker said it leaves.
struct heartbeat_switch {
  std::mutex mutex;
  bool on = false;

  void set(bool value) {
    std::lock_guard lock(mutex);
    on = value;
  }
};

/// The worker's side of one coordinator connection: registers the slots, deploys and cancels
/// subtasks. Quits when the coordinator goes away, stopping every subtask first. It does not
/// send the heartbeats: the node's supervisor thread does while `beating` is on (from
/// registration until the worker drains), so that subtasks busy on every scheduler thread (a
/// restore of large state, a long snapshot) do not make a live worker look lost.
class worker_actor : public caf::event_based_actor {
 public:
  worker_actor(caf::actor_config& cfg, const worker_options& opts,
               const operator_registry& registry, caf::actor coordinator, std::string address,
               std::function<void(error)> refused, heartbeat_switch& beating)
      : caf::event_based_actor(cfg),
        opts_(opts),
        registry_(registry),
        coordinator_(std::move(coordinator)),
        address_(std::move(address)),
        refused_(std::move(refused)),
        beating_(beating) {}

  caf::behavior make_behavior() override {
    monitor(coordinator_);
    set_down_handler([this](caf::down_msg& down) { on_down(down); });
    set_exit_handler([this](caf::exit_msg& msg) {
      {
        // The last heartbeat goes out before `leave`, never after it.
        std::lock_guard lock(beating_.mutex);
        beating_.on = false;
        send(coordinator_, leave_atom::value, opts_.id);  // A stop, not a crash.
      }
      drain_and_quit(msg.reason);
    });
    request(coordinator_, std::chrono::seconds(10), register_atom::value, opts_.id, address_,
            opts_.slots, static_cast<uint32_t>(opts_.heartbeat_interval.count()))
        .then(
            [this](caf::atom_value) {
              spdlog::info("worker {}: registered with the coordinator ({} slots, data at {})",
                           opts_.id, opts_.slots, address_);
              if (opts_.on_registration) opts_.on_registration(true);
              if (!draining_) beating_.set(true);
            },
            [this](caf::error& err) {
              auto text = error_text(err);
              if (!is_refusal(err)) {  // A timeout or a lost connection: the node retries.
                spdlog::warn("worker {}: registration failed: {}", opts_.id, text);
                quit(err);
                return;
              }
              spdlog::error("worker {}: registration refused: {}", opts_.id, text);
              refused_(make_error(errc::invalid_argument, "registration refused: " + text));
              quit(err);
            });
    return {
        [this](deploy_atom, const std::string& job_id, const std::string& graph,
               const std::vector<std::string>& peers, const std::vector<subtask_ref>& refs,
               const deploy_settings& settings,
               const caf::actor& master) -> caf::result<std::vector<caf::actor>> {
          return deploy(job_id, graph, peers, refs, settings, master);
        },
        [this](cancel_atom, const std::string& job_id, uint32_t attempt) {
          cancel(job_id, attempt);
        },
    };
  }

 private:
  struct job {
    std::shared_ptr<const job_plan> plan;
    deploy_settings settings;
    std::filesystem::path dir;
    size_t live = 0;  ///< Subtasks not yet down.
    std::vector<caf::actor> subtasks;
  };

  caf::result<std::vector<caf::actor>> deploy(const std::string& job_id, const std::string& graph,
                                              const std::vector<std::string>& peers,
                                              const std::vector<subtask_ref>& refs,
                                              const deploy_settings& settings,
                                              const caf::actor& master) {
    if (!is_path_safe_id(job_id)) return refuse("deploy: invalid job id '" + job_id + "'");
    if (settings.restore_id < 0) return refuse("deploy " + job_id + ": negative checkpoint id");
    if (settings.restore_id > 0 && settings.restore_dir.empty()) {
      return refuse("deploy " + job_id + ": a checkpoint to restore but no storage to read it");
    }
    if (jobs_.count(job_id) != 0 || dialling_.count(job_id) != 0) {
      return refuse("deploy: job '" + job_id + "' is already here");
    }
    if (draining_) return refuse("deploy " + job_id + ": the worker is stopping");
    v1::JobGraph g;
    if (!g.ParseFromString(graph)) return refuse("deploy " + job_id + ": the graph does not parse");
    auto planned = plan_job(g, registry_);
    if (!planned) return refuse("deploy " + job_id + ": " + planned.err().message);
    planned->job_id = job_id;  // Lineage: operator_context::job_id.
    auto plan = std::make_shared<const job_plan>(std::move(*planned));
    for (const auto& r : refs) {
      if (r.node >= plan->nodes.size() || r.subtask >= plan->nodes[r.node].parallelism) {
        return refuse("deploy " + job_id + ": no subtask " + std::to_string(r.node) + "/" +
                      std::to_string(r.subtask) + " in the graph");
      }
    }
    // One connection per pair of workers: the one with the larger address dials. A worker
    // answers only once its dials are done, and the job master wires nobody before every
    // worker answered, so data between two workers never takes the detour via the
    // coordinator (docs/design/0005-cluster.md).
    std::vector<host_port> dial;
    for (const auto& p : peers) {
      if (p >= address_) continue;
      auto hp = parse_host_port(p, "peer address");
      if (!hp) return refuse("deploy " + job_id + ": " + hp.err().message);
      dial.push_back(*hp);
    }
    if (dial.empty()) return spawn_job(job_id, plan, refs, settings, master);
    auto rp = make_response_promise<std::vector<caf::actor>>();
    auto pending = std::make_shared<size_t>(dial.size());
    auto failed = std::make_shared<bool>(false);
    dialling_[job_id] = false;
    auto finish = [this, rp, job_id, plan, refs, settings, master]() mutable {
      bool cancelled = dialling_[job_id] || draining_;
      dialling_.erase(job_id);
      if (cancelled) {
        rp.deliver(refuse("deploy " + job_id + ": cancelled"));
        send(coordinator_, released_atom::value, opts_.id, job_id, settings.attempt);
        return;
      }
      rp.deliver(spawn_job(job_id, plan, refs, settings, master));
    };
    // With cluster TLS the dial goes through CAF's OpenSSL module (same BASP, TLS sockets).
    auto mm = opts_.tls.enabled() ? system().openssl_manager().actor_handle()
                                  : system().middleman().actor_handle();
    for (const auto& hp : dial) {
      request(mm, std::chrono::seconds(10), caf::connect_atom::value, hp.host, hp.port)
          .then(
              [pending, failed, finish](const caf::node_id&, caf::strong_actor_ptr&,
                                        const std::set<std::string>&) mutable {
                if (--*pending == 0 && !*failed) finish();
              },
              [this, rp, failed, hp, job_id](caf::error& err) mutable {
                if (*failed) return;
                *failed = true;
                dialling_.erase(job_id);
                rp.deliver(refuse("deploy " + job_id + ": cannot reach worker at " +
                                  hp.to_string() + ": " + error_text(err)));
              });
    }
    return rp;
  }

  std::vector<caf::actor> spawn_job(const std::string& job_id, std::shared_ptr<const job_plan> plan,
                                    const std::vector<subtask_ref>& refs,
                                    const deploy_settings& settings, const caf::actor& master) {
    job& j = jobs_[job_id];
    j.plan = std::move(plan);
    j.settings = settings;
    j.dir = opts_.state_dir / job_id;
    for (const auto& r : refs) {
      subtask_spec spec;
      spec.node = r.node;
      spec.subtask = r.subtask;
      spec.plan = j.plan;
      spec.state_dir =
          (j.dir / (j.plan->nodes[r.node].id + "-" + std::to_string(r.subtask))).string();
      spec.executor = master;
      spec.checkpoint_dir = settings.checkpoint_dir;
      spec.restore_dir = settings.restore_dir;
      spec.restore_id = settings.restore_id;
      auto a = spawn<subtask_actor>(std::move(spec));
      monitor(a);
      job_of_[a.address()] = job_id;
      j.subtasks.push_back(a);
      ++j.live;
    }
    spdlog::info("worker {}: job {}: deployed {} subtasks", opts_.id, job_id, refs.size());
    if (j.live == 0) release(job_id);
    return j.subtasks;
  }

  void cancel(const std::string& job_id, uint32_t attempt) {
    if (auto d = dialling_.find(job_id); d != dialling_.end()) {
      d->second = true;  // The deploy answers "cancelled" and releases when its dials end.
      return;
    }
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) {
      // Nothing (left) here.
      send(coordinator_, released_atom::value, opts_.id, job_id, attempt);
      return;
    }
    if (it->second.settings.attempt > attempt) return;  // Meant for an earlier attempt.
    for (const auto& a : it->second.subtasks) send_exit(a, caf::exit_reason::user_shutdown);
  }

  void on_down(const caf::down_msg& down) {
    if (down.source == coordinator_.address()) {
      spdlog::warn("worker {}: lost the coordinator; stopping {} job(s)", opts_.id, jobs_.size());
      drain_and_quit(caf::exit_reason::normal);
      return;
    }
    auto it = job_of_.find(down.source);
    if (it == job_of_.end()) return;
    std::string job_id = std::move(it->second);
    job_of_.erase(it);
    auto j = jobs_.find(job_id);
    if (j != jobs_.end() && --j->second.live == 0) release(job_id);
    if (draining_ && jobs_.empty()) quit(drain_reason_);
  }

  /// Stops every subtask and quits once all are down, so that their state directories are
  /// removed (release) before the worker goes away or reconnects.
  void drain_and_quit(caf::error reason) {
    if (draining_) return;
    draining_ = true;
    beating_.set(false);  // A worker that is leaving must not look alive again.
    drain_reason_ = std::move(reason);
    stop_all_subtasks();
    if (jobs_.empty()) quit(drain_reason_);
  }

  /// Every subtask of the job has stopped: frees its state and tells the coordinator.
  void release(const std::string& job_id) {
    auto j = jobs_.find(job_id);
    if (j == jobs_.end()) return;
    std::error_code ec;
    std::filesystem::remove_all(j->second.dir, ec);
    uint32_t attempt = j->second.settings.attempt;
    jobs_.erase(j);
    send(coordinator_, released_atom::value, opts_.id, job_id, attempt);
  }

  void stop_all_subtasks() {
    for (const auto& [id, j] : jobs_) {
      for (const auto& a : j.subtasks) send_exit(a, caf::exit_reason::user_shutdown);
    }
  }

  /// However the actor ends (also without draining: a handler that threw), heartbeats stop
  /// before the supervisor sees it down.
  void on_exit() override { beating_.set(false); }

  const worker_options& opts_;
  const operator_registry& registry_;
  caf::actor coordinator_;
  std::string address_;
  std::function<void(error)> refused_;
  std::map<std::string, job> jobs_;
  std::map<caf::actor_addr, std::string> job_of_;
  std::map<std::string, bool> dialling_;  ///< Deploys waiting for peer connections: cancelled?
  bool draining_ = false;
  caf::error drain_reason_;
  heartbeat_switch& beating_;  ///< Heartbeats go out (worker_node::supervise()).
};

}  // namespace

worker_node::worker_node(worker_options opts, const operator_registry& registry)
    : opts_(std::move(opts)), registry_(registry) {}

result<std::unique_ptr<worker_node>> worker_node::start(worker_options opts,
                                                        const operator_registry& registry) {
  if (!is_path_safe_id(opts.id)) {
    return make_error(
        errc::invalid_argument,
        "worker id '" + opts.id + "': use 1 to 128 letters, digits, '_', '-' and '.'");
  }
  if (opts.slots == 0 || opts.slots > 4096) {
    return make_error(errc::invalid_argument,
                      "slots: must be 1 to 4096, got " + std::to_string(opts.slots));
  }
  if (opts.coordinator.host.empty() || opts.coordinator.port == 0) {
    return make_error(errc::invalid_argument, "coordinator: a host and a non-zero port required");
  }
  if (opts.state_dir.empty()) {
    return make_error(errc::invalid_argument, "state-dir: required");
  }
  if (opts.heartbeat_interval.count() <= 0) {
    return make_error(errc::invalid_argument, "heartbeat interval: must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.state_dir, ec);
  if (ec) {
    return make_error(errc::io_error, "state-dir " + opts.state_dir.string() + ": " + ec.message());
  }
  std::unique_ptr<worker_node> node(new worker_node(std::move(opts), registry));
  auto cfg = std::make_unique<caf::actor_system_config>();
  cfg->load<caf::io::middleman>();
  if (node->opts_.tls.enabled()) VIGIL_TRY(enable_cluster_tls(*cfg, node->opts_.tls));
  size_t threads = node->opts_.threads != 0 ? node->opts_.threads
                                            : std::max(2u, std::thread::hardware_concurrency());
  configure_scheduler(*cfg, threads);
  add_message_types(*cfg);
  node->cfg_ = std::move(cfg);
  node->sys_ = std::make_unique<caf::actor_system>(*node->cfg_);
  const auto& listen = node->opts_.listen;
  caf::expected<uint16_t> port = caf::sec::runtime_error;
  if (node->opts_.tls.enabled()) {
    // Peers dial this port with TLS: open it through the OpenSSL module's middleman actor.
    caf::scoped_actor self{*node->sys_};
    self->request(node->sys_->openssl_manager().actor_handle(), caf::infinite,
                  caf::open_atom::value, listen.port, listen.host, true)
        .receive([&](uint16_t p) { port = p; }, [&](caf::error& err) { port = std::move(err); });
  } else {
    port = node->sys_->middleman().open(listen.port, listen.host.c_str(), true);
  }
  if (!port) {
    return make_error(errc::io_error, "cannot listen on " + listen.to_string() + ": " +
                                          node->sys_->render(port.error()));
  }
  std::string host = node->opts_.advertise_host.empty() ? listen.host : node->opts_.advertise_host;
  node->address_ = host + ":" + std::to_string(*port);
  node->supervisor_ = std::thread([n = node.get()] { n->supervise(); });
  return node;
}

worker_node::~worker_node() {
  stop();
  if (supervisor_.joinable()) supervisor_.join();
}

void worker_node::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  if (current_) caf::anon_send_exit(current_, caf::exit_reason::user_shutdown);
  changed_.notify_all();
}

status worker_node::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return ended_; });
  if (fatal_) return *fatal_;
  return {};
}

void worker_node::supervise() {
  auto backoff = std::chrono::milliseconds(100);
  bool reported = false;
  std::optional<std::chrono::steady_clock::time_point> duplicate_since;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    auto coordinator =
        opts_.tls.enabled()
            ? caf::openssl::remote_actor(*sys_, opts_.coordinator.host, opts_.coordinator.port)
            : sys_->middleman().remote_actor(opts_.coordinator.host, opts_.coordinator.port);
    if (!coordinator) {
      if (!reported) {
        spdlog::warn("worker {}: cannot reach the coordinator at {}: {}{}; retrying", opts_.id,
                     opts_.coordinator.to_string(), sys_->render(coordinator.error()),
                     opts_.tls.enabled()
                         ? " (cluster TLS is on: does the coordinator use TLS and trust this "
                           "worker's certificate, and this worker its CA?)"
                         : " (if the coordinator uses cluster TLS, start this worker with "
                           "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca)");
        reported = true;
      }
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, backoff, [this] { return stopping_; });
      backoff = std::min(backoff * 2, opts_.max_reconnect_backoff);
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    reported = false;
    auto on_refused = [this, &duplicate_since](error err) {
      // A replacement of a killed worker (same id, as Kubernetes restarts a pod) may register
      // before the coordinator has seen the old connection drop: retry for a while.
      auto now = std::chrono::steady_clock::now();
      bool duplicate = err.message.find("is already registered") != std::string::npos;
      if (duplicate && !duplicate_since) duplicate_since = now;
      if (duplicate && now - *duplicate_since < 10 * opts_.heartbeat_interval) {
        spdlog::info(
            "worker {}: the coordinator still knows a live worker with this id; "
            "retrying",
            opts_.id);
        return;
      }
      std::lock_guard lock(mutex_);
      fatal_ = std::move(err);
      stopping_ = true;
    };
    caf::scoped_actor self{*sys_};
    heartbeat_switch beating;
    auto actor = sys_->spawn<worker_actor>(opts_, registry_, *coordinator, address_, on_refused,
                                           std::ref(beating));
    self->monitor(actor);
    {
      std::lock_guard lock(mutex_);
      current_ = actor;
      if (stopping_) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    }
    // Heartbeats from this thread, not from the worker actor: they go out through the
    // middleman's thread while subtasks occupy every scheduler thread.
    for (bool down = false; !down;) {
      self->receive([&](caf::down_msg&) { down = true; },
                    caf::after(opts_.heartbeat_interval) >>
                        [&] {
                          std::lock_guard lock(beating.mutex);
                          if (beating.on) {
                            // As the worker actor, which the coordinator knows; urgent, ahead
                            // of the job traffic in the coordinator's mailbox.
                            caf::send_as<caf::message_priority::high>(
                                actor, *coordinator, heartbeat_atom::value, opts_.id);
                          }
                        });
    }
    if (opts_.on_registration) opts_.on_registration(false);
    std::unique_lock lock(mutex_);
    current_ = nullptr;
    if (duplicate_since) {
      changed_.wait_for(lock, opts_.heartbeat_interval, [this] { return stopping_; });
    }
  }
  std::lock_guard lock(mutex_);
  ended_ = true;
  changed_.notify_all();
}

}  // namespace vigil
