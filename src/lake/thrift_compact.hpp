#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::lake {

/// Type codes of the Thrift compact protocol, as they appear in field and list headers.
enum class thrift_type : uint8_t {
  bool_true = 1,  ///< In a field header: a bool field whose value is true.
  bool_false = 2,
  byte = 3,
  i16 = 4,
  i32 = 5,
  i64 = 6,
  double_ = 7,
  binary = 8,
  list = 9,
  set = 10,
  map = 11,
  structure = 12,
};

/// Appends `v` as an unsigned LEB128 varint.
void append_varint(std::string& out, uint64_t v);

/// Zigzag mapping of signed integers to unsigned ones (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).
inline uint64_t zigzag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline uint32_t zigzag32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}

/// Serializes Thrift structs with the compact protocol, appending to a byte string.
///
/// A struct is opened with struct_begin() (top level), field_struct_begin() (a struct-typed
/// field) or element_struct_begin() (a struct inside a list), and closed with struct_end(),
/// which writes the stop byte. Field headers carry the delta to the previous field id of the
/// same struct when it is 1..15, the full id otherwise. Enums are written as i32 and unions
/// as structs with exactly one field. Not thread-safe; one encoder per buffer.
class compact_encoder {
 public:
  explicit compact_encoder(std::string& out) : out_(out) {}

  /// Opens a top-level struct.
  void struct_begin() { last_ids_.push_back(0); }
  /// Writes the stop byte of the innermost open struct and closes it.
  void struct_end();

  void field_bool(int16_t id, bool v);
  void field_i16(int16_t id, int16_t v);
  void field_i32(int16_t id, int32_t v);
  void field_i64(int16_t id, int64_t v);
  void field_binary(int16_t id, std::string_view v);
  /// Opens a struct-typed field; close it with struct_end().
  void field_struct_begin(int16_t id);
  /// Writes the header of a list-typed field with `size` elements of type `element`; the
  /// elements follow with element_*() calls.
  void field_list_begin(int16_t id, thrift_type element, size_t size);

  void element_i32(int32_t v);
  void element_binary(std::string_view v);
  /// Opens a struct element of a list; close it with struct_end().
  void element_struct_begin() { last_ids_.push_back(0); }

 private:
  void field_header(int16_t id, thrift_type type);

  std::string& out_;
  std::vector<int16_t> last_ids_;  ///< The last field id written in each open struct.
};

}  // namespace vigil::lake
