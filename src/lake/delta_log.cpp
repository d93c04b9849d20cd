#include "lake/delta_log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/durable_file.hpp"

namespace vigil::lake {

namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string version_name(int64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld.json", static_cast<long long>(version));
  return buf;
}

/// The version of a commit file name (20 digits, ".json"), or -1.
int64_t parse_version_name(const std::string& name) {
  if (name.size() != 25 || name.compare(20, 5, ".json") != 0) {
    return -1;
  }
  int64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10) {
      return -1;
    }
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

/// A checkpoint file name: 20 digits then ".checkpoint".
bool is_checkpoint_name(const std::string& name) {
  if (name.size() < 31 || name.compare(20, 11, ".checkpoint") != 0) {
    return false;
  }
  return std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; });
}

/// Reads a whole file; io_error if it cannot.
result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(errc::io_error, "cannot read '" + path + "': " + std::strerror(errno));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return make_error(errc::io_error, "cannot read '" + path + "'");
  }
  return buf.str();
}

/// Context for the errors about one line of one commit file.
struct line_context {
  std::string file;
  size_t line = 0;

  error fail(errc code, const std::string& what) const {
    return make_error(code, file + ": line " + std::to_string(line) + ": " + what);
  }
};

/// Reads member `key` of action object `obj` (named `action` in errors).
class action_reader {
 public:
  action_reader(const line_context& ctx, const nlohmann::json& obj, const char* action)
      : ctx_(ctx), obj_(obj), action_(action) {}

  const nlohmann::json* find(const char* key) const {
    const auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  error missing(const char* key, const char* type) const {
    return ctx_.fail(errc::parse_error, std::string(action_) + "." + key + " must be " + type);
  }

  result<std::string> string(const char* key) const {
    const auto* v = find(key);
    if (v == nullptr || !v->is_string()) return missing(key, "a string");
    return v->get<std::string>();
  }
  result<int64_t> integer(const char* key) const {
    const auto* v = find(key);
    if (v == nullptr || !v->is_number_integer() ||
        (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX})) {
      return missing(key, "an integer");
    }
    return v->get<int64_t>();
  }
  result<std::optional<int64_t>> optional_integer(const char* key) const {
    if (find(key) == nullptr) return std::optional<int64_t>();
    auto v = integer(key);
    if (!v) return v.err();
    return std::optional<int64_t>(*v);
  }
  result<bool> boolean(const char* key) const {
    const auto* v = find(key);
    if (v == nullptr || !v->is_boolean()) return missing(key, "a boolean");
    return v->get<bool>();
  }
  result<delta_partition_values> partition_values(const char* key) const {
    const auto* v = find(key);
    if (v == nullptr || !v->is_object()) return missing(key, "an object");
    delta_partition_values out;
    for (const auto& [k, val] : v->items()) {
      if (val.is_null()) {
        out[k] = std::nullopt;
      } else if (val.is_string()) {
        out[k] = val.get<std::string>();
      } else {
        return missing(key, "an object of strings");
      }
    }
    return out;
  }
  result<std::string> path() const {
    auto raw = string("path");
    if (!raw) return raw.err();
    auto decoded = delta_decode_path(*raw);
    if (!decoded) return ctx_.fail(errc::parse_error, decoded.err().message);
    if (decoded->empty()) return missing("path", "a non-empty string");
    return decoded;
  }

 private:
  const line_context& ctx_;
  const nlohmann::json& obj_;
  const char* action_;
};

status check_protocol(const line_context& ctx, const nlohmann::json& p, delta_protocol& out) {
  action_reader r(ctx, p, "protocol");
  auto reader = r.integer("minReaderVersion");
  if (!reader) return reader.err();
  auto writer = r.integer("minWriterVersion");
  if (!writer) return writer.err();
  const bool features = r.find("readerFeatures") != nullptr || r.find("writerFeatures") != nullptr;
  if (*reader > delta_reader_version || *writer > delta_writer_version || features) {
    return ctx.fail(errc::invalid_argument,
                    "the table needs protocol {minReaderVersion: " + std::to_string(*reader) +
                        ", minWriterVersion: " + std::to_string(*writer) +
                        (features ? ", table features" : "") +
                        "}; Vigil implements reader version 1 and writer version 2 only");
  }
  out.min_reader_version = static_cast<int>(*reader);
  out.min_writer_version = static_cast<int>(*writer);
  return {};
}

