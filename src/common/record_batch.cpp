#include "common/record_batch.hpp"

#include <cassert>
#include <cstring>

namespace vigil {

column::column(type_id t) : type(t) {
  if (type == type_id::string) offsets.push_back(0);
}

void column::reserve(size_t rows) {
  valid.reserve(rows);
  switch (type) {
    case type_id::int64:
    case type_id::timestamp:
      ints.reserve(rows);
      break;
    case type_id::float64:
      doubles.reserve(rows);
      break;
    case type_id::boolean:
      bools.reserve(rows);
      break;
    case type_id::string:
      offsets.reserve(rows + 1);
      break;
  }
}

void column::clear() {
  valid.clear();
  ints.clear();
  doubles.clear();
  bools.clear();
  offsets.clear();
  chars.clear();
  if (type == type_id::string) offsets.push_back(0);
}

void column::push_null() {
  valid.push_back(0);
  switch (type) {
    case type_id::int64:
    case type_id::timestamp:
      ints.push_back(0);
      break;
    case type_id::float64:
      doubles.push_back(0.0);
      break;
    case type_id::boolean:
      bools.push_back(0);
      break;
    case type_id::string:
      offsets.push_back(static_cast<uint32_t>(chars.size()));
      break;
  }
}

void column::push_int64(int64_t v) {
  assert(type == type_id::int64 || type == type_id::timestamp);  // Typed by the plan.
  valid.push_back(1);
  ints.push_back(v);
}

void column::push_float64(double v) {
  assert(type == type_id::float64);
  valid.push_back(1);
  doubles.push_back(v);
}

void column::push_bool(bool v) {
  assert(type == type_id::boolean);
  valid.push_back(1);
  bools.push_back(v ? 1 : 0);
}

void column::push_string(std::string_view v) {
  assert(type == type_id::string);
  valid.push_back(1);
  chars.insert(chars.end(), v.begin(), v.end());
  offsets.push_back(static_cast<uint32_t>(chars.size()));
}

void column::push_from(const column& src, size_t row) {
  valid.push_back(src.valid[row]);
  switch (type) {
    case type_id::int64:
    case type_id::timestamp:
      ints.push_back(src.ints[row]);
      break;
    case type_id::float64:
      doubles.push_back(src.doubles[row]);
      break;
    case type_id::boolean:
      bools.push_back(src.bools[row]);
      break;
    case type_id::string: {
      auto s = src.string_at(row);
      chars.insert(chars.end(), s.begin(), s.end());
      offsets.push_back(static_cast<uint32_t>(chars.size()));
      break;
    }
  }
}

void column::append_selected(const column& src, const uint32_t* sel, size_t n) {
  size_t base = valid.size();
  valid.resize(base + n);
  for (size_t i = 0; i < n; ++i) valid[base + i] = src.valid[sel[i]];
  switch (type) {
    case type_id::int64:
    case type_id::timestamp:
      ints.resize(base + n);
      for (size_t i = 0; i < n; ++i) ints[base + i] = src.ints[sel[i]];
      break;
    case type_id::float64:
      doubles.resize(base + n);
      for (size_t i = 0; i < n; ++i) doubles[base + i] = src.doubles[sel[i]];
      break;
    case type_id::boolean:
      bools.resize(base + n);
      for (size_t i = 0; i < n; ++i) bools[base + i] = src.bools[sel[i]];
      break;
    case type_id::string:
      offsets.reserve(offsets.size() + n);
      for (size_t i = 0; i < n; ++i) {
        auto s = src.string_at(sel[i]);
        chars.insert(chars.end(), s.begin(), s.end());
        offsets.push_back(static_cast<uint32_t>(chars.size()));
      }
      break;
  }
}

void column::append_all(const column& src) {
  valid.insert(valid.end(), src.valid.begin(), src.valid.end());
  switch (type) {
    case type_id::int64:
    case type_id::timestamp:
      ints.insert(ints.end(), src.ints.begin(), src.ints.end());
      break;
    case type_id::float64:
      doubles.insert(doubles.end(), src.doubles.begin(), src.doubles.end());
      break;
    case type_id::boolean:
      bools.insert(bools.end(), src.bools.begin(), src.bools.end());
      break;
    case type_id::string: {
      uint32_t shift = static_cast<uint32_t>(chars.size());
      chars.insert(chars.end(), src.chars.begin(), src.chars.end());
      for (size_t i = 1; i < src.offsets.size(); ++i) offsets.push_back(src.offsets[i] + shift);
      break;
    }
  }
}

std::shared_ptr<record_batch> make_batch(schema_ptr s, size_t rows) {
  auto b = std::make_shared<record_batch>();
  b->columns.reserve(s->size());
  for (const auto& f : s->fields()) {
    b->columns.emplace_back(f.type);
    b->columns.back().reserve(rows);
  }
  b->event_time.reserve(rows);
  b->schema = std::move(s);
  return b;
}

batch_builder::batch_builder(schema_ptr s, size_t capacity_hint)
    : schema_(std::move(s)), capacity_hint_(capacity_hint) {
  reset();
}

void batch_builder::reset() {
  batch_ = make_batch(schema_, capacity_hint_);
}

void batch_builder::append_row(const record_batch& src, size_t row) {
  for (size_t c = 0; c < batch_->columns.size(); ++c)
    batch_->columns[c].push_from(src.columns[c], row);
  batch_->event_time.push_back(src.event_time[row]);
  if (src.keyed()) batch_->key_hash.push_back(src.key_hash[row]);
}

void batch_builder::append_rows(const record_batch& src, const uint32_t* sel, size_t n) {
  for (size_t c = 0; c < batch_->columns.size(); ++c) {
    batch_->columns[c].append_selected(src.columns[c], sel, n);
  }
  auto& et = batch_->event_time;
  size_t base = et.size();
  et.resize(base + n);
  for (size_t i = 0; i < n; ++i) et[base + i] = src.event_time[sel[i]];
  if (src.keyed()) {
    auto& kh = batch_->key_hash;
    kh.resize(base + n);
    for (size_t i = 0; i < n; ++i) kh[base + i] = src.key_hash[sel[i]];
  }
}

batch_ptr batch_builder::finish() {
  assert(batch_->key_hash.empty() || batch_->key_hash.size() == batch_->event_time.size());
  batch_ptr out = std::move(batch_);
  reset();
  return out;
}

}  // namespace vigil
