#include "operators/lake/lake_sink.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/config.hpp"
#include "lake/delta_log.hpp"
#include "lake/parquet_writer.hpp"

namespace vigil {

namespace {

using lake::delta_add;

/// The files of one epoch, waiting for their checkpoint to complete.
struct epoch_files {
  int64_t epoch = 0;
  std::vector<delta_add> adds;
  /// The txn appId to commit them under: the subtask that wrote them. After a restore with
  /// another parallelism, a subtask may commit files an old subtask wrote; each commit stays
  /// idempotent under the writer's appId.
  std::string app;
  bool final = false;  ///< The tail a finished subtask committed at close.
};

/// The checkpointed state: the checkpoint id and the epochs waiting for their commit.
struct sink_state {
  int64_t checkpoint = 0;
  bool finished = false;   ///< Restored after its final commit (see lake_sink::finished_).
  int subtask = -1;        ///< The writing subtask; -1 in states written before it was recorded.
  std::string generation;  ///< The writer's generation (lake_sink::generation_); "" if older.
  std::vector<epoch_files> pending;
};

nlohmann::json to_json(const std::vector<epoch_files>& pending) {
  auto out = nlohmann::json::array();
  for (const auto& e : pending) {
    auto adds = nlohmann::json::array();
    for (const auto& a : e.adds) {
      auto pv = nlohmann::json::object();
      for (const auto& [col, value] : a.partition_values) {
        pv[col] = value ? nlohmann::json(*value) : nlohmann::json();
      }
      adds.push_back({{"path", a.path},
                      {"size", a.size},
                      {"mtime", a.modification_time_ms},
                      {"stats", a.stats},
                      {"partition", std::move(pv)}});
    }
    out.push_back({{"epoch", e.epoch}, {"app", e.app}, {"adds", std::move(adds)}});
  }
  return out;
}

/// Reads {"checkpoint": id, "epochs": [...]} or, as written before the checkpoint id was
/// recorded, the bare list of epochs.
result<sink_state> from_json(std::string_view bytes) {
  auto doc = nlohmann::json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !(doc.is_array() || doc.is_object())) {
    return make_error(errc::state_error, "lake_sink: unreadable checkpoint state");
  }
  sink_state out;
  try {
    if (doc.is_object()) {
      out.checkpoint = doc.at("checkpoint").get<int64_t>();
      out.finished = doc.value("finished", false);
      out.subtask = doc.value("subtask", -1);
      out.generation = doc.value("generation", "");
    }
    const auto& epochs = doc.is_object() ? doc.at("epochs") : doc;
    for (const auto& e : epochs) {
      epoch_files f;
      f.epoch = e.at("epoch").get<int64_t>();
      if (e.contains("app")) f.app = e.at("app").get<std::string>();
      for (const auto& a : e.at("adds")) {
        delta_add add;
        add.path = a.at("path").get<std::string>();
        add.size = a.at("size").get<int64_t>();
        add.modification_time_ms = a.at("mtime").get<int64_t>();
        add.stats = a.at("stats").get<std::string>();
        for (const auto& [col, value] : a.at("partition").items()) {
          add.partition_values[col] =
              value.is_null() ? std::nullopt : std::optional<std::string>(value.get<std::string>());
        }
        f.adds.push_back(std::move(add));
      }
      out.pending.push_back(std::move(f));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(errc::state_error, std::string("lake_sink: checkpoint state: ") + e.what());
  }
  return out;
}

class lake_sink final : public operator_base {
 public:
  /// `partition` is the index of the partition column in `schema`, or -1; `data_schema` is
  /// `schema` without it (partition values live in directory names and the log, not in files).
  lake_sink(std::string table, lake::parquet_writer_options options, int64_t max_file_rows,
            schema_ptr schema, int partition, schema_ptr data_schema)
      : table_(std::move(table)),
        options_(std::move(options)),
        max_file_rows_(max_file_rows),
        schema_(std::move(schema)),
        partition_(partition),
        data_schema_(std::move(data_schema)) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    app_id_ = ctx.job_name + "/" + ctx.node_id + "/" + std::to_string(ctx.subtask_index);
    lake::delta_create_options create;
    if (partition_ >= 0) create.partition_columns = {schema_->fields()[partition_].name};
    auto log = lake::delta_log::open_or_create(table_, *schema_, create);
    if (!log) return with_context("lake_sink: table '" + table_ + "': ", log.err());
    log_.emplace(std::move(*log));
    return {};
  }

