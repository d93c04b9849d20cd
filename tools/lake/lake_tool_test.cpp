#include "tools/lake/lake_tool.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lake/delta_log.hpp"

namespace vigil {
namespace {

namespace fs = std::filesystem;

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

run_result run(std::vector<std::string> args) {
  args.insert(args.begin(), "vigil-lake");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int code = run_lake_tool(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

class lake_tool_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vigil-lake-tool-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    table_ = dir_ + "/t";
    lake::delta_create_options options;
    options.partition_columns = {"region"};
    auto log = lake::delta_log::create(
        table_, *make_schema({{"id", type_id::int64, false}, {"region", type_id::string, true}}),
        options);
    ASSERT_TRUE(log.ok()) << log.err().message;
    lake::delta_add add;
    add.path = "region=eu/part-0.parquet";
    add.partition_values = {{"region", "eu"}};
    add.size = 4;
    add.stats = R"({"numRecords":2})";
    fs::create_directories(table_ + "/region=eu");
    std::ofstream(table_ + "/" + add.path) << "PAR1";
    lake::delta_commit_request req;
    req.adds = {add};
    req.lineage = {{"job", "j"}};
    auto r = log->commit(req);
    ASSERT_TRUE(r.ok()) << r.err().message;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  std::string table_;
};

// A lake_sink commit's lineage: job id, graph version and checkpoint get columns, the source
// offsets stay in the lineage JSON.
TEST_F(lake_tool_test, HistoryShowsTheLineageOfSinkCommits) {
  auto log = lake::delta_log::open(table_);
  ASSERT_TRUE(log.ok()) << log.err().message;
  lake::delta_commit_request req;
  req.txn = lake::delta_txn{"sepsis/lake/0", 7, std::nullopt};
  req.operation = "STREAMING UPDATE";
  req.lineage = {{"job", "sepsis"},
                 {"job_id", "sepsis-3"},
                 {"graph_version", "0123456789abcdef"},
                 {"node", "lake"},
                 {"subtask", 0},
                 {"epoch", 7},
                 {"checkpoint", 7},
                 {"source_offsets", {{"in", {{{"topic", "obs"}, {"offsets", {{"0", 42}}}}}}}}};
  auto r = log->commit(req);
  ASSERT_TRUE(r.ok()) << r.err().message;
  const auto text = run({"history", table_});
  ASSERT_EQ(text.code, lake_tool_ok) << text.err;
  EXPECT_NE(
      text.out.find("STREAMING UPDATE  sepsis-3  0123456789abcdef  7           "
                    "{\"epoch\":7,\"job\":\"sepsis\",\"node\":\"lake\","
                    "\"source_offsets\":{\"in\":[{\"offsets\":{\"0\":42},\"topic\":\"obs\"}]},"
                    "\"subtask\":0}\n"),
      std::string::npos)
      << text.out;
  const auto json = nlohmann::json::parse(run({"history", "--json", table_}).out);
  EXPECT_EQ(json["history"][2]["lineage"]["source_offsets"]["in"][0]["offsets"]["0"], 42);
}

TEST_F(lake_tool_test, BadUsageExitsTwo) {
  EXPECT_EQ(run({}).code, lake_tool_invalid);
  EXPECT_EQ(run({"frobnicate", table_}).code, lake_tool_invalid);
  EXPECT_EQ(run({"files"}).code, lake_tool_invalid);
  EXPECT_EQ(run({"files", table_, "--version", "-1"}).code, lake_tool_invalid);
  EXPECT_EQ(run({"--help"}).code, lake_tool_ok);
}

TEST_F(lake_tool_test, MissingTableExitsOne) {
  const auto r = run({"files", dir_ + "/none"});
  EXPECT_EQ(r.code, lake_tool_failed);
  EXPECT_NE(r.err.find("not a Delta table"), std::string::npos) << r.err;
  EXPECT_EQ(run({"verify", dir_ + "/none"}).code, lake_tool_failed);
}

TEST_F(lake_tool_test, FilesHistorySchemaAndVerify) {
  auto files = run({"files", table_});
  EXPECT_EQ(files.code, lake_tool_ok) << files.err;
  EXPECT_EQ(files.out,
            "PATH                      SIZE  RECORDS  PARTITION\n"
            "region=eu/part-0.parquet  4     2        region=eu\n"
            "1 files, 4 bytes, 2 records at version 1\n");
  auto at0 = run({"--json", "files", table_, "--version", "0"});
  EXPECT_EQ(at0.out, "{\"bytes\":0,\"files\":[],\"records\":0,\"version\":0}\n");

  auto history = run({"history", "--json", table_});
  ASSERT_EQ(history.code, lake_tool_ok) << history.err;
  const auto h = nlohmann::json::parse(history.out);
  ASSERT_EQ(h["history"].size(), 2u);
  EXPECT_EQ(h["history"][0]["operation"], "CREATE TABLE");
  EXPECT_EQ(h["history"][1]["commitInfo"]["lineage"]["job"], "j");
  EXPECT_EQ(h["history"][1]["lineage"]["job"], "j");
  EXPECT_TRUE(h["history"][0]["lineage"].is_null());
  const auto text = run({"history", table_});
  EXPECT_EQ(text.out.rfind("VERSION  TIMESTAMP", 0), 0u) << text.out;
  EXPECT_NE(text.out.find("OPERATION     JOB_ID  GRAPH  CHECKPOINT  LINEAGE\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("WRITE         -       -      -           {\"job\":\"j\"}\n0 "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("CREATE TABLE  -       -      -           -\n"), std::string::npos)
      << text.out;

  auto schema = run({"schema", table_});
  EXPECT_EQ(schema.code, lake_tool_ok);
  EXPECT_NE(schema.out.find("region  string  yes       yes"), std::string::npos) << schema.out;

  auto ok = run({"verify", table_});
  EXPECT_EQ(ok.code, lake_tool_ok);
  EXPECT_EQ(ok.out.rfind("OK: version 1, 1 live files", 0), 0u) << ok.out;

  fs::remove(table_ + "/region=eu/part-0.parquet");
  auto bad = run({"verify", "--json", table_});
  EXPECT_EQ(bad.code, lake_tool_failed);
  const auto j = nlohmann::json::parse(bad.out);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_NE(j["problems"][0].get<std::string>().find("is missing"), std::string::npos);
}

}  // namespace
}  // namespace vigil
