#include "coordinator/cluster_coordinator.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "lake/delta_log.hpp"
#include "runtime/messages.hpp"
#include "runtime/wire.hpp"
#include "worker/worker.hpp"

namespace vigil {
namespace {

using namespace std::chrono_literals;

v1::JobGraph graph(const std::string& yaml) {
  auto g = parse_graph_yaml(yaml);
  EXPECT_TRUE(g.ok()) << g.err().message;
  return g.ok() ? *g : v1::JobGraph{};
}

/// Generator -> key_by (3) -> tumbling count (3) -> null sink (3, forward).
std::string keyed_counts(const std::string& count, const std::string& rate = "0") {
  return R"(
name: keyed counts
nodes:
  - {id: gen, operator: generator, config: {count: )" +
         count + ", keys: 50, interval: 10ms, rate: " + rate + R"(}}
  - {id: keyed, operator: key_by, parallelism: 3, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 3
    config: {size: 1s, aggregates: [{name: n, fn: count}]}
  - {id: sink, operator: "null", parallelism: 3}
edges:
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: win}
  - {from: win, to: sink}
)";
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("vigil-coord-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

class ClusterCoordinatorTest : public ::testing::Test {
 protected:
  ClusterCoordinatorTest() : registry_(make_builtin_registry()) {}

  void start_cluster(size_t workers, uint32_t slots, std::filesystem::path data_dir = {}) {
    coordinator_options co;
    co.data_dir = std::move(data_dir);
    co.checkpoint_dir = checkpoint_dir_;
    co.heartbeat_timeout = 500ms;
    auto c = cluster_coordinator::start(co, registry_);
    ASSERT_TRUE(c.ok()) << c.err().message;
    core_ = std::move(*c);
    for (size_t i = 0; i < workers; ++i) add_worker("w" + std::to_string(i + 1), slots);
    ASSERT_EQ(core_->wait_for_workers(workers, 10s), workers);
  }

  void add_worker(const std::string& id, uint32_t slots) {
    worker_options wo;
    wo.id = id;
    wo.coordinator = {"127.0.0.1", core_->cluster_port()};
    wo.slots = slots;
    wo.state_dir = state_dir_ / id;
    wo.threads = 2;
    wo.heartbeat_interval = 100ms;
    auto w = worker_node::start(wo, registry_);
    ASSERT_TRUE(w.ok()) << w.err().message;
    workers_.push_back(std::move(*w));
  }

  job_info finish(const std::string& id) {
    auto job = core_->wait(id, 30s);
    EXPECT_TRUE(job.ok());
    return job.ok() ? *job : job_info{};
  }

  /// Waits until the job reaches `state` (a cluster reacts asynchronously).
  job_info wait_for_state(const std::string& id, job_state state) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto job = core_->wait(id, 20ms);
      if (!job.ok() || job->state == state || std::chrono::steady_clock::now() > deadline) {
        return job.ok() ? *job : job_info{};
      }
    }
  }

  void expect_all_slots_free() {
    for (const auto& w : core_->workers()) EXPECT_EQ(w.free_slots, w.slots) << w.id;
  }

  operator_registry registry_;
  std::filesystem::path checkpoint_dir_;  ///< The coordinator's; empty: none.
  std::filesystem::path state_dir_ = temp_dir("state");
  std::unique_ptr<cluster_coordinator> core_;
  std::vector<std::unique_ptr<worker_node>> workers_;
};

TEST_F(ClusterCoordinatorTest, WorkersRegisterTheirSlots) {
  start_cluster(2, 3);
  auto ws = core_->workers();
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[0].id, "w1");
  EXPECT_EQ(ws[1].id, "w2");
  for (const auto& w : ws) {
    EXPECT_TRUE(w.alive);
    EXPECT_EQ(w.slots, 3u);
    EXPECT_EQ(w.free_slots, 3u);
    EXPECT_EQ(w.address.rfind("127.0.0.1:", 0), 0u) << w.address;
  }
}

TEST_F(ClusterCoordinatorTest, RunsAJobAcrossWorkersWithTheSingleProcessCounts) {
  start_cluster(3, 4);
  auto g = graph(keyed_counts("30000"));
  auto job = core_->submit(g);
  ASSERT_TRUE(job.ok()) << job.err().message;
  EXPECT_EQ(job->state, job_state::pending);
  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::finished) << done.error;

