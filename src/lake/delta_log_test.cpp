#include "lake/delta_log.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lake/delta_verify.hpp"
#include "lake/parquet_writer.hpp"

namespace vigil::lake {
namespace {

namespace fs = std::filesystem;

schema_ptr table_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"region", type_id::string, true},
                      {"v", type_id::float64, true},
                      {"t", type_id::timestamp, true},
                      {"ok", type_id::boolean, true}});
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

delta_remove remove_of(const std::string& path) {
  delta_remove rm;
  rm.path = path;
  return rm;
}

delta_commit_request adding(std::vector<delta_add> adds) {
  delta_commit_request req;
  req.adds = std::move(adds);
  return req;
}

delta_add fake_add(const std::string& path, int64_t size = 100) {
  delta_add a;
  a.path = path;
  a.size = size;
  a.modification_time_ms = 1'700'000'000'000;
  a.stats = R"({"numRecords":3})";
  return a;
}

class delta_log_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vigil-delta-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    table_ = dir_ + "/table";
  }
  void TearDown() override { fs::remove_all(dir_); }

  delta_log create() {
    auto log = delta_log::create(table_, *table_schema(), {});
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.err().message);
    return std::move(log).value();
  }

  delta_log open() {
    auto log = delta_log::open(table_);
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.err().message);
    return std::move(log).value();
  }

  delta_commit_result commit(delta_log& log, std::vector<delta_add> adds,
                             std::vector<delta_remove> removes = {},
                             std::optional<delta_txn> txn = std::nullopt) {
    delta_commit_request req;
    req.adds = std::move(adds);
    req.removes = std::move(removes);
    req.txn = std::move(txn);
    req.operation = "STREAMING UPDATE";
    req.lineage = {{"job", "j1"}, {"checkpoint", 7}};
    auto r = log.commit(req);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? *r : delta_commit_result{};
  }

  /// Appends commit `version` with `lines` by hand (as a foreign or broken writer would).
  void put_commit(int64_t version, const std::string& lines) {
    write_text(delta_commit_path(table_, version), lines);
  }

  /// Reading the table fails with `code` and a message containing each of `parts`.
  void expect_read_error(errc code, const std::vector<std::string>& parts) {
    auto snap = read_delta_snapshot(table_);
    ASSERT_FALSE(snap.ok());
    EXPECT_EQ(snap.err().code, code) << snap.err().message;
    for (const auto& p : parts) {
      EXPECT_NE(snap.err().message.find(p), std::string::npos) << snap.err().message;
    }
  }

  std::string dir_;
  std::string table_;
};

