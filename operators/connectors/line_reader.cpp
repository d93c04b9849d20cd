#include "operators/connectors/line_reader.hpp"

#include <cerrno>
#include <cstring>

namespace vigil {

line_reader::~line_reader() {
  close();
}

status line_reader::open(const std::string& path) {
  close();
  path_ = path;
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    return make_error(errno == ENOENT ? errc::not_found : errc::io_error,
                      "cannot open '" + path + "': " + std::strerror(errno));
  }
  buffer_.resize(chunk_size_);
  begin_ = end_ = 0;
  eof_ = false;
  at_start_ = true;
  line_number_ = 0;
  error_.clear();
  return {};
}

bool line_reader::fill() {
  if (eof_ || file_ == nullptr) return false;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() - end_ < chunk_size_ / 2) buffer_.resize(buffer_.size() * 2);
  const size_t n = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
  end_ += n;
  if (n == 0) {
    if (std::ferror(file_) != 0) error_ = "read error in '" + path_ + "': " + std::strerror(errno);
    eof_ = true;
    return false;
  }
  return true;
}

bool line_reader::next(std::string_view& line) {
  size_t scanned = begin_;
  for (;;) {
    if (at_start_ && end_ - begin_ >= 3) {
      if (std::memcmp(buffer_.data() + begin_, "\xEF\xBB\xBF", 3) == 0) begin_ += 3;
      at_start_ = false;
      scanned = begin_;
    }
    const char* base = buffer_.data();
    const void* nl = std::memchr(base + scanned, '\n', end_ - scanned);
    if (nl != nullptr) {
      const auto pos = static_cast<size_t>(static_cast<const char*>(nl) - base);
      size_t len = pos - begin_;
      if (len > 0 && base[begin_ + len - 1] == '\r') --len;
      line = std::string_view(base + begin_, len);
      begin_ = pos + 1;
      ++line_number_;
      return true;
    }
    const size_t scanned_offset = end_ - begin_;
    if (!fill()) {
      at_start_ = false;
      if (begin_ == end_) return false;
      size_t len = end_ - begin_;
      if (buffer_[begin_ + len - 1] == '\r') --len;
      line = std::string_view(buffer_.data() + begin_, len);
      begin_ = end_;
      ++line_number_;
      return true;
    }
    scanned = begin_ + scanned_offset;
  }
}

void line_reader::close() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

}  // namespace vigil
