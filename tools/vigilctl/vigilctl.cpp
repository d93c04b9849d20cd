#include "tools/vigilctl/vigilctl.hpp"

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "graph/yaml_loader.hpp"
#include "vigil/v1/api.grpc.pb.h"

namespace vigil {

std::string format_time_us(int64_t us) {
  if (us == 0) return "-";
  auto seconds = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string token_hash_hex(std::string_view token) {
  static constexpr char kDigits[] = "0123456789abcdef";
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), hash, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[hash[i] >> 4]);
    out.push_back(kDigits[hash[i] & 0xf]);
  }
  return out;
}

namespace {

struct options {
  std::string coordinator = "127.0.0.1:7070";
  bool json = false;
  double timeout_s = 5;
  std::string tls_ca;      ///< PEM CA bundle: use TLS and verify the coordinator against it.
  std::string tls_cert;    ///< PEM client certificate (mTLS).
  std::string tls_key;     ///< PEM private key of tls_cert.
  std::string token_file;  ///< File holding the bearer token.
  std::string token;       ///< Read from token_file, whitespace trimmed.
};

std::string trim_whitespace(const std::string& s) {
  constexpr const char* kSpace = " \t\r\n";
  auto first = s.find_first_not_of(kSpace);
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

/// The whole of a file, or an error message naming `flag` and the file.
bool read_file(const std::string& path, const char* flag, std::string& text, std::ostream& err) {
  std::ifstream in(path, std::ios::binary);
  if (in.is_open()) {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in.bad()) return true;
  }
  err << "vigilctl: " << flag << " " << path << ": cannot be read\n";
  return false;
}

/// Whether `target` (host:port, [v6]:port, or a gRPC URI such as dns:///host:port) names this
/// machine's loopback interface, where a token without TLS never crosses a network.
bool is_loopback_address(std::string_view target) {
  if (auto scheme = target.find(":///"); scheme != std::string_view::npos) {
    target.remove_prefix(scheme + 4);
  }
  std::string_view host = target;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') == std::string_view::npos ? 0 : host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || host.substr(0, 4) == "127.";
}

/// Channel credentials from the TLS options: insecure without any of them, else TLS (with a
/// client certificate when --tls-cert and --tls-key are set). Reads the token file. False
/// (after reporting on `err`) when a file cannot be read or the flags do not fit together.
bool load_credentials(options& opts, std::shared_ptr<grpc::ChannelCredentials>& creds,
                      std::ostream& err) {
  if (!opts.token_file.empty()) {
    std::string text;
    if (!read_file(opts.token_file, "--token-file", text, err)) return false;
    opts.token = trim_whitespace(text);
    if (opts.token.empty()) {
      err << "vigilctl: --token-file " << opts.token_file << ": empty\n";
      return false;
    }
  }
  if (opts.tls_cert.empty() != opts.tls_key.empty()) {
    err << "vigilctl: --tls-cert and --tls-key go together: set both\n";
    return false;
  }
  if (opts.tls_ca.empty() && opts.tls_cert.empty()) {
    if (!opts.token.empty() && !is_loopback_address(opts.coordinator)) {
      err << "vigilctl: a bearer token (--token-file) goes to " << opts.coordinator
          << " only over TLS: set --tls-ca (without TLS, only a 127.0.0.1, ::1 or localhost "
             "address, e.g. through a tunnel)\n";
      return false;
    }
    creds = grpc::InsecureChannelCredentials();
    return true;
  }
  grpc::SslCredentialsOptions ssl;
  if (!opts.tls_ca.empty() && !read_file(opts.tls_ca, "--tls-ca", ssl.pem_root_certs, err)) {
    return false;
  }
  if (!opts.tls_cert.empty()) {
    if (!read_file(opts.tls_cert, "--tls-cert", ssl.pem_cert_chain, err)) return false;
    if (!read_file(opts.tls_key, "--tls-key", ssl.pem_private_key, err)) return false;
  }
  creds = grpc::SslCredentials(ssl);
  return true;
}

const char* state_name(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_PENDING:
      return "pending";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_FINISHED:
      return "finished";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLING:
      return "cancelling";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    case v1::JOB_STATE_RESTARTING:
      return "restarting";
    default:
      break;
  }
  return "unknown";
}

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "already exists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "permission denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "resource exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "failed precondition";
    case grpc::StatusCode::ABORTED:
      return "aborted";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "internal error";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "unauthenticated";
    default:
      break;
  }
  return "error";
}

