#pragma once

// Test support: a Thrift compact decoder and a minimal Parquet reader for the files
// parquet_writer produces (flat schema, data pages v1, PLAIN). Throws std::runtime_error on
// malformed input, which fails the calling test.

#include <snappy.h>
#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "lake/thrift_compact.hpp"

namespace vigil::lake::testing {

/// A decoded Thrift value: an integer (bool, byte, i16, i32, i64), a double, a binary, a list
/// or a struct (field ids with their values).
struct thrift_value {
  thrift_type type = thrift_type::structure;
  int64_t i = 0;  ///< Integers; bools as 0/1.
  double d = 0;
  std::string s;
  std::vector<thrift_value> items;  ///< List elements, or struct field values.
  std::vector<int16_t> ids;         ///< Struct field ids, parallel to items.

  bool has(int16_t id) const {
    for (int16_t x : ids) {
      if (x == id) {
        return true;
      }
    }
    return false;
  }
  const thrift_value& operator[](int16_t id) const {
    for (size_t k = 0; k < ids.size(); ++k) {
      if (ids[k] == id) {
        return items[k];
      }
    }
    throw std::runtime_error("thrift struct has no field " + std::to_string(id));
  }
};

/// Decodes compact-protocol structs from a byte range.
class compact_decoder {
 public:
  explicit compact_decoder(std::string_view data) : data_(data) {}

  size_t position() const { return pos_; }

  thrift_value read_struct() {
    thrift_value v;
    v.type = thrift_type::structure;
    int16_t last = 0;
    while (true) {
      const uint8_t header = byte();
      if (header == 0) {
        return v;
      }
      const auto type = static_cast<thrift_type>(header & 0x0f);
      const int delta = header >> 4;
      const int16_t id = delta != 0 ? static_cast<int16_t>(last + delta)
                                    : static_cast<int16_t>(unzigzag(varint()));
      last = id;
      v.ids.push_back(id);
      if (type == thrift_type::bool_true || type == thrift_type::bool_false) {
        thrift_value b;
        b.type = thrift_type::bool_true;
        b.i = type == thrift_type::bool_true ? 1 : 0;
        v.items.push_back(b);
      } else {
        v.items.push_back(read_value(type));
      }
    }
  }

 private:
  thrift_value read_value(thrift_type type) {
    thrift_value v;
    v.type = type;
    switch (type) {
      case thrift_type::byte:
        v.i = static_cast<int8_t>(byte());
        return v;
      case thrift_type::i16:
      case thrift_type::i32:
      case thrift_type::i64:
        v.i = unzigzag(varint());
        return v;
      case thrift_type::double_: {
        const std::string_view b = bytes(8);
        std::memcpy(&v.d, b.data(), 8);
        return v;
      }
      case thrift_type::binary:
        v.s = std::string(bytes(varint()));
        return v;
      case thrift_type::list:
      case thrift_type::set: {
        const uint8_t header = byte();
        uint64_t size = header >> 4;
        if (size == 15) {
          size = varint();
        }
        const auto element = static_cast<thrift_type>(header & 0x0f);
        for (uint64_t k = 0; k < size; ++k) {
          if (element == thrift_type::bool_true || element == thrift_type::bool_false) {
            thrift_value b;
            b.type = thrift_type::bool_true;
            b.i = byte() == 1 ? 1 : 0;
            v.items.push_back(b);
          } else {
            v.items.push_back(read_value(element));
          }
        }
        return v;
      }
      case thrift_type::structure:
        return read_struct();
      default:
        throw std::runtime_error("unsupported thrift type " + std::to_string(int(type)));
    }
  }

  uint8_t byte() {
    if (pos_ >= data_.size()) {
      throw std::runtime_error("thrift data ends early");
    }
    return static_cast<uint8_t>(data_[pos_++]);
  }
  std::string_view bytes(uint64_t n) {
    if (n > data_.size() - pos_) {
      throw std::runtime_error("thrift data ends early");
    }
    const std::string_view b = data_.substr(pos_, n);
    pos_ += n;
    return b;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
    throw std::runtime_error("varint too long");
  }
  static int64_t unzigzag(uint64_t v) {
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }

