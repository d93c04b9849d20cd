#include "runtime/executor.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <chrono>
#include <filesystem>
#include <map>

#include "runtime/checkpoint_coordinator.hpp"
#include "runtime/messages.hpp"
#include "runtime/subtask_actor.hpp"
#include "runtime/wire.hpp"
#include "runtime/wiring.hpp"

namespace vigil {

job_summary empty_summary(const job_plan& plan) {
  job_summary summary;
  summary.name = plan.name;
  for (const auto& n : plan.nodes) {
    node_summary ns;
    ns.id = n.id;
    ns.op = n.factory->traits().name;
    ns.parallelism = n.parallelism;
    for (const auto& p : n.factory->traits().output_ports) ns.rows_out.emplace_back(p, 0);
    summary.nodes.push_back(std::move(ns));
  }
  return summary;
}

void add_stats(job_summary& summary, const subtask_stats& st) {
  if (st.node >= summary.nodes.size()) return;
  auto& ns = summary.nodes[st.node];
  ns.records_in += st.records_in;
  ns.late_records += st.late_records;
  ns.dropped_records += st.dropped_records;
  for (size_t p = 0; p < st.rows_out.size() && p < ns.rows_out.size(); ++p) {
    ns.rows_out[p].second += st.rows_out[p];
  }
}

result<job_summary> run_local(const job_plan& plan, const run_options& opts) {
  if (plan.checkpoint_interval_us > 0 && opts.checkpoint_dir.empty()) {
    return make_error(errc::invalid_argument,
                      "checkpoints.interval_ms is set but no checkpoint directory was given");
  }
  if (opts.restore_id > 0) {
    auto done = checkpoint_storage(opts.restore_dir).completed();
    if (std::find(done.begin(), done.end(), opts.restore_id) == done.end()) {
      return make_error(
          errc::not_found,
          "no complete checkpoint " + std::to_string(opts.restore_id) + " in " + opts.restore_dir);
    }
  }
  // The subtasks share the plan; the caller keeps it alive until this returns.
  std::shared_ptr<const job_plan> shared_plan(&plan, [](const job_plan*) {});
  auto started = std::chrono::steady_clock::now();
  caf::actor_system_config cfg;
  size_t threads =
      opts.threads != 0 ? opts.threads : std::max(2u, std::thread::hardware_concurrency());
  configure_scheduler(cfg, threads);
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  std::vector<std::vector<caf::actor>> actors(plan.nodes.size());
  std::map<caf::actor_addr, std::string> names;  ///< For reports of subtasks that died.
  size_t total = 0;
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    for (uint32_t s = 0; s < plan.nodes[n].parallelism; ++s) {
      subtask_spec spec;
      spec.node = n;
      spec.subtask = s;
      spec.plan = shared_plan;
      spec.state_dir =
          (std::filesystem::path(opts.state_dir) / (plan.nodes[n].id + "-" + std::to_string(s)))
              .string();
      spec.executor = caf::actor_cast<caf::actor>(self);
      if (plan.checkpoint_interval_us > 0) spec.checkpoint_dir = opts.checkpoint_dir;
      spec.restore_dir = opts.restore_dir;
      spec.restore_id = opts.restore_id;
      actors[n].push_back(sys.spawn<subtask_actor>(std::move(spec)));
      self->monitor(actors[n].back());
      names[actors[n].back().address()] =
          "node '" + plan.nodes[n].id + "' subtask " + std::to_string(s);
      ++total;
    }
  }
  auto stop_all = [&] {
    for (auto& node : actors) {
      for (auto& a : node) self->send_exit(a, caf::exit_reason::user_shutdown);
    }
  };

  std::optional<error> failure;
  auto wiring = compute_wiring(plan, actors);
  for (size_t n = 0; n < plan.nodes.size() && !failure; ++n) {
    for (uint32_t s = 0; s < plan.nodes[n].parallelism && !failure; ++s) {
      self->request(actors[n][s], caf::infinite, wire_atom::value, std::move(wiring[n][s]))
          .receive([](caf::atom_value) {},
                   [&](caf::error& err) {
                     failure = make_error(errc::internal, "");  // Replaced by the failed report.
                   });
    }
  }

