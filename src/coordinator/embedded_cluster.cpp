#include "coordinator/embedded_cluster.hpp"

namespace vigil {

result<std::unique_ptr<embedded_cluster>> embedded_cluster::start(
    const embedded_cluster_options& opts, const operator_registry& registry) {
  if (opts.workers == 0) return make_error(errc::invalid_argument, "workers: at least 1");
  std::unique_ptr<embedded_cluster> c(new embedded_cluster());
  coordinator_options co;
  co.cluster_listen = {"127.0.0.1", 0};
  co.checkpoint_dir = opts.checkpoint_dir;
  auto coordinator = cluster_coordinator::start(co, registry);
  if (!coordinator) return coordinator.err();
  c->coordinator_ = std::move(*coordinator);
  for (size_t i = 0; i < opts.workers; ++i) {
    worker_options wo;
    wo.id = "worker-" + std::to_string(i + 1);
    wo.coordinator = {"127.0.0.1", c->coordinator_->cluster_port()};
    wo.listen = {"127.0.0.1", 0};
    wo.slots = opts.slots_per_worker;
    wo.state_dir = opts.state_dir / wo.id;
    wo.threads = opts.threads_per_worker;
    auto w = worker_node::start(wo, registry);
    if (!w) return w.err();
    c->workers_.push_back(std::move(*w));
  }
  size_t alive = c->coordinator_->wait_for_workers(opts.workers, std::chrono::seconds(10));
  if (alive < opts.workers) {
    return make_error(errc::internal, "embedded cluster: only " + std::to_string(alive) + " of " +
                                          std::to_string(opts.workers) +
                                          " workers registered within 10 s");
  }
  return c;
}

result<job_summary> embedded_cluster::run(const v1::JobGraph& graph,
                                          const std::atomic<bool>* cancel) {
  auto job = coordinator_->submit(graph);
  if (!job) return job.err();
  bool cancelled = false;
  for (;;) {
    auto now = coordinator_->wait(job->id, std::chrono::milliseconds(50));
    if (!now) return now.err();
    if (now->state == job_state::finished) break;
    if (now->state == job_state::failed) return make_error(errc::internal, now->error);
    if (now->state == job_state::cancelled) return make_error(errc::internal, "cancelled");
    if (cancel != nullptr && cancel->load() && !cancelled) {
      cancelled = true;
      (void)coordinator_->cancel(job->id);
    }
  }
  return coordinator_->summary(job->id);
}

}  // namespace vigil
