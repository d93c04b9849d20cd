#include "runtime/subtask_driver.hpp"

namespace vigil {

result<std::unique_ptr<subtask_driver>> subtask_driver::make(const operator_factory& factory,
                                                             const operator_plan& plan,
                                                             const options& opts, output& out) {
  std::unique_ptr<subtask_driver> d(new subtask_driver(out));
  auto& ctx = d->ctx_;
  ctx.node_id = opts.node_id;
  ctx.subtask_index = opts.subtask_index;
  ctx.parallelism = opts.parallelism;
  ctx.max_parallelism = opts.max_parallelism;
  ctx.key_groups = key_group_range_of(opts.subtask_index, opts.parallelism, opts.max_parallelism);
  ctx.batch_size = opts.batch_size;
  if (factory.traits().stateful) {
    state_backend::options so;
    so.directory = opts.state_dir;
    auto st = state_backend::open(so);
    if (!st) return with_context("node '" + opts.node_id + "': ", st.err());
    d->state_ = std::move(*st);
    auto timers = timer_service::make(*d->state_);
    if (!timers) return with_context("node '" + opts.node_id + "': ", timers.err());
    d->timers_ = std::move(*timers);
    ctx.state = d->state_.get();
    ctx.timers = d->timers_.get();
  }
  d->op_ = plan.instantiate();
  if (auto st = d->op_->open(ctx); !st) {
    return with_context("node '" + opts.node_id + "': ", st.err());
  }
  return d;
}

void subtask_driver::process(size_t port, const record_batch& batch) {
  op_->process(port, batch, out_);
}

void subtask_driver::advance_watermark(int64_t wm) {
  if (wm <= ctx_.watermark) return;
  ctx_.watermark = wm;
  if (state_) state_->advance_clocks(wm, operator_context::now_us());
  if (timers_) {
    timers_->advance(timer_service::domain::event_time, wm,
                     [this](const timer& t) { op_->on_timer(t, out_); });
  }
  op_->on_watermark(wm, out_);
}

void subtask_driver::advance_processing_time(int64_t now_us) {
  if (!timers_) return;
  timers_->advance(timer_service::domain::processing_time, now_us,
                   [this](const timer& t) { op_->on_timer(t, out_); });
}

poll_result subtask_driver::poll() {
  return op_->poll(out_);
}

status subtask_driver::finish() {
  advance_watermark(max_watermark);
  return op_->close(out_);
}

}  // namespace vigil
