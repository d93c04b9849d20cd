// Parquet files from vigil::lake::parquet_writer, read back by an independent reader: DuckDB
// (npm package @duckdb/node-api, installed into tools/duckdb by tools/bootstrap.sh), run by
// tools/duckdb/query.mjs, which prints one JSON object per result row.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "lake/parquet_writer.hpp"
#include "process.hpp"

namespace vigil {
namespace {

using lake::parquet_codec;
using lake::parquet_writer;
using lake::parquet_writer_options;
using testing::make_temp_dir;
using testing::run_process;

const std::string source_dir = VIGIL_SOURCE_DIR;
const std::string query_script = VIGIL_DUCKDB_QUERY;
constexpr int64_t int64_min = std::numeric_limits<int64_t>::min();
constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

class ParquetDuckdb : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = testing::find_node();
    ASSERT_FALSE(node_.empty()) << "node is not installed, so DuckDB cannot check the Parquet "
                                   "files: run tools/bootstrap.sh";
    ASSERT_TRUE(std::filesystem::exists(source_dir +
                                        "/tools/duckdb/node_modules/@duckdb/node-api/package.json"))
        << "the DuckDB module is missing from tools/duckdb/node_modules: run tools/bootstrap.sh";
    dir_ = make_temp_dir("vigil-parquet-duckdb");
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  /// Runs `sql` in DuckDB; returns the result rows as JSON lines.
  std::vector<std::string> query(const std::string& sql) {
    const auto r = run_process({node_, query_script, sql});
    EXPECT_EQ(r.exit_code, 0) << sql << "\n" << r.err;
    std::vector<std::string> lines;
    std::stringstream out(r.out);
    std::string line;
    while (std::getline(out, line)) {
      lines.push_back(line);
    }
    return lines;
  }

  /// Writes `batches` to `name` in the test directory; returns the path.
  std::string write(const std::string& name, const schema_ptr& s,
                    const std::vector<batch_ptr>& batches, const parquet_writer_options& options,
                    lake::parquet_file_info* info = nullptr) {
    const std::string file = dir_ + "/" + name;
    auto w = parquet_writer::open(file, s, options);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.err().message);
    if (!w.ok()) {
      return file;
    }
    for (const auto& b : batches) {
      const status st = (*w)->write(*b);
      EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.err().message);
    }
    auto closed = (*w)->close();
    EXPECT_TRUE(closed.ok()) << (closed.ok() ? "" : closed.err().message);
    if (closed.ok() && info != nullptr) {
      *info = *closed;
    }
    return file;
  }

  std::string node_;
  std::string dir_;
};

parquet_writer_options options_for(parquet_codec codec, size_t row_group_bytes = size_t{128} << 20,
                                   size_t page_bytes = size_t{1} << 20) {
  parquet_writer_options o;
  o.codec = codec;
  o.row_group_bytes = row_group_bytes;
  o.page_bytes = page_bytes;
  return o;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

/// Every Vigil type, required and optional, with extremes, NaN, empty strings and nulls.
schema_ptr every_type_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"b_req", type_id::boolean, false},
                      {"b_opt", type_id::boolean, true},
                      {"i_req", type_id::int64, false},
                      {"i_opt", type_id::int64, true},
                      {"d_req", type_id::float64, false},
                      {"d_opt", type_id::float64, true},
                      {"s_req", type_id::string, false},
                      {"s_opt", type_id::string, true},
                      {"t_req", type_id::timestamp, false},
                      {"t_opt", type_id::timestamp, true},
                      {"n_opt", type_id::int64, true}});
}