status parse_metadata(const line_context& ctx, const nlohmann::json& m, delta_metadata& out) {
  action_reader r(ctx, m, "metaData");
  auto id = r.string("id");
  if (!id) return id.err();
  const auto* format = r.find("format");
  if (format == nullptr || !format->is_object() || !format->contains("provider") ||
      !(*format)["provider"].is_string()) {
    return r.missing("format", "an object with a string \"provider\"");
  }
  if ((*format)["provider"] != "parquet") {
    return ctx.fail(errc::invalid_argument, "metaData.format.provider is '" +
                                                (*format)["provider"].get<std::string>() +
                                                "'; Vigil reads parquet tables only");
  }
  auto schema_string = r.string("schemaString");
  if (!schema_string) return schema_string.err();
  delta_metadata md;
  md.id = *id;
  md.schema_string = *schema_string;
  if (auto st = parse_delta_schema(md.schema_string, md.columns, md.schema); !st) {
    return ctx.fail(errc::parse_error, "metaData." + st.err().message);
  }
  const auto* parts = r.find("partitionColumns");
  if (parts == nullptr || !parts->is_array()) return r.missing("partitionColumns", "an array");
  for (const auto& p : *parts) {
    if (!p.is_string()) return r.missing("partitionColumns", "an array of strings");
    const auto name = p.get<std::string>();
    const bool known = std::any_of(md.columns.begin(), md.columns.end(),
                                   [&](const delta_column& c) { return c.name == name; });
    if (!known) {
      return ctx.fail(errc::parse_error,
                      "metaData: partition column '" + name + "' is not a column of the schema");
    }
    md.partition_columns.push_back(name);
  }
  if (const auto* conf = r.find("configuration")) {
    if (!conf->is_object()) return r.missing("configuration", "an object");
    for (const auto& [k, v] : conf->items()) {
      if (!v.is_string()) return r.missing("configuration", "an object of strings");
      md.configuration[k] = v.get<std::string>();
    }
  }
  auto created = r.optional_integer("createdTime");
  if (!created) return created.err();
  md.created_time_ms = *created;
  out = std::move(md);
  return {};
}

/// Applies the actions of commit `version` (the text of file `file`) to `snap`.
status apply_commit(delta_snapshot& snap, int64_t version, const std::string& file,
                    const std::string& text) {
  line_context ctx{file, 0};
  bool has_protocol = false, has_metadata = false, has_commit_info = false;
  std::set<std::string> added, removed, txn_apps;
  std::vector<delta_add> adds;
  std::vector<delta_remove> removes;
  std::vector<delta_txn> txns;
  delta_protocol protocol = snap.protocol;
  delta_metadata metadata = snap.metadata;
  delta_commit_info info;
  info.version = version;

  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++ctx.line;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      continue;
    }
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      return ctx.fail(errc::parse_error, "not a complete JSON document (truncated or corrupt)");
    }
    if (!j.is_object() || j.size() != 1) {
      return ctx.fail(errc::parse_error, "an action line must be a JSON object with one key");
    }
    const std::string& kind = j.begin().key();
    const nlohmann::json& body = j.begin().value();
    if (!body.is_object()) {
      return ctx.fail(errc::parse_error, "action '" + kind + "' is not a JSON object");
    }
    action_reader r(ctx, body, kind.c_str());
    if (kind == "protocol") {
      if (has_protocol) return ctx.fail(errc::parse_error, "a second protocol action");
      has_protocol = true;
      VIGIL_TRY(check_protocol(ctx, body, protocol));
    } else if (kind == "metaData") {
      if (has_metadata) return ctx.fail(errc::parse_error, "a second metaData action");
      has_metadata = true;
      VIGIL_TRY(parse_metadata(ctx, body, metadata));
    } else if (kind == "add") {
      delta_add a;
      auto path = r.path();
      if (!path) return path.err();
      a.path = std::move(*path);
      auto pv = r.partition_values("partitionValues");
      if (!pv) return pv.err();
      a.partition_values = std::move(*pv);
      auto size = r.integer("size");
      if (!size) return size.err();
      a.size = *size;
      auto mtime = r.integer("modificationTime");
      if (!mtime) return mtime.err();
      a.modification_time_ms = *mtime;
      auto dc = r.boolean("dataChange");
      if (!dc) return dc.err();
      a.data_change = *dc;
      if (const auto* stats = r.find("stats")) {
        if (!stats->is_string()) return r.missing("stats", "a string");
        a.stats = stats->get<std::string>();
      }
      if (r.find("deletionVector") != nullptr) {
        return ctx.fail(errc::invalid_argument,
                        "add '" + a.path + "' has a deletion vector, which Vigil cannot read");
      }
      if (!added.insert(a.path).second) {
        return ctx.fail(errc::parse_error, "'" + a.path + "' is added twice in one commit");
      }
      adds.push_back(std::move(a));
    } else if (kind == "remove") {
      delta_remove rm;
      auto path = r.path();
      if (!path) return path.err();
      rm.path = std::move(*path);
      auto dc = r.boolean("dataChange");
      if (!dc) return dc.err();
      rm.data_change = *dc;
      auto ts = r.optional_integer("deletionTimestamp");
      if (!ts) return ts.err();
      rm.deletion_timestamp_ms = *ts;
      auto size = r.optional_integer("size");
      if (!size) return size.err();
      rm.size = *size;
      if (r.find("partitionValues") != nullptr) {
        auto pv = r.partition_values("partitionValues");
        if (!pv) return pv.err();
        rm.partition_values = std::move(*pv);
      }
      if (r.find("deletionVector") != nullptr) {
        return ctx.fail(errc::invalid_argument,
                        "remove '" + rm.path + "' has a deletion vector, which Vigil cannot read");
      }
      if (!removed.insert(rm.path).second) {
        return ctx.fail(errc::parse_error, "'" + rm.path + "' is removed twice in one commit");
      }
      removes.push_back(std::move(rm));
    } else if (kind == "txn") {
      delta_txn t;
      auto app = r.string("appId");
      if (!app) return app.err();
      t.app_id = std::move(*app);
      auto v = r.integer("version");
      if (!v) return v.err();
      t.version = *v;
      auto last = r.optional_integer("lastUpdated");
      if (!last) return last.err();
      t.last_updated_ms = *last;
      if (!txn_apps.insert(t.app_id).second) {
        return ctx.fail(errc::parse_error, "two txn actions of appId '" + t.app_id + "'");
      }
      txns.push_back(std::move(t));
    } else if (kind == "commitInfo") {
      if (has_commit_info) return ctx.fail(errc::parse_error, "a second commitInfo action");
      has_commit_info = true;
      info.raw = body;
      if (const auto* ts = body.contains("timestamp") ? &body["timestamp"] : nullptr;
          ts != nullptr && ts->is_number_integer()) {
        info.timestamp_ms = ts->get<int64_t>();
      }
      if (body.contains("operation") && body["operation"].is_string()) {
        info.operation = body["operation"].get<std::string>();
      }
    } else {
      return ctx.fail(errc::parse_error,
                      "unknown action '" + kind +
                          "' (Vigil reads protocol, metaData, add, remove, txn and commitInfo)");
    }
  }
  ctx.line = 0;
  if (version == 0 && (!has_protocol || !has_metadata)) {
    return make_error(errc::parse_error,
                      file + ": version 0 must hold a protocol and a metaData action");
  }
  for (const auto& path : added) {
    if (removed.count(path) != 0) {
      return make_error(errc::parse_error,
                        file + ": '" + path + "' is both added and removed in one commit");
    }
  }
  snap.protocol = protocol;
  snap.metadata = std::move(metadata);
  for (auto& rm : removes) {
    if (snap.files.erase(rm.path) == 0) {
      snap.unmatched_removes.push_back({version, rm.path});
    }
  }
  for (auto& a : adds) {
    std::string path = a.path;
    snap.files[path] = std::move(a);
  }
  for (auto& t : txns) {
    std::string app = t.app_id;
    snap.txns[app] = {std::move(t), version};
  }
  snap.commits.push_back(std::move(info));
  snap.version = version;
  return {};
}

