#include "operators/connectors/sinks.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "operators/connectors/connectors.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

using testing::cfg;
using testing::make_rows;
using testing::operator_harness;
using testing::str;

constexpr int64_t jan1_2026 = 1767225600LL * 1'000'000;

using testing::discard_output;

class SinkTest : public ::testing::Test {
 protected:
  SinkTest() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-sinks-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    register_connectors(registry_);
  }
  ~SinkTest() override { std::filesystem::remove_all(dir_); }

  static schema_ptr vitals() {
    return make_schema({{"patient", type_id::string, false},
                        {"hr", type_id::int64, true},
                        {"temp", type_id::float64, true},
                        {"alert", type_id::boolean, true},
                        {"at", type_id::timestamp, true}});
  }

  static batch_ptr sample() {
    return make_rows(vitals(),
                     {{std::string("p1"), int64_t{72}, 36.6, false, jan1_2026 + 10'000'000},
                      {std::string("p\"2\n"), std::monostate{}, 0.1, true, std::monostate{}}},
                     {jan1_2026 + 10'000'000, jan1_2026 + 1});
  }

  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string plan_error(const std::string& op, const config_map& config, uint32_t parallelism = 1,
                         schema_ptr input = vitals()) {
    plan_context ctx;
    ctx.node_id = "test";
    ctx.config = &config;
    ctx.parallelism = parallelism;
    ctx.inputs = {stream_info{std::move(input), {}}};
    auto p = registry_.find(op)->plan(ctx);
    return p ? "" : p.err().message;
  }

  std::filesystem::path dir_;
  operator_registry registry_;
};

const char* const line0 =
    R"({"patient":"p1","hr":72,"temp":36.6,"alert":false,"at":"2026-01-01T00:00:10Z"})";
const char* const line1 = R"({"patient":"p\"2\n","hr":null,"temp":0.1,"alert":true,"at":null})";

TEST_F(SinkTest, Traits) {
  for (const char* name : {"stdout", "jsonl_file", "null"}) {
    const operator_traits& t = registry_.find(name)->traits();
    EXPECT_EQ(t.input_ports, std::vector<std::string>{"in"}) << name;
    EXPECT_TRUE(t.output_ports.empty()) << name;
  }
}

TEST_F(SinkTest, StdoutPrintsJsonLines) {
  operator_harness h(registry_, "stdout", {}, {stream_info{vitals(), {}}});
  ::testing::internal::CaptureStdout();
  h.push(0, sample());
  h.push(0, sample());
  h.finish();
  const std::string out = ::testing::internal::GetCapturedStdout();
  const std::string batch = std::string(line0) + "\n" + line1 + "\n";
  EXPECT_EQ(out, batch + batch);
}

TEST_F(SinkTest, StdoutWithEventTime) {
  operator_harness h(registry_, "stdout",
                     cfg({{"include_event_time", config_value::of_bool(true)}}),
                     {stream_info{vitals(), {}}});
  ::testing::internal::CaptureStdout();
  h.push(0, sample());
  h.finish();
  const std::string out = ::testing::internal::GetCapturedStdout();
  std::string expected = line0;
  expected.insert(expected.size() - 1, R"(,"_event_time":"2026-01-01T00:00:10Z")");
  std::string second = line1;
  second.insert(second.size() - 1, R"(,"_event_time":"2026-01-01T00:00:00.000001Z")");
  EXPECT_EQ(out, expected + "\n" + second + "\n");
}

TEST_F(SinkTest, JsonlFileWritesOneFilePerSubtask) {
  const std::string pattern = (dir_ / "out" / "deep" / "part-{subtask}.jsonl").string();
  for (uint32_t subtask : {0u, 1u}) {
    operator_harness h(registry_, "jsonl_file", cfg({{"path", str(pattern)}}),
                       {stream_info{vitals(), {}}}, subtask, 2);
    if (subtask == 1) h.push(0, sample());
    h.finish();
  }
  EXPECT_EQ(read(dir_ / "out" / "deep" / "part-0.jsonl"), "");
  EXPECT_EQ(read(dir_ / "out" / "deep" / "part-1.jsonl"), std::string(line0) + "\n" + line1 + "\n");
}