TEST_F(delta_log_test, CreateWritesProtocolMetadataAndSparkSchema) {
  delta_log log = create();
  EXPECT_EQ(log.snapshot().version, 0);
  const std::string text = read_text(delta_commit_path(table_, 0));
  EXPECT_NE(text.find(R"({"protocol":{"minReaderVersion":1,"minWriterVersion":2}})"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          R"("schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":false,\"metadata\":{}},{\"name\":\"region\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}})"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("format":{"provider":"parquet","options":{}})"), std::string::npos);
  EXPECT_NE(text.find(R"("operation":"CREATE TABLE")"), std::string::npos);
  const auto& md = log.snapshot().metadata;
  EXPECT_EQ(md.id.size(), 36u);
  ASSERT_NE(md.schema, nullptr);
  EXPECT_EQ(*md.schema, *table_schema());

  // A second create never overwrites version 0.
  auto again = delta_log::create(table_, *table_schema(), {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::invalid_argument);
  EXPECT_EQ(read_text(delta_commit_path(table_, 0)), text);
}

TEST_F(delta_log_test, OpenOrCreateCreatesOnceAndChecksTheSchema) {
  auto a = delta_log::open_or_create(table_, *table_schema(), {});
  ASSERT_TRUE(a.ok()) << a.err().message;
  auto b = delta_log::open_or_create(table_, *table_schema(), {});
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(a->snapshot().metadata.id, b->snapshot().metadata.id);
  auto other = delta_log::open_or_create(table_, *make_schema({{"x", type_id::int64, true}}), {});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.err().code, errc::invalid_argument);
}

TEST_F(delta_log_test, CommitsReplayAfterReopen) {
  delta_log log = create();
  auto r1 = commit(log, {fake_add("a.parquet"), fake_add("b c%.parquet", 200)});
  EXPECT_TRUE(r1.committed);
  EXPECT_EQ(r1.version, 1);
  auto r2 = commit(log, {fake_add("c.parquet")}, {remove_of("a.parquet")});
  EXPECT_EQ(r2.version, 2);

  // The log stores the path URI-encoded; the snapshot has it decoded.
  EXPECT_NE(read_text(delta_commit_path(table_, 1)).find(R"("path":"b%20c%25.parquet")"),
            std::string::npos);

  delta_log reopened = open();
  const auto& snap = reopened.snapshot();
  EXPECT_EQ(snap.version, 2);
  ASSERT_EQ(snap.files.size(), 2u);
  EXPECT_EQ(snap.files.count("b c%.parquet"), 1u);
  EXPECT_EQ(snap.files.at("b c%.parquet").size, 200);
  EXPECT_EQ(snap.files.count("c.parquet"), 1u);
  ASSERT_EQ(snap.commits.size(), 3u);
  EXPECT_EQ(snap.commits[2].operation, "STREAMING UPDATE");
  EXPECT_EQ(snap.commits[2].raw["lineage"]["job"], "j1");
  EXPECT_EQ(snap.commits[2].raw["lineage"]["checkpoint"], 7);
  EXPECT_TRUE(snap.commits[2].timestamp_ms.has_value());

  auto at1 = read_delta_snapshot(table_, 1);
  ASSERT_TRUE(at1.ok()) << at1.err().message;
  EXPECT_EQ(at1->files.count("a.parquet"), 1u);
  auto beyond = read_delta_snapshot(table_, 3);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.err().code, errc::invalid_argument);
}

TEST_F(delta_log_test, RemovesReconcileAdds) {
  delta_log log = create();
  commit(log, {fake_add("a.parquet"), fake_add("b.parquet")});
  commit(log, {fake_add("c.parquet")}, {remove_of("a.parquet"), remove_of("b.parquet")});
  commit(log, {fake_add("a.parquet", 300)});  // The same path may come back.
  const auto& files = log.snapshot().files;
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files.at("a.parquet").size, 300);
  EXPECT_EQ(files.count("c.parquet"), 1u);
  EXPECT_TRUE(log.snapshot().unmatched_removes.empty());

  // Removing a file that is not live is refused before writing.
  delta_commit_request req;
  req.removes.push_back(remove_of("b.parquet"));
  auto r = log.commit(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_EQ(log.snapshot().version, 3);

  // A foreign writer's remove of an unknown file is legal but reported.
  put_commit(4, R"({"remove":{"path":"zzz.parquet","dataChange":true}})"
                "\n");
  auto snap = read_delta_snapshot(table_);
  ASSERT_TRUE(snap.ok()) << snap.err().message;
  ASSERT_EQ(snap->unmatched_removes.size(), 1u);
  EXPECT_EQ(snap->unmatched_removes[0].path, "zzz.parquet");
  EXPECT_EQ(snap->unmatched_removes[0].version, 4);
}

TEST_F(delta_log_test, RequestsWithBadPathsOrPartitionValuesAreRefused) {
  delta_log log = create();
  for (const std::string bad : {"/abs.parquet", "../up.parquet", "_delta_log/x.json",
                                "dir/.hidden.parquet", "a//b.parquet", ""}) {
    delta_commit_request req;
    req.adds.push_back(fake_add(bad));
    auto r = log.commit(req);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, errc::invalid_argument) << bad;
  }
  delta_commit_request req;
  auto a = fake_add("a.parquet");
  a.partition_values["region"] = "eu";  // The table has no partition columns.
  req.adds.push_back(a);
  EXPECT_FALSE(log.commit(req).ok());
  EXPECT_EQ(log.snapshot().version, 0);
}

TEST_F(delta_log_test, TxnMakesCommitsIdempotent) {
  delta_log log = create();
  auto r1 = commit(log, {fake_add("a.parquet")}, {}, delta_txn{"job/sink-0", 5, {}});
  EXPECT_TRUE(r1.committed);
  EXPECT_EQ(r1.version, 1);
  EXPECT_EQ(log.snapshot().txn_version("job/sink-0"), 5);
  EXPECT_NE(read_text(delta_commit_path(table_, 1))
                .find(R"({"txn":{"appId":"job/sink-0","version":5,"lastUpdated":)"),
            std::string::npos);

  // The same epoch again, or an older one, is skipped: nothing is written.
  for (int64_t epoch : {5, 3}) {
    auto again = commit(log, {fake_add("dup.parquet")}, {}, delta_txn{"job/sink-0", epoch, {}});
    EXPECT_FALSE(again.committed);
    EXPECT_EQ(again.version, 1);
    EXPECT_EQ(again.attempts, 0);
  }
  EXPECT_FALSE(fs::exists(delta_commit_path(table_, 2)));

  // Another application and the next epoch commit.
  EXPECT_TRUE(commit(log, {fake_add("b.parquet")}, {}, delta_txn{"job/sink-1", 5, {}}).committed);
  auto r3 = commit(log, {fake_add("c.parquet")}, {}, delta_txn{"job/sink-0", 6, {}});
  EXPECT_TRUE(r3.committed);
  EXPECT_EQ(r3.version, 3);

  // A fresh writer (recovery) sees the txns from the log.
  delta_log recovered = open();
  EXPECT_EQ(recovered.snapshot().txn_version("job/sink-0"), 6);
  EXPECT_EQ(recovered.snapshot().txn_version("job/sink-1"), 5);
  EXPECT_FALSE(recovered.snapshot().txn_version("job/sink-2").has_value());
}

