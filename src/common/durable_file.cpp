#include "common/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil {

namespace fs = std::filesystem;

namespace {

error io_failure(const fs::path& path, std::string_view step, int err) {
  return make_error(errc::io_error,
                    path.string() + ": " + std::string(step) + ": " + std::strerror(err));
}

/// Fsyncs and closes `fd`, reporting the first failure.
status sync_and_close(int fd, const fs::path& path) {
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return io_failure(path, "fsync", err);
  }
  if (::close(fd) != 0) return io_failure(path, "close", errno);
  return {};
}

fs::path temp_of(const fs::path& path) {
  fs::path tmp = path;
  tmp += ".tmp";
  return tmp;
}

status rename_over(const fs::path& tmp, const fs::path& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::error_code ec;
    fs::remove(tmp, ec);
    return io_failure(path, "rename", err);
  }
  return {};
}

}  // namespace

status write_file_synced(const fs::path& path, std::string_view bytes, bool exclusive) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return io_failure(path, "open", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      return io_failure(path, "write", err);
    }
    done += static_cast<size_t>(n);
  }
  return sync_and_close(fd, path);
}

status fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_failure(dir, "open directory", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return io_failure(dir, "fsync directory", err);
  return {};
}

status replace_file_synced(const fs::path& path, std::string_view bytes) {
  fs::path tmp = temp_of(path);
  VIGIL_TRY(write_file_synced(tmp, bytes));
  return rename_over(tmp, path);
}

status copy_file_synced(const fs::path& src, const fs::path& dst) {
  fs::path tmp = temp_of(dst);
  std::error_code ec;
  fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) return io_failure(src, "copy to " + tmp.string(), ec.value());
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_failure(tmp, "open", errno);
  VIGIL_TRY(sync_and_close(fd, tmp));
  return rename_over(tmp, dst);
}

status link_or_copy_synced(const fs::path& src, const fs::path& dst) {
  fs::path tmp = temp_of(dst);
  std::error_code ec;
  fs::remove(tmp, ec);  // A leftover of a crash would make link() fail.
  if (::link(src.c_str(), tmp.c_str()) != 0) {
    // Another file system (EXDEV) or one without hard links: a copy does. Should the copy fail
    // too, its error says why; the link's is kept beside it.
    const int link_err = errno;
    auto st = copy_file_synced(src, dst);
    if (st) return st;
    return make_error(st.err().code, st.err().message + " (after a hard link failed: " +
                                         std::strerror(link_err) + ")");
  }
  // The link is the same file: fsyncing it makes the data durable under the new name.
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    fs::remove(tmp, ec);
    return io_failure(tmp, "open", err);
  }
  if (auto st = sync_and_close(fd, tmp); !st) {
    fs::remove(tmp, ec);
    return st;
  }
  return rename_over(tmp, dst);
}

}  // namespace vigil