TEST_F(SinkTest, JsonlFileTruncatesAndIncludesEventTime) {
  const auto path = dir_ / "single.jsonl";
  std::filesystem::create_directories(dir_);
  std::ofstream(path) << "old content\n";
  operator_harness h(
      registry_, "jsonl_file",
      cfg({{"path", str(path.string())}, {"include_event_time", config_value::of_bool(true)}}),
      {stream_info{vitals(), {}}});
  h.push(0, sample());
  h.finish();
  const std::string text = read(path);
  EXPECT_EQ(text.rfind(R"({"patient":"p1")", 0), 0u) << text;
  EXPECT_NE(text.find(R"("_event_time":"2026-01-01T00:00:10Z"})"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

TEST_F(SinkTest, JsonlFileOpenErrorNamesThePath) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "blocker") << "a file, not a directory";
  const std::string path = (dir_ / "blocker" / "out.jsonl").string();
  const config_map config = cfg({{"path", str(path)}});
  plan_context ctx;
  ctx.config = &config;
  ctx.inputs = {stream_info{vitals(), {}}};
  const operator_factory& f = *registry_.find("jsonl_file");
  auto p = f.plan(ctx);
  ASSERT_TRUE(p) << p.err().message;
  discard_output out;
  subtask_driver::options opts;
  opts.node_id = "sink";
  auto d = subtask_driver::make(f, **p, opts, out);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.err().code, errc::io_error);
  EXPECT_NE(d.err().message.find(path), std::string::npos) << d.err().message;
}

TEST_F(SinkTest, NullSinkCountsAndDiscards) {
  auto plan = operator_harness::try_plan(registry_, "null", {}, {stream_info{vitals(), {}}});
  ASSERT_TRUE(plan) << plan.err().message;
  auto op = (*plan)->instantiate();
  auto* sink = dynamic_cast<null_sink*>(op.get());
  ASSERT_NE(sink, nullptr);
  operator_context ctx;
  ASSERT_TRUE(op->open(ctx));
  discard_output out;
  op->process(0, *sample(), out);
  op->process(0, *sample(), out);
  EXPECT_TRUE(op->close(out));
  EXPECT_EQ(sink->rows(), 4u);
  EXPECT_EQ(sink->batches(), 2u);

  operator_harness h(registry_, "null", cfg({{"delay_per_batch", str("1us")}}),
                     {stream_info{vitals(), {}}});
  h.push(0, sample());
  h.finish();
}

TEST_F(SinkTest, ConfigErrors) {
  EXPECT_NE(plan_error("jsonl_file", {}).find("config.path: required"), std::string::npos);
  EXPECT_NE(plan_error("jsonl_file", cfg({{"path", str("")}})).find("config.path"),
            std::string::npos);
  EXPECT_NE(plan_error("jsonl_file", cfg({{"path", str("out.jsonl")}}), 2)
                .find("config.path: must contain \"{subtask}\""),
            std::string::npos);
  EXPECT_EQ(plan_error("jsonl_file", cfg({{"path", str("out-{subtask}.jsonl")}}), 2), "");
  EXPECT_NE(plan_error("jsonl_file", cfg({{"path", str("o.jsonl")}, {"mode", str("append")}}))
                .find("config.mode: unknown key"),
            std::string::npos);
  EXPECT_NE(plan_error("stdout", cfg({{"include_event_time", str("yes")}}))
                .find("config.include_event_time"),
            std::string::npos);
  auto clash = make_schema({{"_event_time", type_id::timestamp, true}});
  EXPECT_NE(
      plan_error("stdout", cfg({{"include_event_time", config_value::of_bool(true)}}), 1, clash)
          .find("config.include_event_time: the input already has a field"),
      std::string::npos);
  EXPECT_EQ(plan_error("stdout", {}, 1, clash), "");
  EXPECT_NE(
      plan_error("null", cfg({{"delay_per_batch", str("slow")}})).find("config.delay_per_batch"),
      std::string::npos);
  EXPECT_NE(plan_error("stdout", cfg({{"pretty", config_value::of_bool(true)}}))
                .find("config.pretty: unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil
