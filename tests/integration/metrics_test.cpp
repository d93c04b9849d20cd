// Metrics and health endpoints of real processes: a coordinator and workers with
// --metrics-listen, scraped by a real Prometheus server on 127.0.0.1 while a job with
// checkpoints runs; the shipped Grafana dashboard only uses metric names the processes expose.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>

#include "cluster_fixture.hpp"
#include "common/host_port.hpp"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace vigil::testing;

const std::string prometheus_bin = VIGIL_PROMETHEUS;

struct http_response {
  int status = 0;  ///< 0: no connection or no answer.
  std::string body;
};

/// GET http://127.0.0.1:<port><target> (HTTP/1.0: the server closes after answering).
http_response http_get(uint16_t port, const std::string& target) {
  http_response r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string all;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, n);
  ::close(fd);
  if (all.rfind("HTTP/1.", 0) != 0 || all.size() < 12) return r;
  r.status = std::atoi(all.c_str() + 9);
  auto body = all.find("\r\n\r\n");
  if (body != std::string::npos) r.body = all.substr(body + 4);
  return r;
}

std::string url_encode(const std::string& s) {
  std::string out;
  const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// The metric names a /metrics text declares ("# TYPE <name> <type>").
std::set<std::string> declared_names(const std::string& text) {
  std::set<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::string name = line.substr(7, line.find(' ', 7) - 7);
    if (!name.empty()) names.insert(name);
  }
  return names;
}

/// The vigil_* names in every PromQL expression of a Grafana dashboard, histogram suffixes
/// (_bucket, _sum, _count) removed.
std::set<std::string> dashboard_names(const json& dashboard) {
  std::set<std::string> names;
  static const std::regex name("vigil_[a-z0-9_]+");
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "expr" && it.value().is_string()) {
          std::string expr = it.value();
          for (std::sregex_iterator m(expr.begin(), expr.end(), name), end; m != end; ++m) {
            std::string n = m->str();
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
              std::string s(suffix);
              if (n.size() > s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0) {
                n.resize(n.size() - s.size());
              }
            }
            names.insert(n);
          }
        } else {
          walk(it.value());
        }
      }
    } else if (j.is_array()) {
      for (const auto& e : j) walk(e);
    }
  };
  walk(dashboard);
  return names;
}

/// An endless keyed pipeline with checkpoints every 200 ms: generator -> key_by (2) ->
/// tumbling window (2, stateful) -> null (2).
const char* metrics_graph = R"(
name: metrics-job
checkpoints: {interval_ms: 200}
nodes:
  - {id: gen, operator: generator, config: {keys: 16, rate: 5000, interval: 1ms, seed: 5}}
  - {id: by_key, operator: key_by, parallelism: 2, config: {key: key}}
  - id: win
    operator: tumbling_window
    parallelism: 2
    config: {size: 1s, aggregates: [{name: n, fn: count}]}
  - {id: sink, operator: "null", parallelism: 2}
edges:
  - {from: gen, to: by_key, partitioning: rebalance}
  - {from: by_key, to: win}
  - {from: win, to: sink, partitioning: rebalance}
)";

class Metrics : public cluster_fixture {
 protected:
  void TearDown() override {
    if (prometheus_ && HasFailure()) {
      std::fprintf(stderr, "----- stderr of prometheus -----\n%s\n",
                   tail(prometheus_->stderr_text(), 4000).c_str());
    }
    prometheus_.reset();  // Killed before the fixture removes its storage directory.
    cluster_fixture::TearDown();
  }

  /// A coordinator and two workers, each with --metrics-listen on a free port.
  void start_metrics_cluster() {
    checkpoint_dir_ = dir_ + "/checkpoints";
    coordinator_port_ = unused_loopback_port();
    ASSERT_NE(coordinator_port_, 0);
    std::string line;
    coordinator_ =
        &spawn("coordinator",
               {coordinator_bin, "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0",
                "--data-dir", dir_ + "/coordinator-data", "--checkpoint-dir", checkpoint_dir_,
                "--heartbeat-timeout-ms", std::to_string(heartbeat_timeout.count()),
                "--metrics-listen", "127.0.0.1:" + std::to_string(coordinator_port_)},
               line);
    api_ = word_after(line, "api");
    cluster_ = word_after(line, "cluster");
    ASSERT_FALSE(api_.empty() || cluster_.empty()) << "startup line: '" << line << "'";
    for (int n = 1; n <= 2; ++n) {
      uint16_t port = unused_loopback_port();
      ASSERT_NE(port, 0);
      worker_ports_.push_back(port);
      std::string id = "w" + std::to_string(n);
      workers_[id] = &spawn(id,
                            {worker_bin, "--id", id, "--coordinator", cluster_, "--slots", "4",
                             "--state-dir", dir_ + "/" + id + "-state", "--heartbeat-ms", "200",
                             "--metrics-listen", "127.0.0.1:" + std::to_string(port)},
                            line);
    }
    bool ready = wait_until(
        [&] {
          if (http_get(coordinator_port_, "/readyz").status != 200) return false;
          for (uint16_t p : worker_ports_) {
            if (http_get(p, "/readyz").status != 200) return false;
          }
          return true;
        },
        startup_timeout);
    ASSERT_TRUE(ready) << "coordinator /readyz: " << http_get(coordinator_port_, "/readyz").body
                       << "worker /readyz: " << http_get(worker_ports_[0], "/readyz").body;
  }

