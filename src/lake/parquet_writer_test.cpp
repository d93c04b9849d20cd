#include "lake/parquet_writer.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lake/testing/parquet_reader.hpp"

namespace vigil::lake {
namespace {

using testing::thrift_value;

constexpr int64_t int64_min = std::numeric_limits<int64_t>::min();
constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

class parquet_writer_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-parquet-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  /// Writes `batches` and returns what close() reported.
  parquet_file_info write(const std::string& file, const schema_ptr& s,
                          const std::vector<batch_ptr>& batches,
                          parquet_writer_options options = {}) {
    auto w = parquet_writer::open(path(file), s, std::move(options));
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.err().message);
    if (!w.ok()) {
      return {};
    }
    for (const auto& b : batches) {
      const status st = (*w)->write(*b);
      EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    }
    auto info = (*w)->close();
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.err().message);
    return info.ok() ? *info : parquet_file_info{};
  }

  std::string dir_;
};

parquet_writer_options make_options(parquet_codec codec, size_t row_group_bytes = size_t{128} << 20,
                                    size_t page_bytes = size_t{1} << 20) {
  parquet_writer_options o;
  o.codec = codec;
  o.row_group_bytes = row_group_bytes;
  o.page_bytes = page_bytes;
  return o;
}

std::string le64(int64_t v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}
std::string le_double(double v) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &v, 8);
  return out;
}

/// The stats of column `c` of row group `g`.
const thrift_value& chunk_stats(const thrift_value& footer, size_t g, size_t c) {
  return footer[4].items.at(g)[1].items.at(c)[3][12];
}

schema_ptr all_types_schema(bool nullable) {
  return make_schema({{"b", type_id::boolean, nullable},
                      {"i", type_id::int64, nullable},
                      {"d", type_id::float64, nullable},
                      {"s", type_id::string, nullable},
                      {"t", type_id::timestamp, nullable}});
}