TEST_F(delta_log_test, LosingWriterRetriesAtTheNextVersion) {
  create();
  delta_log a = open();
  delta_log b = open();
  EXPECT_EQ(commit(a, {fake_add("a.parquet")}).version, 1);
  // b still believes version 0 is the latest: its first attempt at version 1 loses.
  auto rb = commit(b, {fake_add("b.parquet")});
  EXPECT_TRUE(rb.committed);
  EXPECT_EQ(rb.version, 2);
  EXPECT_EQ(b.snapshot().files.size(), 2u);
}

TEST_F(delta_log_test, LosingWriterSkipsWhenTheWinnerHoldsItsTxn) {
  create();
  delta_log a = open();
  delta_log b = open();
  EXPECT_TRUE(commit(a, {fake_add("a.parquet")}, {}, delta_txn{"job/sink-0", 9, {}}).committed);
  auto rb = commit(b, {fake_add("b.parquet")}, {}, delta_txn{"job/sink-0", 9, {}});
  EXPECT_FALSE(rb.committed);
  EXPECT_EQ(rb.version, 1);
  EXPECT_FALSE(fs::exists(delta_commit_path(table_, 2)));
}

TEST_F(delta_log_test, ConcurrentWritersEachCommitOnceWithoutLosingFiles) {
  create();
  constexpr int writers = 6;
  std::vector<delta_log> logs;
  for (int i = 0; i < writers; ++i) logs.push_back(open());
  std::vector<delta_commit_result> results(writers);
  std::vector<std::string> errors(writers);
  std::latch start(writers);
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      delta_commit_request req;
      req.adds.push_back(fake_add("w" + std::to_string(i) + ".parquet"));
      req.txn = delta_txn{"app-" + std::to_string(i), 1, {}};
      start.arrive_and_wait();
      auto r = logs[i].commit(req);
      if (r.ok()) {
        results[i] = *r;
      } else {
        errors[i] = r.err().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> versions;
  for (int i = 0; i < writers; ++i) {
    EXPECT_EQ(errors[i], "");
    EXPECT_TRUE(results[i].committed);
    versions.insert(results[i].version);
  }
  EXPECT_EQ(versions, (std::set<int64_t>{1, 2, 3, 4, 5, 6}));
  auto snap = read_delta_snapshot(table_);
  ASSERT_TRUE(snap.ok()) << snap.err().message;
  EXPECT_EQ(snap->version, writers);
  EXPECT_EQ(snap->files.size(), size_t{writers});
}

TEST_F(delta_log_test, ConcurrentWritersOfTheSameTxnCommitExactlyOnce) {
  create();
  constexpr int writers = 4;
  std::vector<delta_log> logs;
  for (int i = 0; i < writers; ++i) logs.push_back(open());
  std::vector<delta_commit_result> results(writers);
  std::latch start(writers);
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      delta_commit_request req;
      req.adds.push_back(fake_add("epoch3-attempt" + std::to_string(i) + ".parquet"));
      req.txn = delta_txn{"job/sink-0", 3, {}};
      start.arrive_and_wait();
      auto r = logs[i].commit(req);
      if (r.ok()) results[i] = *r;
    });
  }
  for (auto& t : threads) t.join();
  int committed = 0;
  for (const auto& r : results) {
    committed += r.committed ? 1 : 0;
    EXPECT_EQ(r.version, 1);
  }
  EXPECT_EQ(committed, 1);
  auto snap = read_delta_snapshot(table_);
  ASSERT_TRUE(snap.ok()) << snap.err().message;
  EXPECT_EQ(snap->version, 1);
  EXPECT_EQ(snap->files.size(), 1u);
}