batch_ptr every_type_batch(const schema_ptr& s) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  batch_builder b(s);
  auto row = [&](int64_t id, int b_req, int b_opt, int64_t i_req, const int64_t* i_opt,
                 double d_req, const double* d_opt, const char* s_req, const char* s_opt,
                 int64_t t_req, const int64_t* t_opt) {
    b.col(0).push_int64(id);
    b.col(1).push_bool(b_req != 0);
    b_opt < 0 ? b.col(2).push_null() : b.col(2).push_bool(b_opt != 0);
    b.col(3).push_int64(i_req);
    i_opt ? b.col(4).push_int64(*i_opt) : b.col(4).push_null();
    b.col(5).push_float64(d_req);
    d_opt ? b.col(6).push_float64(*d_opt) : b.col(6).push_null();
    b.col(7).push_string(s_req);
    s_opt ? b.col(8).push_string(s_opt) : b.col(8).push_null();
    b.col(9).push_int64(t_req);
    t_opt ? b.col(10).push_int64(*t_opt) : b.col(10).push_null();
    b.col(11).push_null();
    b.end_row(0);
  };
  const int64_t i_max = int64_max, i_min = int64_min, seven = 7;
  const int64_t t_2023 = 1'700'000'000'000'000;
  row(0, 1, 1, int64_min, &i_max, -1.5, &nan, "", "", 0, nullptr);
  row(1, 0, -1, int64_max, nullptr, nan, nullptr, "zebra", nullptr, -1, &t_2023);
  row(2, 1, 0, 0, &i_min, 1e300, &nan,
      "\xc3\xa9"
      "clair",
      "Zz", 253'402'300'799'999'999, nullptr);
  row(3, 0, -1, -1, &seven, -0.0, &nan, "a", nullptr, -62'135'596'800'000'000, nullptr);
  row(4, 1, 1, 42, nullptr, 2.25, nullptr, "", "yes", t_2023 + 123'456, nullptr);
  return b.finish();
}

const char* const expected_types = R"json({"column_name":"id","column_type":"BIGINT"}
{"column_name":"b_req","column_type":"BOOLEAN"}
{"column_name":"b_opt","column_type":"BOOLEAN"}
{"column_name":"i_req","column_type":"BIGINT"}
{"column_name":"i_opt","column_type":"BIGINT"}
{"column_name":"d_req","column_type":"DOUBLE"}
{"column_name":"d_opt","column_type":"DOUBLE"}
{"column_name":"s_req","column_type":"VARCHAR"}
{"column_name":"s_opt","column_type":"VARCHAR"}
{"column_name":"t_req","column_type":"TIMESTAMP WITH TIME ZONE"}
{"column_name":"t_opt","column_type":"TIMESTAMP WITH TIME ZONE"}
{"column_name":"n_opt","column_type":"BIGINT"}
)json";

// JSON shows -0.0 as 0; the value's sign is checked through the statistics below.
const char* const expected_rows =
    R"json({"id":"0","b_req":true,"b_opt":true,"i_req":"-9223372036854775808","i_opt":"9223372036854775807","d_req":-1.5,"d_opt":"NaN","s_req":"","s_opt":"","t_req":"0","t_opt":null,"n_opt":null}
{"id":"1","b_req":false,"b_opt":null,"i_req":"9223372036854775807","i_opt":null,"d_req":"NaN","d_opt":null,"s_req":"zebra","s_opt":null,"t_req":"-1","t_opt":"1700000000000000","n_opt":null}
{"id":"2","b_req":true,"b_opt":false,"i_req":"0","i_opt":"-9223372036854775808","d_req":1e+300,"d_opt":"NaN","s_req":"éclair","s_opt":"Zz","t_req":"253402300799999999","t_opt":null,"n_opt":null}
{"id":"3","b_req":false,"b_opt":null,"i_req":"-1","i_opt":"7","d_req":0,"d_opt":"NaN","s_req":"a","s_opt":null,"t_req":"-62135596800000000","t_opt":null,"n_opt":null}
{"id":"4","b_req":true,"b_opt":true,"i_req":"42","i_opt":null,"d_req":2.25,"d_opt":null,"s_req":"","s_opt":"yes","t_req":"1700000000123456","t_opt":null,"n_opt":null}
)json";

const char* const expected_times = R"json({"t":"1970-01-01 00:00:00.000000"}
{"t":"1969-12-31 23:59:59.999999"}
{"t":"9999-12-31 23:59:59.999999"}
{"t":"0001-01-01 00:00:00.000000"}
{"t":"2023-11-14 22:13:20.123456"}
)json";

