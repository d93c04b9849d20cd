#include "runtime/wire.hpp"

#include <bit>
#include <cstring>
#include <limits>

#include "runtime/messages.hpp"

namespace vigil {

static_assert(std::endian::native == std::endian::little,
              "batch value arrays travel as raw little-endian blobs");

namespace {

constexpr uint8_t tag_null = 0;
constexpr uint8_t tag_batch_v1 = 1;
constexpr uint8_t flag_keyed = 1;
constexpr uint8_t max_type_id = static_cast<uint8_t>(type_id::timestamp);

/// Upper bound on one value array when the deserializer cannot tell how many bytes are left
/// (only binary_deserializer can; CAF's middleman uses it).
constexpr size_t max_unknown_blob = size_t{1} << 30;

caf::error invalid(const char* what) {
  return caf::make_error(caf::sec::invalid_argument, std::string("vigil.batch: ") + what);
}

caf::error truncated() {
  return caf::make_error(caf::sec::end_of_stream, "vigil.batch: truncated");
}

/// Bytes left in the message being read.
size_t available(caf::deserializer& source) {
  if (auto* bin = dynamic_cast<caf::binary_deserializer*>(&source)) return bin->remaining();
  return max_unknown_blob;
}

template <class T>
caf::error write_array(caf::serializer& sink, const std::vector<T>& v) {
  if (v.empty()) return caf::none;
  return sink.apply_raw(v.size() * sizeof(T), const_cast<T*>(v.data()));
}

template <class T>
caf::error read_array(caf::deserializer& source, std::vector<T>& v, size_t n) {
  if (n > available(source) / sizeof(T)) return truncated();
  v.resize(n);
  if (n == 0) return caf::none;
  return source.apply_raw(n * sizeof(T), v.data());
}

/// True if every byte of `v` is 0 or 1.
bool all_zero_or_one(const std::vector<uint8_t>& v) {
  uint8_t acc = 0;
  for (uint8_t b : v) acc |= b;
  return (acc & 0xfe) == 0;
}

/// Checks that a column matches its field and holds `rows` rows before it is written.
caf::error check_column(const column& c, const field& f, size_t rows) {
  if (c.type != f.type) return invalid("column type differs from its field");
  if (c.valid.size() != rows) return invalid("column length differs from the row count");
  switch (c.type) {
    case type_id::int64:
    case type_id::timestamp:
      if (c.ints.size() != rows) return invalid("int64 values differ from the row count");
      break;
    case type_id::float64:
      if (c.doubles.size() != rows) return invalid("float64 values differ from the row count");
      break;
    case type_id::boolean:
      if (c.bools.size() != rows) return invalid("boolean values differ from the row count");
      break;
    case type_id::string:
      if (c.offsets.size() != rows + 1 || c.offsets.front() != 0 ||
          c.offsets.back() != c.chars.size()) {
        return invalid("string offsets differ from the row count or characters");
      }
      break;
  }
  return caf::none;
}

caf::error save_column(caf::serializer& sink, const column& c, size_t rows) {
  uint8_t has_nulls = (rows > 0 && std::memchr(c.valid.data(), 0, rows) != nullptr) ? 1 : 0;
  if (auto err = sink(has_nulls)) return err;
  if (has_nulls != 0) {
    if (auto err = write_array(sink, c.valid)) return err;
  }
  switch (c.type) {
    case type_id::int64:
    case type_id::timestamp:
      return write_array(sink, c.ints);
    case type_id::float64:
      return write_array(sink, c.doubles);
    case type_id::boolean:
      return write_array(sink, c.bools);
    case type_id::string:
      if (auto err = write_array(sink, c.offsets)) return err;
      return write_array(sink, c.chars);
  }
  return invalid("unknown column type");
}

caf::error load_column(caf::deserializer& source, column& c, size_t rows) {
  uint8_t has_nulls = 0;
  if (auto err = source(has_nulls)) return err;
  if (has_nulls > 1) return invalid("bad validity flag");
  if (has_nulls != 0) {
    if (auto err = read_array(source, c.valid, rows)) return err;
    if (!all_zero_or_one(c.valid)) return invalid("validity byte other than 0 or 1");
  } else {
    c.valid.assign(rows, 1);
  }
  switch (c.type) {
    case type_id::int64:
    case type_id::timestamp:
      return read_array(source, c.ints, rows);
    case type_id::float64:
      return read_array(source, c.doubles, rows);
    case type_id::boolean:
      if (auto err = read_array(source, c.bools, rows)) return err;
      if (!all_zero_or_one(c.bools)) return invalid("boolean byte other than 0 or 1");
      return caf::none;
    case type_id::string: {
      if (auto err = read_array(source, c.offsets, rows + 1)) return err;
      if (c.offsets[0] != 0) return invalid("first string offset is not 0");
      for (size_t r = 0; r < rows; ++r) {
        if (c.offsets[r + 1] < c.offsets[r]) return invalid("string offsets decrease");
      }
      return read_array(source, c.chars, c.offsets[rows]);
    }
  }
  return invalid("unknown column type");
}

/// Reads the schema; reuses this thread's last decoded schema when the fields are equal, so
/// that steady-state loading allocates no schema.
caf::error load_schema(caf::deserializer& source, schema_ptr& out) {
  thread_local std::vector<field> scratch;
  thread_local schema_ptr last;
  uint32_t n = 0;
  if (auto err = source(n)) return err;
  if (n > available(source) / 3) return truncated();  // Each field takes at least 3 bytes.
  scratch.resize(n);
  for (auto& f : scratch) {
    uint8_t type = 0;
    uint8_t nullable = 0;
    if (auto err = source(f.name, type, nullable)) return err;
    if (type > max_type_id) return invalid("unknown type id");
    if (nullable > 1) return invalid("bad nullable flag");
    f.type = static_cast<type_id>(type);
    f.nullable = nullable != 0;
  }
  if (!last || last->fields() != scratch) last = make_schema(scratch);
  out = last;
  return caf::none;
}

}  // namespace

caf::error save_batch(caf::serializer& sink, const batch_ptr& x) {
  uint8_t tag = x ? tag_batch_v1 : tag_null;
  if (auto err = sink(tag)) return err;
  if (!x) return caf::none;
  const record_batch& b = *x;
  if (!b.schema) return invalid("batch without schema");
  const schema& s = *b.schema;
  size_t rows = b.num_rows();
  if (rows > std::numeric_limits<uint32_t>::max()) return invalid("too many rows");
  if (b.columns.size() != s.size()) return invalid("column count differs from the schema");
  if (b.keyed() && b.key_hash.size() != rows)
    return invalid("key hashes differ from the row count");
  for (size_t i = 0; i < s.size(); ++i) {
    if (auto err = check_column(b.columns[i], s.at(i), rows)) return err;
  }

  auto n = static_cast<uint32_t>(s.size());
  if (auto err = sink(n)) return err;
  for (const auto& f : s.fields()) {
    auto type = static_cast<uint8_t>(f.type);
    uint8_t nullable = f.nullable ? 1 : 0;
    if (auto err = sink(f.name, type, nullable)) return err;
  }
  auto rows32 = static_cast<uint32_t>(rows);
  uint8_t flags = b.keyed() ? flag_keyed : 0;
  if (auto err = sink(rows32, flags)) return err;
  for (const auto& c : b.columns) {
    if (auto err = save_column(sink, c, rows)) return err;
  }
  if (auto err = write_array(sink, b.event_time)) return err;
  return write_array(sink, b.key_hash);
}

caf::error load_batch(caf::deserializer& source, batch_ptr& x) {
  uint8_t tag = 0;
  if (auto err = source(tag)) return err;
  if (tag == tag_null) {
    x = nullptr;
    return caf::none;
  }
  if (tag != tag_batch_v1) return invalid("unknown format version");
  auto b = std::make_shared<record_batch>();
  if (auto err = load_schema(source, b->schema)) return err;
  uint32_t rows = 0;
  uint8_t flags = 0;
  if (auto err = source(rows, flags)) return err;
  if ((flags & ~flag_keyed) != 0) return invalid("unknown flags");
  // Every row takes at least its 8 event-time bytes: refuse impossible row counts up front.
  if (rows > available(source) / sizeof(int64_t)) return truncated();
  b->columns.reserve(b->schema->size());
  for (const auto& f : b->schema->fields()) {
    b->columns.emplace_back(f.type);
    if (auto err = load_column(source, b->columns.back(), rows)) return err;
  }
  if (auto err = read_array(source, b->event_time, rows)) return err;
  if ((flags & flag_keyed) != 0) {
    if (auto err = read_array(source, b->key_hash, rows)) return err;
  }
  x = std::move(b);
  return caf::none;
}

std::string batch_summary(const batch_ptr& x) {
  if (!x) return "batch(null)";
  std::string s = "batch(rows=" + std::to_string(x->num_rows());
  if (x->schema) s += ", schema=" + x->schema->to_string();
  if (x->keyed()) s += ", keyed";
  s += ")";
  return s;
}

std::string error_text(const caf::error& err) {
  if (!err) return "no error";
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) return ctx.get_as<std::string>(0);
  return caf::to_string(err);
}

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<batch_ptr>("vigil.batch");
  cfg.add_message_type<subtask_stats>("vigil.subtask_stats");
  cfg.add_message_type<subtask_wiring>("vigil.wiring");
  cfg.add_message_type<checkpoint_ack>("vigil.checkpoint_ack");
  cfg.add_message_type<std::vector<subtask_ref>>("vigil.subtask_refs");
  cfg.add_message_type<deploy_settings>("vigil.deploy_settings");
}

void configure_scheduler(caf::actor_system_config& cfg, size_t threads) {
  cfg.set("scheduler.max-threads", threads);
  cfg.set("scheduler.policy", caf::atom("sharing"));
}

}  // namespace vigil
