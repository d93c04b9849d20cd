#include "lake/parquet_writer.hpp"

#include <fcntl.h>
#include <snappy.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include "lake/rle_levels.hpp"
#include "lake/thrift_compact.hpp"

// PLAIN encoding is little-endian; values are copied to pages as they are in memory.
static_assert(std::endian::native == std::endian::little, "the Parquet writer needs little-endian");

namespace vigil::lake {
namespace {

constexpr std::string_view magic = "PAR1";

// Values of the enums of parquet.thrift.
constexpr int32_t type_boolean = 0;
constexpr int32_t type_int64 = 2;
constexpr int32_t type_double = 5;
constexpr int32_t type_byte_array = 6;
constexpr int32_t repetition_required = 0;
constexpr int32_t repetition_optional = 1;
constexpr int32_t converted_utf8 = 0;
constexpr int32_t converted_timestamp_micros = 10;
constexpr int32_t encoding_plain = 0;
constexpr int32_t encoding_rle = 3;
constexpr int32_t page_type_data = 0;

int32_t physical_type(type_id t) {
  switch (t) {
    case type_id::boolean:
      return type_boolean;
    case type_id::float64:
      return type_double;
    case type_id::string:
      return type_byte_array;
    case type_id::int64:
    case type_id::timestamp:
      break;
  }
  return type_int64;
}

int32_t codec_value(parquet_codec codec) {
  switch (codec) {
    case parquet_codec::snappy:
      return 1;
    case parquet_codec::zstd:
      return 6;
    case parquet_codec::uncompressed:
      break;
  }
  return 0;
}

void append_le32(std::string& out, uint32_t v) {
  char bytes[4];
  std::memcpy(bytes, &v, sizeof v);
  out.append(bytes, sizeof bytes);
}

template <class T>
std::string plain_bytes(T v) {
  std::string out(sizeof v, '\0');
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}

std::string errno_text() {
  return std::strerror(errno);
}

/// Minimum, maximum, null and NaN counts of a column chunk or a whole column, in the order
/// Parquet defines for the column's type.
struct stats_accumulator {
  explicit stats_accumulator(type_id t) : type(t) {}

  type_id type;
  int64_t null_count = 0;
  int64_t nan_count = 0;
  bool has_min_max = false;
  int64_t int_min = 0, int_max = 0;
  double double_min = 0, double_max = 0;
  bool bool_min = false, bool_max = false;
  std::string string_min, string_max;

  void add_int(int64_t v) {
    if (!has_min_max) {
      int_min = int_max = v;
      has_min_max = true;
    } else {
      int_min = std::min(int_min, v);
      int_max = std::max(int_max, v);
    }
  }
  void add_double(double v) {
    if (std::isnan(v)) {
      ++nan_count;
    } else if (!has_min_max) {
      double_min = double_max = v;
      has_min_max = true;
    } else {
      double_min = v < double_min ? v : double_min;
      double_max = v > double_max ? v : double_max;
    }
  }
  void add_bool(bool v) {
    if (!has_min_max) {
      bool_min = bool_max = v;
      has_min_max = true;
    } else {
      bool_min = bool_min && v;
      bool_max = bool_max || v;
    }
  }
  /// Strings compare as unsigned bytes (std::string_view's char_traits<char> compare does).
  void add_string_range(std::string_view lo, std::string_view hi) {
    if (!has_min_max) {
      string_min.assign(lo);
      string_max.assign(hi);
      has_min_max = true;
    } else {
      if (lo < std::string_view(string_min)) {
        string_min.assign(lo);
      }
      if (hi > std::string_view(string_max)) {
        string_max.assign(hi);
      }
    }
  }

  void merge(const stats_accumulator& o) {
    null_count += o.null_count;
    nan_count += o.nan_count;
    if (!o.has_min_max) {
      return;
    }
    switch (type) {
      case type_id::boolean:
        add_bool(o.bool_min);
        add_bool(o.bool_max);
        break;
      case type_id::float64:
        add_double(o.double_min);
        add_double(o.double_max);
        break;
      case type_id::string:
        add_string_range(o.string_min, o.string_max);
        break;
      case type_id::int64:
      case type_id::timestamp:
        add_int(o.int_min);
        add_int(o.int_max);
        break;
    }
  }

