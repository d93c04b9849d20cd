#include "runtime/subtask_driver.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

namespace vigil {
namespace {

/// The file of a stateful subtask's snapshot that holds its input watermark, in decimal. The
/// checkpoint storage stores it with RocksDB's small files; RocksDB ignores it.
constexpr const char* watermark_file = "VIGIL-WATERMARK";

status write_watermark(const std::filesystem::path& dir, int64_t wm) {
  std::ofstream out(dir / watermark_file, std::ios::binary | std::ios::trunc);
  out << wm;
  out.close();
  if (!out) {
    return make_error(errc::io_error,
                      "cannot write " + (dir / watermark_file).string() + " of a snapshot");
  }
  return {};
}

/// The watermark a restored snapshot in `dir` was taken at; nullopt for a snapshot without one
/// (written before watermarks were kept). The file is removed: the live state directory does not
/// keep it.
result<std::optional<int64_t>> take_watermark(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / watermark_file;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec) && !ec) return std::optional<int64_t>();
  std::ifstream in(file, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (ec || in.bad() || !in.is_open()) {
    return make_error(errc::io_error, file.string() + ": cannot read the watermark");
  }
  in.close();
  int64_t wm = 0;
  const char* end = text.data() + text.size();
  const auto parsed = std::from_chars(text.data(), end, wm);
  if (parsed.ec != std::errc() || parsed.ptr != end) {
    return make_error(errc::parse_error,
                      file.string() + ": not a watermark: '" + text.substr(0, 40) + "'");
  }
  std::error_code rm;
  std::filesystem::remove(file, rm);
  return std::optional<int64_t>(wm);
}

}  // namespace

