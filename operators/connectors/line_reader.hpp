#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace vigil {

/// Reads a text file line by line through a buffer that is refilled in chunks, so memory stays
/// bounded by the longest line, not the file size. Lines end at '\n'; one '\r' before it is
/// dropped (CRLF files); a last line without '\n' is returned too; a UTF-8 byte order mark at
/// the start of the file is skipped.
class line_reader {
 public:
  static constexpr size_t default_chunk_size = size_t{1} << 20;

  explicit line_reader(size_t chunk_size = default_chunk_size) : chunk_size_(chunk_size) {}
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  /// Opens `path`; the error names the path.
  status open(const std::string& path);

  /// The next line without its terminator, valid until the next call; false at the end of the
  /// file or after a read error (see failed()).
  bool next(std::string_view& line);

  /// The 1-based number of the line last returned by next().
  uint64_t line_number() const { return line_number_; }

  /// A read error ended the file early; its description.
  bool failed() const { return !error_.empty(); }
  const std::string& error_message() const { return error_; }

  void close();

 private:
  /// Reads more bytes after end_, moving the unread part to the front first; false at EOF.
  bool fill();

  size_t chunk_size_;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  size_t begin_ = 0;  ///< First unread byte.
  size_t end_ = 0;    ///< One past the last valid byte.
  bool eof_ = false;
  bool at_start_ = true;
  uint64_t line_number_ = 0;
  std::string error_;
};

}  // namespace vigil