const char* const expected_schema =
    R"json({"name":"schema","type":null,"repetition_type":null,"converted_type":null,"logical_type":null}
{"name":"id","type":"INT64","repetition_type":"REQUIRED","converted_type":null,"logical_type":null}
{"name":"b_req","type":"BOOLEAN","repetition_type":"REQUIRED","converted_type":null,"logical_type":null}
{"name":"b_opt","type":"BOOLEAN","repetition_type":"OPTIONAL","converted_type":null,"logical_type":null}
{"name":"i_req","type":"INT64","repetition_type":"REQUIRED","converted_type":null,"logical_type":null}
{"name":"i_opt","type":"INT64","repetition_type":"OPTIONAL","converted_type":null,"logical_type":null}
{"name":"d_req","type":"DOUBLE","repetition_type":"REQUIRED","converted_type":null,"logical_type":null}
{"name":"d_opt","type":"DOUBLE","repetition_type":"OPTIONAL","converted_type":null,"logical_type":null}
{"name":"s_req","type":"BYTE_ARRAY","repetition_type":"REQUIRED","converted_type":"UTF8","logical_type":"StringType()"}
{"name":"s_opt","type":"BYTE_ARRAY","repetition_type":"OPTIONAL","converted_type":"UTF8","logical_type":"StringType()"}
{"name":"t_req","type":"INT64","repetition_type":"REQUIRED","converted_type":"TIMESTAMP_MICROS","logical_type":"TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))"}
{"name":"t_opt","type":"INT64","repetition_type":"OPTIONAL","converted_type":"TIMESTAMP_MICROS","logical_type":"TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))"}
{"name":"n_opt","type":"INT64","repetition_type":"OPTIONAL","converted_type":null,"logical_type":null}
)json";

/// Column chunk statistics as DuckDB reads them: min and max by each type's order, NaN left
/// out (all-NaN d_opt has none), empty strings kept, no deprecated min/max. The codec follows.
const char* const expected_stats[] = {
    R"json({"path_in_schema":"id","type":"INT64","num_values":"5","stats_min_value":"0","stats_max_value":"4","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"b_req","type":"BOOLEAN","num_values":"5","stats_min_value":"false","stats_max_value":"true","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"b_opt","type":"BOOLEAN","num_values":"5","stats_min_value":"false","stats_max_value":"true","stats_null_count":"2","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"i_req","type":"INT64","num_values":"5","stats_min_value":"-9223372036854775808","stats_max_value":"9223372036854775807","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"i_opt","type":"INT64","num_values":"5","stats_min_value":"-9223372036854775808","stats_max_value":"9223372036854775807","stats_null_count":"2","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"d_req","type":"DOUBLE","num_values":"5","stats_min_value":"-1.5","stats_max_value":"1e+300","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"d_opt","type":"DOUBLE","num_values":"5","stats_min_value":null,"stats_max_value":null,"stats_null_count":"2","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"s_req","type":"BYTE_ARRAY","num_values":"5","stats_min_value":"","stats_max_value":"éclair","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"s_opt","type":"BYTE_ARRAY","num_values":"5","stats_min_value":"","stats_max_value":"yes","stats_null_count":"2","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"t_req","type":"INT64","num_values":"5","stats_min_value":"0001-01-01 00:00:00+00","stats_max_value":"9999-12-31 23:59:59.999999+00","stats_null_count":"0","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"t_opt","type":"INT64","num_values":"5","stats_min_value":"2023-11-14 22:13:20+00","stats_max_value":"2023-11-14 22:13:20+00","stats_null_count":"4","stats_min":null,"stats_max":null,)json",
    R"json({"path_in_schema":"n_opt","type":"INT64","num_values":"5","stats_min_value":null,"stats_max_value":null,"stats_null_count":"5","stats_min":null,"stats_max":null,)json",
};