nlohmann::json to_json(const v1::Job& job) {
  nlohmann::json subtasks = nlohmann::json::array();
  for (const auto& s : job.subtasks()) {
    subtasks.push_back({{"node_id", s.node_id()},
                        {"subtask", s.subtask()},
                        {"worker_id", s.worker_id()},
                        {"state", s.state()}});
  }
  return {{"id", job.id()},
          {"name", job.name()},
          {"state", state_name(job.state())},
          {"error", job.error()},
          {"submitted_at_us", job.submitted_at_us()},
          {"submitted_at", format_time_us(job.submitted_at_us())},
          {"restarts", job.restarts()},
          {"restart_attempts", job.restart_attempts()},
          {"last_failure", job.last_failure()},
          {"last_checkpoint", job.last_checkpoint()},
          {"checkpoints_completed", job.checkpoints_completed()},
          {"checkpoints_failed", job.checkpoints_failed()},
          {"from_savepoint", job.from_savepoint()},
          {"last_savepoint", job.last_savepoint()},
          {"last_checkpoint_failure", job.last_checkpoint_failure()},
          {"owner", job.owner()},
          {"subtasks", std::move(subtasks)}};
}

nlohmann::json to_json(const v1::Worker& w) {
  return {{"id", w.id()},
          {"address", w.address()},
          {"slots", w.slots()},
          {"free_slots", w.free_slots()},
          {"last_heartbeat_us", w.last_heartbeat_us()},
          {"last_heartbeat", format_time_us(w.last_heartbeat_us())},
          {"alive", w.alive()}};
}

/// One connection to the coordinator; every call gets its own deadline.
class client {
 public:
  client(const options& opts, const std::shared_ptr<grpc::ChannelCredentials>& creds)
      : opts_(opts),
        channel_(grpc::CreateChannel(opts.coordinator, creds)),
        jobs_(v1::JobService::NewStub(channel_)),
        cluster_(v1::ClusterService::NewStub(channel_)) {}

  std::unique_ptr<grpc::ClientContext> context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(
                          std::chrono::duration<double>(opts_.timeout_s)));
    if (!opts_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + opts_.token);
    return ctx;
  }

  v1::JobService::Stub& jobs() { return *jobs_; }
  v1::ClusterService::Stub& cluster() { return *cluster_; }

 private:
  const options& opts_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::ClusterService::Stub> cluster_;
};

/// Reports a failed call on `err` and returns the exit code for it.
int report(const grpc::Status& s, const options& opts, std::ostream& err) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      err << "vigilctl: cannot reach the coordinator at " << opts.coordinator << ": "
          << s.error_message() << "\n";
      return vigilctl_unreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err << "vigilctl: no answer from the coordinator at " << opts.coordinator << " within "
          << opts.timeout_s << " s (--timeout)\n";
      return vigilctl_unreachable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      err << "vigilctl: " << s.error_message() << "\n";
      return vigilctl_invalid;
    case grpc::StatusCode::NOT_FOUND:
      err << "vigilctl: " << s.error_message() << "\n";
      return vigilctl_not_found;
    default:
      break;
  }
  err << "vigilctl: " << code_name(s.error_code()) << ": " << s.error_message() << "\n";
  return vigilctl_failed;
}

void print_job_line(const char* verb, const v1::Job& job, std::ostream& out) {
  out << verb << " job " << job.id() << " (" << job.name() << "): " << state_name(job.state())
      << "\n";
}

