#include "operators/kafka/sink/committed_view.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "operators/kafka/sink/topic_reader.hpp"

namespace vigil::kafka {

std::optional<std::string> output_record::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

result<committed_view> read_committed_view(const committed_view_options& opts) {
  committed_view view;
  topic_read_options read;
  read.bootstrap = opts.bootstrap;
  read.timeout_us = opts.timeout_us;
  read.properties = opts.properties;
  read.read_committed = true;

  read.topic = opts.progress_topic.empty() ? opts.topic + ".progress" : opts.progress_topic;
  std::string bad;
  VIGIL_TRY(read_topic(read, [&](const consumed_record& r) {
    auto m = parse_marker(r.value);
    if (!m) {
      if (bad.empty()) bad = m.err().message;
      return;
    }
    view.markers.push_back(std::move(*m));
  }));
  if (!bad.empty()) {
    return make_error(errc::parse_error, "progress topic '" + read.topic + "': " + bad);
  }

  using sink_epoch = std::pair<std::string, int64_t>;
  std::map<sink_epoch, std::set<std::string>> marker_attempts;
  std::map<std::tuple<std::string, int64_t, std::string>, int64_t> matched;
  for (const auto& m : view.markers) {
    marker_attempts[{m.sink, m.epoch}].insert(m.attempt);
    matched[{m.sink, m.epoch, m.attempt}] = 0;
  }
  std::map<sink_epoch, std::set<std::string>> written_attempts;

  read.topic = opts.topic;
  VIGIL_TRY(read_topic(read, [&](const consumed_record& r) {
    std::optional<std::string_view> sink, epoch, attempt;
    for (const auto& [name, value] : r.headers) {
      if (name == header_sink) sink = value;
      if (name == header_epoch) epoch = value;
      if (name == header_attempt) attempt = value;
    }
    int64_t e = 0;
    bool tagged = sink && epoch && attempt;
    if (tagged) {
      try {
        size_t used = 0;
        e = std::stoll(std::string(*epoch), &used);
        tagged = used == epoch->size();
      } catch (const std::exception&) {
        tagged = false;
      }
    }
    if (!tagged) {
      ++view.discarded;
      return;
    }
    written_attempts[{std::string(*sink), e}].insert(std::string(*attempt));
    auto it = matched.find({std::string(*sink), e, std::string(*attempt)});
    if (it == matched.end()) {
      ++view.discarded;
      return;
    }
    ++it->second;
    output_record out;
    out.partition = r.partition;
    out.offset = r.offset;
    if (r.key) out.key = std::string(*r.key);
    out.value = std::string(r.value);
    for (const auto& [name, value] : r.headers) out.headers.emplace_back(name, value);
    view.records.push_back(std::move(out));
  }));

  for (const auto& [key, attempts] : written_attempts) {
    if (attempts.size() > 1) ++view.replayed_epochs;
  }
  for (const auto& [key, attempts] : marker_attempts) {
    if (attempts.size() > 1) ++view.duplicate_epochs;
  }
  for (const auto& m : view.markers) {
    if (matched[{m.sink, m.epoch, m.attempt}] != m.records) ++view.incomplete_epochs;
  }
  std::stable_sort(view.records.begin(), view.records.end(),
                   [](const output_record& a, const output_record& b) {
                     return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
                   });
  return view;
}

}  // namespace vigil::kafka