  job_summary summary = empty_summary(plan);

  // Periodic aligned checkpoints, when the graph asks for them.
  std::vector<std::vector<bool>> subtask_done(plan.nodes.size());
  for (size_t n = 0; n < plan.nodes.size(); ++n) subtask_done[n].resize(plan.nodes[n].parallelism);
  const std::vector<bool> is_source = plan.source_nodes();
  auto send_to_live = [&](bool sources_only, auto&&... msg) {
    for (size_t n = 0; n < plan.nodes.size(); ++n) {
      if (sources_only && !is_source[n]) continue;
      for (uint32_t s = 0; s < plan.nodes[n].parallelism; ++s) {
        if (!subtask_done[n][s]) self->send(actors[n][s], msg...);
      }
    }
  };
  std::optional<checkpoint_coordinator> checkpoints;
  if (plan.checkpoint_interval_us > 0) {
    checkpoints.emplace(
        plan, std::make_shared<checkpoint_storage>(opts.checkpoint_dir),
        [&](int64_t id) { send_to_live(true, trigger_atom::value, id); },
        [&](int64_t id, const std::string& sources) {
          send_to_live(false, complete_atom::value, id, sources);
        });
    checkpoints->start(operator_context::now_us(), opts.restore_id);
  }
  auto checkpoint_status = [&](status st) {
    if (!st && !failure) failure = st.err();
  };

  size_t finished = 0;
  bool waiting_for_report = failure.has_value();
  if (!failure) {
    for (auto& node : actors) {
      for (auto& a : node) self->send(a, start_atom::value);
    }
  }
  auto poll_interval =
      std::chrono::milliseconds(plan.checkpoint_interval_us > 0
                                    ? std::clamp<int64_t>(plan.checkpoint_interval_us / 4000, 1, 50)
                                    : 50);
  while (finished < total && (!failure || waiting_for_report)) {
    self->receive(
        [&](done_atom, const subtask_stats& st) {
          ++finished;
          add_stats(summary, st);
          if (st.node < subtask_done.size() && st.subtask < subtask_done[st.node].size()) {
            subtask_done[st.node][st.subtask] = true;
            if (checkpoints) {
              checkpoint_status(
                  checkpoints->on_finished(st.node, st.subtask, operator_context::now_us()));
            }
          }
        },
        [&](ack_atom, const checkpoint_ack& ack) {
          if (checkpoints) checkpoint_status(checkpoints->on_ack(ack, operator_context::now_us()));
        },
        [&](decline_atom, int64_t id, size_t node, uint32_t subtask, const std::string& why) {
          if (checkpoints) {
            checkpoint_status(
                checkpoints->on_decline(id, node, subtask, why, operator_context::now_us()));
          }
        },
        [&](failed_atom, size_t node, uint32_t subtask, const std::string& message) {
          failure = make_error(errc::internal, "node '" + plan.nodes[node].id + "' subtask " +
                                                   std::to_string(subtask) + ": " + message);
          waiting_for_report = false;
        },
        [&](caf::down_msg& down) {
          if (down.reason && down.reason != caf::exit_reason::normal && !failure) {
            auto it = names.find(down.source);
            failure = make_error(errc::internal,
                                 (it != names.end() ? it->second : std::string("a subtask")) +
                                     " stopped unexpectedly: " + sys.render(down.reason));
          }
        },
        caf::after(poll_interval) >>
            [&] {
              if (opts.cancel != nullptr && opts.cancel->load() && !failure) {
                failure = make_error(errc::internal, "cancelled");
              }
            });
    if (checkpoints && !failure) checkpoint_status(checkpoints->tick(operator_context::now_us()));
  }
  if (checkpoints) summary.checkpoints = checkpoints->summary();
  if (failure) {
    stop_all();
    return *failure;
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace vigil