TEST_F(ParquetDuckdb, EveryTypeReadsBackWithTypesNullsAndStatistics) {
  const schema_ptr s = every_type_schema();
  const std::pair<parquet_codec, const char*> codecs[] = {
      {parquet_codec::uncompressed, "UNCOMPRESSED"},
      {parquet_codec::snappy, "SNAPPY"},
      {parquet_codec::zstd, "ZSTD"}};
  for (const auto& [codec, duckdb_name] : codecs) {
    SCOPED_TRACE(lake::to_string(codec));
    const std::string file = write(std::string(lake::to_string(codec)) + ".parquet", s,
                                   {every_type_batch(s)}, options_for(codec));
    const std::string from = "read_parquet('" + file + "')";

    EXPECT_EQ(
        join(query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + from + ")")),
        expected_types);
    EXPECT_EQ(join(query("SELECT id, b_req, b_opt, i_req, i_opt, d_req, d_opt, s_req, s_opt, "
                         "epoch_us(t_req) AS t_req, epoch_us(t_opt) AS t_opt, n_opt FROM " +
                         from + " ORDER BY id")),
              expected_rows);
    EXPECT_EQ(join(query("SELECT strftime(t_req, '%Y-%m-%d %H:%M:%S.%f') AS t FROM " + from +
                         " ORDER BY id")),
              expected_times);
    // The sign of -0.0 survives the round trip (the JSON rows above print it as 0).
    EXPECT_EQ(join(query("SELECT signbit(d_req) AS negative FROM " + from + " WHERE id = 3")),
              "{\"negative\":true}\n");
    EXPECT_EQ(join(query("SELECT name, type, repetition_type, converted_type, logical_type FROM "
                         "parquet_schema('" +
                         file + "')")),
              expected_schema);
    std::string stats;
    for (const char* column : expected_stats) {
      stats += std::string(column) + "\"compression\":\"" + duckdb_name +
               "\",\"encodings\":\"PLAIN, RLE\"}\n";
    }
    EXPECT_EQ(join(query("SELECT path_in_schema, type, num_values, stats_min_value, "
                         "stats_max_value, stats_null_count, stats_min, stats_max, compression, "
                         "encodings FROM parquet_metadata('" +
                         file + "') ORDER BY column_id")),
              stats);
    EXPECT_EQ(join(query("SELECT created_by, num_rows, num_row_groups, format_version FROM "
                         "parquet_file_metadata('" +
                         file + "')")),
              "{\"created_by\":\"vigil version " VIGIL_VERSION " (build " VIGIL_BUILD
              ")\",\"num_rows\":\"5\",\"num_row_groups\":\"1\",\"format_version\":\"1\"}\n");
  }
}

TEST_F(ParquetDuckdb, ZeroMinimumAndMaximumAreWrittenWithTheSignsTheSpecAsksFor) {
  const schema_ptr s = make_schema({{"z", type_id::float64, false}});
  batch_builder b(s);
  for (double v : {0.0, -0.0, 0.0}) {
    b.col(0).push_float64(v);
    b.end_row(0);
  }
  const std::string file =
      write("zeros.parquet", s, {b.finish()}, options_for(parquet_codec::zstd));
  EXPECT_EQ(
      join(query("SELECT stats_min_value, stats_max_value FROM parquet_metadata('" + file + "')")),
      "{\"stats_min_value\":\"-0.0\",\"stats_max_value\":\"0.0\"}\n");
}

/// Rows of the many-row-group test: id, then values derived from it.
schema_ptr wide_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"v", type_id::int64, true},
                      {"d", type_id::float64, true},
                      {"s", type_id::string, true},
                      {"b", type_id::boolean, false},
                      {"t", type_id::timestamp, true}});
}

batch_ptr wide_batch(const schema_ptr& s, int64_t first, int64_t rows) {
  batch_builder b(s, static_cast<size_t>(rows));
  for (int64_t id = first; id < first + rows; ++id) {
    b.col(0).push_int64(id);
    id % 5 == 0 ? b.col(1).push_null() : b.col(1).push_int64(id * 3 - 30000);
    id % 7 == 0 ? b.col(2).push_float64(std::numeric_limits<double>::quiet_NaN())
                : b.col(2).push_float64(static_cast<double>(id) / 4);
    if (id % 13 == 0) {
      b.col(3).push_null();
    } else {
      b.col(3).push_string(id % 11 == 0 ? std::string() : "s" + std::to_string(id % 1000));
    }
    b.col(4).push_bool(id % 2 == 0);
    id % 3 == 0 ? b.col(5).push_null() : b.col(5).push_int64(id * 1'000'000);
    b.end_row(id);
  }
  return b.finish();
}

