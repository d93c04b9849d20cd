// The subtask actors' credit protocol, step by step on CAF's deterministic testing scheduler:
// no sleeps, no timing. A source that could produce forever sends only what its receiver
// granted; a blocked middle stage withholds credit from its own input; granting credit at the
// end of the chain resumes the flow.
#include "runtime/subtask_actor.hpp"

#include <gtest/gtest.h>

#include <caf/scheduler/test_coordinator.hpp>
#include <filesystem>

#include "runtime/testing/operator_harness.hpp"

namespace vigil {
namespace {

schema_ptr row_schema() {
  return make_schema({{"n", type_id::int64, false}});
}

/// An endless source: every poll emits one 10-row batch.
class endless_source : public operator_base {
 public:
  poll_result poll(output& out) override {
    std::vector<std::vector<testing::cell>> rows;
    std::vector<int64_t> times;
    for (int i = 0; i < 10; ++i) {
      rows.push_back({next_});
      times.push_back(next_++);
    }
    out.emit(0, testing::make_rows(row_schema(), rows, times));
    return {poll_result::state::more, 0, next_ - 1};
  }

 private:
  int64_t next_ = 0;
};

/// Emits three keyed rows on its first poll, then has nothing more; every poll asks to be
/// retried after an hour. Counts its polls.
class once_source : public operator_base {
 public:
  explicit once_source(std::shared_ptr<int> polls) : polls_(std::move(polls)) {}
  poll_result poll(output& out) override {
    if ((*polls_)++ == 0) {
      auto b = std::make_shared<record_batch>(
          *testing::make_rows(row_schema(), {{int64_t{1}}, {int64_t{2}}, {int64_t{3}}}, {1, 2, 3}));
      b->key_hash = {1, 100, 2};  // Key groups 1, 100, 2: subtasks 0, 1, 0 of 2.
      out.emit(0, std::move(b));
    }
    return {poll_result::state::no_data, 3'600'000'000, min_watermark};
  }

 private:
  std::shared_ptr<int> polls_;
};

class once_plan : public operator_plan {
 public:
  explicit once_plan(std::shared_ptr<int> polls) : polls_(std::move(polls)) {
    outputs.push_back({row_schema(), {0}});
  }
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<once_source>(polls_);
  }

 private:
  std::shared_ptr<int> polls_;
};

/// Forwards every batch unchanged.
class pass_through : public operator_base {
 public:
  void process(size_t, const record_batch& b, output& out) override {
    out.emit(0, std::make_shared<record_batch>(b));
  }
};

template <class Op>
class test_plan : public operator_plan {
 public:
  test_plan() { outputs.push_back({row_schema(), {}}); }
  std::unique_ptr<operator_base> instantiate() const override { return std::make_unique<Op>(); }
};

class test_factory : public operator_factory {
 public:
  explicit test_factory(operator_traits t) : traits_(std::move(t)) {}
  const operator_traits& traits() const override { return traits_; }
  result<plan_ptr> plan(const plan_context&) const override {
    return make_error(errc::internal, "not used");
  }

 private:
  operator_traits traits_;
};

/// Stands in for a stalled consumer: counts what arrives and grants nothing by itself.
struct probe_state {
  uint64_t batches = 0;
  uint64_t rows = 0;
  uint64_t watermarks = 0;
};

caf::behavior probe(caf::stateful_actor<probe_state>* self, std::shared_ptr<probe_state> seen) {
  return {
      [=](batch_atom, uint32_t, const batch_ptr& b) {
        ++seen->batches;
        seen->rows += b->num_rows();
      },
      [=](watermark_atom, uint32_t, int64_t) { ++seen->watermarks; },
      [=](idle_atom, uint32_t) {},
      [=](eos_atom, uint32_t) {},
  };
}

caf::behavior reports(caf::event_based_actor*) {
  return {
      [](done_atom, const subtask_stats&) {},
      [](failed_atom, size_t, uint32_t, const std::string& message) {
        ADD_FAILURE() << "subtask failed: " << message;
      },
  };
}

class CreditProtocol : public ::testing::Test {
 protected:
  CreditProtocol()
      : sys_(config()), sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())) {
    plan_.channel_credits = 3;
    plan_.linger_us = 5000;
    source_factory_ = std::make_unique<test_factory>(
        operator_traits{"endless", {}, false, {"out"}, false, false, ""});
    pass_factory_ = std::make_unique<test_factory>(
        operator_traits{"pass", {"in"}, false, {"out"}, false, false, ""});
    plan_.nodes.push_back(
        {"source", source_factory_.get(), std::make_shared<test_plan<endless_source>>(), 1});
    plan_.nodes.push_back(
        {"middle", pass_factory_.get(), std::make_shared<test_plan<pass_through>>(), 1});
    state_dir_ = std::filesystem::temp_directory_path() / "vigil-credit-test";
    // Nothing runs actors on the testing scheduler after a test: do not wait for them.
    sys_.await_actors_before_shutdown(false);
  }

  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  caf::actor spawn_subtask(size_t node) {
    subtask_spec spec;
    spec.node = node;
    spec.subtask = 0;
    spec.plan = std::shared_ptr<const job_plan>(&plan_, [](const job_plan*) {});
    spec.state_dir = (state_dir_ / plan_.nodes[node].id).string();
    spec.executor = reporter_;
    return sys_.spawn<subtask_actor>(std::move(spec));
  }