/// Replays commits snap.version + 1 .. `target` (default: the latest) of `table` into `snap`.
status replay(const std::string& table, delta_snapshot& snap, std::optional<int64_t> target) {
  const std::string dir = delta_log_dir(table);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return make_error(errc::not_found, "'" + table + "' is not a Delta table: no _delta_log");
  }
  std::set<int64_t> versions;
  std::string checkpoint;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (const int64_t v = parse_version_name(name); v >= 0) {
      versions.insert(v);
    } else if (name == "_last_checkpoint" || is_checkpoint_name(name)) {
      checkpoint = name;
    }
  }
  if (ec) {
    return make_error(errc::io_error, "cannot list '" + dir + "': " + ec.message());
  }
  if (snap.version < 0 && versions.count(0) == 0) {
    if (!checkpoint.empty()) {
      return make_error(errc::invalid_argument,
                        "'" + table + "': version 0 is gone and reading the table needs its " +
                            "checkpoint (" + checkpoint +
                            "); Vigil replays JSON commits only and does not read checkpoints");
    }
    if (versions.empty()) {
      return make_error(errc::not_found,
                        "'" + table + "' is not a Delta table: no commit in " + dir);
    }
    return make_error(errc::parse_error, "'" + table + "': " + dir + "/" + version_name(0) +
                                             " is missing (the log starts at version " +
                                             std::to_string(*versions.begin()) + ")");
  }
  const int64_t latest = versions.empty() ? -1 : *versions.rbegin();
  if (target && *target > latest) {
    return make_error(errc::invalid_argument, "'" + table + "' has no version " +
                                                  std::to_string(*target) + " (latest is " +
                                                  std::to_string(latest) + ")");
  }
  const int64_t last = target ? *target : latest;
  for (int64_t v = snap.version + 1; v <= last; ++v) {
    const std::string name = version_name(v);
    if (versions.count(v) == 0) {
      return make_error(errc::parse_error, "'" + table + "': gap in the log: " + name +
                                               " is missing but version " + std::to_string(latest) +
                                               " exists");
    }
    auto text = read_file(dir + "/" + name);
    if (!text) return text.err();
    VIGIL_TRY(apply_commit(snap, v, "_delta_log/" + name, *text));
  }
  if (snap.version < 0) {
    return make_error(errc::not_found, "'" + table + "' is not a Delta table: no commit");
  }
  return {};
}

/// Writes `text` as commit `version` unless that version exists. Returns false if it did.
result<bool> put_if_absent(const std::string& table, int64_t version, const std::string& text) {
  const std::string dir = delta_log_dir(table);
  const std::string final_path = dir + "/" + version_name(version);
  const std::string tmp = dir + "/." + version_name(version) + "." + make_uuid() + ".tmp";
  if (auto st = write_file_synced(tmp, text, /*exclusive=*/true); !st) {
    ::unlink(tmp.c_str());
    return with_context("cannot write commit: ", st.err());
  }
  const int rc = ::link(tmp.c_str(), final_path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (link_errno == EEXIST) {
      return false;
    }
    return make_error(errc::io_error,
                      "cannot link '" + final_path + "': " + std::strerror(link_errno));
  }
  if (auto st = fsync_directory(dir); !st) {
    return with_context("committed " + final_path + " but cannot sync its directory: ", st.err());
  }
  return true;
}

ojson partition_json(const delta_partition_values& values) {
  ojson out = ojson::object();
  for (const auto& [k, v] : values) {
    out[k] = v ? ojson(*v) : ojson(nullptr);
  }
  return out;
}

ojson add_json(const delta_add& a) {
  ojson body = {{"path", delta_encode_path(a.path)},
                {"partitionValues", partition_json(a.partition_values)},
                {"size", a.size},
                {"modificationTime", a.modification_time_ms},
                {"dataChange", a.data_change}};
  if (!a.stats.empty()) {
    body["stats"] = a.stats;
  }
  return {{"add", std::move(body)}};
}

ojson remove_json(const delta_remove& rm, int64_t now) {
  ojson body = {{"path", delta_encode_path(rm.path)},
                {"deletionTimestamp", rm.deletion_timestamp_ms.value_or(now)},
                {"dataChange", rm.data_change}};
  if (rm.partition_values && rm.size) {
    body["extendedFileMetadata"] = true;
    body["partitionValues"] = partition_json(*rm.partition_values);
    body["size"] = *rm.size;
  }
  return {{"remove", std::move(body)}};
}