int submit(client& c, const options& opts, const std::string& path,
           const std::string& from_savepoint, std::ostream& out, std::ostream& err) {
  auto graph = load_graph_file(path);
  if (!graph) {
    err << "vigilctl: " << graph.err().message << "\n";
    return vigilctl_invalid;
  }
  v1::SubmitJobRequest request;
  *request.mutable_graph() = std::move(*graph);
  request.set_from_savepoint(from_savepoint);
  v1::SubmitJobResponse response;
  auto s = c.jobs().SubmitJob(c.context().get(), request, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    out << to_json(response.job()).dump(2) << "\n";
  } else {
    print_job_line("submitted", response.job(), out);
  }
  return vigilctl_ok;
}

/// Takes a savepoint (and with `stop` cancels the job afterwards); prints its path.
int savepoint(client& c, const options& opts, const std::string& job_id, bool stop,
              std::ostream& out, std::ostream& err) {
  v1::TriggerSavepointRequest request;
  request.set_job_id(job_id);
  request.set_stop(stop);
  v1::TriggerSavepointResponse response;
  auto s = c.jobs().TriggerSavepoint(c.context().get(), request, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    out << nlohmann::json{{"path", response.path()},
                          {"checkpoint_id", response.checkpoint_id()},
                          {"job", to_json(response.job())}}
               .dump(2)
        << "\n";
  } else {
    out << "savepoint " << response.path() << " (checkpoint " << response.checkpoint_id() << ")\n";
    if (stop) print_job_line("stopping", response.job(), out);
  }
  return vigilctl_ok;
}

int list(client& c, const options& opts, std::ostream& out, std::ostream& err) {
  v1::ListJobsResponse response;
  auto s = c.jobs().ListJobs(c.context().get(), v1::ListJobsRequest{}, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& job : response.jobs()) jobs.push_back(to_json(job));
    out << nlohmann::json{{"jobs", std::move(jobs)}}.dump(2) << "\n";
    return vigilctl_ok;
  }
  if (response.jobs().empty()) {
    out << "no jobs\n";
    return vigilctl_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : response.jobs()) {
    rows.push_back({job.id(), job.name(), state_name(job.state()),
                    format_time_us(job.submitted_at_us()), std::to_string(job.subtasks_size()),
                    job.error()});
  }
  out << format_table({"ID", "NAME", "STATE", "SUBMITTED", "SUBTASKS", "ERROR"}, rows);
  return vigilctl_ok;
}

/// The job and, per subtask, the health of the worker it is placed on: "alive", "lost"
/// (missed its heartbeats), "unknown" (not registered), "-" (not placed).
int show_status(client& c, const options& opts, const std::string& job_id, std::ostream& out,
                std::ostream& err) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::GetJobResponse response;
  auto s = c.jobs().GetJob(c.context().get(), request, &response);
  if (!s.ok()) return report(s, opts, err);
  v1::ListWorkersResponse workers;
  s = c.cluster().ListWorkers(c.context().get(), v1::ListWorkersRequest{}, &workers);
  if (!s.ok()) return report(s, opts, err);
  std::map<std::string, bool> alive;
  for (const auto& w : workers.workers()) alive[w.id()] = w.alive();
  auto health = [&](const std::string& worker_id) -> std::string {
    if (worker_id.empty()) return "-";
    auto it = alive.find(worker_id);
    if (it == alive.end()) return "unknown";
    return it->second ? "alive" : "lost";
  };

  const auto& job = response.job();
  if (opts.json) {
    auto j = to_json(job);
    for (size_t i = 0; i < j["subtasks"].size(); ++i) {
      j["subtasks"][i]["worker_health"] = health(job.subtasks(static_cast<int>(i)).worker_id());
    }
    out << j.dump(2) << "\n";
    return vigilctl_ok;
  }
  std::vector<std::vector<std::string>> head = {
      {"job", job.id()},
      {"name", job.name()},
      {"state", state_name(job.state())},
      {"submitted", format_time_us(job.submitted_at_us())}};
  if (!job.owner().empty()) head.push_back({"owner", job.owner()});
  if (!job.error().empty()) head.push_back({"error", job.error()});
  if (job.checkpoints_completed() + job.checkpoints_failed() > 0) {
    head.push_back({"checkpoint", std::to_string(job.last_checkpoint()) + " (" +
                                      std::to_string(job.checkpoints_completed()) + " completed, " +
                                      std::to_string(job.checkpoints_failed()) + " failed)"});
  }
  if (!job.last_checkpoint_failure().empty()) {
    head.push_back({"ckpt error", job.last_checkpoint_failure()});
  }
  if (job.restarts() > 0) {
    head.push_back({"restarts",
                    std::to_string(job.restarts()) + ", " + std::to_string(job.restart_attempts()) +
                        " since the last checkpoint (last: " + job.last_failure() + ")"});
  }
  for (const auto& row : head)
    out << row[0] << std::string(11 - row[0].size(), ' ') << row[1] << "\n";
  out << "\n";
  if (job.subtasks().empty()) {
    out << "no subtasks placed\n";
    return vigilctl_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& st : job.subtasks()) {
    rows.push_back({st.node_id(), std::to_string(st.subtask()),
                    st.worker_id().empty() ? "-" : st.worker_id(), health(st.worker_id()),
                    st.state()});
  }
  out << format_table({"NODE", "SUBTASK", "WORKER", "HEALTH", "STATE"}, rows);
  return vigilctl_ok;
}

