// Checkpoint benchmarks of vigil-bench: what aligned checkpoints cost a running job, and how
// long a checkpoint of a large keyed state takes (docs/design/0006-checkpoints.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace vigil::bench {

/// Name of the benchmark run by run_checkpoint_overhead().
inline constexpr const char* checkpoint_overhead_name = "ckpt.overhead";
/// Name of the benchmark run by run_checkpoint_duration().
inline constexpr const char* checkpoint_duration_name = "ckpt.duration";

/// The checkpoint interval the checkpoint benchmarks use at `scale`: 1000 ms at scale 1 and
/// above; smaller scales shorten it in proportion (at least 20 ms) so that a smoke run, which
/// lasts a fraction of a second, still takes and measures a few checkpoints.
int64_t checkpoint_interval_ms(double scale);

/// ckpt.overhead: runs the graph `graph(events)` (core.window_count_rocksdb) without and with
/// checkpoints (appended to the graph as `checkpoints: {interval_ms: ...}`), twice each,
/// alternating, and prints one JSON line with the best run of each and their ratio. Returns 0
/// on success, 1 if a run failed (the error goes to stderr).
int run_checkpoint_overhead(const std::function<std::string(uint64_t)>& graph, uint64_t events,
                            double scale, const std::string& state_dir);

/// ckpt.duration: a generator over 1,000,000 keys → key_by → a one-hour tumbling count, so
/// that the window's keyed state grows to (nearly) a million keys, with a checkpoint every
/// second and every checkpoint retained; afterwards reads each chk-N/_metadata and prints one
/// JSON line with the checkpoint durations (p50, p99, max) and sizes (full vs. copied).
int run_checkpoint_duration(double scale, const std::string& state_dir);

}  // namespace vigil::bench