  void process(size_t, const record_batch& batch, output&) override {
    if (finished_) {
      ctx_->dropped_records += batch.num_rows();
      return;
    }
    if (!error_.empty() || batch.num_rows() == 0) return;
    if (partition_ < 0) {
      write(std::nullopt, batch);
      return;
    }
    // Rows grouped by partition value; each group without the partition column.
    const column& pc = batch.columns[partition_];
    groups_.clear();
    for (size_t row = 0; row < batch.num_rows(); ++row) {
      std::optional<std::string> value;
      if (!pc.is_null(row)) {
        value = pc.type == type_id::string ? std::string(pc.string_at(row))
                                           : std::to_string(pc.ints[row]);
      }
      groups_[value].push_back(static_cast<uint32_t>(row));
    }
    record_batch projected;
    projected.schema = data_schema_;
    for (size_t c = 0; c < batch.columns.size(); ++c) {
      if (static_cast<int>(c) != partition_) projected.columns.push_back(batch.columns[c]);
    }
    projected.event_time = batch.event_time;
    if (groups_.size() == 1) {  // The common case: the batch's rows share the value.
      write(groups_.begin()->first, projected);
      return;
    }
    for (const auto& [value, rows] : groups_) {
      batch_builder b(data_schema_, rows.size());
      b.append_rows(projected, rows.data(), rows.size());
      write(value, *b.finish());
      if (!error_.empty()) return;
    }
  }

  std::string snapshot_state(int64_t checkpoint_id) override {
    roll();
    if (!closed_.empty()) pending_.push_back({checkpoint_id, std::move(closed_), app_id_});
    closed_.clear();
    return nlohmann::json{{"checkpoint", checkpoint_id},
                          {"finished", finished_},
                          {"subtask", ctx_->subtask_index},
                          {"generation", generation_},
                          {"epochs", to_json(pending_)}}
        .dump();
  }

  status restore_state(std::string_view bytes) override {
    auto state = from_json(bytes);
    if (!state) return state.err();
    // Called once per old subtask after a change of parallelism: each state's epochs go under
    // their writer's appId.
    for (auto& e : state->pending) {
      if (e.app.empty()) e.app = app_id_;
      pending_.push_back(std::move(e));
    }
    // Every epoch in a complete checkpoint's state was complete: commit what the table lacks,
    // with the lineage of the checkpoint restored from.
    VIGIL_TRY(commit_pending(INT64_MAX, ctx_->restored_checkpoint_id,
                             sources_of(ctx_->restored_sources_json)));
    // A subtask that finished after this checkpoint committed its tail then; the input replayed
    // to it now is that tail again (another subtask's failure restarted the job): discarded.
    const bool rescaled =
        ctx_->restored_parallelism != 0 && ctx_->restored_parallelism != ctx_->parallelism;
    if (!rescaled) {
      generation_ = state->generation;
      finished_ = finished_ || state->finished ||
                  committed_final_after(ctx_->subtask_index, state->checkpoint, generation_);
      if (finished_) {
        spdlog::info(
            "lake_sink {}: committed its final files after checkpoint {}; the replayed "
            "input is discarded",
            app_id_, state->checkpoint);
      }
      return {};
    }
    // After a change of parallelism every new subtask gets every old state (in old-subtask
    // order; a lake_sink always stores one), and the replayed input reaches other subtasks than
    // before. If every old subtask had finished, the table holds the whole output: discard the
    // replay. If only some had, their part of the replay would be written twice: refuse.
    // The new subtasks write as a generation of their own, named by the checkpoint and the
    // parallelism, so that their final commits are never taken for the old subtasks' (a later
    // restore of the same checkpoint at the same parallelism recognises them as its own).
    if (restore_calls_ == 0) {
      generation_ = (state->generation.empty() ? "" : state->generation + "/") + "r" +
                    std::to_string(ctx_->restored_checkpoint_id) + "p" +
                    std::to_string(ctx_->parallelism);
    }
    const uint32_t from =
        state->subtask >= 0 ? static_cast<uint32_t>(state->subtask) : restore_calls_;
    ++restore_calls_;
    const bool done =
        state->finished || committed_final_after(from, state->checkpoint, state->generation);
    (done ? old_finished_ : old_open_).push_back(from);
    if (!old_finished_.empty() && !old_open_.empty()) {
      return make_error(
          errc::state_error,
          "lake_sink " + app_id_ + ": old subtask " + std::to_string(old_finished_.front()) +
              " committed its final files after checkpoint " + std::to_string(state->checkpoint) +
              " and old subtask " + std::to_string(old_open_.front()) +
              " did not: with another parallelism the replayed input reaches "
              "other subtasks, so part of it would be written twice; restore with "
              "parallelism " +
              std::to_string(ctx_->restored_parallelism));
    }
    // An earlier attempt of this same restore may have got this subtask to its end.
    finished_ = !old_finished_.empty() ||
                committed_final_after(ctx_->subtask_index, state->checkpoint, generation_);
    return {};
  }

