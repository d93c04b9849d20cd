// Recovery benchmark of vigil-bench: how long a cluster job's output stops after a worker dies.
#pragma once

#include <string>

namespace vigil::bench {

/// Name of the benchmark run by run_recovery_time().
inline constexpr const char* recovery_time_name = "recovery.time";

/// recovery.time: starts vigil-coordinator (with --checkpoint-dir) and two vigil-worker
/// processes (found next to this binary's directory: <build>/vigil-coordinator,
/// <build>/vigil-worker, <build>/tools/vigilctl), submits with vigilctl an endless
/// rate-limited generator → key_by → 200 ms tumbling count → lake_sink job with a checkpoint
/// every 200 ms (eight subtasks on the workers' eight slots, so a restart needs the replacement
/// worker), then `kills` times, after 2 s of undisturbed running: SIGKILLs the worker hosting the
/// sink's first subtask, reaps it and at once starts a replacement worker process with the same
/// id (started again after 100 ms if it exits, e.g. because the coordinator refused its
/// registration before it noticed the old process's dropped connection: a pod restart), and
/// measures the time from the SIGKILL to the first Delta commit of an epoch (checkpoint id) above
/// every checkpoint that existed at the kill, i.e. the first output the restarted job produced
/// and committed after its restore. Prints one JSON line; returns 0 on success, 1 on a failure
/// (on stderr; the processes' logs are then kept under `state_dir`).
int run_recovery_time(int kills, const std::string& state_dir);

}  // namespace vigil::bench
