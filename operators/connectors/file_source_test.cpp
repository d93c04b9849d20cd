#include "operators/connectors/file_source.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "operators/connectors/connectors.hpp"
#include "operators/connectors/line_reader.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::operator_harness;
using testing::str;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;
constexpr int64_t sec = 1'000'000;

/// The harness plans without a declared schema; this wrapper adds one (the graph's `schema:`).
class with_declared_schema final : public operator_factory {
 public:
  with_declared_schema(const operator_factory& inner, schema_ptr s)
      : inner_(inner), schema_(std::move(s)) {}
  const operator_traits& traits() const override { return inner_.traits(); }
  result<plan_ptr> plan(const plan_context& ctx) const override {
    plan_context c = ctx;
    c.declared_output = schema_;
    return inner_.plan(c);
  }

 private:
  const operator_factory& inner_;
  schema_ptr schema_;
};

using testing::discard_output;

class FileSourceTest : public ::testing::Test {
 protected:
  FileSourceTest() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-file-source-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    register_connectors(base_);
  }
  ~FileSourceTest() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, std::string_view content) {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  /// A registry whose file_source plans with `s` as the declared schema.
  operator_registry& with_schema(schema_ptr s) {
    registry_ = operator_registry();
    registry_.add(std::make_unique<with_declared_schema>(*base_.find("file_source"), s));
    return registry_;
  }

  struct run_result {
    std::vector<std::string> rows;
    std::vector<std::string> errors;
    std::vector<poll_result> polls;
  };

  run_result run(schema_ptr s, const config_map& config, size_t batch_size = 1024) {
    operator_harness h(with_schema(std::move(s)), "file_source", config, {}, 0, 1, batch_size);
    run_result r;
    for (int i = 0; i < 10000; ++i) {
      r.polls.push_back(h.poll());
      if (r.polls.back().st == poll_result::state::finished) break;
    }
    r.rows = h.rows(0);
    r.errors = h.rows(1);
    h.finish();
    return r;
  }

  result<plan_ptr> plan(schema_ptr s, const config_map& config, uint32_t parallelism = 1) {
    plan_context ctx;
    ctx.node_id = "test";
    ctx.config = &config;
    ctx.parallelism = parallelism;
    ctx.declared_output = std::move(s);
    return base_.find("file_source")->plan(ctx);
  }

  std::string plan_error(schema_ptr s, const config_map& config, uint32_t parallelism = 1) {
    auto p = plan(std::move(s), config, parallelism);
    return p ? "" : p.err().message;
  }

  std::filesystem::path dir_;
  operator_registry base_;
  operator_registry registry_;
};

schema_ptr obs_schema() {
  return make_schema({{"id", type_id::int64, false},
                      {"name", type_id::string, true},
                      {"score", type_id::float64, true},
                      {"ok", type_id::boolean, true},
                      {"ts", type_id::timestamp, false}});
}

std::string et(int64_t us) {
  return std::to_string(us);
}

TEST_F(FileSourceTest, Traits) {
  const operator_traits& t = base_.find("file_source")->traits();
  EXPECT_TRUE(t.input_ports.empty());
  EXPECT_EQ(t.output_ports, (std::vector<std::string>{"out", "errors"}));
  auto p = plan(obs_schema(), cfg({{"path", str("x.jsonl")}, {"event_time_field", str("ts")}}));
  ASSERT_TRUE(p) << p.err().message;
  ASSERT_EQ((*p)->outputs.size(), 2u);
  EXPECT_EQ(*(*p)->outputs[0].schema, *obs_schema());
  EXPECT_EQ((*p)->outputs[1].schema->to_string(), "line:int64, reason:string, raw:string");
}