  /// Commits the epochs up to `checkpoint_id`. A failed commit fails the subtask at once: the
  /// restart strategy restores the checkpoint, whose state still holds the uncommitted epochs,
  /// and the restore commits them.
  status notify_checkpoint_complete(int64_t checkpoint_id, std::string_view sources_json) override {
    if (pending_.empty() || pending_.front().epoch > checkpoint_id) return {};
    if (auto st = commit_pending(checkpoint_id, checkpoint_id, sources_of(sources_json)); !st) {
      if (error_.empty()) error_ = st.err().message;
      spdlog::error("lake_sink {}: {}", app_id_, st.err().message);
      return make_error(errc::io_error, "lake_sink: " + st.err().message);
    }
    return {};
  }

  status close(output&) override {
    if (finished_) return {};
    roll();
    if (error_.empty()) {
      if (auto st = commit_pending(INT64_MAX, 0, {}); !st) error_ = st.err().message;
    }
    if (error_.empty() && !closed_.empty()) {
      // The end of a bounded job: the files written since the last checkpoint.
      int64_t last = log_->snapshot().txn_version(app_id_).value_or(0);
      for (const auto& e : pending_) last = std::max(last, e.epoch);
      pending_.push_back({last + 1, std::move(closed_), app_id_, true});
      closed_.clear();
      if (auto st = commit_pending(INT64_MAX, 0, {}); !st) error_ = st.err().message;
    }
    if (!error_.empty()) return make_error(errc::io_error, "lake_sink: " + error_);
    return {};
  }

 private:
  struct open_file {
    std::unique_ptr<lake::parquet_writer> writer;
    std::string path;  ///< Relative to the table.
  };

  /// Whether subtask `subtask` of this node (in this job) and of `generation` committed its
  /// final files after checkpoint `checkpoint`: its newest commit in the log is a final one of
  /// a later epoch.
  bool committed_final_after(uint32_t subtask, int64_t checkpoint,
                             const std::string& generation) const {
    const auto& commits = log_->snapshot().commits;
    for (auto c = commits.rbegin(); c != commits.rend(); ++c) {
      auto lineage = c->raw.find("lineage");
      if (lineage == c->raw.end() || !lineage->is_object()) continue;
      if (lineage->value("job", "") != ctx_->job_name ||
          lineage->value("node", "") != ctx_->node_id ||
          lineage->value("subtask", -1) != static_cast<int>(subtask) ||
          lineage->value("generation", "") != generation) {
        continue;
      }
      return lineage->value("final", false) && lineage->value("epoch", int64_t{0}) > checkpoint;
    }
    return false;
  }

