// A Delta table written with vigil::lake (Parquet writer + transaction log), read back by an
// independent reader: DuckDB (tools/duckdb/query.mjs) reads the files the snapshot lists, and
// the vigil-lake tool verifies and lists the table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lake/delta_log.hpp"
#include "lake/parquet_writer.hpp"
#include "process.hpp"

namespace vigil {
namespace {

using lake::delta_log;
using testing::make_temp_dir;
using testing::run_process;

const std::string source_dir = VIGIL_SOURCE_DIR;
const std::string query_script = VIGIL_DUCKDB_QUERY;
const std::string lake_bin = VIGIL_LAKE_BIN;

/// The table's columns; `region` is the partition column, so the data files hold the others.
schema_ptr table_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"region", type_id::string, false},
                      {"v", type_id::float64, true},
                      {"t", type_id::timestamp, true}});
}

schema_ptr file_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"v", type_id::float64, true},
                      {"t", type_id::timestamp, true}});
}

class DeltaDuckdb : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = testing::find_node();
    ASSERT_FALSE(node_.empty()) << "node is not installed, so DuckDB cannot read the table: run "
                                   "tools/bootstrap.sh";
    ASSERT_TRUE(std::filesystem::exists(source_dir +
                                        "/tools/duckdb/node_modules/@duckdb/node-api/package.json"))
        << "the DuckDB module is missing from tools/duckdb/node_modules: run tools/bootstrap.sh";
    dir_ = make_temp_dir("vigil-delta-duckdb");
    table_ = dir_ + "/events";
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  /// Runs `sql` in DuckDB; returns the result rows as JSON lines, joined.
  std::string query(const std::string& sql) {
    const auto r = run_process({node_, query_script, sql});
    EXPECT_EQ(r.exit_code, 0) << sql << "\n" << r.err;
    return r.out;
  }

  /// Writes rows id in [first, first + n) of partition `region` (v = id * scale, t = id
  /// seconds, v null for multiples of 4) and returns its add action.
  lake::delta_add write_file(delta_log& log, const std::string& region, const std::string& name,
                             int64_t first, int64_t n, double scale) {
    const lake::delta_partition_values values = {{"region", region}};
    const std::string rel = lake::delta_partition_dir({"region"}, values) + name;
    std::filesystem::create_directories(std::filesystem::path(table_ + "/" + rel).parent_path());
    auto w = lake::parquet_writer::open(table_ + "/" + rel, file_schema(), {});
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.err().message);
    batch_builder b(file_schema());
    for (int64_t id = first; id < first + n; ++id) {
      b.col(0).push_int64(id);
      id % 4 == 0 ? b.col(1).push_null() : b.col(1).push_float64(static_cast<double>(id) * scale);
      b.col(2).push_int64(id * 1'000'000);
      b.end_row(0);
    }
    EXPECT_TRUE((*w)->write(*b.finish()).ok());
    auto info = (*w)->close();
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.err().message);
    auto add = log.describe_file(rel, *info, values);
    EXPECT_TRUE(add.ok()) << (add.ok() ? "" : add.err().message);
    return add.ok() ? *add : lake::delta_add{};
  }

  lake::delta_commit_result commit(delta_log& log, std::vector<lake::delta_add> adds,
                                   std::vector<std::string> removes, int64_t epoch) {
    lake::delta_commit_request req;
    req.adds = std::move(adds);
    for (const auto& path : removes) {
      lake::delta_remove rm;
      rm.path = path;
      rm.partition_values = log.snapshot().files.at(path).partition_values;
      rm.size = log.snapshot().files.at(path).size;
      req.removes.push_back(std::move(rm));
    }
    req.txn = lake::delta_txn{"job-1/sink-0", epoch, {}};
    req.operation = "STREAMING UPDATE";
    req.operation_parameters = {{"outputMode", "Append"}, {"epochId", std::to_string(epoch)}};
    req.lineage = {{"job", "job-1"},
                   {"graph_version", 3},
                   {"checkpoint", epoch},
                   {"source_offsets", {{"labs", {{"0", 100 * epoch}}}}}};
    auto r = log.commit(req);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? *r : lake::delta_commit_result{};
  }

  std::string node_;
  std::string dir_;
  std::string table_;
};