TEST_F(FileSourceTest, JsonLinesHappyPath) {
  const std::string path =
      write("obs.jsonl",
            "{\"id\":1,\"name\":\"a\",\"score\":1.5,\"ok\":true,\"ts\":\"2026-01-01T00:00:01Z\"}\n"
            "{\"id\":2,\"ts\":\"2026-01-01T01:00:02+01:00\",\"name\":null}\r\n"
            "   \n"
            "{\"ts\":1767225603000,\"id\":3,\"score\":2,\"extra\":{\"x\":[1,2]},\"ok\":false}\n"
            "{\"id\":4,\"name\":\"q\\\"u\\u00e9\",\"ts\":\"2025-12-31T23:30:00.5-00:30\"}");
  auto r = run(obs_schema(), cfg({{"path", str(path)}, {"event_time_field", str("ts")}}));
  const int64_t t1 = jan1_2026 + sec, t2 = jan1_2026 + 2 * sec, t3 = jan1_2026 + 3 * sec,
                t4 = jan1_2026 + sec / 2;
  EXPECT_EQ(r.rows, (std::vector<std::string>{
                        "1|a|1.5|true|" + et(t1) + "@" + et(t1),
                        "2|null|null|null|" + et(t2) + "@" + et(t2),
                        "3|null|2|false|" + et(t3) + "@" + et(t3),
                        "4|q\"u\xc3\xa9|null|null|" + et(t4) + "@" + et(t4),
                    }));
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.polls.size(), 1u);
  EXPECT_EQ(r.polls[0].st, poll_result::state::finished);
  EXPECT_EQ(r.polls[0].watermark, max_watermark);
}

TEST_F(FileSourceTest, WatermarkIsMaxMinusBoundMinusOne) {
  const std::string path = write("wm.jsonl",
                                 "{\"id\":1,\"ts\":\"2026-01-01T00:00:10Z\"}\n"
                                 "{\"id\":2,\"ts\":\"2026-01-01T00:00:05Z\"}\n"
                                 "{\"id\":3,\"ts\":\"2026-01-01T00:00:20Z\"}\n"
                                 "{\"id\":4,\"ts\":\"2026-01-01T00:00:16Z\"}\n");
  auto r = run(obs_schema(),
               cfg({{"path", str(path)},
                    {"event_time_field", str("ts")},
                    {"max_out_of_orderness", str("4s")}}),
               2);
  ASSERT_EQ(r.rows.size(), 4u);
  ASSERT_EQ(r.polls.size(), 3u);
  EXPECT_EQ(r.polls[0].st, poll_result::state::more);
  EXPECT_EQ(r.polls[0].watermark, jan1_2026 + 6 * sec - 1);
  EXPECT_EQ(r.polls[1].st, poll_result::state::more);
  // Record 4 (16s) is exactly max_out_of_orderness behind the newest (20s): not late.
  EXPECT_EQ(r.polls[1].watermark, jan1_2026 + 16 * sec - 1);
  EXPECT_EQ(r.polls[2].st, poll_result::state::finished);
}

TEST_F(FileSourceTest, EpochUnits) {
  auto s = make_schema({{"ts", type_id::timestamp, false}});
  const std::string path = write("epoch.jsonl",
                                 "{\"ts\":1767225600}\n{\"ts\":1767225600.25}\n"
                                 "{\"ts\":\"1767225601\"}\n");
  auto secs =
      run(s, cfg({{"path", str(path)}, {"event_time_field", str("ts")}, {"epoch_unit", str("s")}}));
  EXPECT_EQ(secs.rows,
            (std::vector<std::string>{et(jan1_2026) + "@" + et(jan1_2026),
                                      et(jan1_2026 + 250000) + "@" + et(jan1_2026 + 250000),
                                      et(jan1_2026 + sec) + "@" + et(jan1_2026 + sec)}));
  auto us = run(
      s, cfg({{"path", str(path)}, {"event_time_field", str("ts")}, {"epoch_unit", str("us")}}));
  ASSERT_EQ(us.rows.size(), 3u);
  EXPECT_EQ(us.rows[0], "1767225600@1767225600");
}

struct error_row {
  int64_t line;
  std::string reason;
  std::string raw;
  int64_t event_time;
};

std::vector<error_row> error_rows(operator_harness& h) {
  std::vector<error_row> out;
  for (const auto& b : h.batches(1)) {
    for (size_t i = 0; i < b->num_rows(); ++i) {
      out.push_back({b->columns[0].ints[i], std::string(b->columns[1].string_at(i)),
                     std::string(b->columns[2].string_at(i)), b->event_time[i]});
    }
  }
  return out;
}

