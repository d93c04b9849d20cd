#include "coordinator/proto_convert.hpp"

#include <string>

namespace vigil {

v1::JobState to_proto(job_state state) {
  switch (state) {
    case job_state::pending:
      return v1::JOB_STATE_PENDING;
    case job_state::running:
      return v1::JOB_STATE_RUNNING;
    case job_state::finished:
      return v1::JOB_STATE_FINISHED;
    case job_state::failed:
      return v1::JOB_STATE_FAILED;
    case job_state::cancelling:
      return v1::JOB_STATE_CANCELLING;
    case job_state::cancelled:
      return v1::JOB_STATE_CANCELLED;
    case job_state::restarting:
      return v1::JOB_STATE_RESTARTING;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

v1::Job to_proto(const job_info& job) {
  v1::Job out;
  out.set_id(job.id);
  out.set_name(job.name);
  out.set_state(to_proto(job.state));
  out.set_error(job.error);
  out.set_submitted_at_us(job.submitted_at_us);
  out.set_restarts(job.restarts);
  out.set_restart_attempts(job.restart_attempts);
  out.set_last_checkpoint(job.last_checkpoint);
  out.set_last_failure(job.last_failure);
  out.set_checkpoints_completed(job.checkpoints_completed);
  out.set_checkpoints_failed(job.checkpoints_failed);
  out.set_from_savepoint(job.from_savepoint);
  out.set_last_savepoint(job.last_savepoint);
  out.set_last_checkpoint_failure(job.last_checkpoint_failure);
  out.set_owner(job.owner);
  for (const auto& s : job.subtasks) {
    auto* p = out.add_subtasks();
    p->set_node_id(s.node_id);
    p->set_subtask(s.subtask);
    p->set_worker_id(s.worker_id);
    p->set_state(s.state);
  }
  return out;
}

v1::Worker to_proto(const worker_info& worker) {
  v1::Worker out;
  out.set_id(worker.id);
  out.set_address(worker.address);
  out.set_slots(worker.slots);
  out.set_free_slots(worker.free_slots);
  out.set_last_heartbeat_us(worker.last_heartbeat_us);
  out.set_alive(worker.alive);
  return out;
}

result<job_state> from_proto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return job_state::pending;
    case v1::JOB_STATE_RUNNING:
      return job_state::running;
    case v1::JOB_STATE_FINISHED:
      return job_state::finished;
    case v1::JOB_STATE_FAILED:
      return job_state::failed;
    case v1::JOB_STATE_CANCELLING:
      return job_state::cancelling;
    case v1::JOB_STATE_CANCELLED:
      return job_state::cancelled;
    case v1::JOB_STATE_RESTARTING:
      return job_state::restarting;
    default:
      break;
  }
  return make_error(errc::invalid_argument,
                    "state: unknown job state " + std::to_string(static_cast<int>(state)));
}

result<job_info> from_proto(const v1::Job& job) {
  auto state = from_proto(job.state());
  if (!state) return state.err();
  job_info out;
  out.id = job.id();
  out.name = job.name();
  out.state = *state;
  out.error = job.error();
  out.submitted_at_us = job.submitted_at_us();
  out.restarts = job.restarts();
  out.restart_attempts = job.restart_attempts();
  out.last_checkpoint = job.last_checkpoint();
  out.last_failure = job.last_failure();
  out.checkpoints_completed = job.checkpoints_completed();
  out.checkpoints_failed = job.checkpoints_failed();
  out.from_savepoint = job.from_savepoint();
  out.last_savepoint = job.last_savepoint();
  out.last_checkpoint_failure = job.last_checkpoint_failure();
  out.owner = job.owner();
  out.subtasks.reserve(static_cast<size_t>(job.subtasks_size()));
  for (const auto& s : job.subtasks()) {
    out.subtasks.push_back({s.node_id(), s.subtask(), s.worker_id(), s.state()});
  }
  return out;
}

}  // namespace vigil