/// Row r of the all-types batch; every third row is null when `with_nulls`.
batch_ptr all_types_batch(const schema_ptr& s, int first, int rows, bool with_nulls) {
  batch_builder b(s);
  for (int r = first; r < first + rows; ++r) {
    if (with_nulls && r % 3 == 1) {
      for (size_t c = 0; c < s->size(); ++c) {
        b.col(c).push_null();
      }
    } else {
      b.col(0).push_bool(r % 2 == 0);
      b.col(1).push_int64(int64_t{r} * 1000 - 5000);
      b.col(2).push_float64(r * 0.5);
      b.col(3).push_string("row-" + std::to_string(r));
      b.col(4).push_int64(1'700'000'000'000'000 + r);
    }
    b.end_row(r);
  }
  return b.finish();
}

TEST_F(parquet_writer_test, footer_describes_schema_types_and_writer) {
  const schema_ptr s = make_schema({{"b", type_id::boolean, false},
                                    {"i", type_id::int64, true},
                                    {"d", type_id::float64, false},
                                    {"s", type_id::string, true},
                                    {"t", type_id::timestamp, false}});
  const auto info = write("types.parquet", s, {all_types_batch(s, 0, 10, false)}, [] {
    parquet_writer_options o;
    o.key_value_metadata = {{"vigil.job", "j1"}};
    return o;
  }());
  const std::string file = testing::read_file_bytes(path("types.parquet"));
  EXPECT_EQ(info.file_bytes, file.size());
  EXPECT_EQ(info.num_rows, 10);
  EXPECT_EQ(info.num_row_groups, 1u);
  const thrift_value footer = testing::read_footer(file);

  EXPECT_EQ(footer[1].i, 1);  // version
  EXPECT_EQ(footer[3].i, 10);
  EXPECT_EQ(footer[6].s, "vigil version " VIGIL_VERSION " (build " VIGIL_BUILD ")");
  ASSERT_EQ(footer[5].items.size(), 1u);
  EXPECT_EQ(footer[5].items[0][1].s, "vigil.job");
  EXPECT_EQ(footer[5].items[0][2].s, "j1");

  const auto& schema = footer[2].items;
  ASSERT_EQ(schema.size(), 6u);
  EXPECT_EQ(schema[0][4].s, "schema");
  EXPECT_EQ(schema[0][5].i, 5);
  EXPECT_FALSE(schema[0].has(1));
  EXPECT_FALSE(schema[0].has(3));
  const int expected_types[] = {0, 2, 5, 6, 2};  // BOOLEAN, INT64, DOUBLE, BYTE_ARRAY, INT64
  for (size_t c = 0; c < 5; ++c) {
    const thrift_value& e = schema[c + 1];
    EXPECT_EQ(e[4].s, s->at(c).name);
    EXPECT_EQ(e[1].i, expected_types[c]);
    EXPECT_EQ(e[3].i, s->at(c).nullable ? 1 : 0);
    EXPECT_FALSE(e.has(5));
  }
  EXPECT_FALSE(schema[1].has(6));
  EXPECT_FALSE(schema[1].has(10));
  EXPECT_EQ(schema[4][6].i, 0);       // UTF8
  EXPECT_TRUE(schema[4][10].has(1));  // LogicalType STRING
  EXPECT_EQ(schema[4][10].ids.size(), 1u);
  EXPECT_EQ(schema[5][6].i, 10);  // TIMESTAMP_MICROS
  const thrift_value& ts = schema[5][10][8];
  EXPECT_EQ(ts[1].i, 1);      // isAdjustedToUTC
  EXPECT_TRUE(ts[2].has(2));  // MICROS
  EXPECT_EQ(ts[2].ids.size(), 1u);

  ASSERT_EQ(footer[7].items.size(), 5u);  // column_orders
  for (const thrift_value& order : footer[7].items) {
    ASSERT_EQ(order.ids.size(), 1u);
    EXPECT_EQ(order.ids[0], 1);  // TYPE_ORDER
    EXPECT_TRUE(order[1].ids.empty());
  }

  const thrift_value& rg = footer[4].items.at(0);
  EXPECT_EQ(rg[3].i, 10);
  EXPECT_EQ(rg[5].i, 4);  // The first row group starts right after the magic.
  EXPECT_EQ(rg[7].i, 0);  // ordinal
  int64_t uncompressed = 0, compressed = 0;
  for (size_t c = 0; c < 5; ++c) {
    const thrift_value& chunk = rg[1].items.at(c);
    EXPECT_EQ(chunk[2].i, 0);
    const thrift_value& meta = chunk[3];
    EXPECT_EQ(meta[1].i, expected_types[c]);
    ASSERT_EQ(meta[3].items.size(), 1u);
    EXPECT_EQ(meta[3].items[0].s, s->at(c).name);
    EXPECT_EQ(meta[4].i, 1);  // SNAPPY is the default
    EXPECT_EQ(meta[5].i, 10);
    EXPECT_EQ(meta[13].items.at(0)[3].i, 1);  // one data page
    uncompressed += meta[6].i;
    compressed += meta[7].i;
  }
  EXPECT_EQ(rg[2].i, uncompressed);
  EXPECT_EQ(rg[6].i, compressed);
}

class parquet_codec_test : public parquet_writer_test,
                           public ::testing::WithParamInterface<parquet_codec> {};

TEST_P(parquet_codec_test, pages_decode_to_the_written_rows) {
  for (bool nullable : {false, true}) {
    const schema_ptr s = all_types_schema(nullable);
    const std::string name = std::string(to_string(GetParam())) + (nullable ? "-opt" : "-req");
    // Small pages: every column chunk has several pages.
    write(name, s, {all_types_batch(s, 0, 300, nullable), all_types_batch(s, 300, 200, nullable)},
          make_options(GetParam(), size_t{128} << 20, 48));
    const std::string file = testing::read_file_bytes(path(name));
    const thrift_value footer = testing::read_footer(file);
    ASSERT_EQ(footer[4].items.size(), 1u);
    for (size_t c = 0; c < s->size(); ++c) {
      const thrift_value& meta = footer[4].items[0][1].items.at(c)[3];
      EXPECT_EQ(meta[4].i, GetParam() == parquet_codec::uncompressed ? 0
                           : GetParam() == parquet_codec::snappy     ? 1
                                                                     : 6);
      const auto pages =
          testing::read_chunk_pages(file, meta[9].i, meta[7].i, static_cast<int>(meta[1].i),
                                    static_cast<int>(meta[4].i), nullable);
      EXPECT_GT(pages.size(), 1u) << s->at(c).name;
      EXPECT_EQ(meta[13].items.at(0)[3].i, static_cast<int64_t>(pages.size()));
      int64_t page_uncompressed = 0;
      int r = 0;
      for (const auto& page : pages) {
        EXPECT_EQ(page.header[1].i, 0);     // DATA_PAGE
        EXPECT_EQ(page.header[5][2].i, 0);  // PLAIN
        EXPECT_EQ(page.header[5][3].i, 3);  // RLE
        page_uncompressed += page.header[2].i;
        size_t v = 0;
        for (int64_t k = 0; k < page.header[5][1].i; ++k, ++r) {
          const bool is_null = nullable && r % 3 == 1;
          if (nullable) {
            ASSERT_EQ(page.levels.at(k), is_null ? 0 : 1) << "row " << r;
          }
          if (is_null) {
            continue;
          }
          const std::string& value = page.values.at(v++);
          switch (c) {
            case 0:
              EXPECT_EQ(value, std::string(1, r % 2 == 0 ? '\1' : '\0')) << "row " << r;
              break;
            case 1:
              EXPECT_EQ(value, le64(int64_t{r} * 1000 - 5000)) << "row " << r;
              break;
            case 2:
              EXPECT_EQ(value, le_double(r * 0.5)) << "row " << r;
              break;
            case 3:
              EXPECT_EQ(value, "row-" + std::to_string(r));
              break;
            default:
              EXPECT_EQ(value, le64(1'700'000'000'000'000 + r));
          }
        }
        EXPECT_EQ(v, page.values.size());
      }
      EXPECT_EQ(r, 500);
      EXPECT_LT(page_uncompressed, meta[6].i);  // The headers count too.
    }
  }
}

TEST_F(parquet_writer_test, zstd_level_sets_the_compression_of_the_pages) {
  const schema_ptr s = make_schema({{"raw", type_id::string, false}});
  batch_builder b(s);
  // Eight words each from a small vocabulary, in a fixed pseudo-random order: text that a
  // harder search compresses better.
  const char* words[] = {"heart",      "rate",      "oxygen",      "saturation",  "blood",
                         "pressure",   "systolic",  "temperature", "respiratory", "lactate",
                         "creatinine", "platelets", "bilirubin",   "glucose",     "final",
                         "amended",    "patient",   "encounter",   "observation", "mean"};
  std::mt19937 rng(1);
  std::vector<std::string> messages;
  for (int r = 0; r < 5000; ++r) {
    std::string m;
    for (int w = 0; w < 8; ++w) m += std::string(w ? " " : "") + words[rng() % std::size(words)];
    messages.push_back(m);
    b.col(0).push_string(m);
    b.end_row(r);
  }
  const batch_ptr batch = b.finish();
  std::map<int, int64_t> compressed;  // By level: the column chunk's compressed size.
  for (int level : {1, 3, 19}) {
    const std::string name = "zstd-" + std::to_string(level);
    parquet_writer_options o = make_options(parquet_codec::zstd);
    o.zstd_level = level;
    write(name, s, {batch}, o);
    const std::string file = testing::read_file_bytes(path(name));
    const thrift_value footer = testing::read_footer(file);
    const thrift_value& meta = footer[4].items.at(0)[1].items.at(0)[3];
    const auto pages = testing::read_chunk_pages(file, meta[9].i, meta[7].i,
                                                 static_cast<int>(meta[1].i), 6, false);
    ASSERT_EQ(pages.size(), 1u);
    EXPECT_EQ(pages[0].values, messages);
    compressed[level] = meta[7].i;
  }
  // Higher levels search harder for matches: fewer bytes for the same text.
  EXPECT_LT(compressed[3], compressed[1]);
  EXPECT_LT(compressed[19], compressed[3]);
}

INSTANTIATE_TEST_SUITE_P(codecs, parquet_codec_test,
                         ::testing::Values(parquet_codec::uncompressed, parquet_codec::snappy,
                                           parquet_codec::zstd),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST_F(parquet_writer_test, int64_and_timestamp_stats_use_signed_order) {
  const schema_ptr s = make_schema({{"i", type_id::int64, true}, {"t", type_id::timestamp, false}});
  batch_builder b(s);
  const int64_t values[] = {5, int64_max, -1, int64_min, 0};
  for (int64_t v : values) {
    b.col(0).push_int64(v);
    b.col(1).push_int64(-v / 2);
    b.end_row(0);
  }
  b.col(0).push_null();
  b.col(1).push_int64(7);
  b.end_row(0);
  const auto info = write("ints.parquet", s, {b.finish()});
  const thrift_value footer = testing::read_footer(testing::read_file_bytes(path("ints.parquet")));
  const thrift_value& st = chunk_stats(footer, 0, 0);
  EXPECT_EQ(st[6].s, le64(int64_min));
  EXPECT_EQ(st[5].s, le64(int64_max));
  EXPECT_EQ(st[3].i, 1);
  EXPECT_EQ(st[7].i, 1);  // is_max_value_exact
  EXPECT_EQ(st[8].i, 1);
  EXPECT_FALSE(st.has(1));  // No deprecated min/max.
  EXPECT_FALSE(st.has(2));
  EXPECT_FALSE(st.has(9));  // nan_count only for floating point.
  const thrift_value& ts = chunk_stats(footer, 0, 1);
  EXPECT_EQ(ts[6].s, le64(-(int64_max / 2)));
  EXPECT_EQ(ts[5].s, le64(-(int64_min / 2)));
  EXPECT_EQ(ts[3].i, 0);

  ASSERT_EQ(info.columns.size(), 2u);
  EXPECT_EQ(info.columns[0].name, "i");
  EXPECT_EQ(info.columns[0].null_count, 1);
  EXPECT_EQ(std::get<int64_t>(info.columns[0].min), int64_min);
  EXPECT_EQ(std::get<int64_t>(info.columns[0].max), int64_max);
  EXPECT_EQ(info.columns[1].type, type_id::timestamp);
  EXPECT_EQ(std::get<int64_t>(info.columns[1].min), -(int64_max / 2));
}

TEST_F(parquet_writer_test, double_stats_leave_out_nan_and_normalize_zeros) {
  const schema_ptr s = make_schema({{"mixed", type_id::float64, true},
                                    {"all_nan", type_id::float64, true},
                                    {"zeros", type_id::float64, false},
                                    {"inf", type_id::float64, false}});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  batch_builder b(s);
  const double mixed[] = {nan, 2.5, -7.25, nan, 1e300};
  const double zeros[] = {0.0, -0.0, 0.0, -0.0, 0.0};
  const double infs[] = {inf, -inf, 0.0, 1.0, -1.0};
  for (int r = 0; r < 5; ++r) {
    b.col(0).push_float64(mixed[r]);
    r == 2 ? b.col(1).push_null() : b.col(1).push_float64(nan);
    b.col(2).push_float64(zeros[r]);
    b.col(3).push_float64(infs[r]);
    b.end_row(0);
  }
  const auto info = write("doubles.parquet", s, {b.finish()});
  const thrift_value footer =
      testing::read_footer(testing::read_file_bytes(path("doubles.parquet")));

  const thrift_value& m = chunk_stats(footer, 0, 0);
  EXPECT_EQ(m[6].s, le_double(-7.25));
  EXPECT_EQ(m[5].s, le_double(1e300));
  EXPECT_EQ(m[9].i, 2);
  EXPECT_EQ(m[3].i, 0);
  EXPECT_EQ(info.columns[0].nan_count, 2);
  EXPECT_EQ(std::get<double>(info.columns[0].min), -7.25);

  const thrift_value& n = chunk_stats(footer, 0, 1);
  EXPECT_FALSE(n.has(5));
  EXPECT_FALSE(n.has(6));
  EXPECT_EQ(n[9].i, 4);
  EXPECT_EQ(n[3].i, 1);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(info.columns[1].min));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(info.columns[1].max));

  const thrift_value& z = chunk_stats(footer, 0, 2);
  EXPECT_EQ(z[6].s, le_double(-0.0));
  EXPECT_EQ(z[5].s, le_double(0.0));
  EXPECT_EQ(z[9].i, 0);
  EXPECT_TRUE(std::signbit(std::get<double>(info.columns[2].min)));
  EXPECT_FALSE(std::signbit(std::get<double>(info.columns[2].max)));

  const thrift_value& i = chunk_stats(footer, 0, 3);
  EXPECT_EQ(i[6].s, le_double(-inf));
  EXPECT_EQ(i[5].s, le_double(inf));
}

TEST_F(parquet_writer_test, string_stats_compare_unsigned_bytes) {
  const schema_ptr s = make_schema({{"s", type_id::string, true}, {"e", type_id::string, false}});
  batch_builder b(s);
  const char* values[] = {"z", "\xc3\xa9t\xc3\xa9", "", "a", "Z"};
  for (const char* v : values) {
    b.col(0).push_string(v);
    b.col(1).push_string("");
    b.end_row(0);
  }
  b.col(0).push_null();
  b.col(1).push_string("");
  b.end_row(0);
  const auto info = write("strings.parquet", s, {b.finish()});
  const thrift_value footer =
      testing::read_footer(testing::read_file_bytes(path("strings.parquet")));
  const thrift_value& st = chunk_stats(footer, 0, 0);
  EXPECT_EQ(st[6].s, "");
  EXPECT_TRUE(st.has(6));                   // An empty minimum is still written.
  EXPECT_EQ(st[5].s, "\xc3\xa9t\xc3\xa9");  // 0xc3 sorts after 'z' as an unsigned byte.
  EXPECT_EQ(st[3].i, 1);
  const thrift_value& e = chunk_stats(footer, 0, 1);
  EXPECT_EQ(e[6].s, "");
  EXPECT_EQ(e[5].s, "");
  EXPECT_EQ(std::get<std::string>(info.columns[0].max), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(std::get<std::string>(info.columns[1].min), "");
}

TEST_F(parquet_writer_test, bool_stats_order_false_before_true) {
  const schema_ptr s = make_schema({{"mixed", type_id::boolean, false},
                                    {"all_false", type_id::boolean, false},
                                    {"all_true", type_id::boolean, true}});
  batch_builder b(s);
  for (int r = 0; r < 20; ++r) {
    b.col(0).push_bool(r == 13);
    b.col(1).push_bool(false);
    r % 2 == 0 ? b.col(2).push_bool(true) : b.col(2).push_null();
    b.end_row(0);
  }
  const auto info = write("bools.parquet", s, {b.finish()});
  const thrift_value footer = testing::read_footer(testing::read_file_bytes(path("bools.parquet")));
  EXPECT_EQ(chunk_stats(footer, 0, 0)[6].s, std::string(1, '\0'));
  EXPECT_EQ(chunk_stats(footer, 0, 0)[5].s, std::string(1, '\1'));
  EXPECT_EQ(chunk_stats(footer, 0, 1)[5].s, std::string(1, '\0'));
  EXPECT_EQ(chunk_stats(footer, 0, 2)[6].s, std::string(1, '\1'));
  EXPECT_EQ(chunk_stats(footer, 0, 2)[3].i, 10);
  EXPECT_EQ(std::get<bool>(info.columns[0].min), false);
  EXPECT_EQ(std::get<bool>(info.columns[0].max), true);
  EXPECT_EQ(std::get<bool>(info.columns[2].min), true);
}

TEST_F(parquet_writer_test, all_null_columns_have_a_null_count_and_no_min_max) {
  const schema_ptr s = all_types_schema(true);
  batch_builder b(s);
  for (int r = 0; r < 30; ++r) {
    for (size_t c = 0; c < s->size(); ++c) {
      b.col(c).push_null();
    }
    b.end_row(0);
  }
  const auto info = write("nulls.parquet", s, {b.finish()}, make_options(parquet_codec::zstd));
  const std::string file = testing::read_file_bytes(path("nulls.parquet"));
  const thrift_value footer = testing::read_footer(file);
  for (size_t c = 0; c < s->size(); ++c) {
    const thrift_value& st = chunk_stats(footer, 0, c);
    EXPECT_EQ(st[3].i, 30);
    EXPECT_FALSE(st.has(5));
    EXPECT_FALSE(st.has(6));
    EXPECT_EQ(info.columns[c].null_count, 30);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(info.columns[c].min));
    const thrift_value& meta = footer[4].items[0][1].items.at(c)[3];
    const auto pages =
        testing::read_chunk_pages(file, meta[9].i, meta[7].i, static_cast<int>(meta[1].i), 6, true);
    ASSERT_EQ(pages.size(), 1u);
    EXPECT_EQ(pages[0].levels, std::vector<uint8_t>(30, 0));
    EXPECT_TRUE(pages[0].values.empty());
  }
  EXPECT_TRUE(chunk_stats(footer, 0, 2).has(9));
  EXPECT_EQ(chunk_stats(footer, 0, 2)[9].i, 0);
}

TEST_F(parquet_writer_test, row_groups_are_cut_by_size_and_stats_merge) {
  const schema_ptr s = all_types_schema(true);
  std::vector<batch_ptr> batches;
  for (int k = 0; k < 100; ++k) {
    batches.push_back(all_types_batch(s, k * 7, 7, true));  // Many small batches.
  }
  batches.push_back(all_types_batch(s, 700, 3000, true));  // And one large one.
  const auto info =
      write("groups.parquet", s, batches, make_options(parquet_codec::zstd, 8192, 1024));
  const std::string file = testing::read_file_bytes(path("groups.parquet"));
  const thrift_value footer = testing::read_footer(file);
  const auto& groups = footer[4].items;
  ASSERT_GT(groups.size(), 5u);
  EXPECT_EQ(info.num_row_groups, groups.size());
  EXPECT_EQ(info.num_rows, 3700);
  int64_t rows = 0;
  int64_t expected_offset = 4;
  for (size_t g = 0; g < groups.size(); ++g) {
    const thrift_value& rg = groups[g];
    rows += rg[3].i;
    EXPECT_EQ(rg[7].i, static_cast<int64_t>(g));
    EXPECT_EQ(rg[5].i, expected_offset);
    if (g + 1 < groups.size()) {
      // Cut close to the target: at most one slice of rows beyond it.
      EXPECT_GE(rg[2].i, 8192);
      EXPECT_LT(rg[2].i, 8192 + 2048);
    }
    for (const thrift_value& chunk : rg[1].items) {
      EXPECT_EQ(chunk[3][9].i, expected_offset);
      EXPECT_EQ(chunk[3][5].i, rg[3].i);
      expected_offset += chunk[3][7].i;
    }
  }
  EXPECT_EQ(rows, 3700);
  EXPECT_EQ(footer[3].i, 3700);
  // File-level stats are the merge of all row groups.
  EXPECT_EQ(std::get<int64_t>(info.columns[1].min), -5000);
  EXPECT_EQ(std::get<int64_t>(info.columns[1].max), int64_t{3699} * 1000 - 5000);
  EXPECT_EQ(std::get<std::string>(info.columns[3].min), "row-0");
  EXPECT_EQ(std::get<std::string>(info.columns[3].max), "row-999");
  EXPECT_EQ(info.columns[0].null_count, 3700 / 3 + (3700 % 3 > 1 ? 1 : 0));
  int64_t nulls = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    nulls += chunk_stats(footer, g, 3)[3].i;
  }
  EXPECT_EQ(nulls, info.columns[3].null_count);
}

TEST_F(parquet_writer_test, an_empty_file_has_a_footer_and_no_row_groups) {
  const schema_ptr s = all_types_schema(false);
  batch_builder b(s);
  const auto info = write("empty.parquet", s, {b.finish()});
  EXPECT_EQ(info.num_rows, 0);
  EXPECT_EQ(info.num_row_groups, 0u);
  const thrift_value footer = testing::read_footer(testing::read_file_bytes(path("empty.parquet")));
  EXPECT_EQ(footer[3].i, 0);
  EXPECT_TRUE(footer[4].items.empty());
  EXPECT_EQ(footer[7].items.size(), 5u);
}

TEST_F(parquet_writer_test, refuses_bad_options_naming_the_option) {
  const schema_ptr s = all_types_schema(true);
  auto message = [&](parquet_writer_options o, schema_ptr schema = nullptr) {
    auto w = parquet_writer::open(path("bad.parquet"), schema ? schema : s, std::move(o));
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.ok() ? errc::internal : w.err().code, errc::invalid_argument);
    return w.ok() ? std::string() : w.err().message;
  };
  EXPECT_NE(message(make_options(parquet_codec::snappy, 1000, 0)).find("options.page_bytes"),
            std::string::npos);
  EXPECT_NE(message(make_options(parquet_codec::snappy, size_t{1} << 31, (size_t{1} << 30) + 1))
                .find("options.page_bytes"),
            std::string::npos);
  EXPECT_NE(message(make_options(parquet_codec::snappy, 0, 0)).find("options.page_bytes"),
            std::string::npos);
  EXPECT_NE(message(make_options(parquet_codec::snappy, 0, 1)).find("options.row_group_bytes"),
            std::string::npos);
  EXPECT_NE(message(make_options(parquet_codec::snappy, 100, 200)).find("must not exceed"),
            std::string::npos);
  EXPECT_NE(message(make_options(static_cast<parquet_codec>(9))).find("options.codec"),
            std::string::npos);
  for (int level : {0, parquet_writer_options::max_zstd_level + 1}) {
    parquet_writer_options o = make_options(parquet_codec::zstd);
    o.zstd_level = level;
    EXPECT_NE(message(o).find("options.zstd_level must be between 1 and 19, got " +
                              std::to_string(level)),
              std::string::npos);
  }
  EXPECT_NE(message([] {
              parquet_writer_options o;
              o.key_value_metadata = {{"", "x"}};
              return o;
            }())
                .find("options.key_value_metadata"),
            std::string::npos);
  EXPECT_NE(message({}, make_schema({})).find("no fields"), std::string::npos);
  EXPECT_NE(message({}, make_schema({{"a", type_id::int64, true}, {"a", type_id::string, true}}))
                .find("two fields named 'a'"),
            std::string::npos);
  EXPECT_NE(message({}, make_schema({{"", type_id::int64, true}})).find("empty name"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path("bad.parquet")));
}