int cancel(client& c, const options& opts, const std::string& job_id, std::ostream& out,
           std::ostream& err) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::CancelJobResponse response;
  auto s = c.jobs().CancelJob(c.context().get(), request, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    out << to_json(response.job()).dump(2) << "\n";
  } else {
    print_job_line("cancel requested for", response.job(), out);
  }
  return vigilctl_ok;
}

int drain(client& c, const options& opts, const std::string& job_id, std::ostream& out,
          std::ostream& err) {
  v1::DrainJobRequest request;
  request.set_job_id(job_id);
  v1::DrainJobResponse response;
  auto s = c.jobs().DrainJob(c.context().get(), request, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    out << to_json(response.job()).dump(2) << "\n";
  } else {
    print_job_line("drain requested for", response.job(), out);
  }
  return vigilctl_ok;
}

int workers(client& c, const options& opts, std::ostream& out, std::ostream& err) {
  v1::ListWorkersResponse response;
  auto s = c.cluster().ListWorkers(c.context().get(), v1::ListWorkersRequest{}, &response);
  if (!s.ok()) return report(s, opts, err);
  if (opts.json) {
    nlohmann::json ws = nlohmann::json::array();
    for (const auto& w : response.workers()) ws.push_back(to_json(w));
    out << nlohmann::json{{"workers", std::move(ws)}}.dump(2) << "\n";
    return vigilctl_ok;
  }
  if (response.workers().empty()) {
    out << "no workers\n";
    return vigilctl_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : response.workers()) {
    rows.push_back({w.id(), w.address(), std::to_string(w.slots()), std::to_string(w.free_slots()),
                    format_time_us(w.last_heartbeat_us()), w.alive() ? "alive" : "lost"});
  }
  out << format_table({"ID", "ADDRESS", "SLOTS", "FREE", "LAST HEARTBEAT", "HEALTH"}, rows);
  return vigilctl_ok;
}

}  // namespace

