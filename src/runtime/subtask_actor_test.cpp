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

// Records and bytes are counted per batch, records out on the linger tick, and the subtask's
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
  // Counters are published on the linger tick (the histogram at once).
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