  /// A zero minimum is written as -0.0 and a zero maximum as +0.0, so that readers of
  /// TypeDefinedOrder statistics never exclude a zero of the other sign.
  double written_double_min() const { return double_min == 0 ? -0.0 : double_min; }
  double written_double_max() const { return double_max == 0 ? 0.0 : double_max; }

  parquet_stat_value value(bool want_max) const {
    if (!has_min_max) {
      return std::monostate{};
    }
    switch (type) {
      case type_id::boolean:
        return want_max ? bool_max : bool_min;
      case type_id::float64:
        return want_max ? written_double_max() : written_double_min();
      case type_id::string:
        return want_max ? string_max : string_min;
      case type_id::int64:
      case type_id::timestamp:
        break;
    }
    return want_max ? int_max : int_min;
  }

  /// The PLAIN encoding of the minimum or maximum, without a length prefix for strings.
  std::string plain(bool want_max) const {
    switch (type) {
      case type_id::boolean:
        return std::string(1, (want_max ? bool_max : bool_min) ? '\1' : '\0');
      case type_id::float64:
        return plain_bytes(want_max ? written_double_max() : written_double_min());
      case type_id::string:
        return want_max ? string_max : string_min;
      case type_id::int64:
      case type_id::timestamp:
        break;
    }
    return plain_bytes(want_max ? int_max : int_min);
  }

  void encode(compact_encoder& e, int16_t field_id) const {
    e.field_struct_begin(field_id);
    e.field_i64(3, null_count);
    if (has_min_max) {
      e.field_binary(5, plain(true));
      e.field_binary(6, plain(false));
      e.field_bool(7, true);
      e.field_bool(8, true);
    }
    if (type == type_id::float64) {
      e.field_i64(9, nan_count);
    }
    e.struct_end();
  }
};

}  // namespace

const char* to_string(parquet_codec codec) {
  switch (codec) {
    case parquet_codec::uncompressed:
      return "uncompressed";
    case parquet_codec::snappy:
      return "snappy";
    case parquet_codec::zstd:
      return "zstd";
  }
  return "unknown";
}

/// Compresses page bodies with the file's codec.
struct parquet_writer::page_compressor {
  page_compressor(parquet_codec codec, int zstd_level) : codec_(codec), zstd_level_(zstd_level) {}
  ~page_compressor() { ZSTD_freeCCtx(zstd_); }
  page_compressor(const page_compressor&) = delete;
  page_compressor& operator=(const page_compressor&) = delete;

