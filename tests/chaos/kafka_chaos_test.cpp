// Chaos: a checkpointed job reads JSON records from Kafka, drops duplicates, aggregates per key in
// 1 s tumbling windows and writes the windows to one Kafka topic and the number of keys per
// window (a second keyed stage) to another, both with exactly-once kafka_sinks, on three worker
// processes. Workers are killed with SIGKILL at random moments (fixed seed) and the coordinator
// once; the cluster restarts the job from its newest checkpoint each time. At the end the
// committed view of both topics (records whose attempt matches a progress marker; the test
// broker does not isolate transactions) equals the output computed here from the produced
// records: no record missing, none twice.
#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "cluster_fixture.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/kafka/sink/committed_view.hpp"

namespace vigil {
namespace {

using namespace vigil::testing;

const std::string mock_kafka_bin = VIGIL_MOCK_KAFKA_BIN;

/// Distinct input records; about 5 % of them are sent twice. 40,000 were read in about 3 s on
/// a fast machine: too few for four kills (see chaos_graph()). Headroom: about 42,000 messages
/// (3.2 MB) per partition of the mock broker's ~5 MB, and 168,000 messages in the producer's
/// queue of at most 200,000 (queue.buffering.max.messages).
constexpr int64_t records = 160000;
constexpr int duplicate_percent = 5;
constexpr int keys = 40;
constexpr int partitions = 4;
/// Event time of record i: start + i * spacing, so 100 records per second of event time.
constexpr int64_t event_time_start_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
constexpr int64_t spacing_us = 10'000;
constexpr int64_t window_us = 1'000'000;
/// A duplicate follows its original in the same partition after at most this many records, so
/// it is at most max_duplicate_delay * partitions * spacing (800 ms) behind in event time: less
/// than the source's max_out_of_orderness, so dedup, not lateness, drops it.
constexpr int max_duplicate_delay = 20;
/// Bounds the time to produce the input and to read the outputs back.
constexpr int kafka_timeout_ms = 30000;

std::string key_of(int64_t id) {
  return "k" + std::to_string((id * 7919) % keys);
}
int64_t value_of(int64_t id) {
  return (id * 37) % 1000;
}
int64_t event_time_of(int64_t id) {
  return event_time_start_us + id * spacing_us;
}

/// The JSON message of record `id`.
std::string message_of(int64_t id) {
  return "{\"id\":" + std::to_string(id) + ",\"key\":\"" + key_of(id) +
         "\",\"value\":" + std::to_string(value_of(id)) + ",\"ts\":\"" +
         format_timestamp_iso(event_time_of(id)) + "\"}";
}

/// The order of the messages of each partition: record i goes to partition i % partitions; a
/// seeded 5 % are sent again 1..max_duplicate_delay records later in the same partition.
/// `duplicates` receives how many were re-sent.
std::vector<std::vector<int64_t>> input_layout(size_t& duplicates) {
  std::mt19937 rng(4711);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<int> delay(1, max_duplicate_delay);
  std::vector<std::vector<int64_t>> layout(partitions);
  duplicates = 0;
  for (int p = 0; p < partitions; ++p) {
    std::multimap<int64_t, int64_t> pending;  // Position after which to re-send -> id.
    int64_t position = 0;
    for (int64_t id = p; id < records; id += partitions, ++position) {
      layout[p].push_back(id);
      if (percent(rng) < duplicate_percent) {
        pending.emplace(position + delay(rng), id);
        ++duplicates;
      }
      auto [first, last] = pending.equal_range(position);
      for (auto it = first; it != last; ++it) layout[p].push_back(it->second);
      pending.erase(first, last);
    }
    for (const auto& [at, id] : pending) layout[p].push_back(id);
  }
  return layout;
}

/// Counts delivery reports (librdkafka calls it from flush() on the test thread).
class delivery_counter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      ++delivered;
    } else if (error.empty()) {
      error = message.errstr();
    }
  }

  size_t delivered = 0;
  std::string error;
};

