#include "tools/lake/lake_tool.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/text_table.hpp"
#include "lake/delta_log.hpp"
#include "lake/delta_verify.hpp"

namespace vigil {

namespace {

using lake::delta_snapshot;

/// Milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_time_ms(int64_t ms) {
  const int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms - secs * 1000));
  return buf;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string partitions_text(const lake::delta_partition_values& values) {
  std::string out;
  for (const auto& [k, v] : values) {
    if (!out.empty()) out += ",";
    out += k + "=" + (v ? *v : "null");
  }
  return out.empty() ? "-" : out;
}

nlohmann::json partitions_json(const lake::delta_partition_values& values) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : values) out[k] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  return out;
}

int history(const delta_snapshot& snap, bool json, std::ostream& out) {
  if (json) {
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& c : snap.commits) {
      nlohmann::json v = {
          {"version", c.version}, {"operation", c.operation}, {"commitInfo", c.raw}};
      v["timestamp_ms"] = c.timestamp_ms ? nlohmann::json(*c.timestamp_ms) : nullptr;
      v["timestamp"] = c.timestamp_ms ? nlohmann::json(format_time_ms(*c.timestamp_ms)) : nullptr;
      v["lineage"] = c.raw.is_object() && c.raw.contains("lineage") ? c.raw["lineage"] : nullptr;
      versions.push_back(std::move(v));
    }
    out << dump({{"version", snap.version}, {"history", std::move(versions)}}) << "\n";
    return lake_tool_ok;
  }
  // The lineage's job id, graph version and checkpoint get columns of their own; the rest of it
  // (job name, node, subtask, epoch, source offsets, final) stays JSON in LINEAGE.
  auto take = [](nlohmann::json& lineage, const char* key) -> std::string {
    auto v = lineage.find(key);
    if (v == lineage.end()) return "-";
    std::string text = v->is_string() ? v->get<std::string>() : dump(*v);
    lineage.erase(v);
    return text.empty() ? "-" : text;
  };
  std::vector<std::vector<std::string>> rows;
  for (auto it = snap.commits.rbegin(); it != snap.commits.rend(); ++it) {
    std::string job_id = "-", graph = "-", checkpoint = "-", rest = "-";
    if (it->raw.is_object() && it->raw.contains("lineage")) {
      nlohmann::json lineage = it->raw["lineage"];
      if (lineage.is_object()) {
        job_id = take(lineage, "job_id");
        graph = take(lineage, "graph_version");
        checkpoint = take(lineage, "checkpoint");
      }
      rest = dump(lineage);
    }
    rows.push_back({std::to_string(it->version),
                    it->timestamp_ms ? format_time_ms(*it->timestamp_ms) : "-",
                    it->operation.empty() ? "-" : it->operation, job_id, graph, checkpoint, rest});
  }
  out << format_table(
      {"VERSION", "TIMESTAMP", "OPERATION", "JOB_ID", "GRAPH", "CHECKPOINT", "LINEAGE"}, rows);
  return lake_tool_ok;
}

int files(const delta_snapshot& snap, bool json, std::ostream& out) {
  int64_t bytes = 0, records = 0;
  bool all_counted = true;
  nlohmann::json list = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& [path, add] : snap.files) {
    const auto n = lake::delta_num_records(add);
    bytes += add.size;
    records += n.value_or(0);
    all_counted = all_counted && n.has_value();
    list.push_back({{"path", path},
                    {"size", add.size},
                    {"records", n ? nlohmann::json(*n) : nlohmann::json(nullptr)},
                    {"partitionValues", partitions_json(add.partition_values)},
                    {"modificationTime", add.modification_time_ms}});
    rows.push_back({path, std::to_string(add.size), n ? std::to_string(*n) : "-",
                    partitions_text(add.partition_values)});
  }
  if (json) {
    out << dump({{"version", snap.version},
                 {"files", std::move(list)},
                 {"bytes", bytes},
                 {"records", all_counted ? nlohmann::json(records) : nlohmann::json(nullptr)}})
        << "\n";
    return lake_tool_ok;
  }
  out << format_table({"PATH", "SIZE", "RECORDS", "PARTITION"}, rows);
  out << snap.files.size() << " files, " << bytes << " bytes, "
      << (all_counted ? std::to_string(records) : std::string("unknown")) << " records at version "
      << snap.version << "\n";
  return lake_tool_ok;
}