  // The keyed window's subtasks are spread over the three workers; each forward sink
  // subtask runs where its window subtask runs.
  std::map<std::pair<std::string, uint32_t>, std::string> where;
  for (const auto& s : done.subtasks) {
    EXPECT_EQ(s.state, "finished") << s.node_id << " " << s.subtask;
    where[{s.node_id, s.subtask}] = s.worker_id;
  }
  std::set<std::string> win_workers;
  for (uint32_t s = 0; s < 3; ++s) {
    const std::string& win = where[{"win", s}];
    win_workers.insert(win);
    const std::string& sink = where[{"sink", s}];
    EXPECT_EQ(sink, win) << "sink " << s;
  }
  EXPECT_EQ(win_workers.size(), 3u);
  expect_all_slots_free();

  auto plan = plan_job(g, registry_);
  ASSERT_TRUE(plan.ok());
  run_options local;
  local.state_dir = (temp_dir("local")).string();
  auto expected = run_local(*plan, local);
  ASSERT_TRUE(expected.ok()) << expected.err().message;
  auto got = core_->summary(job->id);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->nodes.size(), expected->nodes.size());
  for (size_t n = 0; n < got->nodes.size(); ++n) {
    EXPECT_EQ(got->nodes[n].records_in, expected->nodes[n].records_in) << got->nodes[n].id;
    EXPECT_EQ(got->nodes[n].rows_out, expected->nodes[n].rows_out) << got->nodes[n].id;
  }
  EXPECT_EQ(got->nodes[2].rows_out[0].second, expected->nodes[2].rows_out[0].second);
  EXPECT_GT(got->nodes[2].rows_out[0].second, 0u);
}

TEST_F(ClusterCoordinatorTest, RefusesAJobNeedingMoreSlotsThanAreFree) {
  start_cluster(2, 2);
  auto job = core_->submit(graph(keyed_counts("10")));  // 10 subtasks, 4 slots.
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.err().code, errc::resource_exhausted);
  EXPECT_EQ(job.err().message,
            "job 'keyed counts' needs 10 task slots, the cluster has 4 free (2 live workers)");
  EXPECT_TRUE(core_->list().empty());
  expect_all_slots_free();
}

TEST_F(ClusterCoordinatorTest, RefusesAnInvalidGraphNamingTheNode) {
  start_cluster(1, 4);
  auto job = core_->submit(graph(R"(
name: bad
nodes:
  - {id: gen, operator: generator, config: {count: 10, colour: red}}
  - {id: sink, operator: "null"}
edges:
  - {from: gen, to: sink}
)"));
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.err().code, errc::invalid_graph);
  EXPECT_NE(job.err().message.find("node 'gen'"), std::string::npos) << job.err().message;
  EXPECT_NE(job.err().message.find("colour"), std::string::npos) << job.err().message;
}