/// Produces the input to `topic` with an idempotent producer (each partition in layout order);
/// returns the number of messages delivered.
size_t produce_input(const std::string& bootstrap, const std::string& topic,
                     const std::vector<std::vector<int64_t>>& layout) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  delivery_counter delivery;
  std::string err;
  for (const auto& [key, value] :
       std::map<std::string, std::string>{{"bootstrap.servers", bootstrap},
                                          {"enable.idempotence", "true"},
                                          {"linger.ms", "5"},
                                          {"queue.buffering.max.messages", "200000"}}) {
    EXPECT_EQ(conf->set(key, value, err), RdKafka::Conf::CONF_OK) << key << ": " << err;
  }
  EXPECT_EQ(conf->set("dr_cb", &delivery, err), RdKafka::Conf::CONF_OK) << err;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), err));
  if (!producer) {
    ADD_FAILURE() << "cannot create the producer: " << err;
    return 0;
  }
  std::string payload;
  for (int32_t p = 0; p < partitions; ++p) {
    for (int64_t id : layout[p]) {
      payload = message_of(id);
      std::string key = key_of(id);
      auto code = producer->produce(topic, p, RdKafka::Producer::RK_MSG_COPY, payload.data(),
                                    payload.size(), key.data(), key.size(), 0, nullptr);
      if (code != RdKafka::ERR_NO_ERROR) {
        ADD_FAILURE() << "produce record " << id << ": " << RdKafka::err2str(code);
        return delivery.delivered;
      }
      producer->poll(0);
    }
  }
  EXPECT_EQ(producer->flush(kafka_timeout_ms), RdKafka::ERR_NO_ERROR);
  EXPECT_TRUE(delivery.error.empty()) << delivery.error;
  return delivery.delivered;
}

/// A row of topic `out`: key, window start (µs), record count, value sum.
using window_row = std::tuple<std::string, int64_t, int64_t, int64_t>;
/// A row of topic `out2`: window start (µs), number of keys, record count.
using keys_row = std::tuple<int64_t, int64_t, int64_t>;

/// What the job must write: every record once (dedup), counted and summed per key and window,
/// then per window the number of keys and their records.
void expected_output(std::map<window_row, int>& windows, std::map<keys_row, int>& per_window) {
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> agg;
  for (int64_t id = 0; id < records; ++id) {
    int64_t t = event_time_of(id);
    auto& [n, sum] = agg[{key_of(id), t - t % window_us}];
    ++n;
    sum += value_of(id);
  }
  std::map<int64_t, std::pair<int64_t, int64_t>> by_window;
  for (const auto& [kw, ns] : agg) {
    ++windows[{kw.first, kw.second, ns.first, ns.second}];
    auto& [k, n] = by_window[kw.second];
    ++k;
    n += ns.first;
  }
  for (const auto& [w, kn] : by_window) ++per_window[{w, kn.first, kn.second}];
}

/// A timestamp field of a sink's JSON row, in µs; records a failure if it is not one.
int64_t timestamp_field(const json& row, const char* name) {
  auto us = row.contains(name) && row[name].is_string()
                ? parse_timestamp_iso(row[name].get<std::string>())
                : std::nullopt;
  EXPECT_TRUE(us.has_value()) << "no timestamp '" << name << "' in " << row.dump();
  return us.value_or(-1);
}

int64_t int_field(const json& row, const char* name) {
  bool ok = row.contains(name) && row[name].is_number_integer();
  EXPECT_TRUE(ok) << "no integer '" << name << "' in " << row.dump();
  return ok ? row[name].get<int64_t>() : -1;
}

/// Reads the committed view of `topic`; fails the test if it cannot, or if it shows an epoch
/// committed twice or a marker whose records are not all there.
kafka::committed_view read_view(const std::string& bootstrap, const std::string& topic) {
  kafka::committed_view_options opts;
  opts.bootstrap = bootstrap;
  opts.topic = topic;
  opts.timeout_us = int64_t{kafka_timeout_ms} * 1000;
  auto view = kafka::read_committed_view(opts);
  EXPECT_TRUE(view.ok()) << topic << ": " << view.err().message;
  if (!view.ok()) return {};
  EXPECT_EQ(view->duplicate_epochs, 0u) << topic << ": epochs committed by two attempts";
  EXPECT_EQ(view->incomplete_epochs, 0u) << topic << ": markers without all their records";
  return std::move(*view);
}