  void wire_actor(const caf::actor& a, subtask_wiring w) {
    caf::anon_send(a, wire_atom::value, std::move(w));
    sched_.run();
  }

  job_plan plan_;
  std::unique_ptr<test_factory> source_factory_, pass_factory_;
  std::filesystem::path state_dir_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  caf::actor reporter_ = sys_.spawn(reports);
};

TEST_F(CreditProtocol, SourceSendsOnlyWhatTheReceiverGranted) {
  auto seen = std::make_shared<probe_state>();
  auto sink = sys_.spawn(probe, seen);
  auto source = spawn_subtask(0);
  subtask_wiring w;
  w.edges.push_back({0, partitioning::forward, {0}});
  w.channel_targets.push_back(sink);
  w.channel_target_input.push_back(0);
  wire_actor(source, w);

  caf::anon_send(source, start_atom::value);
  sched_.run();  // Runs until nothing is left: the source must have stopped by itself.
  EXPECT_EQ(seen->batches, 0u) << "sent without credit";

  caf::anon_send(source, credit_atom::value, uint32_t{0}, uint32_t{3});
  sched_.run();
  EXPECT_EQ(seen->batches, 3u);
  EXPECT_EQ(seen->rows, 30u);
  EXPECT_FALSE(sched_.has_job()) << "the source keeps polling without credit";

  caf::anon_send(source, credit_atom::value, uint32_t{0}, uint32_t{2});
  sched_.run();
  EXPECT_EQ(seen->batches, 5u);
  caf::anon_send_exit(source, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(CreditProtocol, BlockedStageWithholdsCreditFromItsInput) {
  auto seen = std::make_shared<probe_state>();
  auto sink = sys_.spawn(probe, seen);
  auto source = spawn_subtask(0);
  auto middle = spawn_subtask(1);

  subtask_wiring ws;
  ws.edges.push_back({0, partitioning::forward, {0}});
  ws.channel_targets.push_back(middle);
  ws.channel_target_input.push_back(0);
  subtask_wiring wm;
  wm.edges.push_back({0, partitioning::forward, {0}});
  wm.channel_targets.push_back(sink);
  wm.channel_target_input.push_back(0);
  wm.inputs.push_back({0, source, 0});
  wire_actor(source, ws);
  wire_actor(middle, wm);

  caf::anon_send(source, start_atom::value);
  caf::anon_send(middle, start_atom::value);  // Grants the source 3 credits.
  sched_.run();
  // The sink granted nothing: the middle stage holds its 3 batches (one per credit it gave)
  // and owes the source credit it does not pay while blocked, so the source stops.
  EXPECT_EQ(seen->batches, 0u);
  EXPECT_FALSE(sched_.has_job());

  // The sink grants 2: the middle forwards 2 of its queued batches, is still blocked (1
  // queued), and keeps withholding credit from the source.
  caf::anon_send(middle, credit_atom::value, uint32_t{0}, uint32_t{2});
  sched_.run();
  EXPECT_EQ(seen->batches, 2u);

  // The sink grants 10: the middle drains, pays its debt to the source, and the flow
  // resumes until the new credit is used up; then everything stops again.
  caf::anon_send(middle, credit_atom::value, uint32_t{0}, uint32_t{10});
  sched_.run();
  EXPECT_EQ(seen->batches, 12u);
  EXPECT_FALSE(sched_.has_job());
  caf::anon_send_exit(source, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(middle, caf::exit_reason::user_shutdown);
  sched_.run();
}

/// The value of the series of `name` for subtask 0 of `op` in job "metrics-credit"; -1 if absent.
double series_value(const std::string& name, const std::string& op) {
  std::string text = metrics::serialize();
  std::string prefix = name + "{job=\"metrics-credit\",operator=\"" + op + "\",subtask=\"0\"} ";
  auto at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + prefix.size()));
}

// A partial hash batch leaves on the linger tick; with nothing pending the subtask ticks only
// every 100 ms; a wake-up polls a source at once and replaces its pending delayed poll.
TEST_F(CreditProtocol, TicksComeWhenSomethingWaitsAndWakeUpsReplaceDelayedPolls) {
  auto polls = std::make_shared<int>(0);
  plan_.nodes[0].plan = std::make_shared<once_plan>(polls);
  auto seen0 = std::make_shared<probe_state>();
  auto seen1 = std::make_shared<probe_state>();
  auto probe0 = sys_.spawn(probe, seen0);
  auto probe1 = sys_.spawn(probe, seen1);
  auto source = spawn_subtask(0);
  subtask_wiring ws;
  ws.edges.push_back({0, partitioning::hash, {0, 1}});
  ws.channel_targets = {probe0, probe1};
  ws.channel_target_input = {0, 0};
  wire_actor(source, ws);
  caf::anon_send(source, start_atom::value);
  caf::anon_send(source, credit_atom::value, uint32_t{0}, uint32_t{3});
  caf::anon_send(source, credit_atom::value, uint32_t{1}, uint32_t{3});
  sched_.run();
  ASSERT_EQ(*polls, 1);
  auto& clock = sched_.clock();
  auto rows = [&] { return seen0->rows + seen1->rows; };
  EXPECT_EQ(rows(), 0u) << "three rows are a partial batch";

  // Everything pending is due within the linger interval (the tick) or in an hour (the poll).
  const auto linger = std::chrono::microseconds(plan_.linger_us);
  for (const auto& [due, event] : clock.schedule()) {
    EXPECT_TRUE(due <= clock.current_time + linger ||
                due >= clock.current_time + std::chrono::minutes(59));
  }
  clock.advance_time(linger);
  sched_.run();
  EXPECT_EQ(rows(), 3u) << "the linger tick flushes the partial batch";

  // Nothing waits now: the next tick is the slow one.
  ASSERT_FALSE(clock.schedule().empty());
  EXPECT_EQ(clock.schedule().begin()->first, clock.current_time + std::chrono::milliseconds(100));
  EXPECT_EQ(clock.advance_time(std::chrono::milliseconds(99)), 0u);
  EXPECT_EQ(clock.advance_time(std::chrono::milliseconds(1)), 1u);
  sched_.run();

  // A wake-up polls at once; the delayed poll it replaced arrives stale.
  caf::anon_send(source, wake_atom::value);
  sched_.run();
  EXPECT_EQ(*polls, 2);
  clock.advance_time(std::chrono::hours(2));
  sched_.run();
  EXPECT_EQ(*polls, 3) << "one poll loop, not two";
  EXPECT_EQ(rows(), 3u);

  caf::anon_send_exit(source, caf::exit_reason::user_shutdown);
  sched_.run();
}

// Records and bytes are counted per batch, records out on the tick, and the subtask's
// series disappear when it ends.
TEST_F(CreditProtocol, SubtaskMetricsCountRecordsAndDisappearWithTheSubtask) {
  plan_.name = "metrics-credit";
  auto seen = std::make_shared<probe_state>();
  auto sink = sys_.spawn(probe, seen);
  auto source = spawn_subtask(0);
  auto middle = spawn_subtask(1);
  subtask_wiring ws;
  ws.edges.push_back({0, partitioning::forward, {0}});
  ws.channel_targets.push_back(middle);
  ws.channel_target_input.push_back(0);
  subtask_wiring wm;
  wm.edges.push_back({0, partitioning::forward, {0}});
  wm.channel_targets.push_back(sink);
  wm.channel_target_input.push_back(0);
  wm.inputs.push_back({0, source, 0});
  wire_actor(source, ws);
  wire_actor(middle, wm);
  caf::anon_send(source, start_atom::value);
  caf::anon_send(middle, start_atom::value);
  caf::anon_send(middle, credit_atom::value, uint32_t{0}, uint32_t{10});
  sched_.run();
  ASSERT_EQ(seen->batches, 10u);
  // Counters are published on the tick (the histogram at once).
  EXPECT_EQ(series_value("vigil_operator_records_in_total", "middle"), 0);
  sched_.trigger_timeouts();
  sched_.run();

  double in = series_value("vigil_operator_records_in_total", "middle");
  EXPECT_GE(in, 100);
  EXPECT_EQ(static_cast<int64_t>(in) % 10, 0);
  // 10-row batches of one int64 column: per row 1 validity byte, 8 value and 8 event-time bytes.
  EXPECT_EQ(series_value("vigil_operator_bytes_in_total", "middle"), in * 17);
  EXPECT_EQ(series_value("vigil_operator_batch_duration_seconds_count", "middle"), in / 10);
  EXPECT_GT(series_value("vigil_operator_batch_duration_seconds_count", "source"), 0);
  EXPECT_EQ(series_value("vigil_state_size_bytes", "middle"), -1) << "stateless";

  EXPECT_EQ(series_value("vigil_operator_records_out_total", "middle"), in);
  EXPECT_EQ(series_value("vigil_operator_bytes_out_total", "middle"), in * 17);
  EXPECT_GE(series_value("vigil_operator_watermark_seconds", "middle"), 0);
  EXPECT_GE(series_value("vigil_operator_idle_seconds_total", "middle"), 0);
  EXPECT_GE(series_value("vigil_operator_busy_seconds_total", "middle"), 0);

  caf::anon_send_exit(source, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(middle, caf::exit_reason::user_shutdown);
  sched_.run();
  EXPECT_EQ(metrics::serialize().find("job=\"metrics-credit\""), std::string::npos)
      << metrics::serialize();
}

}  // namespace
}  // namespace vigil