TEST_F(FileSourceTest, MalformedJsonLinesGoToErrors) {
  auto s = make_schema({{"id", type_id::int64, false},
                        {"tag", type_id::string, true},
                        {"ts", type_id::timestamp, true}});
  const std::string lines[] = {
      R"({"id":1,"ts":"2026-01-01T00:00:01Z"})",
      R"({"id":2,"ts":"2026-01-01T00:00:02Z")",
      R"({"id":"x","ts":"2026-01-01T00:00:03Z"})",
      R"({"ts":"2026-01-01T00:00:04Z"})",
      R"({"id":5,"ts":"yesterday"})",
      R"([1,2])",
      R"({"id":7,"ts":"2026-01-01T00:00:07"})",
      R"({"id":8,"id":9,"ts":"2026-01-01T00:00:08Z"})",
      R"({"id":1.5,"ts":"2026-01-01T00:00:09Z"})",
      R"({"id":10,"ts":null})",
      "\xff\xfe",
      R"({"id":12,"tag":7,"ts":"2026-01-01T00:00:12Z"})",
      R"({"id":13,"ts":"2026-01-01T00:00:13Z"} trailing)",
      R"({"id":null,"ts":"2026-01-01T00:00:14Z"})",
      R"({"id":15,"ts":"2026-01-01T00:00:15Z","other":[1,}})",
      R"({"id":16,"ts":"2026-01-01T00:00:16Z"})",
  };
  std::string content;
  for (const auto& l : lines) content += l + "\n";
  const std::string path = write("bad.jsonl", content);
  operator_harness h(with_schema(s), "file_source",
                     cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), {}, 0, 1, 1);
  for (int i = 0; i < 100 && h.poll().st != poll_result::state::finished; ++i) {
  }
  EXPECT_EQ(h.rows(0), (std::vector<std::string>{
                           "1|null|" + et(jan1_2026 + sec) + "@" + et(jan1_2026 + sec),
                           "16|null|" + et(jan1_2026 + 16 * sec) + "@" + et(jan1_2026 + 16 * sec),
                       }));
  const auto errors = error_rows(h);
  const std::vector<std::pair<int64_t, std::string>> expected = {
      {2, "invalid JSON ("},
      {3, "field 'id': expected int64, got \"x\""},
      {4, "missing field 'id'"},
      {5, "field 'ts': invalid timestamp \"yesterday\""},
      {6, "expected a JSON object, got an array"},
      {7, "field 'ts': invalid timestamp \"2026-01-01T00:00:07\""},
      {8, "duplicate field 'id'"},
      {9, "field 'id': expected int64, got 1.5"},
      {10, "event time field 'ts' is null"},
      {11, "invalid JSON ("},
      {12, "field 'tag': expected string, got 7"},
      {13, "invalid JSON ("},
      {14, "field 'id': null is not allowed"},
      {15, "invalid JSON ("},
  };
  ASSERT_EQ(errors.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(errors[i].line, expected[i].first);
    EXPECT_EQ(errors[i].reason.rfind(expected[i].second, 0), 0u)
        << "line " << errors[i].line << ": " << errors[i].reason;
    EXPECT_EQ(errors[i].raw, lines[errors[i].line - 1]);
    // Errors carry the watermark of the poll before (line 1's 1s - 1µs), here all the same.
    EXPECT_EQ(errors[i].event_time, jan1_2026 + sec - 1);
  }
  h.finish();
}

TEST_F(FileSourceTest, ErrorsBeforeAnyWatermarkHaveEventTimeZero) {
  const std::string path = write("first_bad.jsonl", "not json\n");
  operator_harness h(with_schema(obs_schema()), "file_source",
                     cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), {});
  EXPECT_EQ(h.poll().st, poll_result::state::finished);
  const auto errors = error_rows(h);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 1);
  EXPECT_EQ(errors[0].raw, "not json");
  EXPECT_EQ(errors[0].event_time, 0);
}

