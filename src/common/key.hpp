#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/record_batch.hpp"

namespace vigil {

/// Key groups: a key hashes to one of `max_parallelism` groups, fixed for the life of a job.
/// Subtask i of p owns the contiguous range [key_group_range_begin(i), key_group_range_end(i)).
struct key_group_range {
  uint32_t begin = 0;
  uint32_t end = 0;  ///< Exclusive.

  bool contains(uint32_t kg) const { return kg >= begin && kg < end; }
};

inline uint32_t key_group_of(uint64_t key_hash, uint32_t max_parallelism) {
  return static_cast<uint32_t>(key_hash % max_parallelism);
}

/// The subtask (of `parallelism`) that owns key group `kg`.
inline uint32_t subtask_of_key_group(uint32_t kg, uint32_t parallelism, uint32_t max_parallelism) {
  return static_cast<uint32_t>(uint64_t{kg} * parallelism / max_parallelism);
}

key_group_range key_group_range_of(uint32_t subtask, uint32_t parallelism,
                                   uint32_t max_parallelism);

/// Appends the order-preserving binary encoding of the key fields of `row` to `out` (which is
/// not cleared). Each field: a null byte (0 null, 1 present) then the value (int64 and
/// timestamp: big-endian with the sign bit flipped; double: order-preserving bits; bool: one
/// byte; string: bytes then 0x00 0x00, with 0x00 escaped as 0x00 0xFF).
void encode_key(const record_batch& batch, const std::vector<int>& key_fields, size_t row,
                std::string& out);

/// xxHash64 of the encoded key; the value stored in record_batch::key_hash.
uint64_t hash_encoded_key(std::string_view encoded);

/// Decodes a key produced by encode_key() with field types `types` and pushes one value to each
/// of the columns out[0..types.size()). Returns false if `encoded` is malformed.
bool decode_key(std::string_view encoded, const std::vector<type_id>& types, column* const* out);

/// Big-endian helpers for building state keys.
inline void put_u16_be(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put_i64_ordered(std::string& out, int64_t v);  ///< Big-endian, sign bit flipped.
void put_i64_ordered(char* out, int64_t v);         ///< The same into 8 bytes at `out`.
int64_t get_i64_ordered(const char* p);

}  // namespace vigil