  /// Compresses `in` into `out` (replacing its contents). Not called for uncompressed files.
  status compress(std::string_view in, std::string& out) {
    if (codec_ == parquet_codec::snappy) {
      out.resize(snappy::MaxCompressedLength(in.size()));
      size_t n = 0;
      snappy::RawCompress(in.data(), in.size(), out.data(), &n);
      out.resize(n);
      return {};
    }
    if (zstd_ == nullptr) {
      zstd_ = ZSTD_createCCtx();
      if (zstd_ == nullptr) {
        return make_error(errc::internal, "zstd: cannot create a compression context");
      }
    }
    out.resize(ZSTD_compressBound(in.size()));
    const size_t n =
        ZSTD_compressCCtx(zstd_, out.data(), out.size(), in.data(), in.size(), zstd_level_);
    if (ZSTD_isError(n)) {
      return make_error(errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    out.resize(n);
    return {};
  }

  parquet_codec codec_;
  int zstd_level_;
  ZSTD_CCtx* zstd_ = nullptr;
};

namespace {

/// The metadata of one written column chunk.
struct chunk_meta {
  int64_t data_page_offset = 0;
  int64_t num_values = 0;
  int64_t uncompressed_bytes = 0;  ///< Page headers plus uncompressed page bodies.
  int64_t compressed_bytes = 0;    ///< Page headers plus page bodies as written.
  int32_t pages = 0;
  stats_accumulator stats;
};

}  // namespace

struct parquet_writer::row_group_meta {
  int64_t num_rows = 0;
  int64_t file_offset = 0;
  std::vector<chunk_meta> chunks;
};

/// Buffers one column of the current row group: the page being filled (levels and PLAIN
/// values) and the finished pages (headers and compressed bodies) of the column chunk.
struct parquet_writer::column_writer {
  column_writer(const field& f, const parquet_writer_options& options, page_compressor& compressor)
      : field_(f),
        optional_(f.nullable),
        options_(options),
        compressor_(compressor),
        chunk_stats_(f.type),
        file_stats_(f.type) {}

  /// Encoded size of the page being filled, as close() of the page would write it.
  size_t page_bytes() const { return values_.size() + (optional_ ? 4 + levels_.size() / 8 : 0); }
  size_t buffered_bytes() const { return static_cast<size_t>(chunk_uncompressed_) + page_bytes(); }

  /// Appends rows [begin, end) of `col`. Nulls of a required field were refused before.
  status append(const column& col, size_t begin, size_t end) {
    switch (field_.type) {
      case type_id::boolean:
        return append_rows(col, begin, end, [this](const column& c, size_t r) {
          const bool v = c.bools[r] != 0;
          if (bool_bits_ % 8 == 0) {
            values_.push_back('\0');
          }
          values_.back() = static_cast<char>(values_.back() | (v << (bool_bits_ % 8)));
          ++bool_bits_;
          chunk_stats_.add_bool(v);
        });
      case type_id::float64:
        return append_rows(col, begin, end, [this](const column& c, size_t r) {
          const double v = c.doubles[r];
          values_.append(reinterpret_cast<const char*>(&v), sizeof v);
          chunk_stats_.add_double(v);
        });
      case type_id::string:
        return append_strings(col, begin, end);
      case type_id::int64:
      case type_id::timestamp:
        break;
    }
    return append_rows(col, begin, end, [this](const column& c, size_t r) {
      const int64_t v = c.ints[r];
      values_.append(reinterpret_cast<const char*>(&v), sizeof v);
      chunk_stats_.add_int(v);
    });
  }

  template <class AppendValue>
  status append_rows(const column& col, size_t begin, size_t end, AppendValue&& append_value) {
    for (size_t r = begin; r < end; ++r) {
      if (optional_) {
        levels_.push_back(col.valid[r] != 0 ? 1 : 0);
      }
      if (col.valid[r] != 0) {
        append_value(col, r);
      } else {
        ++chunk_stats_.null_count;
      }
      ++page_values_;
      if (page_bytes() >= options_.page_bytes) {
        VIGIL_TRY(finish_page());
      }
    }
    return {};
  }

  status append_strings(const column& col, size_t begin, size_t end) {
    std::string_view lo, hi;
    bool any = false;
    const status st = append_rows(col, begin, end, [&](const column& c, size_t r) {
      const std::string_view v = c.string_at(r);
      append_le32(values_, static_cast<uint32_t>(v.size()));
      values_.append(v);
      if (!any) {
        lo = hi = v;
        any = true;
      } else if (v < lo) {
        lo = v;
      } else if (v > hi) {
        hi = v;
      }
    });
    if (any) {
      chunk_stats_.add_string_range(lo, hi);
    }
    return st;
  }

  /// Encodes the page being filled (if any) and appends it to the column chunk.
  status finish_page() {
    if (page_values_ == 0) {
      return {};
    }
    body_.clear();
    if (optional_) {
      body_.append(4, '\0');
      encode_levels_rle(levels_.data(), levels_.size(), body_);
      const uint32_t levels_bytes = static_cast<uint32_t>(body_.size() - 4);
      std::memcpy(body_.data(), &levels_bytes, sizeof levels_bytes);
    }
    body_.append(values_);
    const std::string* written = &body_;
    if (options_.codec != parquet_codec::uncompressed) {
      VIGIL_TRY(compressor_.compress(body_, compressed_));
      written = &compressed_;
    }
    constexpr size_t max_page = static_cast<size_t>(std::numeric_limits<int32_t>::max());
    if (body_.size() > max_page || written->size() > max_page) {
      return make_error(errc::invalid_argument,
                        "field '" + field_.name + "': a page of " + std::to_string(body_.size()) +
                            " bytes exceeds Parquet's limit of 2 GiB (a value is too large)");
    }
    header_.clear();
    compact_encoder e(header_);
    e.struct_begin();
    e.field_i32(1, page_type_data);
    e.field_i32(2, static_cast<int32_t>(body_.size()));
    e.field_i32(3, static_cast<int32_t>(written->size()));
    e.field_struct_begin(5);
    e.field_i32(1, static_cast<int32_t>(page_values_));
    e.field_i32(2, encoding_plain);
    e.field_i32(3, encoding_rle);
    e.field_i32(4, encoding_rle);
    e.struct_end();
    e.struct_end();
    chunk_.append(header_);
    chunk_.append(*written);
    chunk_uncompressed_ += static_cast<int64_t>(header_.size() + body_.size());
    chunk_values_ += page_values_;
    ++chunk_pages_;
    levels_.clear();
    values_.clear();
    bool_bits_ = 0;
    page_values_ = 0;
    return {};
  }

  /// Hands out the finished column chunk's metadata and starts a new chunk.
  chunk_meta take_chunk(int64_t data_page_offset) {
    chunk_meta m{data_page_offset,    chunk_values_,
                 chunk_uncompressed_, static_cast<int64_t>(chunk_.size()),
                 chunk_pages_,        chunk_stats_};
    file_stats_.merge(chunk_stats_);
    chunk_stats_ = stats_accumulator(field_.type);
    chunk_.clear();
    chunk_values_ = 0;
    chunk_uncompressed_ = 0;
    chunk_pages_ = 0;
    return m;
  }

  const field& field_;
  const bool optional_;
  const parquet_writer_options& options_;
  page_compressor& compressor_;

  std::vector<uint8_t> levels_;  ///< Definition levels of the page (optional fields only).
  std::string values_;           ///< PLAIN-encoded non-null values of the page.
  size_t bool_bits_ = 0;         ///< Booleans in values_ (bit-packed).
  int64_t page_values_ = 0;      ///< Rows in the page, nulls included.

  std::string chunk_;  ///< Finished pages: header, then body as written.
  int64_t chunk_values_ = 0;
  int64_t chunk_uncompressed_ = 0;
  int32_t chunk_pages_ = 0;
  stats_accumulator chunk_stats_;
  stats_accumulator file_stats_;

  std::string body_, compressed_, header_;  ///< Scratch buffers reused for every page.
};

namespace {

status validate(const schema_ptr& schema, const parquet_writer_options& o) {
  auto bad = [](std::string what) {
    return make_error(errc::invalid_argument, "parquet writer: " + std::move(what));
  };
  if (o.codec != parquet_codec::uncompressed && o.codec != parquet_codec::snappy &&
      o.codec != parquet_codec::zstd) {
    return bad("options.codec must be uncompressed, snappy or zstd, got value " +
               std::to_string(static_cast<int>(o.codec)));
  }
  if (o.zstd_level < 1 || o.zstd_level > parquet_writer_options::max_zstd_level) {
    return bad("options.zstd_level must be between 1 and " +
               std::to_string(parquet_writer_options::max_zstd_level) + ", got " +
               std::to_string(o.zstd_level));
  }
  if (o.page_bytes == 0 || o.page_bytes > parquet_writer_options::max_page_bytes) {
    return bad("options.page_bytes must be between 1 and " +
               std::to_string(parquet_writer_options::max_page_bytes) + ", got " +
               std::to_string(o.page_bytes));
  }
  if (o.row_group_bytes == 0 || o.row_group_bytes > parquet_writer_options::max_row_group_bytes) {
    return bad("options.row_group_bytes must be between 1 and " +
               std::to_string(parquet_writer_options::max_row_group_bytes) + ", got " +
               std::to_string(o.row_group_bytes));
  }
  if (o.page_bytes > o.row_group_bytes) {
    return bad("options.page_bytes (" + std::to_string(o.page_bytes) +
               ") must not exceed options.row_group_bytes (" + std::to_string(o.row_group_bytes) +
               ")");
  }
  for (const auto& [key, value] : o.key_value_metadata) {
    if (key.empty()) {
      return bad("options.key_value_metadata has an empty key");
    }
  }
  if (schema == nullptr || schema->size() == 0) {
    return bad("the schema has no fields; a Parquet file needs at least one column");
  }
  std::set<std::string_view> names;
  for (const field& f : schema->fields()) {
    if (f.name.empty()) {
      return bad("the schema has a field with an empty name");
    }
    if (!names.insert(f.name).second) {
      return bad("the schema has two fields named '" + f.name + "'");
    }
  }
  return {};
}

}  // namespace

result<std::unique_ptr<parquet_writer>> parquet_writer::open(const std::string& path,
                                                             schema_ptr schema,
                                                             parquet_writer_options options) {
  VIGIL_TRY(validate(schema, options));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(errc::io_error,
                      "parquet writer: cannot create '" + path + "': " + errno_text());
  }
  std::unique_ptr<parquet_writer> w(
      new parquet_writer(path, fd, std::move(schema), std::move(options)));
  VIGIL_TRY(w->write_all(std::string(magic)));
  return w;
}

parquet_writer::parquet_writer(std::string path, int fd, schema_ptr schema,
                               parquet_writer_options options)
    : path_(std::move(path)),
      fd_(fd),
      schema_(std::move(schema)),
      options_(std::move(options)),
      compressor_(std::make_unique<page_compressor>(options_.codec, options_.zstd_level)) {
  for (const field& f : schema_->fields()) {
    columns_.push_back(std::make_unique<column_writer>(f, options_, *compressor_));
  }
}

parquet_writer::~parquet_writer() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

status parquet_writer::fail(error err) {
  failed_ = true;
  return with_context("parquet writer '" + path_ + "': ", std::move(err));
}

status parquet_writer::write(const record_batch& batch) {
  const std::string where = "parquet writer '" + path_ + "': ";
  if (closed_ || failed_) {
    return make_error(errc::invalid_argument,
                      where + (closed_ ? "write after close" : "write after an earlier error"));
  }
  if (batch.schema == nullptr || (batch.schema != schema_ && *batch.schema != *schema_)) {
    return make_error(errc::invalid_argument,
                      where + "batch schema (" +
                          (batch.schema ? batch.schema->to_string() : std::string("none")) +
                          ") differs from the file's (" + schema_->to_string() + ")");
  }
  const size_t n = batch.num_rows();
  if (batch.columns.size() != schema_->size()) {
    return make_error(errc::invalid_argument,
                      where + "batch has " + std::to_string(batch.columns.size()) +
                          " columns, the schema " + std::to_string(schema_->size()));
  }
  size_t estimated_bytes = 0;  // PLAIN size of the batch, to cut it at row group boundaries.
  for (size_t c = 0; c < batch.columns.size(); ++c) {
    const column& col = batch.columns[c];
    const field& f = schema_->at(c);
    if (col.type != f.type || col.size() != n) {
      return make_error(errc::invalid_argument,
                        where + "column '" + f.name + "' has type " +
                            std::string(to_string(col.type)) + " and " +
                            std::to_string(col.size()) + " rows, expected " +
                            std::string(to_string(f.type)) + " and " + std::to_string(n));
    }
    if (!f.nullable && std::memchr(col.valid.data(), 0, n) != nullptr) {
      return make_error(errc::invalid_argument,
                        where + "field '" + f.name + "' is not nullable but the batch has nulls");
    }
    switch (f.type) {
      case type_id::boolean:
        estimated_bytes += n / 8 + 1;
        break;
      case type_id::string:
        estimated_bytes += 4 * n + col.chars.size();
        break;
      case type_id::int64:
      case type_id::float64:
      case type_id::timestamp:
        estimated_bytes += 8 * n;
        break;
    }
    estimated_bytes += f.nullable ? n / 8 + 1 : 0;
  }
  const double bytes_per_row =
      n == 0 ? 1.0 : std::max(1.0 / 8, static_cast<double>(estimated_bytes) / n);

  size_t row = 0;
  while (row < n) {
    const size_t buffered = buffered_bytes();
    const size_t room =
        options_.row_group_bytes > buffered ? options_.row_group_bytes - buffered : 1;
    const size_t rows = std::clamp<size_t>(
        static_cast<size_t>(std::ceil(static_cast<double>(room) / bytes_per_row)), 1, n - row);
    for (size_t c = 0; c < columns_.size(); ++c) {
      if (auto st = columns_[c]->append(batch.columns[c], row, row + rows); !st) {
        return fail(st.err());
      }
    }
    row += rows;
    row_group_rows_ += static_cast<int64_t>(rows);
    num_rows_ += static_cast<int64_t>(rows);
    if (buffered_bytes() >= options_.row_group_bytes) {
      if (auto st = flush_row_group(); !st) {
        return fail(st.err());
      }
    }
  }
  return {};
}

size_t parquet_writer::buffered_bytes() const {
  size_t total = 0;
  for (const auto& c : columns_) {
    total += c->buffered_bytes();
  }
  return total;
}

status parquet_writer::write_all(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return make_error(errc::io_error, "write failed: " + errno_text());
    }
    done += static_cast<size_t>(n);
  }
  offset_ += bytes.size();
  return {};
}

