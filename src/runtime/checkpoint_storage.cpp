#include "runtime/checkpoint_storage.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/durable_file.hpp"

namespace vigil {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view chk_prefix = "chk-";
constexpr std::string_view metadata_name = "_metadata";
constexpr std::string_view shared_list_name = "SHARED";

error io_failure(const fs::path& path, std::string_view what, int err) {
  return make_error(errc::io_error, "checkpoint storage: " + path.string() + ": " +
                                        std::string(what) + ": " + std::strerror(err));
}

/// Errors of the durable-file helpers, prefixed like this class's own.
status in_storage(status st) {
  if (st) return st;
  return with_context("checkpoint storage: ", st.err());
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// The checkpoint id of a "chk-<id>" directory name, or -1.
int64_t id_of(const std::string& name) {
  if (name.rfind(chk_prefix, 0) != 0) return -1;
  std::string digits = name.substr(chk_prefix.size());
  if (digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoll(digits);
}

/// The JSON object in the metadata file `file`.
result<nlohmann::json> read_metadata(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return io_failure(file, "open", errno);
  auto meta = nlohmann::json::parse(in, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) {
    return make_error(errc::parse_error, file.string() + ": not JSON");
  }
  return meta;
}

}  // namespace

fs::path checkpoint_storage::checkpoint_dir(int64_t id) const {
  return root_ / (std::string(chk_prefix) + std::to_string(id));
}

result<snapshot_stats> checkpoint_storage::store_state(int64_t id, const std::string& subtask,
                                                       const fs::path& rocksdb_checkpoint,
                                                       std::string_view db_identity) {
  // SST names are numbers unique within one RocksDB instance; the instance's identity makes
  // them unique across instances (a restarted job starts a new one).
  std::string identity;
  for (char c : db_identity) {
    if (std::isalnum(static_cast<unsigned char>(c))) identity += c;
  }
  if (identity.empty()) {
    return make_error(errc::state_error, "checkpoint storage: " + rocksdb_checkpoint.string() +
                                             ": the RocksDB instance has no identity");
  }
  fs::path shared = root_ / "shared" / subtask;
  fs::path own = checkpoint_dir(id) / subtask;
  std::error_code ec;
  fs::create_directories(shared, ec);
  if (ec) return io_failure(shared, "create", ec.value());
  fs::create_directories(own, ec);
  if (ec) return io_failure(own, "create", ec.value());

  snapshot_stats stats;
  std::string list;
  for (const auto& entry : fs::directory_iterator(rocksdb_checkpoint, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    uint64_t size = entry.file_size();
    ++stats.files;
    stats.bytes += size;
    if (ends_with(name, ".sst")) {
      std::string stored = identity + "-" + name;
      list += stored + "\n";
      fs::path dst = shared / stored;
      std::error_code exists_ec;
      if (fs::exists(dst, exists_ec) && fs::file_size(dst, exists_ec) == size) continue;
      if (auto st = in_storage(link_or_copy_synced(entry.path(), dst)); !st) return st.err();
    } else {
      if (auto st = in_storage(link_or_copy_synced(entry.path(), own / name)); !st) {
        return st.err();
      }
    }
    ++stats.files_copied;
    stats.bytes_copied += size;
  }
  if (ec) return io_failure(rocksdb_checkpoint, "list", ec.value());
  if (auto st = in_storage(replace_file_synced(own / shared_list_name, list)); !st) return st.err();
  if (auto st = in_storage(fsync_directory(shared)); !st) return st.err();
  if (auto st = in_storage(fsync_directory(own)); !st) return st.err();
  fs::remove_all(rocksdb_checkpoint, ec);
  return stats;
}

status checkpoint_storage::store_operator_state(int64_t id, const std::string& subtask,
                                                std::string_view bytes) {
  fs::path own = checkpoint_dir(id) / subtask;
  std::error_code ec;
  fs::create_directories(own, ec);
  if (ec) return io_failure(own, "create", ec.value());
  return in_storage(replace_file_synced(own / "operator_state", bytes));
}

status checkpoint_storage::complete(int64_t id, std::string_view metadata) {
  fs::path dir = checkpoint_dir(id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_failure(dir, "create", ec.value());
  if (auto st = in_storage(replace_file_synced(dir / metadata_name, metadata)); !st) return st;
  return in_storage(fsync_directory(dir));
}

void checkpoint_storage::abandon(int64_t id) {
  std::error_code ec;
  fs::remove_all(checkpoint_dir(id), ec);
}

std::vector<int64_t> checkpoint_storage::completed() const {
  std::vector<int64_t> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    int64_t id = id_of(entry.path().filename().string());
    if (id >= 0 && fs::exists(entry.path() / metadata_name, ec)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

status checkpoint_storage::export_checkpoint(int64_t id, const fs::path& target) const {
  std::error_code ec;
  if (fs::exists(target, ec)) {
    return make_error(errc::invalid_argument, "savepoint: " + target.string() + " already exists");
  }
  fs::path from = checkpoint_dir(id);
  if (!fs::exists(from / metadata_name, ec)) {
    return make_error(errc::not_found,
                      "no complete checkpoint " + std::to_string(id) + " in " + root_.string());
  }
  checkpoint_storage out(target);
  fs::path to = out.checkpoint_dir(id);
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_directory()) continue;
    std::string subtask = entry.path().filename().string();
    fs::create_directories(to / subtask, ec);
    if (ec) return io_failure(to / subtask, "create", ec.value());
    for (const auto& f : fs::directory_iterator(entry.path(), ec)) {
      if (auto st = in_storage(copy_file_synced(f.path(), to / subtask / f.path().filename()));
          !st) {
        return st;
      }
    }
    if (!fs::exists(entry.path() / shared_list_name, ec)) continue;
    auto files = shared_files(id, subtask);
    if (!files) return files.err();
    fs::path shared = target / "shared" / subtask;
    fs::create_directories(shared, ec);
    if (ec) return io_failure(shared, "create", ec.value());
    for (const auto& name : *files) {
      // Shared files are immutable (written once under a temporary name, then renamed): on the
      // same file system a hard link is a copy that costs no data I/O, and retention here only
      // unlinks its own name. Elsewhere (another volume), a synced copy.
      std::error_code link_ec;
      fs::create_hard_link(root_ / "shared" / subtask / name, shared / name, link_ec);
      if (!link_ec) continue;
      if (auto st = in_storage(copy_file_synced(root_ / "shared" / subtask / name, shared / name));
          !st) {
        return st;
      }
    }
    if (auto st = in_storage(fsync_directory(shared)); !st) return st;
    if (auto st = in_storage(fsync_directory(to / subtask)); !st) return st;
  }
  if (ec) return io_failure(from, "list", ec.value());
  std::ifstream in(from / metadata_name, std::ios::binary);
  std::string metadata((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return out.complete(id, metadata);
}

result<checkpoint_storage::job_shape> checkpoint_storage::shape(int64_t id) const {
  fs::path file = checkpoint_dir(id) / metadata_name;
  auto read = read_metadata(file);
  if (!read) return read.err();
  const nlohmann::json& meta = *read;
  job_shape out;
  // Checkpoints written before the shape was recorded have neither field: their nodes are
  // taken to have the current parallelism.
  if (meta.contains("max_parallelism") && meta["max_parallelism"].is_number_unsigned()) {
    out.max_parallelism = meta["max_parallelism"].get<uint32_t>();
  }
  if (meta.contains("nodes") && meta["nodes"].is_array()) {
    for (const auto& n : meta["nodes"]) {
      if (!n.is_object() || !n.contains("id") || !n["id"].is_string() ||
          !n.contains("parallelism") || !n["parallelism"].is_number_unsigned()) {
        return make_error(errc::parse_error, file.string() + ": malformed node entry");
      }
      out.parallelism[n["id"].get<std::string>()] = n["parallelism"].get<uint32_t>();
    }
  }
  return out;
}

result<std::string> checkpoint_storage::source_positions(int64_t id) const {
  auto meta = read_metadata(checkpoint_dir(id) / metadata_name);
  if (!meta) return meta.err();
  // Checkpoints written before source positions were recorded have none.
  auto it = meta->find("sources");
  if (it == meta->end() || !it->is_object()) return std::string();
  return it->dump();
}

int64_t checkpoint_storage::highest_id() const {
  int64_t highest = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    highest = std::max(highest, id_of(entry.path().filename().string()));
  }
  return highest;
}

result<std::vector<std::string>> checkpoint_storage::shared_files(
    int64_t id, const std::string& subtask) const {
  fs::path list = checkpoint_dir(id) / subtask / shared_list_name;
  std::ifstream in(list);
  if (!in) return io_failure(list, "open", errno);
  std::vector<std::string> files;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) files.push_back(line);
  }
  return files;
}

result<bool> checkpoint_storage::restore_state(int64_t id, const std::string& subtask,
                                               const fs::path& target) const {
  fs::path own = checkpoint_dir(id) / subtask;
  std::error_code ec;
  if (!fs::exists(own / shared_list_name, ec)) return false;
  auto files = shared_files(id, subtask);
  if (!files) return files.err();
  fs::create_directories(target, ec);
  if (ec) return io_failure(target, "create", ec.value());
  for (const auto& stored : *files) {
    auto dash = stored.find('-');
    if (dash == std::string::npos) {
      return make_error(errc::state_error, "checkpoint storage: bad shared file name '" + stored +
                                               "' in " + own.string());
    }
    // RocksDB finds SST files by number: restore the original name. A hard link would do
    // on the same file system; a copy leaves the checkpoint untouched by the new instance.
    if (auto st = in_storage(copy_file_synced(root_ / "shared" / subtask / stored,
                                              target / stored.substr(dash + 1)));
        !st) {
      return st.err();
    }
  }
  for (const auto& entry : fs::directory_iterator(own, ec)) {
    std::string name = entry.path().filename().string();
    if (name == shared_list_name || name == "operator_state") continue;
    if (auto st = in_storage(copy_file_synced(entry.path(), target / name)); !st) return st.err();
  }
  if (ec) return io_failure(own, "list", ec.value());
  return true;
}

result<std::string> checkpoint_storage::operator_state(int64_t id,
                                                       const std::string& subtask) const {
  fs::path file = checkpoint_dir(id) / subtask / "operator_state";
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::string();
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return io_failure(file, "read", errno);
  return bytes;
}

status checkpoint_storage::retain(size_t keep) {
  auto done = completed();
  if (done.empty()) return {};
  size_t first_kept = done.size() > keep ? done.size() - keep : 0;
  int64_t oldest_kept = done[first_kept];
  std::error_code ec;
  // Checkpoint directories older than the oldest kept one go, complete or not.
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    int64_t id = id_of(entry.path().filename().string());
    if (id >= 0 && id < oldest_kept) fs::remove_all(entry.path(), ec);
  }
  // Shared files that no remaining checkpoint directory lists go too. The coordinator calls
  // this between checkpoints, so no subtask is storing files that it has not listed yet.
  std::set<std::string> referenced;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    if (id_of(entry.path().filename().string()) < 0) continue;
    for (const auto& sub : fs::directory_iterator(entry.path(), ec)) {
      if (!sub.is_directory()) continue;
      std::ifstream in(sub.path() / shared_list_name);
      std::string subtask = sub.path().filename().string();
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) referenced.insert(subtask + "/" + line);
      }
    }
  }
  fs::path shared = root_ / "shared";
  for (const auto& sub : fs::directory_iterator(shared, ec)) {
    if (!sub.is_directory()) continue;
    std::string subtask = sub.path().filename().string();
    for (const auto& file : fs::directory_iterator(sub.path(), ec)) {
      std::string key = subtask + "/" + file.path().filename().string();
      if (referenced.count(key) == 0) fs::remove(file.path(), ec);
    }
  }
  return {};
}

}  // namespace vigil