TEST_F(ClusterCoordinatorTest, CancelStopsTheSubtasksAndFreesTheSlots) {
  start_cluster(2, 5);
  auto job = core_->submit(graph(keyed_counts("0", "2000")));  // Unbounded.
  ASSERT_TRUE(job.ok()) << job.err().message;
  EXPECT_EQ(wait_for_state(job->id, job_state::running).state, job_state::running);
  uint32_t free = 0;
  for (const auto& w : core_->workers()) free += w.free_slots;
  EXPECT_EQ(free, 0u);  // 10 subtasks in 10 slots.

  auto c = core_->cancel(job->id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state, job_state::cancelling);
  auto done = finish(job->id);
  EXPECT_EQ(done.state, job_state::cancelled);
  for (const auto& s : done.subtasks) EXPECT_EQ(s.state, "cancelled");
  expect_all_slots_free();

  // Cancelling an ended job changes nothing; an unknown one is not found.
  auto again = core_->cancel(job->id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, job_state::cancelled);
  auto unknown = core_->cancel("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

TEST_F(ClusterCoordinatorTest, EndInputDrainsAnUnboundedJobWhichThenFinishes) {
  start_cluster(2, 6);
  const auto dir = temp_dir("end-input");
  std::filesystem::create_directories(dir);
  const std::string yaml = R"(
name: drained counts
nodes:
  - {id: gen, operator: generator, config: {count: 0, keys: 50, interval: 10ms, rate: 2000}}
  - {id: raw, operator: jsonl_file, config: {path: ")" +
                           (dir / "raw.jsonl").string() + R"("}}
  - {id: keyed, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 2
    config: {size: 1s, aggregates: [{name: n, fn: count}]}
  - {id: counts, operator: jsonl_file, config: {path: ")" +
                           (dir / "counts.jsonl").string() + R"("}}
edges:
  - {from: gen, to: raw}
  - {from: gen, to: keyed, partitioning: rebalance}
  - {from: keyed, to: win}
  - {from: win, to: counts, partitioning: rebalance}
)";
  auto job = core_->submit(graph(yaml));  // Unbounded.
  ASSERT_TRUE(job.ok()) << job.err().message;
  ASSERT_EQ(wait_for_state(job->id, job_state::running).state, job_state::running);
  auto unknown = core_->end_input("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, errc::not_found);

  ASSERT_TRUE(core_->end_input(job->id).ok());
  auto done = finish(job->id);
  EXPECT_EQ(done.state, job_state::finished) << done.error;
  expect_all_slots_free();
  // Every generated record is in exactly one window: the windows open at the end were flushed.
  size_t generated = 0;
  std::ifstream raw(dir / "raw.jsonl");
  for (std::string line; std::getline(raw, line);) ++generated;
  int64_t counted = 0;
  std::ifstream counts(dir / "counts.jsonl");
  for (std::string line; std::getline(counts, line);) {
    counted += nlohmann::json::parse(line)["n"].get<int64_t>();
  }
  EXPECT_GT(generated, 0u);
  EXPECT_EQ(counted, static_cast<int64_t>(generated));
  // An ended job cannot be drained again.
  auto again = core_->end_input(job->id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::failed_precondition);
  std::filesystem::remove_all(dir);
}

TEST_F(ClusterCoordinatorTest, ActiveJobNamesAreUnique) {
  start_cluster(2, 10);
  auto first = core_->submit(graph(keyed_counts("0", "2000")));  // Unbounded.
  ASSERT_TRUE(first.ok()) << first.err().message;
  auto second = core_->submit(graph(keyed_counts("0", "2000")));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::failed_precondition);
  EXPECT_NE(
      second.err().message.find("a job named 'keyed counts' is already active (" + first->id + ")"),
      std::string::npos)
      << second.err().message;
  ASSERT_TRUE(core_->cancel(first->id).ok());
  EXPECT_EQ(finish(first->id).state, job_state::cancelled);
  auto third = core_->submit(graph(keyed_counts("0", "2000")));  // The name is free again.
  ASSERT_TRUE(third.ok()) << third.err().message;
  ASSERT_TRUE(core_->cancel(third->id).ok());
  EXPECT_EQ(finish(third->id).state, job_state::cancelled);
}

TEST_F(ClusterCoordinatorTest, AJobFailsWhenAWorkerHostingItGoesAway) {
  start_cluster(2, 5);
  auto job = core_->submit(graph(keyed_counts("0", "2000")));
  ASSERT_TRUE(job.ok()) << job.err().message;
  ASSERT_EQ(wait_for_state(job->id, job_state::running).state, job_state::running);
  workers_[1]->stop();
  auto failed = wait_for_state(job->id, job_state::failed);
  ASSERT_EQ(failed.state, job_state::failed);
  EXPECT_NE(failed.error.find("worker 'w2'"), std::string::npos) << failed.error;
  for (const auto& s : failed.subtasks) {
    if (s.worker_id == "w2") {
      EXPECT_EQ(s.state, "lost") << s.node_id;
    }
  }
  auto ws = core_->workers();
  EXPECT_FALSE(ws[1].alive);
  EXPECT_TRUE(ws[0].alive);
  // The surviving worker stopped its part of the job and got its slots back.
  auto ended = finish(job->id);
  EXPECT_EQ(ended.state, job_state::failed);
  EXPECT_EQ(core_->workers()[0].free_slots, 5u);
}

/// A stand-in worker in its own actor system, connected to the coordinator's cluster port: it
/// speaks the worker protocol by hand.
class stand_in_worker {
 public:
  explicit stand_in_worker(uint16_t cluster_port) : sys_(configured(cfg_)), self_(sys_) {
    auto c = sys_.middleman().remote_actor("127.0.0.1", cluster_port);
    if (c) {
      coordinator_ = *c;
    } else {
      error_ = sys_.render(c.error());
    }
  }

  bool connected() const { return coordinator_ != nullptr; }
  const std::string& error() const { return error_; }

  /// Registers as worker `id` (2 slots, heartbeats every 100 ms); fails the test if refused.
  void register_as(const std::string& id) {
    self_
        ->request(coordinator_, 5s, register_atom::value, id, std::string("127.0.0.1:1"),
                  uint32_t{2}, uint32_t{100})
        .receive([](caf::atom_value) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
  }

  template <class... Ts>
  void send(Ts&&... xs) {
    self_->send(coordinator_, std::forward<Ts>(xs)...);
  }

 private:
  static caf::actor_system_config& configured(caf::actor_system_config& cfg) {
    cfg.load<caf::io::middleman>();
    add_message_types(cfg);
    return cfg;
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scoped_actor self_;
  caf::actor coordinator_;
  std::string error_;
};

TEST_F(ClusterCoordinatorTest, AWorkerThatStopsHeartbeatingIsDeclaredLost) {
  start_cluster(0, 1);
  // A stand-in worker: registers, then never sends a heartbeat.
  stand_in_worker silent(core_->cluster_port());
  ASSERT_TRUE(silent.connected()) << silent.error();
  silent.register_as("silent");
  ASSERT_EQ(core_->workers().size(), 1u);
  EXPECT_TRUE(core_->workers()[0].alive);
  auto started = std::chrono::steady_clock::now();
  // The heartbeat timeout is 500 ms: wait_for_workers(2) cannot succeed, it just waits for
  // changes; the worker must be declared lost well within a second.
  while (core_->workers()[0].alive && std::chrono::steady_clock::now() - started < 5s) {
    core_->wait_for_workers(2, 20ms);
  }
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_FALSE(core_->workers()[0].alive);
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 2s);
}

/// Holds the subtasks of `blocking_source` in open() until released: each occupies a scheduler
/// thread, as a restore of large state does.
struct gate {
  std::mutex mutex;
  std::condition_variable changed;
  int waiting = 0;
  bool released = false;
};

class blocking_source final : public operator_base {
 public:
  explicit blocking_source(std::shared_ptr<gate> g) : gate_(std::move(g)) {}
  status open(operator_context& ctx) override {
    (void)ctx;
    std::unique_lock lock(gate_->mutex);
    ++gate_->waiting;
    gate_->changed.notify_all();
    gate_->changed.wait(lock, [&] { return gate_->released; });
    return {};
  }
  poll_result poll(output& out) override {
    (void)out;
    return {poll_result::state::finished, 0, max_watermark};
  }

 private:
  std::shared_ptr<gate> gate_;
};

class blocking_source_factory final : public operator_factory {
 public:
  explicit blocking_source_factory(std::shared_ptr<gate> g) : gate_(std::move(g)) {
    traits_.name = "blocking_source";
    traits_.output_ports = {"out"};
    traits_.summary = "a source blocking in open() until its test releases it";
  }
  const operator_traits& traits() const override { return traits_; }
  result<plan_ptr> plan(const plan_context& ctx) const override {
    (void)ctx;
    struct plan final : operator_plan {
      std::shared_ptr<gate> g;
      std::unique_ptr<operator_base> instantiate() const override {
        return std::make_unique<blocking_source>(g);
      }
    };
    auto p = std::make_shared<plan>();
    p->g = gate_;
    p->outputs.push_back({make_schema({{"n", type_id::int64, false}}), {}});
    return plan_ptr(std::move(p));
  }

 private:
  std::shared_ptr<gate> gate_;
  operator_traits traits_;
};

TEST_F(ClusterCoordinatorTest, AWorkerWhoseThreadsAreAllBusyStillHeartbeats) {
  auto g = std::make_shared<gate>();
  // Released however the test ends: the blocked subtasks must let the cluster stop.
  struct release_at_exit {
    gate& g;
    ~release_at_exit() {
      std::lock_guard lock(g.mutex);
      g.released = true;
      g.changed.notify_all();
    }
  } release{*g};
  registry_.add(std::make_unique<blocking_source_factory>(g));
  start_cluster(1, 4);  // The worker runs 2 scheduler threads; the heartbeat timeout is 500 ms.
  auto job = core_->submit(graph(R"(
name: busy
nodes:
  - {id: src, operator: blocking_source, parallelism: 2}
  - {id: sink, operator: "null", parallelism: 2}
edges:
  - {from: src, to: sink}
)"));
  ASSERT_TRUE(job.ok()) << job.err().message;
  {
    std::unique_lock lock(g->mutex);
    ASSERT_TRUE(g->changed.wait_for(lock, 10s, [&] { return g->waiting == 2; }));
  }
  // Both threads are held. Three heartbeat timeouts later the worker is still alive.
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    core_->wait_for_workers(2, 20ms);  // Waits for a change; none is expected.
    ASSERT_TRUE(core_->workers()[0].alive) << "a busy worker was declared lost";
  }
  {
    std::lock_guard lock(g->mutex);
    g->released = true;
    g->changed.notify_all();
  }
  EXPECT_EQ(finish(job->id).state, job_state::finished);
  EXPECT_TRUE(core_->workers()[0].alive);
}

TEST_F(ClusterCoordinatorTest, AHeartbeatAfterLeaveDoesNotReviveTheWorker) {
  start_cluster(0, 1);
  // A stand-in worker: registers, leaves, then sends a heartbeat that came late.
  stand_in_worker w(core_->cluster_port());
  ASSERT_TRUE(w.connected()) << w.error();
  auto alive = [&](const std::string& id) {
    for (const auto& w : core_->workers()) {
      if (w.id == id) return w.alive;
    }
    return false;
  };
  w.register_as("stand-in");
  ASSERT_TRUE(alive("stand-in"));
  w.send(leave_atom::value, std::string("stand-in"));
  w.send(heartbeat_atom::value, std::string("stand-in"));
  // One sender's messages are handled in order: once another registration from it is answered,
  // the leave and the heartbeat have been handled.
  w.register_as("other");
  EXPECT_FALSE(alive("stand-in")) << "a heartbeat after leave revived the worker";
  w.register_as("stand-in");  // Registering again does.
  EXPECT_TRUE(alive("stand-in"));
}

TEST_F(ClusterCoordinatorTest, RefusesASecondLiveWorkerWithTheSameId) {
  start_cluster(1, 2);
  worker_options wo;
  wo.id = "w1";
  wo.coordinator = {"127.0.0.1", core_->cluster_port()};
  wo.state_dir = state_dir_ / "dup";
  wo.heartbeat_interval = 100ms;
  auto w = worker_node::start(wo, registry_);
  ASSERT_TRUE(w.ok());
  auto st = (*w)->wait();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("a live worker with id 'w1' is already registered"),
            std::string::npos)
      << st.err().message;
}

TEST_F(ClusterCoordinatorTest, RefusesAWorkerHeartbeatingTooRarelyForTheTimeout) {
  start_cluster(0, 1);
  worker_options wo;
  wo.id = "slow";
  wo.coordinator = {"127.0.0.1", core_->cluster_port()};
  wo.state_dir = state_dir_ / "slow";
  wo.heartbeat_interval = 300ms;  // The timeout is 500 ms: at most 250 ms allowed.
  auto w = worker_node::start(wo, registry_);
  ASSERT_TRUE(w.ok());
  auto st = (*w)->wait();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("heartbeats every 300 ms"), std::string::npos)
      << st.err().message;
}

TEST_F(ClusterCoordinatorTest, ARestartedCoordinatorKnowsEveryJob) {
  auto data = temp_dir("store");
  start_cluster(1, 10, data);
  auto finished = core_->submit(graph(keyed_counts("1000")));
  ASSERT_TRUE(finished.ok());
  ASSERT_EQ(finish(finished->id).state, job_state::finished);
  auto running = core_->submit(graph(keyed_counts("0", "1000")));
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(wait_for_state(running->id, job_state::running).state, job_state::running);
  core_.reset();  // While the job runs: the workers see the coordinator go away.
  workers_.clear();

  start_cluster(1, 10, data);
  auto jobs = core_->list();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, finished->id);
  EXPECT_EQ(jobs[0].state, job_state::finished);
  EXPECT_EQ(jobs[1].id, running->id);
  EXPECT_EQ(jobs[1].state, job_state::failed);
  EXPECT_NE(jobs[1].error.find("coordinator restarted"), std::string::npos) << jobs[1].error;
  expect_all_slots_free();
}

