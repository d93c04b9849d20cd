#include "lake/thrift_compact.hpp"

#include <cassert>

namespace vigil::lake {

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void compact_encoder::struct_end() {
  assert(!last_ids_.empty());  // Every struct_end() closes a struct opened before.
  out_.push_back(0);
  last_ids_.pop_back();
}

void compact_encoder::field_header(int16_t id, thrift_type type) {
  assert(!last_ids_.empty());  // Fields are written inside an open struct.
  int16_t& last = last_ids_.back();
  const int delta = static_cast<int>(id) - static_cast<int>(last);
  if (delta > 0 && delta <= 15) {
    out_.push_back(static_cast<char>((delta << 4) | static_cast<int>(type)));
  } else {
    out_.push_back(static_cast<char>(type));
    append_varint(out_, zigzag32(id));
  }
  last = id;
}

void compact_encoder::field_bool(int16_t id, bool v) {
  field_header(id, v ? thrift_type::bool_true : thrift_type::bool_false);
}

void compact_encoder::field_i16(int16_t id, int16_t v) {
  field_header(id, thrift_type::i16);
  append_varint(out_, zigzag32(v));
}

void compact_encoder::field_i32(int16_t id, int32_t v) {
  field_header(id, thrift_type::i32);
  append_varint(out_, zigzag32(v));
}

void compact_encoder::field_i64(int16_t id, int64_t v) {
  field_header(id, thrift_type::i64);
  append_varint(out_, zigzag64(v));
}

void compact_encoder::field_binary(int16_t id, std::string_view v) {
  field_header(id, thrift_type::binary);
  element_binary(v);
}

void compact_encoder::field_struct_begin(int16_t id) {
  field_header(id, thrift_type::structure);
  last_ids_.push_back(0);
}

void compact_encoder::field_list_begin(int16_t id, thrift_type element, size_t size) {
  field_header(id, thrift_type::list);
  if (size < 15) {
    out_.push_back(static_cast<char>((size << 4) | static_cast<size_t>(element)));
  } else {
    out_.push_back(static_cast<char>(0xf0 | static_cast<int>(element)));
    append_varint(out_, size);
  }
}

void compact_encoder::element_i32(int32_t v) {
  append_varint(out_, zigzag32(v));
}

void compact_encoder::element_binary(std::string_view v) {
  append_varint(out_, v.size());
  out_.append(v);
}

}  // namespace vigil::lake