  std::vector<uint16_t> all_ports() const {
    std::vector<uint16_t> ports{coordinator_port_};
    ports.insert(ports.end(), worker_ports_.begin(), worker_ports_.end());
    return ports;
  }

  /// Runs an instant query against Prometheus; the "result" array (null on failure).
  json query(const std::string& promql) {
    auto r = http_get(prometheus_port_, "/api/v1/query?query=" + url_encode(promql));
    if (r.status != 200) return nullptr;
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || text(j, "status") != "success") return nullptr;
    return j["data"]["result"];
  }

  /// The value of the only sample of an instant query; -1 if there is none.
  double single_value(const std::string& promql) {
    json r = query(promql);
    if (!r.is_array() || r.size() != 1) return -1;
    return std::stod(r[0]["value"][1].get<std::string>());
  }

  uint16_t coordinator_port_ = 0;
  std::vector<uint16_t> worker_ports_;
  uint16_t prometheus_port_ = 0;
  std::unique_ptr<child_process> prometheus_;
};

// Prometheus scrapes the coordinator and both workers: throughput of every operator, growing
// checkpoint ids, the cluster gauges; health endpoints answer; a cancelled job leaves no
// operator series behind.
TEST_F(Metrics, PrometheusScrapesACluster) {
  if (prometheus_bin.empty() || !std::filesystem::exists(prometheus_bin)) {
    GTEST_SKIP() << "no prometheus binary (tools/bootstrap.sh installs it)";
  }
  // A worker whose coordinator is not up is alive but not ready.
  uint16_t lonely_port = unused_loopback_port();
  std::string line;
  spawn("lonely",
        {worker_bin, "--id", "lonely", "--coordinator",
         "127.0.0.1:" + std::to_string(unused_loopback_port()), "--state-dir",
         dir_ + "/lonely-state", "--metrics-listen", "127.0.0.1:" + std::to_string(lonely_port)},
        line);
  ASSERT_TRUE(
      wait_until([&] { return http_get(lonely_port, "/healthz").status == 200; }, startup_timeout));
  auto lonely = http_get(lonely_port, "/readyz");
  EXPECT_EQ(lonely.status, 503);
  EXPECT_NE(lonely.body.find("not registered with the coordinator"), std::string::npos)
      << lonely.body;

  ASSERT_NO_FATAL_FAILURE(start_metrics_cluster());
  for (uint16_t p : all_ports()) {
    auto h = http_get(p, "/healthz");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body, "ok\n");
    EXPECT_EQ(http_get(p, "/nope").status, 404);
  }
  write_file(dir_ + "/metrics.yaml", metrics_graph);
  std::string id = submit(dir_ + "/metrics.yaml");
  ASSERT_FALSE(id.empty());

  prometheus_port_ = unused_loopback_port();
  ASSERT_NE(prometheus_port_, 0);
  std::string targets;
  for (uint16_t p : all_ports()) {
    targets += std::string(targets.empty() ? "" : ", ") + "'127.0.0.1:" + std::to_string(p) + "'";
  }
  // honor_labels keeps Vigil's own `job` label (the graph name) instead of renaming it.
  write_file(dir_ + "/prometheus.yml",
             "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
             "scrape_configs:\n"
             "  - job_name: vigil\n"
             "    honor_labels: true\n"
             "    static_configs: [{targets: [" +
                 targets + "]}]\n");
  prometheus_ = std::make_unique<child_process>(
      std::vector<std::string>{
          prometheus_bin, "--config.file=" + dir_ + "/prometheus.yml",
          "--storage.tsdb.path=" + dir_ + "/prometheus-data",
          "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_)},
      dir_ + "/prometheus.stderr");
  ASSERT_TRUE(wait_until([&] { return http_get(prometheus_port_, "/-/ready").status == 200; }, 30s))
      << "prometheus did not become ready";

  // Every scrape target is up and every operator processes records.
  const std::string gen_out =
      "sum(rate(vigil_operator_records_out_total{job=\"metrics-job\",operator=\"gen\"}[5s]))";
  json rates;
  bool flowing = wait_until(
      [&] {
        if (single_value("count(up == 1)") != 3) return false;
        rates = query(
            "sum by (operator) (rate(vigil_operator_records_in_total{job=\"metrics-job\"}[5s])) "
            "> 0");
        // The source only emits: its records out.
        return rates.is_array() && rates.size() == 3 && single_value(gen_out) > 0;
      },
      60s, 500ms);
  ASSERT_TRUE(flowing) << "records-in rates: " << rates.dump() << "\nup: " << query("up").dump();
  std::set<std::string> operators;
  for (const auto& r : rates) operators.insert(text(r["metric"], "operator"));
  EXPECT_EQ(operators, (std::set<std::string>{"by_key", "win", "sink"}));

  EXPECT_GT(single_value("sum(vigil_operator_batch_duration_seconds_count{job=\"metrics-job\"})"),
            0);

  // Checkpoints complete, and their ids grow between two queries.
  double first = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        first = single_value("vigil_checkpoint_last_completed_id{job=\"metrics-job\"}");
        return first >= 1;
      },
      30s, 500ms))
      << query("vigil_checkpoint_last_completed_id").dump();
  double later = first;
  EXPECT_TRUE(wait_until(
      [&] {
        later = single_value("vigil_checkpoint_last_completed_id{job=\"metrics-job\"}");
        return later > first;
      },
      30s, 500ms))
      << "first " << first << ", later " << later;
  EXPECT_GE(single_value("vigil_checkpoints_completed_total{job=\"metrics-job\"}"), 1);

  // Cluster gauges from the coordinator.
  EXPECT_EQ(single_value("vigil_cluster_workers"), 2);
  EXPECT_EQ(single_value("vigil_cluster_slots{state=\"total\"}"), 8);
  EXPECT_EQ(single_value("vigil_cluster_slots{state=\"used\"}"), 7);
  EXPECT_EQ(single_value("vigil_cluster_jobs{state=\"running\"}"), 1);
  EXPECT_EQ(single_value("count(vigil_build_info)"), 3);

  // The windows' keyed state is measured; the event-time lag is known.
  EXPECT_TRUE(wait_until(
      [&] {
        return single_value(
                   "count(vigil_state_size_bytes{job=\"metrics-job\",operator=\"win\"})") == 2;
      },
      20s, 500ms))
      << query("vigil_state_size_bytes").dump();
  EXPECT_EQ(
      single_value(
          "count(vigil_operator_event_time_lag_seconds{job=\"metrics-job\",operator=\"win\"})"),
      2);

  // Cancelled: the workers expose no series of the job any more.
  auto cancel = ctl({"cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(is_terminal(text(wait_for_state(id, "cancelled", job_timeout), "state")));
  EXPECT_TRUE(wait_until(
      [&] {
        for (uint16_t p : worker_ports_) {
          const auto r = http_get(p, "/metrics");
          // A worker that does not answer proves nothing.
          if (r.status != 200 || r.body.find("job=\"metrics-job\"") != std::string::npos) {
            return false;
          }
        }
        return true;
      },
      job_timeout))
      << http_get(worker_ports_[0], "/metrics").body;
}

// Every vigil_* name in the dashboard's PromQL is exposed by the running processes; the only
// exceptions are the Kafka and clinical families, whose series exist only while such operators
// run (metrics_test checks them against the registered families).
TEST_F(Metrics, DashboardUsesExposedNames) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/deploy/helm/vigil/dashboards/vigil.json");
  ASSERT_TRUE(in.good());
  json dashboard = json::parse(in, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded());
  EXPECT_EQ(dashboard.value("schemaVersion", 0), 38);
  auto names = dashboard_names(dashboard);
  ASSERT_GE(names.size(), 20u);

  ASSERT_NO_FATAL_FAILURE(start_metrics_cluster());
  write_file(dir_ + "/metrics.yaml", metrics_graph);
  std::string id = submit(dir_ + "/metrics.yaml");
  ASSERT_FALSE(id.empty());
  std::set<std::string> exposed;
  std::set<std::string> missing;
  // Until a checkpoint completed and every subtask published its series.
  wait_until(
      [&] {
        exposed.clear();
        for (uint16_t p : all_ports()) {
          auto n = declared_names(http_get(p, "/metrics").body);
          exposed.insert(n.begin(), n.end());
        }
        missing.clear();
        for (const auto& n : names) {
          bool needs_operator =
              n.rfind("vigil_kafka_", 0) == 0 || n.rfind("vigil_clinical_", 0) == 0;
          if (!needs_operator && exposed.count(n) == 0) missing.insert(n);
        }
        return missing.empty();
      },
      30s, 250ms);
  std::string list;
  for (const auto& n : missing) list += n + " ";
  EXPECT_TRUE(missing.empty()) << "dashboard names not exposed: " << list;
}

}  // namespace
}  // namespace vigil