TEST_F(ParquetDuckdb, ManyRowGroupsAndPagesReadBackWithPerRowGroupStatistics) {
  const schema_ptr s = wide_schema();
  constexpr int64_t rows = 20000;
  std::vector<batch_ptr> batches;
  for (int64_t first = 0; first < rows; first += 100) {
    batches.push_back(wide_batch(s, first, 100));
  }
  for (parquet_codec codec : {parquet_codec::snappy, parquet_codec::zstd}) {
    SCOPED_TRACE(lake::to_string(codec));
    lake::parquet_file_info info;
    const std::string file = write(std::string("wide-") + lake::to_string(codec) + ".parquet", s,
                                   batches, options_for(codec, 64 << 10, 4 << 10), &info);
    ASSERT_GT(info.num_row_groups, 3u);
    const std::string from = "read_parquet('" + file + "')";

    // Aggregates over all rows, computed by DuckDB from the data pages.
    int64_t count_v = 0, sum_v = 0, empty_s = 0, nan_d = 0, null_s = 0, count_t = 0;
    for (int64_t id = 0; id < rows; ++id) {
      if (id % 5 != 0) {
        ++count_v;
        sum_v += id * 3 - 30000;
      }
      nan_d += id % 7 == 0;
      null_s += id % 13 == 0;
      empty_s += id % 13 != 0 && id % 11 == 0;
      count_t += id % 3 != 0;
    }
    EXPECT_EQ(join(query("SELECT count(*) AS n, sum(id) AS sum_id, count(v) AS count_v, "
                         "sum(v) AS sum_v, count_if(isnan(d)) AS nan_d, count(s) AS count_s, "
                         "count_if(s = '') AS empty_s, count_if(b) AS true_b, "
                         "count(t) AS count_t FROM " +
                         from)),
              "{\"n\":\"20000\",\"sum_id\":\"" + std::to_string(rows * (rows - 1) / 2) +
                  "\",\"count_v\":\"" + std::to_string(count_v) + "\",\"sum_v\":\"" +
                  std::to_string(sum_v) + "\",\"nan_d\":\"" + std::to_string(nan_d) +
                  "\",\"count_s\":\"" + std::to_string(rows - null_s) + "\",\"empty_s\":\"" +
                  std::to_string(empty_s) + "\",\"true_b\":\"10000\",\"count_t\":\"" +
                  std::to_string(count_t) + "\"}\n");

    EXPECT_EQ(
        join(query("SELECT num_rows, num_row_groups FROM parquet_file_metadata('" + file + "')")),
        "{\"num_rows\":\"20000\",\"num_row_groups\":\"" + std::to_string(info.num_row_groups) +
            "\"}\n");

    // Every row group's statistics match the rows DuckDB finds in it: the data is read per row
    // group (file_row_number) and compared with parquet_metadata, all inside DuckDB.
    const std::string mismatches =
        "WITH groups AS (SELECT row_group_id, row_group_num_rows AS n, "
        "  sum(row_group_num_rows) OVER (ORDER BY row_group_id) - row_group_num_rows AS first "
        "  FROM parquet_metadata('" +
        file +
        "') WHERE path_in_schema = 'id'), "
        "data AS (SELECT g.row_group_id, r.* FROM read_parquet('" +
        file +
        "', file_row_number = true) r JOIN groups g "
        "  ON r.file_row_number >= g.first AND r.file_row_number < g.first + g.n), "
        "actual AS (SELECT row_group_id, "
        "  min(id)::VARCHAR AS id_min, max(id)::VARCHAR AS id_max, "
        "  min(v)::VARCHAR AS v_min, max(v)::VARCHAR AS v_max, count(*) - count(v) AS v_nulls, "
        "  min(d) FILTER (WHERE NOT isnan(d)) AS d_min, "
        "  max(d) FILTER (WHERE NOT isnan(d)) AS d_max, "
        "  min(s) AS s_min, max(s) AS s_max, count(*) - count(s) AS s_nulls, "
        "  epoch_us(min(t)) AS t_min, epoch_us(max(t)) AS t_max, count(*) - count(t) AS t_nulls "
        "  FROM data GROUP BY row_group_id), "
        "stats AS (SELECT row_group_id, "
        "  any_value(stats_min_value) FILTER (WHERE path_in_schema = 'id') AS id_min, "
        "  any_value(stats_max_value) FILTER (WHERE path_in_schema = 'id') AS id_max, "
        "  any_value(stats_min_value) FILTER (WHERE path_in_schema = 'v') AS v_min, "
        "  any_value(stats_max_value) FILTER (WHERE path_in_schema = 'v') AS v_max, "
        "  any_value(stats_null_count) FILTER (WHERE path_in_schema = 'v') AS v_nulls, "
        "  any_value(TRY_CAST(stats_min_value AS DOUBLE)) FILTER (WHERE path_in_schema = 'd') AS "
        "d_min, "
        "  any_value(TRY_CAST(stats_max_value AS DOUBLE)) FILTER (WHERE path_in_schema = 'd') AS "
        "d_max, "
        "  any_value(stats_min_value) FILTER (WHERE path_in_schema = 's') AS s_min, "
        "  any_value(stats_max_value) FILTER (WHERE path_in_schema = 's') AS s_max, "
        "  any_value(stats_null_count) FILTER (WHERE path_in_schema = 's') AS s_nulls, "
        "  epoch_us(any_value(TRY_CAST(stats_min_value AS TIMESTAMPTZ)) FILTER (WHERE "
        "path_in_schema = 't'))"
        "    AS t_min, "
        "  epoch_us(any_value(TRY_CAST(stats_max_value AS TIMESTAMPTZ)) FILTER (WHERE "
        "path_in_schema = 't'))"
        "    AS t_max, "
        "  any_value(stats_null_count) FILTER (WHERE path_in_schema = 't') AS t_nulls "
        "  FROM parquet_metadata('" +
        file +
        "') GROUP BY row_group_id) "
        "SELECT count(*) AS groups, "
        "  count_if((a.id_min, a.id_max, a.v_min, a.v_max, a.v_nulls, a.d_min, a.d_max, a.s_min, "
        "    a.s_max, a.s_nulls, a.t_min, a.t_max, a.t_nulls) IS DISTINCT FROM "
        "    (s.id_min, s.id_max, s.v_min, s.v_max, s.v_nulls, s.d_min, s.d_max, s.s_min, "
        "    s.s_max, s.s_nulls, s.t_min, s.t_max, s.t_nulls)) AS mismatched "
        "FROM actual a JOIN stats s USING (row_group_id)";
    EXPECT_EQ(join(query(mismatches)), "{\"groups\":\"" + std::to_string(info.num_row_groups) +
                                           "\",\"mismatched\":\"0\"}\n");

    // The file-level statistics close() returns (for the Delta log) agree with DuckDB.
    const auto& v = info.columns.at(1);
    const auto& d = info.columns.at(2);
    const auto& str = info.columns.at(3);
    EXPECT_EQ(join(query("SELECT min(v) AS v_min, max(v) AS v_max, count(*) - count(v) AS v_nulls, "
                         "min(d) FILTER (WHERE NOT isnan(d)) AS d_min, "
                         "max(d) FILTER (WHERE NOT isnan(d)) AS d_max, "
                         "min(s) AS s_min, max(s) AS s_max FROM " +
                         from)),
              "{\"v_min\":\"" + std::to_string(std::get<int64_t>(v.min)) + "\",\"v_max\":\"" +
                  std::to_string(std::get<int64_t>(v.max)) + "\",\"v_nulls\":\"" +
                  std::to_string(v.null_count) + "\",\"d_min\":0.25,\"d_max\":4999.5,\"s_min\":\"" +
                  std::get<std::string>(str.min) + "\",\"s_max\":\"" +
                  std::get<std::string>(str.max) + "\"}\n");
    EXPECT_EQ(d.nan_count, nan_d);
    EXPECT_EQ(std::get<double>(d.min), 0.25);
    EXPECT_EQ(std::get<double>(d.max), 4999.5);  // 19999 / 4 is NaN: 19999 % 7 == 0.
    EXPECT_EQ(std::get<std::string>(str.min), "");
    EXPECT_EQ(std::get<std::string>(str.max), "s999");
  }
}

}  // namespace
}  // namespace vigil