  /// Appends rows of one partition (`value`; nullopt without partitioning) to its open file,
  /// opening one if needed: at most one file per partition per epoch unless it fills up.
  void write(const std::optional<std::string>& value, const record_batch& rows) {
    open_file& f = files_[value];
    if (!f.writer) {
      std::string dir;
      if (partition_ >= 0) {
        dir = lake::delta_partition_dir({schema_->fields()[partition_].name},
                                        {{schema_->fields()[partition_].name, value}});
      }
      f.path = dir + "part-" + std::to_string(ctx_->subtask_index) + "-" + lake::make_uuid() +
               ".parquet";
      std::error_code ec;
      std::filesystem::create_directories(
          std::filesystem::path(table_ + "/" + f.path).parent_path(), ec);
      auto w = lake::parquet_writer::open(table_ + "/" + f.path, data_schema_, options_);
      if (!w) {
        error_ = w.err().message;
        return;
      }
      f.writer = std::move(*w);
    }
    if (auto st = f.writer->write(rows); !st) {
      error_ = st.err().message;
      return;
    }
    if (f.writer->num_rows() >= max_file_rows_) close_file(value, f);
  }

  /// Closes every open file and keeps them for the epoch's commit.
  void roll() {
    for (auto& [value, f] : files_) close_file(value, f);
    files_.clear();
  }

  void close_file(const std::optional<std::string>& value, open_file& f) {
    if (!f.writer) return;
    auto info = f.writer->close();
    f.writer.reset();
    if (!info) {
      if (error_.empty()) error_ = info.err().message;
      return;
    }
    lake::delta_partition_values pv;
    if (partition_ >= 0) pv[schema_->fields()[partition_].name] = value;
    auto add = log_->describe_file(f.path, *info, std::move(pv));
    if (!add) {
      if (error_.empty()) error_ = add.err().message;
      return;
    }
    closed_.push_back(std::move(*add));
  }