/// `j` as an ordered_json (its keys stay sorted, as nlohmann::json keeps them).
ojson to_ojson(const nlohmann::json& j) {
  return ojson::parse(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

ojson commit_info_json(int64_t now, const std::string& operation, const nlohmann::json& params,
                       const nlohmann::json& lineage, bool blind_append) {
  ojson info = {{"timestamp", now},
                {"operation", operation},
                {"operationParameters", to_ojson(params)},
                {"isBlindAppend", blind_append},
                {"engineInfo", "vigil/" VIGIL_VERSION}};
  if (!lineage.empty()) {
    info["lineage"] = to_ojson(lineage);
  }
  return {{"commitInfo", std::move(info)}};
}

/// Checks a relative data file path: not empty, not absolute, no "..", no hidden component.
status check_data_path(const std::string& path) {
  if (path.empty() || path.front() == '/') {
    return make_error(errc::invalid_argument,
                      "data file path '" + path + "' must be relative to the table root");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == ".." || part.front() == '.' || part.front() == '_') {
      return make_error(errc::invalid_argument,
                        "data file path '" + path +
                            "': empty, '..' or hidden ('.', '_') components are not allowed");
    }
    start = end + 1;
  }
  return {};
}

bool same_columns(const std::vector<delta_column>& a, const std::vector<delta_column>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].type != b[i].type || a[i].nullable != b[i].nullable) {
      return false;
    }
  }
  return true;
}

/// Why metadata `now` (after newer commits) differs from `before` in a way a commit prepared
/// against `before` must not be written over; empty if it does not.
std::string metadata_conflict(const delta_metadata& before, const delta_metadata& now) {
  if (before.id != now.id) return "the table id changed";
  if (!same_columns(before.columns, now.columns)) return "the schema changed";
  if (before.partition_columns != now.partition_columns) return "the partition columns changed";
  if (before.configuration != now.configuration) return "the table configuration changed";
  return "";
}

status check_create(const schema& s, const delta_create_options& options) {
  if (s.size() == 0) {
    return make_error(errc::invalid_argument, "a Delta table needs at least one column");
  }
  std::set<std::string> lower;
  for (const field& f : s.fields()) {
    std::string l = f.name;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
    if (f.name.empty() || !lower.insert(l).second) {
      return make_error(
          errc::invalid_argument,
          "column names must be non-empty and unique regardless of case: '" + f.name + "'");
    }
  }
  std::set<std::string> parts;
  for (const auto& p : options.partition_columns) {
    if (s.index_of(p) < 0 || !parts.insert(p).second) {
      return make_error(errc::invalid_argument,
                        "partition column '" + p + "' is not a column of the schema, or repeated");
    }
  }
  if (parts.size() == s.size()) {
    return make_error(errc::invalid_argument, "a table needs a column that is not a partition one");
  }
  return {};
}

}  // namespace

std::optional<int64_t> delta_snapshot::txn_version(const std::string& app_id) const {
  const auto it = txns.find(app_id);
  if (it == txns.end()) return std::nullopt;
  return it->second.first.version;
}

std::string delta_log_dir(const std::string& table) {
  return table + "/_delta_log";
}

std::string delta_commit_path(const std::string& table, int64_t version) {
  return delta_log_dir(table) + "/" + version_name(version);
}

result<delta_snapshot> read_delta_snapshot(const std::string& table,
                                           std::optional<int64_t> version) {
  if (version && *version < 0) {
    return make_error(errc::invalid_argument,
                      "version " + std::to_string(*version) + " is negative");
  }
  delta_snapshot snap;
  VIGIL_TRY(replay(table, snap, version));
  return snap;
}

