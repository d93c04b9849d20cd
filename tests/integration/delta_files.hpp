// Test support: the live data files of a Delta table, for DuckDB's read_parquet.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "lake/delta_log.hpp"

namespace vigil::testing {

/// The table's live files (its current snapshot, read through its log) as a DuckDB list
/// literal ['t/a.parquet', ...]; records a failure for a log it cannot read or a live file
/// that is missing.
inline std::string delta_live_files(const std::string& table) {
  auto snapshot = lake::read_delta_snapshot(table);
  EXPECT_TRUE(snapshot.ok()) << table << ": " << snapshot.err().message;
  if (!snapshot.ok()) return "[]";
  std::string files;
  for (const auto& [path, add] : snapshot->files) {
    EXPECT_TRUE(std::filesystem::exists(table + "/" + path)) << "missing live file " << path;
    files += (files.empty() ? "'" : ", '") + table + "/" + path + "'";
  }
  return "[" + files + "]";
}

}  // namespace vigil::testing