/// Compares two multisets (as value -> count) and describes up to 5 differences each way.
template <typename T, typename Print>
void expect_same_multiset(const std::map<T, int>& actual, const std::map<T, int>& expected,
                          const std::string& what, Print print) {
  size_t missing = 0, extra = 0;
  std::string examples;
  auto note = [&](const T& v, int have, int want) {
    if (missing + extra <= 10) {
      examples += "\n  " + print(v) + ": " + std::to_string(have) + " times, expected " +
                  std::to_string(want);
    }
  };
  for (const auto& [v, want] : expected) {
    auto it = actual.find(v);
    int have = it == actual.end() ? 0 : it->second;
    if (have < want) {
      missing += want - have;
      note(v, have, want);
    }
  }
  for (const auto& [v, have] : actual) {
    auto it = expected.find(v);
    int want = it == expected.end() ? 0 : it->second;
    if (have > want) {
      extra += have - want;
      note(v, have, want);
    }
  }
  EXPECT_EQ(missing + extra, 0u) << what << ": " << missing << " rows missing, " << extra
                                 << " rows too many, e.g.:" << examples;
}

/// kafka_source (2 subtasks over 4 partitions) -> key_by id -> dedup -> key_by key -> 1 s
/// windows (count, sum) -> kafka_sink `out`; windows -> key_by window start -> 1 s windows
/// (keys, records) -> kafka_sink `out2`. Twenty subtasks. Batches of 4 records and one credit
/// per channel stretch the job (11 s for 160,000 records on a fast 2-core machine) so that the
/// four kills, each after a checkpoint completed since the last restart, come before it ends:
/// once a source subtask has finished, no checkpoint is taken any more.
///
/// The short idle_timeout checks that a partition whose records wait in the consumer's queue
/// behind the other partition's is not declared idle (it was, once: its records then came
/// late and were dropped).
std::string chaos_graph(const std::string& bootstrap) {
  std::string g = R"(
name: kafka-chaos
checkpoints: {interval_ms: 200}
restart: {backoff_ms: 100, max_backoff_ms: 1000, max_attempts: 30}
execution: {batch_size: 4, channel_credits: 1}
nodes:
  - id: src
    operator: kafka_source
    parallelism: 2
    config: {bootstrap: "{BOOTSTRAP}", topic: in, bounded: true, event_time_field: ts,
             max_out_of_orderness: 1s, idle_timeout: 1s}
    output_schema:
      fields:
        - {name: id, type: int64, required: true}
        - {name: key, type: string, required: true}
        - {name: value, type: int64, required: true}
        - {name: ts, type: timestamp, required: true}
  - {id: by_id, operator: key_by, parallelism: 2, config: {key: id}}
  - {id: dedup, operator: dedup, parallelism: 2, config: {ttl: 1h}}
  - {id: by_key, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 2
    config:
      size: 1s
      aggregates: [{name: n, fn: count}, {name: total, fn: sum, field: value}]
  - {id: out, operator: kafka_sink, parallelism: 2,
     config: {bootstrap: "{BOOTSTRAP}", topic: out, mode: exactly_once, key_field: key}}
  - {id: start, operator: map, parallelism: 2, config: {set: {w: window_start}}}
  - {id: by_window, operator: key_by, parallelism: 2, config: {key: w}}
  - id: win2
    operator: tumbling_window
    parallelism: 2
    config:
      size: 1s
      aggregates: [{name: keys, fn: count}, {name: records, fn: sum, field: n}]
  - {id: out2, operator: kafka_sink, parallelism: 2,
     config: {bootstrap: "{BOOTSTRAP}", topic: out2, mode: exactly_once}}
edges:
  - {from: src, to: by_id}
  - {from: by_id, to: dedup}
  - {from: dedup, to: by_key}
  - {from: by_key, to: win}
  - {from: win, to: out}
  - {from: win, to: start}
  - {from: start, to: by_window}
  - {from: by_window, to: win2}
  - {from: win2, to: out2}
)";
  return std::regex_replace(g, std::regex("\\{BOOTSTRAP\\}"), bootstrap);
}

class KafkaChaos : public cluster_fixture {};