  std::string_view data_;
  size_t pos_ = 0;
};

/// Decodes `n` values of RLE/bit-packed hybrid data with bit width 1.
inline std::vector<uint8_t> decode_levels_rle(std::string_view data, size_t n) {
  std::vector<uint8_t> out;
  size_t pos = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (pos >= data.size()) {
        throw std::runtime_error("levels end early");
      }
      const uint8_t b = static_cast<uint8_t>(data[pos++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
  };
  while (out.size() < n) {
    const uint64_t header = varint();
    if ((header & 1) == 0) {
      if (pos >= data.size()) {
        throw std::runtime_error("levels end early");
      }
      const uint8_t v = static_cast<uint8_t>(data[pos++]);
      out.insert(out.end(), header >> 1, v);
    } else {
      for (uint64_t g = 0; g < (header >> 1); ++g) {
        if (pos >= data.size()) {
          throw std::runtime_error("levels end early");
        }
        const uint8_t b = static_cast<uint8_t>(data[pos++]);
        for (int k = 0; k < 8; ++k) {
          out.push_back((b >> k) & 1);
        }
      }
    }
  }
  if (pos != data.size()) {
    throw std::runtime_error("levels have trailing bytes");
  }
  out.resize(n);
  return out;
}

/// The whole content of a file.
inline std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Checks the magic at both ends and decodes the footer (FileMetaData).
inline thrift_value read_footer(const std::string& file) {
  if (file.size() < 12 || file.substr(0, 4) != "PAR1" || file.substr(file.size() - 4) != "PAR1") {
    throw std::runtime_error("not a Parquet file");
  }
  uint32_t len = 0;
  std::memcpy(&len, file.data() + file.size() - 8, 4);
  if (len > file.size() - 12) {
    throw std::runtime_error("footer length out of range");
  }
  compact_decoder d(std::string_view(file).substr(file.size() - 8 - len, len));
  thrift_value footer = d.read_struct();
  if (d.position() != len) {
    throw std::runtime_error("footer has trailing bytes");
  }
  return footer;
}

/// One decoded data page: the page header and, per row, the definition level and (for
/// non-null rows, in order) the PLAIN value bytes.
struct decoded_page {
  thrift_value header;
  std::vector<uint8_t> levels;      ///< Empty for required columns.
  std::vector<std::string> values;  ///< Non-null values, PLAIN-encoded (strings: raw bytes).
};

/// Decodes all data pages of a column chunk of the given physical type (0 = BOOLEAN,
/// 2 = INT64, 5 = DOUBLE, 6 = BYTE_ARRAY) and codec (0, 1 = SNAPPY, 6 = ZSTD).
inline std::vector<decoded_page> read_chunk_pages(const std::string& file, int64_t offset,
                                                  int64_t compressed_size, int physical_type,
                                                  int codec, bool optional) {
  std::vector<decoded_page> pages;
  int64_t pos = offset;
  while (pos < offset + compressed_size) {
    compact_decoder d(std::string_view(file).substr(pos));
    decoded_page page;
    page.header = d.read_struct();
    pos += static_cast<int64_t>(d.position());
    const int64_t uncompressed = page.header[2].i;
    const int64_t compressed = page.header[3].i;
    const std::string_view raw(file.data() + pos, compressed);
    pos += compressed;
    std::string body;
    if (codec == 0) {
      body = std::string(raw);
    } else if (codec == 1) {
      if (!snappy::Uncompress(raw.data(), raw.size(), &body)) {
        throw std::runtime_error("bad snappy page");
      }
    } else {
      body.resize(uncompressed);
      const size_t n = ZSTD_decompress(body.data(), body.size(), raw.data(), raw.size());
      if (ZSTD_isError(n) || n != body.size()) {
        throw std::runtime_error("bad zstd page");
      }
    }
    if (static_cast<int64_t>(body.size()) != uncompressed) {
      throw std::runtime_error("uncompressed_page_size mismatch");
    }
    const size_t num_values = page.header[5][1].i;
    size_t p = 0;
    size_t present = num_values;
    if (optional) {
      uint32_t len = 0;
      std::memcpy(&len, body.data(), 4);
      page.levels = decode_levels_rle(std::string_view(body).substr(4, len), num_values);
      p = 4 + len;
      present = 0;
      for (uint8_t l : page.levels) {
        present += l;
      }
    }
    for (size_t k = 0; k < present; ++k) {
      if (physical_type == 0) {
        const bool bit = (static_cast<uint8_t>(body[p + k / 8]) >> (k % 8)) & 1;
        page.values.push_back(std::string(1, bit ? '\1' : '\0'));
      } else if (physical_type == 6) {
        uint32_t len = 0;
        std::memcpy(&len, body.data() + p, 4);
        page.values.push_back(body.substr(p + 4, len));
        p += 4 + len;
      } else {
        page.values.push_back(body.substr(p, 8));
        p += 8;
      }
    }
    if (physical_type == 0) {
      p += (present + 7) / 8;
    }
    if (p != body.size()) {
      throw std::runtime_error("page has trailing bytes");
    }
    pages.push_back(std::move(page));
  }
  if (pos != offset + compressed_size) {
    throw std::runtime_error("pages overrun the column chunk");
  }
  return pages;
}

}  // namespace vigil::lake::testing