TEST_F(FileSourceTest, CsvHappyPath) {
  const std::string path = write("obs.csv",
                                 "\xEF\xBB\xBFts,id,name,score,ok\r\n"
                                 "2026-01-01T00:00:01Z,1,plain,1.5,true\r\n"
                                 "2026-01-01T01:00:02+01:00,2,\"with, comma\",,FALSE\r\n"
                                 "1767225603000,3,\"say \"\"hi\"\"\",-2e3,1\r\n"
                                 "\r\n"
                                 "\"2026-01-01T00:00:04Z\",4,\"two\nlines\",  7.25 ,\n"
                                 "2026-01-01T00:00:05Z,5,\"\",,\n"
                                 "2026-01-01T00:00:06Z,6,,,0");
  auto r = run(obs_schema(), cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), 4);
  const auto row = [](std::string v, int64_t ts) { return v + "|" + et(ts) + "@" + et(ts); };
  EXPECT_EQ(r.rows, (std::vector<std::string>{
                        row("1|plain|1.5|true", jan1_2026 + sec),
                        row("2|with, comma|null|false", jan1_2026 + 2 * sec),
                        row("3|say \"hi\"|-2000|true", jan1_2026 + 3 * sec),
                        row("4|two\nlines|7.25|null", jan1_2026 + 4 * sec),
                        row("5||null|null", jan1_2026 + 5 * sec),
                        row("6|null|null|false", jan1_2026 + 6 * sec),
                    }));
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(r.polls.back().st, poll_result::state::finished);
}

TEST_F(FileSourceTest, CsvMissingNullableColumnIsNull) {
  const std::string path = write("narrow.csv", "id,ts\n7,2026-01-01T00:00:00Z\n");
  auto r = run(obs_schema(), cfg({{"path", str(path)}, {"event_time_field", str("ts")}}));
  EXPECT_EQ(r.rows,
            (std::vector<std::string>{"7|null|null|null|" + et(jan1_2026) + "@" + et(jan1_2026)}));
}

TEST_F(FileSourceTest, MalformedCsvGoesToErrors) {
  const std::string path = write("bad.csv",
                                 "id,ts,name\n"
                                 "1,2026-01-01T00:00:01Z,a\n"
                                 "2,2026-01-01T00:00:02Z,b,extra\n"
                                 "3,2026-01-01T00:00:03Z\n"
                                 "x,2026-01-01T00:00:04Z,d\n"
                                 "5,soon,e\n"
                                 "6,2026-01-01T00:00:06Z,f\"g\n"
                                 "7,2026-01-01T00:00:07Z,\"h\"i\n"
                                 ",2026-01-01T00:00:08Z,j\n"
                                 "9,,k\n"
                                 "10,2026-01-01T00:00:10Z,ok\n"
                                 "11,2026-01-01T00:00:11Z,\"never\nclosed\n");
  operator_harness h(with_schema(obs_schema()), "file_source",
                     cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), {});
  EXPECT_EQ(h.poll().st, poll_result::state::finished);
  EXPECT_EQ(h.rows(0),
            (std::vector<std::string>{
                "1|a|null|null|" + et(jan1_2026 + sec) + "@" + et(jan1_2026 + sec),
                "10|ok|null|null|" + et(jan1_2026 + 10 * sec) + "@" + et(jan1_2026 + 10 * sec),
            }));
  const auto errors = error_rows(h);
  const std::vector<std::pair<int64_t, std::string>> expected = {
      {3, "expected 3 columns, got 4"},
      {4, "expected 3 columns, got 2"},
      {5, "field 'id': expected int64, got \"x\""},
      {6,
       "field 'ts': invalid timestamp \"soon\" (expected ISO-8601 with a zone, e.g. "
       "\"2026-01-01T08:00:00Z\", or a number)"},
      {7, "quote inside unquoted column 3"},
      {8, "unexpected character after the closing quote of column 3"},
      {9, "field 'id': empty (null) value is not allowed"},
      {10, "field 'ts': empty (null) value is not allowed"},
      {12, "unterminated quoted field at the end of the file"},
  };
  ASSERT_EQ(errors.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(errors[i].line, expected[i].first);
    EXPECT_EQ(errors[i].reason, expected[i].second) << "line " << errors[i].line;
  }
  EXPECT_EQ(errors[0].raw, "2,2026-01-01T00:00:02Z,b,extra");
  EXPECT_EQ(errors.back().raw, "11,2026-01-01T00:00:11Z,\"never\nclosed");
  h.finish();
}

