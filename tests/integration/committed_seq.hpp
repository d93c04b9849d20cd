#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "operators/kafka/sink/committed_view.hpp"

namespace vigil {

/// How the committed records of a Kafka view cover the sequence numbers 0..records-1 that the
/// tests' jobs write (the JSON field "seq").
struct seq_coverage {
  int64_t missing = 0;  ///< Numbers not committed.
  int64_t twice = 0;    ///< Numbers committed more than once.
};

/// Counts the sequence numbers `view` misses or holds twice; a record without "seq" fails the
/// test.
inline seq_coverage committed_seq_coverage(const kafka::committed_view& view, int64_t records) {
  std::map<int64_t, int> seen;
  for (const auto& r : view.records) {
    auto at = r.value.find("\"seq\":");
    if (at == std::string::npos) {
      ADD_FAILURE() << "a committed record without \"seq\": " << r.value;
      continue;
    }
    ++seen[std::stoll(r.value.substr(at + 6))];
  }
  seq_coverage c;
  for (int64_t s = 0; s < records; ++s) {
    auto it = seen.find(s);
    if (it == seen.end()) {
      ++c.missing;
    } else if (it->second > 1) {
      ++c.twice;
    }
  }
  return c;
}

}  // namespace vigil