int show_schema(const delta_snapshot& snap, bool json, std::ostream& out) {
  const auto& md = snap.metadata;
  auto is_partition = [&](const std::string& name) {
    return std::find(md.partition_columns.begin(), md.partition_columns.end(), name) !=
           md.partition_columns.end();
  };
  if (json) {
    nlohmann::json columns = nlohmann::json::array();
    for (const auto& c : md.columns) {
      columns.push_back({{"name", c.name},
                         {"type", c.type},
                         {"nullable", c.nullable},
                         {"partition", is_partition(c.name)}});
    }
    out << dump({{"version", snap.version},
                 {"id", md.id},
                 {"minReaderVersion", snap.protocol.min_reader_version},
                 {"minWriterVersion", snap.protocol.min_writer_version},
                 {"partitionColumns", md.partition_columns},
                 {"configuration", md.configuration},
                 {"columns", std::move(columns)}})
        << "\n";
    return lake_tool_ok;
  }
  out << "table " << md.id << " at version " << snap.version << ", protocol "
      << snap.protocol.min_reader_version << "/" << snap.protocol.min_writer_version << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : md.columns) {
    rows.push_back({c.name, c.type, c.nullable ? "yes" : "no", is_partition(c.name) ? "yes" : ""});
  }
  out << format_table({"COLUMN", "TYPE", "NULLABLE", "PARTITION"}, rows);
  return lake_tool_ok;
}

int verify(const std::string& table, bool json, std::ostream& out) {
  const auto report = lake::verify_delta_table(table);
  if (json) {
    out << dump({{"ok", report.problems.empty()},
                 {"version", report.version},
                 {"files", report.live_files},
                 {"problems", report.problems}})
        << "\n";
  } else if (report.problems.empty()) {
    out << "OK: version " << report.version << ", " << report.live_files
        << " live files present with the sizes the log records\n";
  } else {
    for (const auto& p : report.problems) out << "problem: " << p << "\n";
  }
  return report.problems.empty() ? lake_tool_ok : lake_tool_failed;
}

}  // namespace

int run_lake_tool(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"vigil-lake: inspect and verify a Delta table"};
  app.require_subcommand(1);
  bool json = false;
  app.add_flag("--json", json, "Print one JSON document instead of text");
  std::string table;
  int64_t version = -1;
  auto* history_cmd = app.add_subcommand("history", "Versions with time, operation and lineage");
  history_cmd->add_option("table", table, "Table directory")->required();
  auto* files_cmd = app.add_subcommand("files", "Live data files with sizes and record counts");
  files_cmd->add_option("table", table, "Table directory")->required();
  files_cmd->add_option("--version", version, "Table version (default: the latest)")
      ->check(CLI::NonNegativeNumber);
  auto* schema_cmd = app.add_subcommand("schema", "Columns, partition columns and protocol");
  schema_cmd->add_option("table", table, "Table directory")->required();
  auto* verify_cmd =
      app.add_subcommand("verify", "Replay the log and check every live file; exit 1 on a problem");
  verify_cmd->add_option("table", table, "Table directory")->required();
  for (auto* cmd : {history_cmd, files_cmd, schema_cmd, verify_cmd}) {
    cmd->add_flag("--json", json, "Print one JSON document instead of text");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? lake_tool_ok : lake_tool_invalid;
  }

  if (verify_cmd->parsed()) return verify(table, json, out);
  auto snap = lake::read_delta_snapshot(
      table, version >= 0 ? std::optional<int64_t>(version) : std::nullopt);
  if (!snap) {
    err << "vigil-lake: " << snap.err().message << "\n";
    return lake_tool_failed;
  }
  if (history_cmd->parsed()) return history(*snap, json, out);
  if (files_cmd->parsed()) return files(*snap, json, out);
  if (schema_cmd->parsed()) return show_schema(*snap, json, out);
  return lake_tool_invalid;
}

}  // namespace vigil