status parquet_writer::flush_row_group() {
  row_group_meta rg;
  rg.num_rows = row_group_rows_;
  rg.file_offset = static_cast<int64_t>(offset_);
  for (auto& c : columns_) {
    VIGIL_TRY(c->finish_page());
  }
  for (auto& c : columns_) {
    const int64_t data_page_offset = static_cast<int64_t>(offset_);
    VIGIL_TRY(write_all(c->chunk_));
    rg.chunks.push_back(c->take_chunk(data_page_offset));
  }
  row_groups_.push_back(std::move(rg));
  row_group_rows_ = 0;
  return {};
}

std::string parquet_writer::encode_footer() const {
  std::string out;
  compact_encoder e(out);
  e.struct_begin();
  e.field_i32(1, 1);  // version
  e.field_list_begin(2, thrift_type::structure, schema_->size() + 1);
  e.element_struct_begin();  // The root: a group of all columns.
  e.field_binary(4, "schema");
  e.field_i32(5, static_cast<int32_t>(schema_->size()));
  e.struct_end();
  for (const field& f : schema_->fields()) {
    e.element_struct_begin();
    e.field_i32(1, physical_type(f.type));
    e.field_i32(3, f.nullable ? repetition_optional : repetition_required);
    e.field_binary(4, f.name);
    if (f.type == type_id::string) {
      e.field_i32(6, converted_utf8);
      e.field_struct_begin(10);  // LogicalType
      e.field_struct_begin(1);   // STRING
      e.struct_end();
      e.struct_end();
    } else if (f.type == type_id::timestamp) {
      e.field_i32(6, converted_timestamp_micros);
      e.field_struct_begin(10);  // LogicalType
      e.field_struct_begin(8);   // TIMESTAMP
      e.field_bool(1, true);     // isAdjustedToUTC
      e.field_struct_begin(2);   // unit: TimeUnit
      e.field_struct_begin(2);   // MICROS
      e.struct_end();
      e.struct_end();
      e.struct_end();
      e.struct_end();
    }
    e.struct_end();
  }
  e.field_i64(3, num_rows_);
  e.field_list_begin(4, thrift_type::structure, row_groups_.size());
  for (size_t g = 0; g < row_groups_.size(); ++g) {
    const row_group_meta& rg = row_groups_[g];
    int64_t uncompressed = 0;
    int64_t compressed = 0;
    e.element_struct_begin();
    e.field_list_begin(1, thrift_type::structure, rg.chunks.size());
    for (size_t c = 0; c < rg.chunks.size(); ++c) {
      const chunk_meta& m = rg.chunks[c];
      const field& f = schema_->at(c);
      uncompressed += m.uncompressed_bytes;
      compressed += m.compressed_bytes;
      e.element_struct_begin();  // ColumnChunk
      e.field_i64(2, 0);         // file_offset: 0, no ColumnMetaData outside the footer.
      e.field_struct_begin(3);   // ColumnMetaData
      e.field_i32(1, physical_type(f.type));
      e.field_list_begin(2, thrift_type::i32, 2);
      e.element_i32(encoding_plain);
      e.element_i32(encoding_rle);
      e.field_list_begin(3, thrift_type::binary, 1);
      e.element_binary(f.name);
      e.field_i32(4, codec_value(options_.codec));
      e.field_i64(5, m.num_values);
      e.field_i64(6, m.uncompressed_bytes);
      e.field_i64(7, m.compressed_bytes);
      e.field_i64(9, m.data_page_offset);
      m.stats.encode(e, 12);
      e.field_list_begin(13, thrift_type::structure, 1);  // encoding_stats
      e.element_struct_begin();
      e.field_i32(1, page_type_data);
      e.field_i32(2, encoding_plain);
      e.field_i32(3, m.pages);
      e.struct_end();
      e.struct_end();
      e.struct_end();
    }
    e.field_i64(2, uncompressed);
    e.field_i64(3, rg.num_rows);
    e.field_i64(5, rg.file_offset);
    e.field_i64(6, compressed);
    if (g <= static_cast<size_t>(std::numeric_limits<int16_t>::max())) {
      e.field_i16(7, static_cast<int16_t>(g));
    }
    e.struct_end();
  }
  if (!options_.key_value_metadata.empty()) {
    e.field_list_begin(5, thrift_type::structure, options_.key_value_metadata.size());
    for (const auto& [key, value] : options_.key_value_metadata) {
      e.element_struct_begin();
      e.field_binary(1, key);
      e.field_binary(2, value);
      e.struct_end();
    }
  }
  e.field_binary(6, "vigil version " VIGIL_VERSION " (build " VIGIL_BUILD ")");
  e.field_list_begin(7, thrift_type::structure, schema_->size());
  for (size_t c = 0; c < schema_->size(); ++c) {
    e.element_struct_begin();  // ColumnOrder
    e.field_struct_begin(1);   // TYPE_ORDER
    e.struct_end();
    e.struct_end();
  }
  e.struct_end();
  return out;
}

