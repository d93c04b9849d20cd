#include "common/key.hpp"

#include <xxhash.h>

#include <bit>
#include <cstring>

namespace vigil {

key_group_range key_group_range_of(uint32_t subtask, uint32_t parallelism,
                                   uint32_t max_parallelism) {
  auto start = [&](uint64_t i) {
    return static_cast<uint32_t>((i * max_parallelism + parallelism - 1) / parallelism);
  };
  return {start(subtask), start(subtask + 1)};
}

void put_i64_ordered(char* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i, u >>= 8) out[i] = static_cast<char>(u & 0xff);
}

void put_i64_ordered(std::string& out, int64_t v) {
  char bytes[8];
  put_i64_ordered(bytes, v);
  out.append(bytes, 8);
}

int64_t get_i64_ordered(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

namespace {

uint64_t double_to_ordered(double d) {
  uint64_t bits = std::bit_cast<uint64_t>(d);
  return (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
}

double ordered_to_double(uint64_t u) {
  uint64_t bits = (u & (uint64_t{1} << 63)) ? u & ~(uint64_t{1} << 63) : ~u;
  return std::bit_cast<double>(bits);
}

void put_u64_be(std::string& out, uint64_t u) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}

uint64_t get_u64_be(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(p[i]);
  return u;
}

}  // namespace

void encode_key(const record_batch& batch, const std::vector<int>& key_fields, size_t row,
                std::string& out) {
  for (int f : key_fields) {
    const column& c = batch.columns[f];
    if (c.is_null(row)) {
      out.push_back('\0');
      continue;
    }
    out.push_back('\1');
    switch (c.type) {
      case type_id::int64:
      case type_id::timestamp:
        put_i64_ordered(out, c.ints[row]);
        break;
      case type_id::float64:
        put_u64_be(out, double_to_ordered(c.doubles[row]));
        break;
      case type_id::boolean:
        out.push_back(static_cast<char>(c.bools[row]));
        break;
      case type_id::string:
        for (char ch : c.string_at(row)) {
          out.push_back(ch);
          if (ch == '\0') out.push_back('\xff');
        }
        out.push_back('\0');
        out.push_back('\0');
        break;
    }
  }
}

uint64_t hash_encoded_key(std::string_view encoded) {
  return XXH64(encoded.data(), encoded.size(), 0x7669676c);  // seed: "vigl"
}

bool decode_key(std::string_view encoded, const std::vector<type_id>& types, column* const* out) {
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= encoded.size(); };
  for (size_t i = 0; i < types.size(); ++i) {
    if (!need(1)) return false;
    char present = encoded[pos++];
    if (present == '\0') {
      out[i]->push_null();
      continue;
    }
    switch (types[i]) {
      case type_id::int64:
      case type_id::timestamp:
        if (!need(8)) return false;
        out[i]->push_int64(get_i64_ordered(encoded.data() + pos));
        pos += 8;
        break;
      case type_id::float64:
        if (!need(8)) return false;
        out[i]->push_float64(ordered_to_double(get_u64_be(encoded.data() + pos)));
        pos += 8;
        break;
      case type_id::boolean:
        if (!need(1)) return false;
        out[i]->push_bool(encoded[pos++] != 0);
        break;
      case type_id::string: {
        std::string s;
        for (;;) {
          if (!need(2)) return false;
          char ch = encoded[pos++];
          if (ch != '\0') {
            s.push_back(ch);
          } else if (encoded[pos] == '\xff') {
            s.push_back('\0');
            ++pos;
          } else if (encoded[pos] == '\0') {
            ++pos;
            break;
          } else {
            return false;
          }
        }
        out[i]->push_string(s);
        break;
      }
    }
  }
  return pos == encoded.size();
}

}  // namespace vigil