result<delta_log> delta_log::create(const std::string& table, const schema& s,
                                    const delta_create_options& options) {
  VIGIL_TRY(check_create(s, options));
  std::error_code ec;
  fs::create_directories(delta_log_dir(table), ec);
  if (ec) {
    return make_error(errc::io_error,
                      "cannot create '" + delta_log_dir(table) + "': " + ec.message());
  }
  const int64_t now = now_ms();
  ojson metadata = {{"id", make_uuid()}};
  if (!options.name.empty()) metadata["name"] = options.name;
  if (!options.description.empty()) metadata["description"] = options.description;
  metadata["format"] = {{"provider", "parquet"}, {"options", ojson::object()}};
  metadata["schemaString"] = delta_schema_string(s);
  metadata["partitionColumns"] = options.partition_columns;
  ojson conf = ojson::object();
  for (const auto& [k, v] : options.configuration) conf[k] = v;
  metadata["configuration"] = std::move(conf);
  metadata["createdTime"] = now;
  nlohmann::json params = {{"isManaged", "false"},
                           {"partitionBy", nlohmann::json(options.partition_columns).dump()},
                           {"properties", nlohmann::json(options.configuration).dump()}};
  std::string text;
  text +=
      dump(commit_info_json(now, "CREATE TABLE", params, nlohmann::json::object(), true)) + "\n";
  text += dump({{"protocol",
                 {{"minReaderVersion", delta_reader_version},
                  {"minWriterVersion", delta_writer_version}}}}) +
          "\n";
  text += dump({{"metaData", std::move(metadata)}}) + "\n";
  auto written = put_if_absent(table, 0, text);
  if (!written) return written.err();
  if (!*written) {
    return make_error(errc::invalid_argument, "Delta table '" + table + "' already exists");
  }
  delta_snapshot snap;
  VIGIL_TRY(apply_commit(snap, 0, "_delta_log/" + version_name(0), text));
  return delta_log(table, std::move(snap));
}

result<delta_log> delta_log::open(const std::string& table) {
  auto snap = read_delta_snapshot(table);
  if (!snap) return snap.err();
  return delta_log(table, std::move(*snap));
}

result<delta_log> delta_log::open_or_create(const std::string& table, const schema& s,
                                            const delta_create_options& options) {
  auto opened = open(table);
  if (!opened && opened.err().code == errc::not_found) {
    auto created = create(table, s, options);
    if (created || !fs::exists(delta_commit_path(table, 0))) {
      return created;
    }
    opened = open(table);  // Another writer created it first.
  }
  if (!opened) return opened.err();
  const delta_metadata& md = opened->snapshot().metadata;
  std::vector<delta_column> wanted;
  schema_ptr ignored;
  VIGIL_TRY(parse_delta_schema(delta_schema_string(s), wanted, ignored));
  if (!same_columns(md.columns, wanted) || md.partition_columns != options.partition_columns) {
    return make_error(errc::invalid_argument, "Delta table '" + table +
                                                  "' exists with other columns or partition " +
                                                  "columns: " + md.schema_string);
  }
  return opened;
}

status delta_log::refresh() {
  return replay(table_, snapshot_, std::nullopt);
}

status delta_log::check_request(const delta_commit_request& request) const {
  if (!request.lineage.is_object() || !request.operation_parameters.is_object()) {
    return make_error(errc::invalid_argument,
                      "commit lineage and operation parameters must be JSON objects");
  }
  if (request.operation.empty()) {
    return make_error(errc::invalid_argument, "commit operation must not be empty");
  }
  if (request.txn && request.txn->app_id.empty()) {
    return make_error(errc::invalid_argument, "txn appId must not be empty");
  }
  const delta_metadata& md = snapshot_.metadata;
  for (const auto& c : md.columns) {
    if (c.has_invariants) {
      return make_error(errc::invalid_argument, "column '" + c.name +
                                                    "' has a delta.invariants constraint, which "
                                                    "Vigil cannot enforce");
    }
  }
  const auto append_only = md.configuration.find("delta.appendOnly");
  if (append_only != md.configuration.end() && append_only->second == "true") {
    for (const auto& rm : request.removes) {
      if (rm.data_change) {
        return make_error(
            errc::invalid_argument,
            "the table is append-only (delta.appendOnly): cannot remove '" + rm.path + "'");
      }
    }
  }
  const std::set<std::string> partition_set(md.partition_columns.begin(),
                                            md.partition_columns.end());
  std::set<std::string> paths;
  for (const auto& a : request.adds) {
    VIGIL_TRY(check_data_path(a.path));
    if (!paths.insert(a.path).second) {
      return make_error(errc::invalid_argument, "'" + a.path + "' is added twice");
    }
    std::set<std::string> keys;
    for (const auto& [k, v] : a.partition_values) keys.insert(k);
    if (keys != partition_set) {
      return make_error(errc::invalid_argument,
                        "add '" + a.path +
                            "': partitionValues must name exactly the partition "
                            "columns of the table");
    }
    if (a.size < 0) {
      return make_error(errc::invalid_argument, "add '" + a.path + "': negative size");
    }
  }
  std::set<std::string> removed;
  for (const auto& rm : request.removes) {
    VIGIL_TRY(check_data_path(rm.path));
    if (paths.count(rm.path) != 0 || !removed.insert(rm.path).second) {
      return make_error(errc::invalid_argument,
                        "'" + rm.path + "' is removed twice or both added and removed");
    }
  }
  return {};
}