/// Generator (2) -> lake_sink (2) with checkpoints every 50 ms: `count` records at `rate`.
std::string checkpointed_to_lake(const std::filesystem::path& table, int count, int rate,
                                 const std::string& restart = "{backoff_ms: 50}") {
  return "name: to lake\n"
         "checkpoints: {interval_ms: 50}\n"
         "restart: " +
         restart +
         "\n"
         "nodes:\n"
         "  - {id: gen, operator: generator, parallelism: 2, config: {count: " +
         std::to_string(count) + ", keys: 10, rate: " + std::to_string(rate) +
         "}}\n"
         "  - {id: lake, operator: lake_sink, parallelism: 2, config: {path: \"" +
         table.string() +
         "\"}}\n"
         "edges:\n"
         "  - {from: gen, to: lake}\n";
}

/// Rows in the table's current snapshot, from the numRecords statistics of its live files.
int64_t committed_rows(const std::filesystem::path& table) {
  auto snapshot = lake::read_delta_snapshot(table.string());
  EXPECT_TRUE(snapshot.ok()) << snapshot.err().message;
  if (!snapshot.ok()) return -1;
  int64_t rows = 0;
  for (const auto& [path, add] : snapshot->files) {
    rows += nlohmann::json::parse(add.stats)["numRecords"].get<int64_t>();
  }
  return rows;
}