TEST_F(FileSourceTest, CsvHeaderErrorsFailOpen) {
  auto open_error = [&](const std::string& name, const std::string& content) {
    const std::string path = write(name, content);
    const config_map config = cfg({{"path", str(path)}, {"event_time_field", str("ts")}});
    auto p = plan(obs_schema(), config);
    EXPECT_TRUE(p) << p.err().message;
    discard_output out;
    subtask_driver::options opts;
    opts.node_id = "replay";
    auto d = subtask_driver::make(*base_.find("file_source"), **p, opts, out);
    return d ? std::string() : d.err().message;
  };
  EXPECT_NE(open_error("extra.csv", "id,ts,colour\n").find("CSV column 'colour' is not a field"),
            std::string::npos);
  EXPECT_NE(open_error("dup.csv", "id,ts,id\n").find("'id' appears twice"), std::string::npos);
  EXPECT_NE(open_error("noid.csv", "ts,name\n").find("no column for field 'id'"),
            std::string::npos);
  EXPECT_NE(open_error("empty.csv", "").find("CSV header line is required"), std::string::npos);
  const std::string msg = open_error("empty2.csv", "");
  EXPECT_NE(msg.find("empty2.csv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node 'replay'"), std::string::npos) << msg;
}

TEST_F(FileSourceTest, MissingFileFailsOpenNamingThePath) {
  const std::string path = (dir_ / "nope" / "missing.jsonl").string();
  const config_map config = cfg({{"path", str(path)}, {"event_time_field", str("ts")}});
  auto p = plan(obs_schema(), config);
  ASSERT_TRUE(p) << p.err().message;
  discard_output out;
  subtask_driver::options opts;
  opts.node_id = "replay";
  auto d = subtask_driver::make(*base_.find("file_source"), **p, opts, out);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().code, errc::not_found);
  EXPECT_NE(d.err().message.find("'" + path + "'"), std::string::npos) << d.err().message;
}

// The position for a checkpoint's lineage: the file, the lines read and the good records.
TEST_F(FileSourceTest, PositionIsTheLinesReadAndTheRecordsEmitted) {
  const std::string path = write("pos.jsonl",
                                 "{\"id\":1,\"ts\":1767225600000}\n"
                                 "not json\n"
                                 "{\"id\":3,\"ts\":1767225600003}\n");
  operator_harness h(with_schema(obs_schema()), "file_source",
                     cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), {}, 0, 1, 2);
  const std::string prefix = "{\"path\":\"" + path + "\",";
  EXPECT_EQ(h.op().position_json(), prefix + R"("lines":0,"records":0})");
  ASSERT_EQ(h.poll().st, poll_result::state::more);  // A good line and a bad one.
  EXPECT_EQ(h.op().position_json(), prefix + R"("lines":2,"records":1})");
  ASSERT_EQ(h.poll().st, poll_result::state::finished);
  EXPECT_EQ(h.op().position_json(), prefix + R"("lines":3,"records":2})");
  h.finish();
}

TEST_F(FileSourceTest, EmptyJsonFileFinishesAtOnce) {
  const std::string path = write("empty.jsonl", "");
  auto r = run(obs_schema(), cfg({{"path", str(path)}, {"event_time_field", str("ts")}}));
  EXPECT_TRUE(r.rows.empty());
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.polls.size(), 1u);
  EXPECT_EQ(r.polls[0].st, poll_result::state::finished);
}

TEST_F(FileSourceTest, ManyRecordsAcrossPolls) {
  std::string content;
  for (int i = 0; i < 5000; ++i) {
    content +=
        "{\"id\":" + std::to_string(i) + ",\"ts\":" + std::to_string(1767225600000 + i) + "}\n";
  }
  const std::string path = write("many.jsonl", content);
  auto r = run(obs_schema(), cfg({{"path", str(path)}, {"event_time_field", str("ts")}}), 1000);
  ASSERT_EQ(r.rows.size(), 5000u);
  EXPECT_EQ(r.rows[4999],
            "4999|null|null|null|" + et(jan1_2026 + 4999000) + "@" + et(jan1_2026 + 4999000));
  EXPECT_EQ(r.polls.size(), 6u);
}