result<parquet_file_info> parquet_writer::close() {
  const std::string where = "parquet writer '" + path_ + "': ";
  if (closed_ || failed_) {
    return make_error(errc::invalid_argument,
                      where + (closed_ ? "closed twice" : "close after an earlier error"));
  }
  if (row_group_rows_ > 0) {
    if (auto st = flush_row_group(); !st) {
      return fail(st.err()).err();
    }
  }
  std::string tail = encode_footer();
  const uint32_t footer_bytes = static_cast<uint32_t>(tail.size());
  append_le32(tail, footer_bytes);
  tail.append(magic);
  if (auto st = write_all(tail); !st) {
    return fail(st.err()).err();
  }
  if (::fsync(fd_) != 0) {
    return fail(make_error(errc::io_error, "fsync failed: " + errno_text())).err();
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    return fail(make_error(errc::io_error, "close failed: " + errno_text())).err();
  }
  closed_ = true;

  parquet_file_info info;
  info.file_bytes = offset_;
  info.num_rows = num_rows_;
  info.num_row_groups = row_groups_.size();
  for (const auto& c : columns_) {
    const stats_accumulator& s = c->file_stats_;
    info.columns.push_back(parquet_column_stats{c->field_.name, c->field_.type, s.null_count,
                                                s.nan_count, s.value(false), s.value(true)});
  }
  return info;
}

}  // namespace vigil::lake