TEST_F(ClusterCoordinatorTest, RefusesAGraphWithCheckpointsWithoutCheckpointStorage) {
  start_cluster(1, 4);
  auto job = core_->submit(graph(checkpointed_to_lake(temp_dir("refused"), 10, 0)));
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.err().code, errc::invalid_argument);
  EXPECT_NE(job.err().message.find("--checkpoint-dir"), std::string::npos) << job.err().message;
}

TEST_F(ClusterCoordinatorTest, AJobWithCheckpointsRestartsWhenAWorkerLeavesAndFinishes) {
  checkpoint_dir_ = temp_dir("checkpoints");
  start_cluster(3, 2);
  auto table = temp_dir("restart-table");
  auto job = core_->submit(graph(checkpointed_to_lake(table, 20000, 10000)));
  ASSERT_TRUE(job.ok()) << job.err().message;
  // Once a checkpoint completed, a worker hosting part of the job goes away.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  job_info now;
  do {
    now = *core_->wait(job->id, 20ms);
  } while (now.last_checkpoint == 0 && std::chrono::steady_clock::now() < deadline);
  ASSERT_GT(now.last_checkpoint, 0) << "no checkpoint completed";
  size_t victim = now.subtasks[0].worker_id == "w1" ? 0 : now.subtasks[0].worker_id == "w2" ? 1 : 2;
  workers_[victim]->stop();

  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::finished) << done.error;
  EXPECT_EQ(done.restarts, 1u);
  EXPECT_NE(done.last_failure.find("worker 'w" + std::to_string(victim + 1) + "'"),
            std::string::npos)
      << done.last_failure;
  EXPECT_GT(done.checkpoints_completed, 0u);
  for (const auto& s : done.subtasks) {
    EXPECT_NE(s.worker_id, "w" + std::to_string(victim + 1)) << s.node_id << " " << s.subtask;
  }
  EXPECT_EQ(committed_rows(table), 20000);
}