TEST_F(FileSourceTest, ConfigErrors) {
  auto s = obs_schema();
  auto base = [](std::initializer_list<std::pair<std::string, config_value>> extra) {
    config_map c = cfg({{"path", str("in.jsonl")}, {"event_time_field", str("ts")}});
    for (const auto& e : extra) c.push_back(e);
    return c;
  };
  EXPECT_EQ(plan_error(s, base({})), "");
  EXPECT_NE(plan_error(s, cfg({{"event_time_field", str("ts")}})).find("config.path"),
            std::string::npos);
  EXPECT_NE(plan_error(s, cfg({{"path", str("in.jsonl")}})).find("config.event_time_field"),
            std::string::npos);
  EXPECT_NE(plan_error(s, base({{"format", str("xml")}})).find("config.format"), std::string::npos);
  EXPECT_NE(plan_error(s, cfg({{"path", str("in.txt")}, {"event_time_field", str("ts")}}))
                .find("config.format"),
            std::string::npos);
  EXPECT_EQ(
      plan_error(
          s,
          cfg({{"path", str("in.txt")}, {"event_time_field", str("ts")}, {"format", str("csv")}})),
      "");
  EXPECT_NE(plan_error(s, cfg({{"path", str("in.jsonl")}, {"event_time_field", str("when")}}))
                .find("config.event_time_field: no field 'when'"),
            std::string::npos);
  EXPECT_NE(plan_error(s, cfg({{"path", str("in.jsonl")}, {"event_time_field", str("id")}}))
                .find("config.event_time_field: field 'id' must have type timestamp"),
            std::string::npos);
  EXPECT_NE(plan_error(s, base({{"epoch_unit", str("ns")}})).find("config.epoch_unit"),
            std::string::npos);
  EXPECT_NE(plan_error(s, base({{"max_out_of_orderness", str("soon")}}))
                .find("config.max_out_of_orderness"),
            std::string::npos);
  EXPECT_NE(plan_error(s, base({{"delimiter", str(";")}})).find("config.delimiter: unknown key"),
            std::string::npos);
  EXPECT_EQ(plan_error(nullptr, base({})).rfind("output_schema: required for file_source", 0), 0u);
  const std::string par = plan_error(s, base({}), 3);
  EXPECT_NE(par.find("parallelism 1"), std::string::npos) << par;
  EXPECT_NE(par.find("got 3"), std::string::npos) << par;
}

TEST_F(FileSourceTest, GarbageNeverCrashes) {
  // Deterministic noise built from JSON and CSV fragments and raw bytes: every non-blank JSON
  // line becomes a record or an error; CSV input just has to be read to the end.
  const char* fragments[] = {"{",          "}",
                             "\"",         ",",
                             ":",          "\"id\"",
                             "\"ts\"",     "1",
                             "-",          "2026-01-01",
                             "T00:00:00Z", "null",
                             "[",          "]",
                             "\\",         "\xff",
                             "\xc3",       "\r",
                             " ",          "\"\"",
                             "1e999",      "99999999999999999999",
                             "true"};
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  std::string content;
  size_t non_blank = 0;
  for (int line = 0; line < 2000; ++line) {
    std::string l;
    const size_t parts = next() % 12;
    for (size_t k = 0; k < parts; ++k) l += fragments[next() % std::size(fragments)];
    bool blank = true;
    for (char c : l) blank &= c == ' ' || c == '\t' || c == '\r';
    non_blank += blank ? 0 : 1;
    content += l + "\n";
  }
  const std::string json = write("noise.jsonl", content);
  auto r = run(obs_schema(), cfg({{"path", str(json)}, {"event_time_field", str("ts")}}), 64);
  EXPECT_EQ(r.rows.size() + r.errors.size(), non_blank);
  EXPECT_EQ(r.polls.back().st, poll_result::state::finished);

  const std::string csv = write("noise.csv", "id,ts\n" + content);
  auto c = run(obs_schema(), cfg({{"path", str(csv)}, {"event_time_field", str("ts")}}), 64);
  EXPECT_GT(c.errors.size(), 0u);
  EXPECT_EQ(c.polls.back().st, poll_result::state::finished);
}

TEST(LineReader, ChunksCrlfBomAndLastLine) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("vigil-line-reader-" + std::to_string(::getpid()) + ".txt");
  const std::string long_line(100, 'x');
  std::ofstream(path, std::ios::binary) << "\xEF\xBB\xBF"
                                        << "first\r\n\n"
                                        << long_line << "\nshort\r\nlast";
  line_reader reader(8);  // Far smaller than a line: the buffer must grow and refill.
  ASSERT_TRUE(reader.open(path.string()));
  std::vector<std::string> lines;
  std::string_view line;
  while (reader.next(line)) lines.emplace_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "", long_line, "short", "last"}));
  EXPECT_EQ(reader.line_number(), 5u);
  EXPECT_FALSE(reader.failed());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace vigil