TEST_F(delta_log_test, ConcurrentMetadataChangeStopsTheCommit) {
  create();
  delta_log stale = open();
  const auto& md = stale.snapshot().metadata;
  nlohmann::json changed = {
      {"metaData",
       {{"id", md.id},
        {"format", {{"provider", "parquet"}, {"options", nlohmann::json::object()}}},
        {"schemaString", md.schema_string},
        {"partitionColumns", nlohmann::json::array()},
        {"configuration", {{"delta.appendOnly", "true"}}}}}};
  put_commit(1, changed.dump() + "\n");
  auto r = stale.commit(adding({fake_add("a.parquet")}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("configuration changed"), std::string::npos) << r.err().message;
  EXPECT_FALSE(fs::exists(delta_commit_path(table_, 2)));

  // A writer that knows the new metadata commits, but may not remove from an append-only table.
  delta_log fresh = open();
  EXPECT_EQ(commit(fresh, {fake_add("a.parquet")}).version, 2);
  delta_commit_request remove_request;
  remove_request.removes.push_back(remove_of("a.parquet"));
  auto rm = fresh.commit(remove_request);
  ASSERT_FALSE(rm.ok());
  EXPECT_NE(rm.err().message.find("append-only"), std::string::npos);
}

TEST_F(delta_log_test, TruncatedCommitIsRefusedWithFileAndLine) {
  delta_log log = create();
  commit(log, {fake_add("a.parquet")});
  put_commit(2, R"({"commitInfo":{"operation":"WRITE"}})"
                "\n"
                R"({"add":{"path":"b.parquet","partitionValues":{},"size":1)");
  expect_read_error(errc::parse_error,
                    {"_delta_log/00000000000000000002.json: line 2", "truncated"});
  // The writer refuses to go on, too.
  auto r = log.commit(adding({fake_add("c.parquet")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::parse_error);
}

TEST_F(delta_log_test, UnknownActionIsRefused) {
  create();
  put_commit(
      1,
      R"({"cdc":{"path":"_change_data/x.parquet","partitionValues":{},"size":1,"dataChange":false}})"
      "\n");
  expect_read_error(errc::parse_error,
                    {"00000000000000000001.json: line 1", "unknown action 'cdc'"});
}

TEST_F(delta_log_test, MalformedActionsAreRefused) {
  create();
  const std::pair<const char*, const char*> cases[] = {
      {R"([1,2])", "one key"},
      {R"({"add":{"path":"a","partitionValues":{},"modificationTime":1,"dataChange":true}})",
       "add.size must be an integer"},
      {R"({"add":{"path":"a%zz","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true}})",
       "bad %-escape"},
      {R"({"txn":{"appId":"x"}})", "txn.version"},
      {R"({"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":1,"dataChange":true},"remove":{"path":"a"}})",
       "one key"},
  };
  for (const auto& [line, message] : cases) {
    SCOPED_TRACE(line);
    put_commit(1, std::string(line) + "\n");
    expect_read_error(errc::parse_error, {"00000000000000000001.json: line 1", message});
  }
}

TEST_F(delta_log_test, NewerProtocolIsRefused) {
  create();
  put_commit(
      1,
      R"({"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}})"
      "\n");
  expect_read_error(errc::invalid_argument, {"00000000000000000001.json: line 1",
                                             "minReaderVersion: 3", "minWriterVersion: 7"});
  put_commit(1, R"({"protocol":{"minReaderVersion":1,"minWriterVersion":4}})"
                "\n");
  expect_read_error(errc::invalid_argument, {"minWriterVersion: 4"});
}

TEST_F(delta_log_test, MissingVersionZeroIsRefused) {
  delta_log log = create();
  commit(log, {fake_add("a.parquet")});
  fs::remove(delta_commit_path(table_, 0));
  expect_read_error(errc::parse_error, {"00000000000000000000.json is missing"});
  write_text(delta_log_dir(table_) + "/_last_checkpoint", R"({"version":1,"size":3})");
  expect_read_error(errc::invalid_argument, {"checkpoint", "_last_checkpoint"});
}

TEST_F(delta_log_test, GapInVersionsIsRefused) {
  delta_log log = create();
  commit(log, {fake_add("a.parquet")});
  put_commit(3, R"({"commitInfo":{}})"
                "\n");
  expect_read_error(errc::parse_error, {"gap", "00000000000000000002.json is missing"});
  // The snapshot before the gap is still readable.
  EXPECT_TRUE(read_delta_snapshot(table_, 1).ok());
}

TEST_F(delta_log_test, NotATable) {
  auto snap = read_delta_snapshot(dir_ + "/nothing");
  ASSERT_FALSE(snap.ok());
  EXPECT_EQ(snap.err().code, errc::not_found);
}