// Checkpoint storage that cannot take a checkpoint (here: a file where its directory must go)
// makes those checkpoints fail visibly, in the job's status; the job keeps running on its last
// complete checkpoint and ends with every row once.
TEST_F(ClusterCoordinatorTest, CheckpointsThatCannotBeStoredFailVisiblyAndTheJobGoesOn) {
  checkpoint_dir_ = temp_dir("checkpoints");
  start_cluster(1, 4);
  auto table = temp_dir("blocked-table");
  auto g = graph(checkpointed_to_lake(table, 20000, 10000));
  g.mutable_checkpoints()->set_tolerable_failures(100);
  auto job = core_->submit(g);
  ASSERT_TRUE(job.ok()) << job.err().message;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  job_info now;
  do {
    now = *core_->wait(job->id, 20ms);
  } while (now.last_checkpoint == 0 && std::chrono::steady_clock::now() < deadline);
  ASSERT_GT(now.last_checkpoint, 0);
  auto dir = checkpoint_dir_ / job->id;
  for (int64_t id = now.last_checkpoint + 2; id <= now.last_checkpoint + 4; ++id) {
    std::ofstream(dir / ("chk-" + std::to_string(id))) << "in the way";
  }
  do {
    now = *core_->wait(job->id, 20ms);
  } while (now.checkpoints_failed < 3 && std::chrono::steady_clock::now() < deadline);
  EXPECT_GE(now.checkpoints_failed, 3u);
  EXPECT_NE(now.last_checkpoint_failure.find("declined"), std::string::npos)
      << now.last_checkpoint_failure;
  EXPECT_NE(now.last_checkpoint_failure.find("chk-"), std::string::npos)
      << now.last_checkpoint_failure;
  EXPECT_FALSE(checkpoint_storage(dir).completed().empty());
  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::finished) << done.error;
  EXPECT_EQ(done.restarts, 0u);
  EXPECT_EQ(committed_rows(table), 20000);
}

