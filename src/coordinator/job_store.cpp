#include "coordinator/job_store.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include "common/durable_file.hpp"
#include "common/ids.hpp"
#include "coordinator/proto_convert.hpp"

namespace vigil {
namespace {

constexpr std::string_view kMagic = "VIGILJOB";
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 8 + 4 + 4 + 4 + 8;
constexpr std::string_view kSuffix = ".job";
constexpr std::string_view kTempSuffix = ".job.tmp";

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(std::string_view in, size_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[offset + i])) << (8 * i);
  }
  return v;
}

status check_id(std::string_view id) {
  if (is_path_safe_id(id) && id.front() != '.') return {};
  return make_error(errc::invalid_argument,
                    "job store: job id '" + std::string(id) +
                        "' must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.'");
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string encode(const stored_job& job) {
  std::string job_bytes = to_proto(job.info).SerializeAsString();
  std::string graph_bytes = job.graph.SerializeAsString();
  std::string payload = job_bytes + graph_bytes;
  std::string out(kMagic);
  put_u32(out, kVersion);
  put_u32(out, static_cast<uint32_t>(job_bytes.size()));
  put_u32(out, static_cast<uint32_t>(graph_bytes.size()));
  put_u64(out, XXH64(payload.data(), payload.size(), 0));
  out += payload;
  return out;
}

/// Decodes a file's bytes; errors say what is wrong, without the path.
result<stored_job> decode(std::string_view bytes) {
  if (bytes.size() < kHeaderSize || bytes.substr(0, kMagic.size()) != kMagic) {
    return make_error(errc::parse_error, "not a job file (bad header)");
  }
  auto version = static_cast<uint32_t>(get_le(bytes, 8, 4));
  if (version != kVersion) {
    return make_error(errc::parse_error, "unsupported format version " + std::to_string(version));
  }
  auto job_len = get_le(bytes, 12, 4);
  auto graph_len = get_le(bytes, 16, 4);
  auto checksum = get_le(bytes, 20, 8);
  auto payload = bytes.substr(kHeaderSize);
  if (payload.size() != job_len + graph_len) {
    return make_error(errc::parse_error, "truncated or oversized: header announces " +
                                             std::to_string(job_len + graph_len) +
                                             " payload bytes, file has " +
                                             std::to_string(payload.size()));
  }
  if (XXH64(payload.data(), payload.size(), 0) != checksum) {
    return make_error(errc::parse_error, "checksum mismatch");
  }
  v1::Job job;
  stored_job out;
  if (!job.ParseFromArray(payload.data(), static_cast<int>(job_len))) {
    return make_error(errc::parse_error, "job record does not parse");
  }
  if (!out.graph.ParseFromArray(payload.data() + job_len, static_cast<int>(graph_len))) {
    return make_error(errc::parse_error, "job graph does not parse");
  }
  auto info = from_proto(job);
  if (!info) return info.err();
  out.info = std::move(*info);
  return out;
}

}  // namespace

result<job_store> job_store::open(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return make_error(errc::io_error, "job store: " + dir.string() + ": not a usable directory" +
                                          (ec ? ": " + ec.message() : std::string()));
  }
  job_store store(dir);
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return make_error(errc::io_error, "job store: " + dir.string() + ": " + ec.message());
  for (const auto& entry : it) {
    auto path = entry.path();
    auto name = path.filename().string();
    if (ends_with(name, kTempSuffix)) {
      std::filesystem::remove(path, ec);
      continue;
    }
    if (!ends_with(name, kSuffix)) continue;
    auto skip = [&](const std::string& why) {
      store.load_errors_.push_back(
          make_error(errc::parse_error, "job store: " + path.string() + ": " + why));
    };
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad() || !in.is_open()) {
      skip("cannot be read");
      continue;
    }
    auto job = decode(bytes);
    if (!job) {
      skip(job.err().message);
      continue;
    }
    auto expected_id = name.substr(0, name.size() - kSuffix.size());
    if (job->info.id != expected_id) {
      skip("holds job '" + job->info.id + "', expected '" + expected_id + "'");
      continue;
    }
    store.jobs_.emplace(expected_id, std::move(*job));
  }
  return store;
}

std::vector<const stored_job*> job_store::jobs() const {
  std::vector<const stored_job*> out;
  out.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) out.push_back(&job);
  std::stable_sort(out.begin(), out.end(), [](const stored_job* a, const stored_job* b) {
    return a->info.submitted_at_us < b->info.submitted_at_us;
  });
  return out;
}

const stored_job* job_store::find(std::string_view job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

status job_store::put(const job_info& info, const v1::JobGraph& graph) {
  VIGIL_TRY(check_id(info.id));
  stored_job job{info, graph};
  VIGIL_TRY(write(job));
  jobs_.insert_or_assign(info.id, std::move(job));
  return {};
}

status job_store::update(const job_info& info) {
  auto it = jobs_.find(info.id);
  if (it == jobs_.end()) {
    return make_error(errc::not_found, "job store: no job with id '" + info.id + "'");
  }
  stored_job job{info, it->second.graph};
  VIGIL_TRY(write(job));
  it->second.info = info;
  return {};
}

status job_store::write(const stored_job& job) const {
  auto final_path = dir_ / (job.info.id + std::string(kSuffix));
  if (auto st = replace_file_synced(final_path, encode(job)); !st) {
    return with_context("job store: ", st.err());
  }
  if (auto st = fsync_directory(dir_); !st) return with_context("job store: ", st.err());
  return {};
}

}  // namespace vigil