result<delta_commit_result> delta_log::commit(const delta_commit_request& request) {
  // The caller wrote its files for the metadata it last saw: a change since is a conflict.
  const delta_metadata seen = snapshot_.metadata;
  auto check_metadata = [&]() -> status {
    if (const std::string why = metadata_conflict(seen, snapshot_.metadata); !why.empty()) {
      return make_error(errc::invalid_argument,
                        "cannot commit to '" + table_ + "': a concurrent commit (up to version " +
                            std::to_string(snapshot_.version) + ") changed the metadata: " + why);
    }
    return {};
  };
  VIGIL_TRY(refresh());
  VIGIL_TRY(check_metadata());
  VIGIL_TRY(check_request(request));
  delta_commit_result out;
  auto duplicate = [&]() -> bool {
    if (!request.txn) return false;
    const auto it = snapshot_.txns.find(request.txn->app_id);
    if (it == snapshot_.txns.end() || it->second.first.version < request.txn->version) {
      return false;
    }
    out.committed = false;
    out.version = it->second.second;
    return true;
  };
  if (duplicate()) return out;
  for (const auto& rm : request.removes) {
    if (snapshot_.files.count(rm.path) == 0) {
      return make_error(errc::invalid_argument, "cannot remove '" + rm.path +
                                                    "': not a live file of the table at version " +
                                                    std::to_string(snapshot_.version));
    }
  }
  while (out.attempts < max_commit_attempts) {
    const int64_t version = snapshot_.version + 1;
    const int64_t now = now_ms();
    std::string text = dump(commit_info_json(now, request.operation, request.operation_parameters,
                                             request.lineage, request.removes.empty())) +
                       "\n";
    if (request.txn) {
      ojson txn = {
          {"appId", request.txn->app_id}, {"version", request.txn->version}, {"lastUpdated", now}};
      text += dump({{"txn", std::move(txn)}}) + "\n";
    }
    for (const auto& rm : request.removes) text += dump(remove_json(rm, now)) + "\n";
    for (const auto& a : request.adds) text += dump(add_json(a)) + "\n";
    ++out.attempts;
    auto written = put_if_absent(table_, version, text);
    if (!written) return written.err();
    if (*written) {
      VIGIL_TRY(apply_commit(snapshot_, version, "_delta_log/" + version_name(version), text));
      out.committed = true;
      out.version = version;
      return out;
    }
    // Lost the race for `version`: read what the winners wrote, then decide.
    VIGIL_TRY(refresh());
    VIGIL_TRY(check_metadata());
    if (duplicate()) return out;
    for (const auto& rm : request.removes) {
      if (snapshot_.files.count(rm.path) == 0) {
        return make_error(errc::invalid_argument,
                          "cannot commit to '" + table_ + "': a concurrent commit (up to " +
                              "version " + std::to_string(snapshot_.version) + ") removed '" +
                              rm.path + "'");
      }
    }
  }
  return make_error(errc::resource_exhausted,
                    "cannot commit to '" + table_ + "': lost the race for " +
                        std::to_string(max_commit_attempts) + " versions in a row");
}

result<delta_add> delta_log::describe_file(const std::string& relative_path,
                                           const parquet_file_info& info,
                                           delta_partition_values partition_values) const {
  VIGIL_TRY(check_data_path(relative_path));
  const std::string full = table_ + "/" + relative_path;
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) {
    return make_error(errc::io_error, "cannot stat '" + full + "': " + std::strerror(errno));
  }
  if (static_cast<uint64_t>(st.st_size) != info.file_bytes) {
    return make_error(errc::invalid_argument, "'" + full + "' has " + std::to_string(st.st_size) +
                                                  " bytes but its writer reported " +
                                                  std::to_string(info.file_bytes));
  }
  delta_add a;
  a.path = relative_path;
  a.partition_values = std::move(partition_values);
  a.size = static_cast<int64_t>(st.st_size);
  a.modification_time_ms =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  a.data_change = true;
  a.stats = delta_stats_json(info, snapshot_.metadata.partition_columns);
  return a;
}

}  // namespace vigil::lake