int run_vigilctl(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"vigilctl: submit and inspect jobs on a Vigil coordinator"};
  app.require_subcommand(1);
  options opts;
  app.add_option("--coordinator", opts.coordinator, "Coordinator address HOST:PORT")
      ->envname("VIGIL_COORDINATOR")
      ->capture_default_str();
  app.add_flag("--json", opts.json, "Print one JSON document instead of tables");
  app.add_option("--timeout", opts.timeout_s, "Deadline of each call, in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--tls-ca", opts.tls_ca,
                 "Connect with TLS, verifying the coordinator against these PEM CA certificates");
  app.add_option("--tls-cert", opts.tls_cert, "PEM client certificate (mTLS; with --tls-key)");
  app.add_option("--tls-key", opts.tls_key, "PEM private key of --tls-cert");
  app.add_option("--token-file", opts.token_file,
                 "File holding the bearer token sent as 'authorization: Bearer <token>'")
      ->envname("VIGIL_TOKEN_FILE");

  std::string graph_path;
  std::string job_id;
  std::string from_savepoint;
  bool with_savepoint = false;
  double wait_s = 120;
  auto* submit_cmd = app.add_subcommand("submit", "Submit a job graph (YAML)");
  submit_cmd->add_option("graph", graph_path, "Job graph file")->required();
  submit_cmd->add_option("--from-savepoint", from_savepoint,
                         "Start from this savepoint directory (node parallelism may change)");
  auto* savepoint_cmd =
      app.add_subcommand("savepoint", "Take a savepoint of a running job; prints its directory");
  savepoint_cmd->add_option("job", job_id, "Job id")->required();
  savepoint_cmd->add_option("--wait", wait_s, "How long to wait for it, in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bool with_drain = false;
  auto* stop_cmd = app.add_subcommand(
      "stop",
      "Stop a job: --savepoint takes a savepoint, then cancels it; --drain ends its sources so "
      "that everything downstream flushes and commits, and the job finishes");
  stop_cmd->add_option("job", job_id, "Job id")->required();
  auto* savepoint_flag = stop_cmd->add_flag("--savepoint", with_savepoint, "Stop with a savepoint");
  auto* drain_flag = stop_cmd->add_flag("--drain", with_drain, "Stop by draining the job");
  savepoint_flag->excludes(drain_flag);
  stop_cmd->add_option("--wait", wait_s, "How long to wait for the savepoint, in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* list_cmd = app.add_subcommand("list", "List every job");
  auto* status_cmd = app.add_subcommand("status", "Show a job, its placement and health");
  status_cmd->add_option("job", job_id, "Job id")->required();
  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel a job");
  cancel_cmd->add_option("job", job_id, "Job id")->required();
  auto* workers_cmd = app.add_subcommand("workers", "List the workers");
  auto* hash_cmd = app.add_subcommand(
      "hash-token", "Read a token on stdin, print its SHA-256 hex for the --auth-tokens file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? vigilctl_ok : vigilctl_invalid;
  }

  if (hash_cmd->parsed()) {
    std::string token((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    token = trim_whitespace(token);
    if (token.empty()) {
      err << "vigilctl: hash-token: no token on stdin\n";
      return vigilctl_invalid;
    }
    out << token_hash_hex(token) << "\n";
    return vigilctl_ok;
  }
  if (stop_cmd->parsed() && !with_savepoint && !with_drain) {
    err << "vigilctl: stop needs --savepoint or --drain\n";
    return vigilctl_invalid;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!load_credentials(opts, creds, err)) return vigilctl_invalid;
  if (stop_cmd->parsed() && with_drain) {
    client c(opts, creds);
    return drain(c, opts, job_id, out, err);
  }
  if (savepoint_cmd->parsed() || stop_cmd->parsed()) {
    options waiting = opts;
    waiting.timeout_s = std::max(opts.timeout_s, wait_s);
    client c(waiting, creds);
    return savepoint(c, waiting, job_id, stop_cmd->parsed(), out, err);
  }
  client c(opts, creds);
  if (submit_cmd->parsed()) return submit(c, opts, graph_path, from_savepoint, out, err);
  if (list_cmd->parsed()) return list(c, opts, out, err);
  if (status_cmd->parsed()) return show_status(c, opts, job_id, out, err);
  if (cancel_cmd->parsed()) return cancel(c, opts, job_id, out, err);
  if (workers_cmd->parsed()) return workers(c, opts, out, err);
  return vigilctl_invalid;
}

}  // namespace vigil
