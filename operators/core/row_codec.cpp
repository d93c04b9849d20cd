#include "operators/core/row_codec.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vigil {
namespace {

void put_fixed64(std::string& out, const void* v) {
  char buf[8];
  std::memcpy(buf, v, 8);
  if constexpr (std::endian::native == std::endian::big) std::reverse(buf, buf + 8);
  out.append(buf, 8);
}

void get_fixed64(const char* p, void* v) {
  char buf[8];
  std::memcpy(buf, p, 8);
  if constexpr (std::endian::native == std::endian::big) std::reverse(buf, buf + 8);
  std::memcpy(v, buf, 8);
}

void put_varint(std::string& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Reads a varint at in[pos..); false if truncated or longer than 5 bytes.
bool get_varint(std::string_view in, size_t& pos, uint32_t& v) {
  v = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (pos >= in.size()) return false;
    auto byte = static_cast<uint8_t>(in[pos++]);
    v |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

row_codec::row_codec(const schema& s, std::vector<int> columns) : columns_(std::move(columns)) {
  types_.reserve(columns_.size());
  for (int c : columns_) types_.push_back(s.at(c).type);
}

row_codec row_codec::all(const schema& s) {
  std::vector<int> columns(s.size());
  for (size_t i = 0; i < columns.size(); ++i) columns[i] = static_cast<int>(i);
  return row_codec(s, std::move(columns));
}

void row_codec::encode(const record_batch& batch, size_t row, std::string& out) const {
  size_t bitmap = out.size();
  out.append((columns_.size() + 7) / 8, '\0');
  for (size_t i = 0; i < columns_.size(); ++i) {
    const column& c = batch.columns[columns_[i]];
    if (c.is_null(row)) continue;
    out[bitmap + i / 8] = static_cast<char>(out[bitmap + i / 8] | (1 << (i % 8)));
    switch (types_[i]) {
      case type_id::int64:
      case type_id::timestamp:
        put_fixed64(out, &c.ints[row]);
        break;
      case type_id::float64:
        put_fixed64(out, &c.doubles[row]);
        break;
      case type_id::boolean:
        out.push_back(static_cast<char>(c.bools[row]));
        break;
      case type_id::string: {
        std::string_view s = c.string_at(row);
        put_varint(out, static_cast<uint32_t>(s.size()));
        out.append(s);
        break;
      }
    }
  }
}

bool row_codec::decode(std::string_view in, column* const* out) const {
  size_t n = columns_.size();
  size_t pos = (n + 7) / 8;
  bool ok = pos <= in.size();
  for (size_t i = 0; i < n; ++i) {
    column& c = *out[i];
    if (!ok || (static_cast<uint8_t>(in[i / 8]) & (1 << (i % 8))) == 0) {
      c.push_null();
      continue;
    }
    switch (types_[i]) {
      case type_id::int64:
      case type_id::timestamp:
      case type_id::float64: {
        if (in.size() - pos < 8) {
          ok = false;
          c.push_null();
          break;
        }
        if (types_[i] == type_id::float64) {
          double d;
          get_fixed64(in.data() + pos, &d);
          c.push_float64(d);
        } else {
          int64_t v;
          get_fixed64(in.data() + pos, &v);
          c.push_int64(v);
        }
        pos += 8;
        break;
      }
      case type_id::boolean:
        if (pos >= in.size()) {
          ok = false;
          c.push_null();
          break;
        }
        c.push_bool(in[pos++] != 0);
        break;
      case type_id::string: {
        uint32_t len = 0;
        if (!get_varint(in, pos, len) || in.size() - pos < len) {
          ok = false;
          c.push_null();
          break;
        }
        c.push_string(in.substr(pos, len));
        pos += len;
        break;
      }
    }
  }
  return ok && pos == in.size();
}

}  // namespace vigil