TEST_F(KafkaChaos, KilledWorkersAndCoordinatorLoseAndDuplicateNothing) {
  // The broker is a process of its own, so it outlives every kill.
  std::string line;
  spawn("kafka",
        {mock_kafka_bin, "--brokers", "3", "--listen", "127.0.0.1", "--topic",
         "in:" + std::to_string(partitions), "--topic", "out:4", "--topic", "out.progress:1",
         "--topic", "out2:2", "--topic", "out2.progress:1"},
        line);
  const std::string prefix = "vigil-mock-kafka: bootstrap ";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << "startup line: '" << line << "'";
  const std::string bootstrap = line.substr(prefix.size());

  size_t duplicates = 0;
  auto layout = input_layout(duplicates);
  ASSERT_EQ(produce_input(bootstrap, "in", layout), records + duplicates);

  checkpoint_dir_ = dir_ + "/checkpoints";
  ASSERT_NO_FATAL_FAILURE(start_cluster(3, 8));
  write_file(dir_ + "/chaos.yaml", chaos_graph(bootstrap));
  const auto started = std::chrono::steady_clock::now();
  std::string id = submit(dir_ + "/chaos.yaml");
  ASSERT_FALSE(id.empty());

  // Three worker kills and one coordinator kill, in a seeded order, each at a random moment
  // once the job runs again and has completed a checkpoint since its restart.
  std::mt19937 rng(20261123);
  std::vector<std::string> events = {"worker", "worker", "coordinator", "worker"};
  std::shuffle(events.begin(), events.end(), rng);
  int worker_kills = 0;
  int coordinator_kills = 0;
  int64_t checkpoint_at_last_kill = 0;
  double last_kill_seconds = 0;
  for (const auto& event : events) {
    json job;
    bool ready = wait_until(
        [&] {
          job = job_status(id);
          return text(job, "state") == "running" &&
                 job.value("last_checkpoint", int64_t{0}) > checkpoint_at_last_kill;
        },
        60s, 20ms);
    ASSERT_TRUE(ready) << "the job did not run again after " << worker_kills << " worker and "
                       << coordinator_kills << " coordinator kills:\n"
                       << job.dump(2);
    checkpoint_at_last_kill = job.value("last_checkpoint", int64_t{0});
    // The moment of the kill: chaos, not synchronisation.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 700)(rng)));
    last_kill_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (event == "coordinator") {
      coordinator_->kill(SIGKILL);
      ASSERT_TRUE(coordinator_->wait(startup_timeout).has_value());
      ASSERT_NO_FATAL_FAILURE(start_coordinator(dir_ + "/coordinator-data", cluster_));
      ++coordinator_kills;
    } else {
      int n = std::uniform_int_distribution<int>(1, 3)(rng);
      auto& victim = *workers_.at("w" + std::to_string(n));
      victim.kill(SIGKILL);
      ASSERT_TRUE(victim.wait(startup_timeout).has_value());
      ASSERT_NO_FATAL_FAILURE(start_worker(n, 8));  // As Kubernetes would restart its pod.
      ++worker_kills;
    }
    // Checkpoints completed while the kill was pending are restored now: the next kill waits
    // for one completed after this restart.
    job = job_status(id);
    checkpoint_at_last_kill =
        std::max(checkpoint_at_last_kill, job.value("last_checkpoint", int64_t{0}));
  }
  auto job = wait_for_state(id, "finished", 120s);
  ASSERT_EQ(text(job, "state"), "finished") << job.dump(2);
  const auto job_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  int restarts = job.value("restarts", 0);
  // Every kill stops subtasks of the job (each worker hosts some), so each one restarts it.
  EXPECT_GE(restarts, worker_kills + coordinator_kills) << job.dump(2);

  std::map<window_row, int> expected_windows;
  std::map<keys_row, int> expected_keys;
  expected_output(expected_windows, expected_keys);

  auto out = read_view(bootstrap, "out");
  std::map<window_row, int> windows;
  size_t wrong_keys = 0;    // Messages of `out` whose key is not their row's `key` field.
  size_t wrong_bounds = 0;  // Rows whose window is not 1 s long, or (out2) not the key's window.
  for (const auto& r : out.records) {
    auto row = json::parse(r.value, nullptr, false);
    ASSERT_TRUE(row.is_object()) << "out: not a JSON object: " << r.value;
    std::string key = text(row, "key");
    if (r.key != key) ++wrong_keys;
    int64_t start = timestamp_field(row, "window_start");
    if (timestamp_field(row, "window_end") != start + window_us) ++wrong_bounds;
    ++windows[{key, start, int_field(row, "n"), int_field(row, "total")}];
  }
  EXPECT_EQ(wrong_keys, 0u) << "out: messages whose key is not their row's key field";
  EXPECT_EQ(wrong_bounds, 0u) << "out: windows whose end is not start + 1 s";
  expect_same_multiset(windows, expected_windows, "out", [](const window_row& w) {
    return "{key " + std::get<0>(w) + ", window " + format_timestamp_iso(std::get<1>(w)) + ", n " +
           std::to_string(std::get<2>(w)) + ", total " + std::to_string(std::get<3>(w)) + "}";
  });

  auto out2 = read_view(bootstrap, "out2");
  std::map<keys_row, int> per_window;
  wrong_bounds = 0;
  for (const auto& r : out2.records) {
    auto row = json::parse(r.value, nullptr, false);
    ASSERT_TRUE(row.is_object()) << "out2: not a JSON object: " << r.value;
    int64_t w = timestamp_field(row, "w");
    if (timestamp_field(row, "window_start") != w) ++wrong_bounds;
    ++per_window[{w, int_field(row, "keys"), int_field(row, "records")}];
  }
  EXPECT_EQ(wrong_bounds, 0u) << "out2: windows other than the window of their key w";
  expect_same_multiset(per_window, expected_keys, "out2", [](const keys_row& k) {
    return "{window " + format_timestamp_iso(std::get<0>(k)) + ", keys " +
           std::to_string(std::get<1>(k)) + ", records " + std::to_string(std::get<2>(k)) + "}";
  });

  // How often recovery restored: each restart restores a checkpoint; the log tells which.
  std::string log;
  for (const char* name : {"coordinator-1", "coordinator-2"}) {
    log += read_file(dir_ + "/" + name + ".stderr");
  }
  std::set<std::string> restored;
  int restores = 0;
  std::regex restore_line("restoring from checkpoint ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), restore_line);
       it != std::sregex_iterator(); ++it) {
    restored.insert((*it)[1].str());
    ++restores;
  }
  // Each restored sink subtask logs how many epochs of its restored WAL it commits (replays)
  // and how many an earlier instance had committed already.
  std::map<std::string, std::pair<long long, long long>> wal;  // Sink node -> replayed, skipped.
  std::regex sink_restore(
      "kafka_sink '[^/']*/(out2?)/[0-9]+': restored checkpoint [0-9]+: ([0-9]+) epoch\\(s\\) to "
      "replay, ([0-9]+) already committed");
  for (int n = 1; n <= 3; ++n) {
    std::string worker_log = read_file(dir_ + "/w" + std::to_string(n) + ".stderr");
    for (auto it = std::sregex_iterator(worker_log.begin(), worker_log.end(), sink_restore);
         it != std::sregex_iterator(); ++it) {
      wal[(*it)[1].str()].first += std::stoll((*it)[2].str());
      wal[(*it)[1].str()].second += std::stoll((*it)[3].str());
    }
  }
  std::printf(
      "[ info     ] input: %lld records + %zu duplicates; job %.1f s (last kill at %.1f s); kills: "
      "%d workers, %d "
      "coordinator; restarts: %d; restores: %d from %zu distinct checkpoints; checkpoints "
      "completed: %lld; replayed epochs (committed from a restored WAL): out %lld, out2 %lld; "
      "restored epochs already committed (skipped): out %lld, out2 %lld; epochs written by more "
      "than one attempt: out %llu, out2 %llu; markers: out %zu, out2 %zu; discarded records: out "
      "%llu, out2 %llu\n",
      static_cast<long long>(records), duplicates, job_seconds, last_kill_seconds, worker_kills,
      coordinator_kills, restarts, restores, restored.size(),
      static_cast<long long>(job.value("checkpoints_completed", int64_t{0})), wal["out"].first,
      wal["out2"].first, wal["out"].second, wal["out2"].second,
      static_cast<unsigned long long>(out.replayed_epochs),
      static_cast<unsigned long long>(out2.replayed_epochs), out.markers.size(),
      out2.markers.size(), static_cast<unsigned long long>(out.discarded),
      static_cast<unsigned long long>(out2.discarded));
}

}  // namespace
}  // namespace vigil