TEST_F(ClusterCoordinatorTest, AJobThatKeepsFailingGivesUpAfterItsRestartAttempts) {
  checkpoint_dir_ = temp_dir("checkpoints");
  start_cluster(1, 4);
  // The sink cannot create its table under a regular file: every attempt fails at open.
  auto blocker = temp_dir("blocker");
  std::filesystem::create_directories(blocker.parent_path());
  { std::ofstream(blocker) << "not a directory"; }
  auto job = core_->submit(
      graph(checkpointed_to_lake(blocker / "table", 100, 0, "{max_attempts: 2, backoff_ms: 10}")));
  ASSERT_TRUE(job.ok()) << job.err().message;
  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::failed);
  EXPECT_EQ(done.restarts, 2u);
  EXPECT_NE(done.error.find("gave up after 2 restarts"), std::string::npos) << done.error;
  EXPECT_NE(done.error.find("node 'lake'"), std::string::npos) << done.error;
  expect_all_slots_free();
  std::filesystem::remove(blocker);
}

TEST_F(ClusterCoordinatorTest, ARestartedCoordinatorKeepsTheRestartBudgetUsed) {
  checkpoint_dir_ = temp_dir("checkpoints");
  auto data = temp_dir("budget-store");
  start_cluster(1, 4, data);
  // Every attempt fails at open, so no checkpoint ever completes to reset the budget.
  auto blocker = temp_dir("budget-blocker");
  std::filesystem::create_directories(blocker.parent_path());
  { std::ofstream(blocker) << "not a directory"; }
  auto job = core_->submit(
      graph(checkpointed_to_lake(blocker / "table", 100, 0, "{max_attempts: 3, backoff_ms: 500}")));
  ASSERT_TRUE(job.ok()) << job.err().message;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (core_->wait(job->id, 20ms)->restart_attempts == 0 &&
         std::chrono::steady_clock::now() < deadline) {
  }
  auto before = core_->get(job->id);
  ASSERT_TRUE(before.ok());
  ASSERT_GE(before->restart_attempts, 1u);
  ASSERT_LT(before->restart_attempts, 3u) << "the job gave up before the coordinator restarted";
  core_.reset();
  workers_.clear();

  start_cluster(1, 4, data);
  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::failed);
  EXPECT_EQ(done.restart_attempts, 3u);
  EXPECT_NE(done.error.find("gave up after 3 restarts"), std::string::npos) << done.error;
  // Three failures of the job and the coordinator's restart; a coordinator that forgot the
  // budget would have allowed three more.
  EXPECT_EQ(done.restarts, 4u);
  std::filesystem::remove(blocker);
}