TEST_F(DeltaDuckdb, SnapshotFilesReadBackInDuckdbAndVerify) {
  lake::delta_create_options options;
  options.partition_columns = {"region"};
  auto created = delta_log::create(table_, *table_schema(), options);
  ASSERT_TRUE(created.ok()) << created.err().message;
  delta_log& log = *created;

  // Epoch 1: both partitions; epoch 2: more eu rows; epoch 3: eu's first file is rewritten
  // with other values (remove + add); a replay of epoch 2 is skipped by its txn.
  auto a = write_file(log, "eu", "part-a.snappy.parquet", 0, 5, 1.0);
  auto b = write_file(log, "us", "part-b.snappy.parquet", 5, 5, 1.0);
  EXPECT_EQ(commit(log, {a, b}, {}, 1).version, 1);
  auto c = write_file(log, "eu", "part-c.snappy.parquet", 10, 3, 1.0);
  EXPECT_EQ(commit(log, {c}, {}, 2).version, 2);
  auto d = write_file(log, "eu", "part-d.snappy.parquet", 0, 5, 10.0);
  EXPECT_EQ(commit(log, {d}, {a.path}, 3).version, 3);
  auto replayed = write_file(log, "us", "part-replay.snappy.parquet", 100, 1, 1.0);
  const auto skipped = commit(log, {replayed}, {}, 2);
  EXPECT_FALSE(skipped.committed);
  EXPECT_EQ(skipped.version, 3);  // The version holding the app's latest txn (epoch 3).

  // DuckDB reads exactly the live files of a fresh snapshot, partition values from the paths.
  auto snap = lake::read_delta_snapshot(table_);
  ASSERT_TRUE(snap.ok()) << snap.err().message;
  ASSERT_EQ(snap->files.size(), 3u);
  std::string list;
  for (const auto& [path, add] : snap->files) {
    list += (list.empty() ? "'" : ", '") + table_ + "/" + path + "'";
  }
  const std::string from = "read_parquet([" + list + "], hive_partitioning = true)";
  EXPECT_EQ(query("SELECT region, count(*) AS n, sum(id) AS ids, sum(v) AS v, count(v) AS nv, "
                  "epoch_us(max(t)) AS t_max FROM " +
                  from + " GROUP BY region ORDER BY region"),
            "{\"region\":\"eu\",\"n\":\"8\",\"ids\":\"43\",\"v\":81,\"nv\":\"5\","
            "\"t_max\":\"12000000\"}\n"
            "{\"region\":\"us\",\"n\":\"5\",\"ids\":\"35\",\"v\":27,\"nv\":\"4\","
            "\"t_max\":\"9000000\"}\n");
  EXPECT_EQ(query("SELECT id, region, v FROM " + from + " WHERE id < 3 ORDER BY id"),
            "{\"id\":\"0\",\"region\":\"eu\",\"v\":null}\n"
            "{\"id\":\"1\",\"region\":\"eu\",\"v\":10}\n"
            "{\"id\":\"2\",\"region\":\"eu\",\"v\":20}\n");

  // Each add's stats agree with what DuckDB counts in its file.
  for (const auto& [path, add] : snap->files) {
    SCOPED_TRACE(path);
    const auto stats = nlohmann::json::parse(add.stats);
    const auto row = nlohmann::json::parse(
        query("SELECT count(*) AS n, min(id) AS lo, max(id) AS hi, count(*) - count(v) AS nulls, "
              "strftime(min(t), '%Y-%m-%dT%H:%M:%S.%gZ') AS t_lo FROM read_parquet('" +
              table_ + "/" + path + "')"));
    EXPECT_EQ(std::to_string(stats["numRecords"].get<int64_t>()), row["n"]);
    EXPECT_EQ(std::to_string(stats["minValues"]["id"].get<int64_t>()), row["lo"]);
    EXPECT_EQ(std::to_string(stats["maxValues"]["id"].get<int64_t>()), row["hi"]);
    EXPECT_EQ(std::to_string(stats["nullCount"]["v"].get<int64_t>()), row["nulls"]);
    EXPECT_EQ(stats["minValues"]["t"], row["t_lo"]);
    EXPECT_FALSE(stats["nullCount"].contains("region"));
  }

  // vigil-lake sees the same table.
  const auto verify = run_process({lake_bin, "verify", table_});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.out, "OK: version 3, 3 live files present with the sizes the log records\n");
  const auto files = run_process({lake_bin, "files", "--json", table_});
  ASSERT_EQ(files.exit_code, 0) << files.err;
  const auto listed = nlohmann::json::parse(files.out);
  EXPECT_EQ(listed["version"], 3);
  EXPECT_EQ(listed["records"], 13);
  ASSERT_EQ(listed["files"].size(), 3u);
  EXPECT_EQ(listed["files"][0]["path"], "region=eu/part-c.snappy.parquet");
  EXPECT_EQ(listed["files"][0]["partitionValues"]["region"], "eu");
  const auto at1 = run_process({lake_bin, "files", "--json", table_, "--version", "1"});
  EXPECT_EQ(nlohmann::json::parse(at1.out)["records"], 10);
  const auto history = run_process({lake_bin, "history", "--json", table_});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  const auto h = nlohmann::json::parse(history.out)["history"];
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[3]["operation"], "STREAMING UPDATE");
  EXPECT_EQ(h[3]["commitInfo"]["lineage"]["checkpoint"], 3);
  EXPECT_EQ(h[3]["commitInfo"]["lineage"]["source_offsets"]["labs"]["0"], 300);

  // A damaged data file is reported, and the tool exits 1.
  std::filesystem::resize_file(table_ + "/" + c.path, 10);
  const auto damaged = run_process({lake_bin, "verify", table_});
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_NE(damaged.out.find("'region=eu/part-c.snappy.parquet' has 10 bytes, the log says"),
            std::string::npos)
      << damaged.out;
}

}  // namespace
}  // namespace vigil
