#include "lake/delta_verify.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace vigil::lake {

std::optional<int64_t> delta_num_records(const delta_add& add) {
  if (add.stats.empty()) return std::nullopt;
  const auto j = nlohmann::json::parse(add.stats, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto it = j.find("numRecords");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<std::string> delta_local_path(const std::string& table, const std::string& path) {
  if (path.rfind("file://", 0) == 0) {
    return path.substr(7);
  }
  if (path.rfind("file:/", 0) == 0) {
    return path.substr(5);
  }
  if (path.front() == '/') {
    return path;
  }
  if (path.find("://") != std::string::npos) {
    return std::nullopt;
  }
  return table + "/" + path;
}

delta_verify_report verify_delta_table(const std::string& table) {
  delta_verify_report report;
  auto snap = read_delta_snapshot(table);
  if (!snap) {
    report.problems.push_back(snap.err().message);
    return report;
  }
  report.version = snap->version;
  report.live_files = snap->files.size();
  for (const auto& rm : snap->unmatched_removes) {
    report.problems.push_back("version " + std::to_string(rm.version) + " removes '" + rm.path +
                              "', which is not a live file at that version");
  }
  const auto& parts = snap->metadata.partition_columns;
  const std::set<std::string> part_set(parts.begin(), parts.end());
  for (const auto& [path, add] : snap->files) {
    std::set<std::string> keys;
    for (const auto& [k, v] : add.partition_values) keys.insert(k);
    if (keys != part_set) {
      report.problems.push_back("'" + path +
                                "': partitionValues do not name exactly the partition columns");
    }
    if (!add.stats.empty() && !delta_num_records(add)) {
      report.problems.push_back("'" + path + "': stats are not JSON with a numRecords count");
    }
    const auto local = delta_local_path(table, path);
    if (!local) {
      report.problems.push_back("'" + path + "' is not a local file; not checked");
      continue;
    }
    struct stat st {};
    if (::stat(local->c_str(), &st) != 0) {
      report.problems.push_back("'" + path + "' is missing (" + std::strerror(errno) + ")");
      continue;
    }
    if (st.st_size != add.size) {
      report.problems.push_back("'" + path + "' has " + std::to_string(st.st_size) +
                                " bytes, the log says " + std::to_string(add.size));
    }
  }
  return report;
}

}  // namespace vigil::lake