TEST_F(ClusterCoordinatorTest, ARestartedCoordinatorResumesAJobFromItsCheckpoint) {
  checkpoint_dir_ = temp_dir("checkpoints");
  auto data = temp_dir("resume-store");
  start_cluster(2, 2, data);
  auto table = temp_dir("resume-table");
  auto job = core_->submit(graph(checkpointed_to_lake(table, 20000, 10000)));
  ASSERT_TRUE(job.ok()) << job.err().message;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (core_->wait(job->id, 20ms)->last_checkpoint == 0 &&
         std::chrono::steady_clock::now() < deadline) {
  }
  core_.reset();  // The workers see the coordinator go away and stop the job.
  workers_.clear();

  start_cluster(2, 2, data);
  auto resumed = core_->get(job->id);
  ASSERT_TRUE(resumed.ok());
  EXPECT_NE(resumed->state, job_state::failed) << resumed->error;
  auto done = finish(job->id);
  ASSERT_EQ(done.state, job_state::finished) << done.error;
  EXPECT_EQ(done.restarts, 1u);
  EXPECT_NE(done.last_failure.find("coordinator restarted"), std::string::npos)
      << done.last_failure;
  EXPECT_EQ(committed_rows(table), 20000);
}

TEST(EmbeddedCluster, RunsAGraphAndReturnsItsSummary) {
  auto registry = make_builtin_registry();
  embedded_cluster_options opts;
  opts.workers = 2;
  opts.slots_per_worker = 10;
  opts.state_dir = temp_dir("embedded");
  auto cluster = embedded_cluster::start(opts, registry);
  ASSERT_TRUE(cluster.ok()) << cluster.err().message;
  auto summary = (*cluster)->run(graph(keyed_counts("5000")));
  ASSERT_TRUE(summary.ok()) << summary.err().message;
  EXPECT_EQ(summary->nodes[0].rows_out[0].second, 5000u);
  EXPECT_EQ(summary->nodes[1].records_in, 5000u);
}

}  // namespace
}  // namespace vigil