  /// The source positions a completion carries, parsed once per commit round; null when there
  /// are none (or, defensively, when they are not a JSON object).
  static nlohmann::json sources_of(std::string_view sources_json) {
    if (sources_json.empty()) return nullptr;
    auto doc = nlohmann::json::parse(sources_json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return nullptr;
    return doc;
  }

  /// Commits the pending epochs up to `upto` in order, one Delta version each; an epoch whose
  /// txn the table already holds is skipped (a replay after a restore). `checkpoint` is the
  /// complete checkpoint that lets them commit and `sources` its source positions, recorded in
  /// the lineage; 0 (with null) when no checkpoint is known (the end of the input).
  status commit_pending(int64_t upto, int64_t checkpoint, const nlohmann::json& sources) {
    while (!pending_.empty() && pending_.front().epoch <= upto) {
      const epoch_files& e = pending_.front();
      lake::delta_commit_request request;
      request.adds = e.adds;
      request.txn = lake::delta_txn{e.app, e.epoch, std::nullopt};
      request.operation = "STREAMING UPDATE";
      request.lineage = {{"job", ctx_->job_name},
                         {"job_id", ctx_->job_id},
                         {"graph_version", ctx_->graph_version},
                         {"node", ctx_->node_id},
                         {"subtask", ctx_->subtask_index},
                         {"epoch", e.epoch}};
      if (!generation_.empty()) request.lineage["generation"] = generation_;
      if (e.final) {
        request.lineage["final"] = true;
      } else if (checkpoint > 0) {
        request.lineage["checkpoint"] = checkpoint;
        if (!sources.is_null()) request.lineage["source_offsets"] = sources;
      }
      auto done = log_->commit(request);
      if (!done) {
        return with_context(
            "table '" + table_ + "': commit of epoch " + std::to_string(e.epoch) + ": ",
            done.err());
      }
      pending_.erase(pending_.begin());
    }
    return {};
  }

  std::string table_;
  lake::parquet_writer_options options_;
  int64_t max_file_rows_;
  schema_ptr schema_;
  operator_context* ctx_ = nullptr;
  std::string app_id_;
  int partition_;
  schema_ptr data_schema_;
  std::optional<lake::delta_log> log_;
  std::map<std::optional<std::string>, open_file> files_;  ///< Open files by partition.
  std::map<std::optional<std::string>, std::vector<uint32_t>> groups_;  ///< Per batch.
  std::vector<delta_add> closed_;     ///< Closed in the current epoch.
  std::vector<epoch_files> pending_;  ///< Snapshotted, waiting for their checkpoint.
  std::string error_;                 ///< The first failure; close() reports it.
  bool finished_ = false;       ///< Restored after its final commit: input is a replay, dropped.
  uint32_t restore_calls_ = 0;  ///< restore_state() calls so far (one per old subtask).
  /// Which run of subtasks this one belongs to: "" from the start; after a restore at another
  /// parallelism the old one's followed by "r<checkpoint>p<parallelism>" (e.g. "r5p3", then
  /// "r5p3/r9p2"); inherited by restores at the same parallelism.
  /// Written into the state and the commits' lineage.
  std::string generation_;
  /// After a rescaled restore: the old subtasks that had committed their final files after the
  /// checkpoint, and those that had not.
  std::vector<uint32_t> old_finished_;
  std::vector<uint32_t> old_open_;
};

class lake_sink_plan final : public operator_plan {
 public:
  std::string table;
  lake::parquet_writer_options options;
  int64_t max_file_rows = 1'000'000;
  schema_ptr schema;
  int partition = -1;
  schema_ptr data_schema;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<lake_sink>(table, options, max_file_rows, schema, partition,
                                       data_schema);
  }
};

class lake_sink_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<lake_sink_plan>();
    auto path = r.required_string("path");
    if (!path) return path.err();
    if (path->empty()) return config_reader::key_error("path", "must not be empty");
    p->table = *path;
    auto codec = r.string_or("codec", "zstd");
    if (!codec) return codec.err();
    if (*codec == "zstd") {
      p->options.codec = lake::parquet_codec::zstd;
    } else if (*codec == "snappy") {
      p->options.codec = lake::parquet_codec::snappy;
    } else if (*codec == "none") {
      p->options.codec = lake::parquet_codec::uncompressed;
    } else {
      return config_reader::key_error("codec",
                                      "expected zstd, snappy or none, got '" + *codec + "'");
    }
    if (r.get("zstd_level") != nullptr && p->options.codec != lake::parquet_codec::zstd) {
      return config_reader::key_error("zstd_level", "applies only to codec zstd, not " + *codec);
    }
    auto level = r.int_or("zstd_level", p->options.zstd_level);
    if (!level) return level.err();
    if (*level < 1 || *level > lake::parquet_writer_options::max_zstd_level) {
      return config_reader::key_error(
          "zstd_level", "must be between 1 and " +
                            std::to_string(lake::parquet_writer_options::max_zstd_level) +
                            ", got " + std::to_string(*level));
    }
    p->options.zstd_level = static_cast<int>(*level);
    auto rows = r.int_or("max_file_rows", 1'000'000);
    if (!rows) return rows.err();
    if (*rows < 1) return config_reader::key_error("max_file_rows", "must be at least 1");
    p->max_file_rows = *rows;
    auto partition_by = r.string_or("partition_by", "");
    if (!partition_by) return partition_by.err();
    VIGIL_TRY(r.finish());
    if (ctx.inputs.size() != 1) {
      return make_error(errc::invalid_graph,
                        "expected one input stream, got " + std::to_string(ctx.inputs.size()));
    }
    p->schema = ctx.inputs[0].schema;
    p->data_schema = p->schema;
    if (!partition_by->empty()) {
      p->partition = p->schema->index_of(*partition_by);
      if (p->partition < 0) {
        return config_reader::key_error("partition_by",
                                        "no field '" + *partition_by + "' in the input");
      }
      type_id t = p->schema->fields()[p->partition].type;
      if (t != type_id::string && t != type_id::int64) {
        return config_reader::key_error("partition_by",
                                        "field '" + *partition_by + "' must be string or int64");
      }
      std::vector<field> data;
      for (const auto& f : p->schema->fields()) {
        if (f.name != *partition_by) data.push_back(f);
      }
      if (data.empty()) {
        return config_reader::key_error("partition_by", "no other field is left for the files");
      }
      p->data_schema = make_schema(std::move(data));
    }
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_ = [] {
    operator_traits t;
    t.name = "lake_sink";
    t.input_ports = {"in"};
    t.summary = "Writes rows to a Delta Lake table, committed exactly once per checkpoint";
    return t;
  }();
};

}  // namespace

std::unique_ptr<operator_factory> make_lake_sink_factory() {
  return std::make_unique<lake_sink_factory>();
}

void register_lake_operators(operator_registry& r) {
  r.add(make_lake_sink_factory());
}

}  // namespace vigil
