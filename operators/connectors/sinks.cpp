#include "operators/connectors/sinks.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "operators/connectors/json_format.hpp"

namespace vigil {

namespace {

constexpr std::string_view subtask_placeholder = "{subtask}";

/// Appends every row of `batch` as a JSON line to `buf`.
void append_json_lines(std::string& buf, const record_batch& batch, bool include_event_time) {
  for (size_t row = 0; row < batch.num_rows(); ++row) {
    append_json_row(buf, batch, row, include_event_time);
    buf.push_back('\n');
  }
}

/// Checks the single input of a sink; with include_event_time, the name "_event_time" must be free.
status check_sink_input(const plan_context& ctx, bool include_event_time) {
  if (ctx.inputs.size() != 1) {
    return make_error(errc::invalid_graph,
                      "expected one input stream, got " + std::to_string(ctx.inputs.size()));
  }
  if (include_event_time && ctx.inputs[0].schema->index_of("_event_time") >= 0) {
    return config_reader::key_error("include_event_time",
                                    "the input already has a field named '_event_time'");
  }
  return {};
}

operator_traits sink_traits(std::string name, std::string summary) {
  operator_traits t;
  t.name = std::move(name);
  t.input_ports = {"in"};
  t.summary = std::move(summary);
  return t;
}

// --- stdout ---

class stdout_sink final : public operator_base {
 public:
  explicit stdout_sink(bool include_event_time) : include_event_time_(include_event_time) {}

  void process(size_t port, const record_batch& batch, output& out) override {
    buf_.clear();
    append_json_lines(buf_, batch, include_event_time_);
    std::fwrite(buf_.data(), 1, buf_.size(), stdout);
    std::fflush(stdout);
  }

 private:
  bool include_event_time_;
  std::string buf_;
};

class stdout_plan final : public operator_plan {
 public:
  bool include_event_time = false;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<stdout_sink>(include_event_time);
  }
};

class stdout_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<stdout_plan>();
    auto et = r.bool_or("include_event_time", false);
    if (!et) return et.err();
    p->include_event_time = *et;
    VIGIL_TRY(r.finish());
    VIGIL_TRY(check_sink_input(ctx, p->include_event_time));
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_ = sink_traits("stdout", "Prints each row as a JSON line to stdout");
};

// --- jsonl_file ---

std::string resolve_path(std::string_view pattern, uint32_t subtask) {
  std::string out;
  const std::string index = std::to_string(subtask);
  size_t pos = 0;
  for (;;) {
    const size_t hit = pattern.find(subtask_placeholder, pos);
    if (hit == std::string_view::npos) break;
    out.append(pattern.substr(pos, hit - pos));
    out.append(index);
    pos = hit + subtask_placeholder.size();
  }
  out.append(pattern.substr(pos));
  return out;
}

class jsonl_file_sink final : public operator_base {
 public:
  jsonl_file_sink(std::string pattern, bool include_event_time)
      : pattern_(std::move(pattern)), include_event_time_(include_event_time) {}

  ~jsonl_file_sink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  status open(operator_context& ctx) override {
    path_ = resolve_path(pattern_, ctx.subtask_index);
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return make_error(errc::io_error, "cannot create directory '" + parent.string() +
                                              "' for '" + path_ + "': " + ec.message());
      }
    }
    file_ = std::fopen(path_.c_str(), "wb");
    if (file_ == nullptr) {
      return make_error(errc::io_error,
                        "cannot open '" + path_ + "' for writing: " + std::strerror(errno));
    }
    return {};
  }

  void process(size_t port, const record_batch& batch, output& out) override {
    if (file_ == nullptr || !write_error_.empty()) return;
    buf_.clear();
    append_json_lines(buf_, batch, include_event_time_);
    if (std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) {
      write_error_ = std::strerror(errno);
    }
  }

  status close(output& out) override {
    if (file_ == nullptr) return {};
    const bool flushed = std::fflush(file_) == 0;
    if (write_error_.empty() && !flushed) write_error_ = std::strerror(errno);
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (write_error_.empty() && !closed) write_error_ = std::strerror(errno);
    if (!write_error_.empty()) {
      return make_error(errc::io_error, "writing '" + path_ + "' failed: " + write_error_);
    }
    return {};
  }

 private:
  std::string pattern_;
  bool include_event_time_;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string buf_;
  std::string write_error_;  ///< The first write error; close() reports it.
};

class jsonl_file_plan final : public operator_plan {
 public:
  std::string path;
  bool include_event_time = false;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<jsonl_file_sink>(path, include_event_time);
  }
};

class jsonl_file_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<jsonl_file_plan>();
    auto path = r.required_string("path");
    if (!path) return path.err();
    if (path->empty()) return config_reader::key_error("path", "must not be empty");
    p->path = *path;
    auto et = r.bool_or("include_event_time", false);
    if (!et) return et.err();
    p->include_event_time = *et;
    VIGIL_TRY(r.finish());
    if (ctx.parallelism > 1 && p->path.find(subtask_placeholder) == std::string::npos) {
      return config_reader::key_error(
          "path", "must contain \"{subtask}\" when the sink runs with parallelism " +
                      std::to_string(ctx.parallelism) + " (one file per subtask)");
    }
    VIGIL_TRY(check_sink_input(ctx, p->include_event_time));
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_ =
      sink_traits("jsonl_file", "Writes each row as a JSON line to a file (one per subtask)");
};

// --- null ---

class null_plan final : public operator_plan {
 public:
  int64_t delay_per_batch_us = 0;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<null_sink>(delay_per_batch_us);
  }
};

class null_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<null_plan>();
    auto delay = r.duration_us_or("delay_per_batch", 0);
    if (!delay) return delay.err();
    p->delay_per_batch_us = *delay;
    VIGIL_TRY(r.finish());
    VIGIL_TRY(check_sink_input(ctx, false));
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_ =
      sink_traits("null", "Discards rows; delay_per_batch makes it a deliberately slow sink");
};

}  // namespace

void null_sink::process(size_t port, const record_batch& batch, output& out) {
  rows_ += batch.num_rows();
  ++batches_;
  if (delay_per_batch_us_ > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(delay_per_batch_us_));
  }
}

std::unique_ptr<operator_factory> make_stdout_sink_factory() {
  return std::make_unique<stdout_factory>();
}

std::unique_ptr<operator_factory> make_jsonl_file_sink_factory() {
  return std::make_unique<jsonl_file_factory>();
}

std::unique_ptr<operator_factory> make_null_sink_factory() {
  return std::make_unique<null_factory>();
}

}  // namespace vigil