TEST_F(parquet_writer_test, refuses_mismatched_batches_and_use_after_close) {
  const schema_ptr s = all_types_schema(false);
  auto w = parquet_writer::open(path("w.parquet"), s, {});
  ASSERT_TRUE(w.ok());
  const schema_ptr other = all_types_schema(true);
  const status mismatch = (*w)->write(*all_types_batch(other, 0, 3, false));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.err().message.find("differs"), std::string::npos);

  auto with_null = make_batch(s, 1);
  with_null->columns[0].push_null();
  with_null->columns[1].push_int64(1);
  with_null->columns[2].push_float64(1);
  with_null->columns[3].push_string("x");
  with_null->columns[4].push_int64(1);
  with_null->event_time.push_back(0);
  const status null_st = (*w)->write(*with_null);
  ASSERT_FALSE(null_st.ok());
  EXPECT_NE(null_st.err().message.find("field 'b' is not nullable"), std::string::npos);

  ASSERT_TRUE((*w)->write(*all_types_batch(s, 0, 3, false)).ok());
  ASSERT_TRUE((*w)->close().ok());
  EXPECT_FALSE((*w)->write(*all_types_batch(s, 0, 3, false)).ok());
  EXPECT_FALSE((*w)->close().ok());
}

TEST_F(parquet_writer_test, open_reports_io_errors) {
  auto w = parquet_writer::open(path("missing-dir/x.parquet"), all_types_schema(true), {});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.err().code, errc::io_error);
  EXPECT_NE(w.err().message.find("missing-dir/x.parquet"), std::string::npos);
}

}  // namespace
}  // namespace vigil::lake