TEST_F(delta_log_test, StatsFollowSparkConventions) {
  parquet_file_info info;
  info.num_rows = 4;
  info.file_bytes = 10;
  info.columns = {
      {"id", type_id::int64, 0, 0, int64_t{-5}, int64_t{9}},
      {"region", type_id::string, 1, 0, std::string("eu"), std::string("us")},
      {"v", type_id::float64, 0, 1, 0.5, 2.0},  // A NaN: no bounds.
      {"t", type_id::timestamp, 2, 0, int64_t{-1}, int64_t{1'700'000'000'123'456}},
      {"ok", type_id::boolean, 0, 0, false, true},
      {"long", type_id::string, 0, 0, std::string(40, 'a'), std::string(40, 'z')},
      {"none", type_id::int64, 4, 0, std::monostate{}, std::monostate{}},
  };
  EXPECT_EQ(delta_stats_json(info, {}),
            R"({"numRecords":4,"minValues":{"id":-5,"region":"eu","t":"1969-12-31T23:59:59.999Z",)"
            R"("long":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"maxValues":{"id":9,"region":"us",)"
            R"("t":"2023-11-14T22:13:20.123Z"},"nullCount":{"id":0,"region":1,"v":0,"t":2,"ok":0,)"
            R"("long":0,"none":4}})");
  // Partition columns are not in the data files' statistics.
  EXPECT_EQ(delta_stats_json(info, {"region", "t", "v", "ok", "long", "none"}),
            R"({"numRecords":4,"minValues":{"id":-5},"maxValues":{"id":9},"nullCount":{"id":0}})");
  EXPECT_EQ(delta_stats_timestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(delta_stats_timestamp(253'402'300'799'999'999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(delta_stats_timestamp(-62'135'596'800'000'000), "0001-01-01T00:00:00.000Z");
  EXPECT_FALSE(delta_stats_timestamp(-62'135'596'800'000'001).has_value());
}

TEST_F(delta_log_test, DescribeFileReadsSizeAndStatsOfARealParquetFile) {
  delta_log log = create();
  const schema_ptr s = table_schema();
  auto w = parquet_writer::open(table_ + "/part-0.parquet", s, {});
  ASSERT_TRUE(w.ok()) << w.err().message;
  batch_builder b(s);
  for (int64_t id : {3, 1, 2}) {
    b.col(0).push_int64(id);
    b.col(1).push_string("r" + std::to_string(id));
    b.col(2).push_float64(static_cast<double>(id) / 2);
    b.col(3).push_int64(id * 1'000'000);
    id == 2 ? b.col(4).push_null() : b.col(4).push_bool(true);
    b.end_row(0);
  }
  ASSERT_TRUE((*w)->write(*b.finish()).ok());
  auto info = (*w)->close();
  ASSERT_TRUE(info.ok()) << info.err().message;
  auto add = log.describe_file("part-0.parquet", *info);
  ASSERT_TRUE(add.ok()) << add.err().message;
  EXPECT_EQ(add->size, static_cast<int64_t>(fs::file_size(table_ + "/part-0.parquet")));
  EXPECT_EQ(
      add->stats,
      R"({"numRecords":3,"minValues":{"id":1,"region":"r1","v":0.5,"t":"1970-01-01T00:00:01.000Z"},)"
      R"("maxValues":{"id":3,"region":"r3","v":1.5,"t":"1970-01-01T00:00:03.000Z"},)"
      R"("nullCount":{"id":0,"region":0,"v":0,"t":0,"ok":1}})");
  EXPECT_TRUE(commit(log, {*add}).committed);
  const auto report = verify_delta_table(table_);
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(delta_num_records(log.snapshot().files.at("part-0.parquet")), 3);

  // verify notices a missing file and a wrong size.
  commit(log, {fake_add("ghost.parquet", 5)});
  const auto bad = verify_delta_table(table_);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_NE(bad.problems[0].find("'ghost.parquet' is missing"), std::string::npos);
}

TEST_F(delta_log_test, PartitionDirectoriesAreEscapedLikeHive) {
  EXPECT_EQ(delta_partition_dir({"region", "day"}, {{"region", "eu/west"}, {"day", std::nullopt}}),
            "region=eu%2Fwest/day=__HIVE_DEFAULT_PARTITION__/");
  EXPECT_EQ(delta_partition_dir({}, {}), "");
  EXPECT_EQ(delta_encode_path("region=eu%2Fwest/a b.parquet"), "region=eu%252Fwest/a%20b.parquet");
  EXPECT_EQ(*delta_decode_path("region=eu%252Fwest/a%20b.parquet"), "region=eu%2Fwest/a b.parquet");
}

}  // namespace
}  // namespace vigil::lake