result<std::unique_ptr<subtask_driver>> subtask_driver::make(const operator_factory& factory,
                                                             const operator_plan& plan,
                                                             const options& opts, output& out) {
  std::unique_ptr<subtask_driver> d(new subtask_driver(out));
  auto& ctx = d->ctx_;
  d->state_dir_ = opts.state_dir;
  ctx.job_name = opts.job_name;
  ctx.job_id = opts.job_id.empty() ? opts.job_name : opts.job_id;
  ctx.graph_version = opts.graph_version;
  ctx.node_id = opts.node_id;
  ctx.subtask_index = opts.subtask_index;
  ctx.parallelism = opts.parallelism;
  ctx.max_parallelism = opts.max_parallelism;
  ctx.key_groups = key_group_range_of(opts.subtask_index, opts.parallelism, opts.max_parallelism);
  ctx.batch_size = opts.batch_size;
  ctx.wakeup = opts.wakeup;
  auto key_of = [&](uint32_t subtask) { return opts.node_id + "-" + std::to_string(subtask); };
  // The old subtasks whose state this one takes: its own, or, when the checkpoint was taken
  // with another parallelism, those whose key groups overlap its own (keyed state) and all of
  // them (operator state, which each operator splits as it can).
  uint32_t old_parallelism = opts.parallelism;
  bool restore = opts.restore_from != nullptr;
  if (restore) {
    auto shape = opts.restore_from->shape(opts.restore_id);
    if (!shape) return with_context("node '" + opts.node_id + "': restore: ", shape.err());
    if (shape->max_parallelism != 0 && shape->max_parallelism != opts.max_parallelism) {
      return make_error(
          errc::state_error,
          "node '" + opts.node_id + "': checkpoint " + std::to_string(opts.restore_id) + " has " +
              std::to_string(shape->max_parallelism) + " key groups (max_parallelism), the graph " +
              std::to_string(opts.max_parallelism) + ": they must be equal");
    }
    if (auto it = shape->parallelism.find(opts.node_id); it != shape->parallelism.end()) {
      old_parallelism = it->second;
    } else if (!shape->parallelism.empty()) {
      restore = false;  // A node the checkpointed graph did not have: it starts empty.
    }
  }
  bool rescaled = restore && old_parallelism != opts.parallelism;
  if (restore) ctx.restored_parallelism = old_parallelism;
  if (opts.restore_from != nullptr) {
    ctx.restored_checkpoint_id = opts.restore_id;
    auto sources = opts.restore_from->source_positions(opts.restore_id);
    if (!sources) return with_context("node '" + opts.node_id + "': restore: ", sources.err());
    ctx.restored_sources_json = std::move(*sources);
  }
  bool restored_state = false;
  // The input watermark the restored state was snapshotted at (stateful operators;
  // min_watermark: unknown).
  int64_t restored_watermark = min_watermark;
  bool watermark_known = true;
  if (factory.traits().stateful && restore) {
    std::error_code ec;
    std::filesystem::remove_all(opts.state_dir, ec);
    if (!rescaled) {
      auto r = opts.restore_from->restore_state(opts.restore_id, key_of(opts.subtask_index),
                                                opts.state_dir);
      if (!r) return with_context("node '" + opts.node_id + "': restore: ", r.err());
      if (!*r) {
        return make_error(errc::state_error, "node '" + opts.node_id + "' subtask " +
                                                 std::to_string(opts.subtask_index) +
                                                 ": checkpoint " + std::to_string(opts.restore_id) +
                                                 " holds no state for it");
      }
      auto wm = take_watermark(opts.state_dir);
      if (!wm) return with_context("node '" + opts.node_id + "': restore: ", wm.err());
      if (*wm) restored_watermark = **wm;
    } else {
      std::vector<std::string> sources;
      for (uint32_t j = 0; j < old_parallelism; ++j) {
        auto old = key_group_range_of(j, old_parallelism, opts.max_parallelism);
        if (old.end <= ctx.key_groups.begin || ctx.key_groups.end <= old.begin) continue;
        std::string dir = opts.state_dir + ".from-" + std::to_string(j);
        std::filesystem::remove_all(dir, ec);
        auto r = opts.restore_from->restore_state(opts.restore_id, key_of(j), dir);
        if (!r) return with_context("node '" + opts.node_id + "': restore: ", r.err());
        if (!*r) continue;
        sources.push_back(dir);
        // The merged state continues from the lowest watermark of the subtasks it comes from;
        // one snapshot without a watermark leaves it unknown.
        auto wm = take_watermark(dir);
        if (!wm) return with_context("node '" + opts.node_id + "': restore: ", wm.err());
        if (!*wm) {
          watermark_known = false;
        } else if (sources.size() == 1 || **wm < restored_watermark) {
          restored_watermark = **wm;
        }
      }
      if (!watermark_known) restored_watermark = min_watermark;
      auto merged = state_backend::merge_key_groups(sources, ctx.key_groups, opts.state_dir);
      for (const auto& dir : sources) std::filesystem::remove_all(dir, ec);
      if (!merged) return with_context("node '" + opts.node_id + "': ", merged.err());
    }
    restored_state = true;
  }
  if (factory.traits().stateful) {
    state_backend::options so;
    so.directory = opts.state_dir;
    so.fresh = !restored_state;
    auto st = state_backend::open(so);
    if (!st) return with_context("node '" + opts.node_id + "': ", st.err());
    d->state_ = std::move(*st);
    auto timers = timer_service::make(*d->state_);
    if (!timers) return with_context("node '" + opts.node_id + "': ", timers.err());
    d->timers_ = std::move(*timers);
    ctx.state = d->state_.get();
    ctx.timers = d->timers_.get();
    if (restored_watermark > ctx.watermark) {
      // The restored run goes on from the watermark of the snapshot, as the run that took it
      // did: what was late then is late now, and TTL state that had expired stays expired.
      // Timers at or below it that are still pending fire at the next watermark, as they
      // would have.
      ctx.watermark = restored_watermark;
      d->state_->advance_clocks(ctx.watermark, operator_context::now_us());
    }
  }
  d->op_ = plan.instantiate();
  if (auto st = d->op_->open(ctx); !st) {
    return with_context("node '" + opts.node_id + "': ", st.err());
  }
  if (restore) {
    for (uint32_t j = 0; j < old_parallelism; ++j) {
      if (!rescaled && j != opts.subtask_index) continue;
      auto bytes = opts.restore_from->operator_state(opts.restore_id, key_of(j));
      if (!bytes) return with_context("node '" + opts.node_id + "': restore: ", bytes.err());
      if (bytes->empty()) continue;
      if (auto st = d->op_->restore_state(*bytes); !st) {
        return with_context("node '" + opts.node_id + "': restore: ", st.err());
      }
    }
  }
  return d;
}

void subtask_driver::process(size_t port, const batch_ptr& batch) {
  op_->process_shared(port, batch, out_);
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

result<snapshot_stats> subtask_driver::snapshot(int64_t id, checkpoint_storage& storage,
                                                const std::string& subtask_key) {
  snapshot_stats stats;
  std::string op_state = op_->snapshot_state(id);
  if (!op_state.empty()) {
    if (auto st = storage.store_operator_state(id, subtask_key, op_state); !st) return st.err();
    stats.files = stats.files_copied = 1;
    stats.bytes = stats.bytes_copied = op_state.size();
  }
  if (!state_) return stats;
  std::string local = state_dir_ + ".chk-" + std::to_string(id);
  std::error_code ec;
  std::filesystem::remove_all(local, ec);
  // Timers reach the backend only here (timer_service::write_to_state()).
  if (timers_) timers_->write_to_state();
  auto identity = state_->checkpoint_to(local);
  if (!identity) return with_context("node '" + ctx_.node_id + "': ", identity.err());
  if (auto st = write_watermark(local, ctx_.watermark); !st) {
    return with_context("node '" + ctx_.node_id + "': ", st.err());
  }
  auto stored = storage.store_state(id, subtask_key, local, *identity);
  if (!stored) return stored.err();
  stats.files += stored->files;
  stats.files_copied += stored->files_copied;
  stats.bytes += stored->bytes;
  stats.bytes_copied += stored->bytes_copied;
  return stats;
}

status subtask_driver::finish() {
  advance_watermark(max_watermark);
  return op_->close(out_);
}

}  // namespace vigil
