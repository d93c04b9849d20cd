#include "operators/core/dedup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/key.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/testing/operator_harness.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {
namespace {

using testing::cell;
using testing::cfg;
using testing::make_rows;
using testing::num;
using testing::operator_harness;
using testing::str;
using strings = std::vector<std::string>;

class Dedup : public ::testing::Test {
 protected:
  Dedup() { register_dedup_operator(registry_); }

  /// Rows (patient, code, reading) keyed on patient.
  batch_ptr rows(const std::vector<std::vector<cell>>& r, const std::vector<int64_t>& times) {
    return make_rows(schema_, r, times, {0});
  }

  std::vector<stream_info> keyed_input() const { return {{schema_, {0}}}; }

  /// Live (not expired) entries of the dedup state, over all keys.
  static size_t state_entries(state_backend& state) {
    // The declared ttl does not matter: declaring again checks only that it is a TTL state.
    auto id = state.declare("dedup_seen", state_backend::kind::value, 1);
    EXPECT_TRUE(id.ok()) << id.err().message;
    return id.ok() ? count_entries(state, *id) : 0;
  }
  static size_t state_entries(operator_harness& h) { return state_entries(*h.context().state); }

  /// Entries of the earlier layout's state "dedup_first_seen", over all keys.
  static size_t legacy_entries(state_backend& state) {
    auto id = state.declare("dedup_first_seen", state_backend::kind::value);
    EXPECT_TRUE(id.ok()) << id.err().message;
    return id.ok() ? count_entries(state, *id) : 0;
  }

  static size_t count_entries(state_backend& state, state_backend::state_id id) {
    size_t n = 0;
    state.scan_all(id, [&](uint32_t, std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }

  std::string plan_error(const config_map& config) {
    auto p = operator_harness::try_plan(registry_, "dedup", config, keyed_input());
    return p.ok() ? "<ok>" : p.err().message;
  }

  /// Runs a plan through the subtask driver directly (for what the harness does not expose).
  std::unique_ptr<subtask_driver> drive(const plan_ptr& plan, output& out) {
    subtask_driver::options opts;
    opts.node_id = "dedup";
    opts.state_dir = dir_.string();
    auto d = subtask_driver::make(*registry_.find("dedup"), *plan, opts, out);
    EXPECT_TRUE(d.ok()) << d.err().message;
    return d.ok() ? std::move(*d) : nullptr;
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// Counts the rows emitted per port.
  struct counting_output : output {
    size_t rows[2] = {0, 0};
    void emit(size_t port, batch_ptr b) override { rows[port] += b->num_rows(); }
  };

  /// Collects the rows emitted per port as row_text().
  struct collecting_output : output {
    strings rows[2];
    void emit(size_t port, batch_ptr b) override {
      for (size_t r = 0; r < b->num_rows(); ++r) rows[port].push_back(testing::row_text(*b, r));
    }
  };

  /// Subtask `subtask` of `parallelism` of a dedup plan (ttl 10ms) in `state_dir`, restored
  /// from checkpoint `id` of `from` when given.
  result<std::unique_ptr<subtask_driver>> make_subtask(output& out, const std::string& state_dir,
                                                       uint32_t subtask = 0,
                                                       uint32_t parallelism = 1,
                                                       const checkpoint_storage* from = nullptr,
                                                       int64_t id = 0) {
    auto p =
        operator_harness::try_plan(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
    if (!p.ok()) return p.err();
    subtask_driver::options opts;
    opts.node_id = "dedup";
    opts.subtask_index = subtask;
    opts.parallelism = parallelism;
    opts.state_dir = state_dir;
    opts.restore_from = from;
    opts.restore_id = id;
    return subtask_driver::make(*registry_.find("dedup"), **p, opts, out);
  }

  static std::unique_ptr<subtask_driver> made(result<std::unique_ptr<subtask_driver>> d) {
    EXPECT_TRUE(d.ok()) << d.err().message;
    return d.ok() ? std::move(*d) : nullptr;
  }

  /// Runs the dedup plan restored from checkpoint `id` of `storage` in `state_dir`.
  std::unique_ptr<subtask_driver> restore(const checkpoint_storage& storage, int64_t id,
                                          const std::string& state_dir, output& out) {
    return made(make_subtask(out, state_dir, 0, 1, &storage, id));
  }

  /// Runs subtask `subtask` of the dedup plan with `parallelism`, fresh, in dir_/`name`.
  std::unique_ptr<subtask_driver> snapshot_subtask(output& out, const std::string& name,
                                                   uint32_t subtask, uint32_t parallelism) {
    return made(make_subtask(out, (dir_ / name).string(), subtask, parallelism));
  }

  std::filesystem::path dir_ =
      std::filesystem::temp_directory_path() / ("vigil-dedup-test-" + std::to_string(::getpid()));
  operator_registry registry_;
  schema_ptr schema_ = make_schema({{"patient", type_id::string, true},
                                    {"code", type_id::int64, true},
                                    {"reading", type_id::float64, true}});
  std::string p1_ = "p1";
  std::string p2_ = "p2";
};

TEST_F(Dedup, PlanKeepsSchemaAndKeyOnBothPorts) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  ASSERT_EQ(h.plan().outputs.size(), 2u);
  for (const stream_info& s : h.plan().outputs) {
    EXPECT_EQ(*s.schema, *schema_);
    EXPECT_EQ(s.key_fields, std::vector<int>{0});
  }
  const operator_factory* f = registry_.find("dedup");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->traits().keyed);
  EXPECT_TRUE(f->traits().stateful);
  EXPECT_EQ(f->traits().output_ports, (strings{"out", "late"}));
}

TEST_F(Dedup, ForwardsTheFirstRecordPerKeyWithinTtl) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  h.push(0, rows({{p1_, int64_t{1}, 1.0},
                  {p1_, int64_t{2}, 2.0},   // 5000 < 1000 + 10000: duplicate.
                  {p2_, int64_t{3}, 3.0},   // Another key.
                  {p1_, int64_t{4}, 4.0},   // 11000 = 1000 + 10000: forwarded, new t0.
                  {p1_, int64_t{5}, 5.0}},  // 20999 < 21000: duplicate of 11000.
                 {1000, 5000, 5000, 11000, 20999}));
  EXPECT_EQ(h.rows(0), (strings{"p1|1|1@1000", "p2|3|3@5000", "p1|4|4@11000"}));
  h.clear_output();
  h.push(0, rows({{p1_, int64_t{6}, 6.0}, {p2_, int64_t{7}, 7.0}}, {21000, 14999}));
  EXPECT_EQ(h.rows(0), strings{"p1|6|6@21000"}) << "duplicates are caught across batches";
  EXPECT_TRUE(h.rows(1).empty());
  EXPECT_EQ(h.context().late_records, 0u);
  ASSERT_EQ(h.batches(0).size(), 1u);
  auto expected = rows({{p1_, int64_t{6}, 6.0}}, {21000});
  EXPECT_EQ(h.batches(0)[0]->key_hash, expected->key_hash) << "the output stays keyed";
}

TEST_F(Dedup, ABatchForwardedWholePassesOnUncopied) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input(), 0, 1, 4);
  const auto key = [](int i) { return std::string("k") + std::to_string(i); };
  auto all_new = rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {1000, 1000});
  h.push(0, all_new);
  ASSERT_EQ(h.batches(0).size(), 1u);
  EXPECT_EQ(h.batches(0)[0], all_new) << "nothing dropped: the batch itself goes on";

  // A duplicate after forwarded rows: those rows are copied, in order, before the rest.
  h.clear_output();
  auto with_duplicate = rows({{key(3), int64_t{3}, 3.0},
                              {key(4), int64_t{4}, 4.0},
                              {p1_, int64_t{5}, 5.0},  // A duplicate of 1000.
                              {key(5), int64_t{6}, 6.0}},
                             {2000, 2000, 2000, 2000});
  h.push(0, with_duplicate);
  EXPECT_EQ(h.rows(0), (strings{"k3|3|3@2000", "k4|4|4@2000", "k5|6|6@2000"}));
  ASSERT_EQ(h.batches(0).size(), 1u);
  auto expected =
      rows({{key(3), int64_t{3}, 3.0}, {key(4), int64_t{4}, 4.0}, {key(5), int64_t{6}, 6.0}},
           {2000, 2000, 2000});
  EXPECT_EQ(h.batches(0)[0]->key_hash, expected->key_hash);

  // A late row after a forwarded one: the same.
  h.watermark(1500);
  h.clear_output();
  h.push(0, rows({{key(6), int64_t{7}, 7.0}, {key(7), int64_t{8}, 8.0}, {key(8), int64_t{9}, 9.0}},
                 {3000, 1500, 3000}));
  EXPECT_EQ(h.rows(0), (strings{"k6|7|7@3000", "k8|9|9@3000"}));
  EXPECT_EQ(h.rows(1), strings{"k7|8|8@1500"});

  // Over the batch size (4 here): split, not passed on, although nothing is dropped.
  h.clear_output();
  std::vector<std::vector<cell>> five;
  for (int i = 10; i < 15; ++i) five.push_back({key(i), int64_t{i}, std::monostate{}});
  h.push(0, rows(five, {4000, 4000, 4000, 4000, 4000}));
  EXPECT_EQ(h.rows(0), (strings{"k10|10|null@4000", "k11|11|null@4000", "k12|12|null@4000",
                                "k13|13|null@4000", "k14|14|null@4000"}));
  EXPECT_EQ(h.batches(0).size(), 2u);  // 4 + 1 rows.
}

TEST_F(Dedup, AnEarlierRecordArrivingLaterIsADuplicate) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  h.push(0, rows({{p1_, int64_t{1}, 1.0}, {p1_, int64_t{2}, 2.0}}, {50000, 1000}));
  EXPECT_EQ(h.rows(0), strings{"p1|1|1@50000"});
}

TEST_F(Dedup, NullsAndCompositeKeys) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", num(10)}}), {{schema_, {0, 1}}});
  auto b = make_rows(schema_,
                     {{p1_, int64_t{1}, 1.0},
                      {p1_, int64_t{2}, 2.0},  // Another (patient, code): forwarded.
                      {p1_, int64_t{1}, std::monostate{}},
                      {std::monostate{}, int64_t{1}, 4.0},
                      {std::monostate{}, int64_t{1}, 5.0},  // A null key is a key: duplicate.
                      {std::monostate{}, std::monostate{}, 6.0}},
                     {1000, 1000, 2000, 1000, 1000, 1000}, {0, 1});
  h.push(0, b);
  EXPECT_EQ(h.rows(0),
            (strings{"p1|1|1@1000", "p1|2|2@1000", "null|1|4@1000", "null|null|6@1000"}));
}

TEST_F(Dedup, EmptyBatchEmitsNothing) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("1s")}}), keyed_input());
  h.push(0, rows({}, {}));
  h.watermark(1000);
  h.finish();
  EXPECT_TRUE(h.batches(0).empty());
  EXPECT_TRUE(h.batches(1).empty());
}

TEST_F(Dedup, LateRecordsGoToTheLatePort) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  h.push(0, rows({{p1_, int64_t{1}, 1.0}}, {12000}));
  h.watermark(10000);
  h.push(0, rows({{p2_, int64_t{2}, 2.0},   // At the watermark: late (lateness 0).
                  {p2_, int64_t{3}, 3.0},   // Forwarded.
                  {p1_, int64_t{4}, 4.0},   // Late although a duplicate: late wins.
                  {p1_, int64_t{5}, 5.0}},  // A duplicate of 12000.
                 {10000, 10001, 9000, 15000}));
  EXPECT_EQ(h.rows(0), (strings{"p1|1|1@12000", "p2|3|3@10001"}));
  EXPECT_EQ(h.rows(1), (strings{"p2|2|2@10000", "p1|4|4@9000"}));
  EXPECT_EQ(h.context().late_records, 2u);
}

TEST_F(Dedup, AllowedLatenessKeepsStateLongerAndDelaysLateness) {
  operator_harness h(registry_, "dedup",
                     cfg({{"ttl", str("10ms")}, {"allowed_lateness", str("5ms")}}), keyed_input());
  h.push(0, rows({{p1_, int64_t{1}, 1.0}}, {1000}));
  h.watermark(12000);
  // 8000 + 5000 > 12000: not late; 8000 < 11000: a duplicate.
  h.push(0, rows({{p1_, int64_t{2}, 2.0}}, {8000}));
  EXPECT_EQ(h.rows(0), strings{"p1|1|1@1000"});
  EXPECT_TRUE(h.rows(1).empty());
  EXPECT_EQ(state_entries(h), 1u);
  // Clean-up at 1000 + 10000 - 1 + 5000.
  h.watermark(15998);
  EXPECT_EQ(state_entries(h), 1u);
  h.watermark(15999);
  EXPECT_EQ(state_entries(h), 0u);
  EXPECT_EQ(h.context().timers->size(), 0u);
  // What could still be a duplicate of 1000 is late now.
  h.push(0, rows({{p1_, int64_t{3}, 3.0}, {p1_, int64_t{4}, 4.0}}, {10999, 11000}));
  EXPECT_EQ(h.rows(1), strings{"p1|3|3@10999"});
  EXPECT_EQ(h.rows(0), (strings{"p1|1|1@1000", "p1|4|4@11000"}));
}

TEST_F(Dedup, AllowedLatenessDefaultsToTheGraphs) {
  plan_context ctx;
  config_map config = cfg({{"ttl", str("10ms")}});
  ctx.config = &config;
  ctx.inputs = keyed_input();
  ctx.allowed_lateness_us = 3000;
  auto p = registry_.find("dedup")->plan(ctx);
  ASSERT_TRUE(p.ok()) << p.err().message;
  counting_output out;
  auto d = drive(*p, out);
  ASSERT_NE(d, nullptr);
  d->advance_watermark(10000);
  // 7001 + 3000 > 10000: not late; 7000 + 3000 <= 10000: late.
  d->process(0, rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {7001, 7000}));
  EXPECT_EQ(out.rows[0], 1u);
  EXPECT_EQ(out.rows[1], 1u);
  EXPECT_EQ(d->context().late_records, 1u);
}

TEST_F(Dedup, StateIsCleanedUpAtTheLatestForwardsCleanupTimeWithoutTimers) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  h.push(0, rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {1000, 3000}));
  EXPECT_EQ(state_entries(h), 2u);
  h.push(0, rows({{p1_, int64_t{3}, 3.0}}, {11000}));  // Forwarded: p1's t0 is now 11000.
  EXPECT_EQ(state_entries(h), 2u);
  EXPECT_EQ(h.context().timers->size(), 0u) << "the TTL state needs no timers";
  h.watermark(10999);  // p1's first t0 would have been cleaned up here; 11000 is its t0.
  EXPECT_EQ(state_entries(h), 2u);
  h.watermark(12998);
  EXPECT_EQ(state_entries(h), 2u);
  h.watermark(12999);  // p2's state (3000 + 10000 - 1) is cleaned up.
  EXPECT_EQ(state_entries(h), 1u);
  h.push(0, rows({{p2_, int64_t{4}, 4.0}}, {13000}));
  EXPECT_EQ(h.rows(0), (strings{"p1|1|1@1000", "p2|2|2@3000", "p1|3|3@11000", "p2|4|4@13000"}));
  h.finish();
  EXPECT_EQ(state_entries(h), 0u);
  EXPECT_EQ(h.context().timers->size(), 0u);
}

TEST_F(Dedup, LargeInputSplitsIntoBatchesInOrder) {
  operator_harness h(registry_, "dedup", cfg({{"ttl", str("1s")}}), keyed_input(), 0, 1, 2);
  std::vector<std::vector<cell>> in;
  std::vector<int64_t> times;
  strings want;
  for (int i = 0; i < 7; ++i) {
    std::string key = "k" + std::to_string(i % 5);
    in.push_back({key, int64_t{i}, std::monostate{}});
    times.push_back(100 + i);
    if (i < 5) want.push_back(key + "|" + std::to_string(i) + "|null@" + std::to_string(100 + i));
  }
  h.push(0, rows(in, times));
  EXPECT_EQ(h.rows(0), want);
  EXPECT_EQ(h.batches(0).size(), 3u);  // 2 + 2 + 1 rows.
}

TEST_F(Dedup, CountsDuplicates) {
  auto p =
      operator_harness::try_plan(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  ASSERT_TRUE(p.ok()) << p.err().message;
  counting_output out;
  auto d = drive(*p, out);
  ASSERT_NE(d, nullptr);
  auto& op = dynamic_cast<dedup_operator&>(d->op());
  d->process(0, rows({{p1_, int64_t{1}, 1.0},
                      {p1_, int64_t{2}, 2.0},
                      {p1_, int64_t{3}, 3.0},
                      {p2_, int64_t{4}, 4.0}},
                     {1000, 1001, 1002, 1003}));
  EXPECT_EQ(op.duplicates(), 2u);
  EXPECT_EQ(out.rows[0], 2u);
  d->advance_watermark(5000);
  d->process(0, rows({{p1_, int64_t{5}, 5.0}}, {4000}));  // Late, not counted as a duplicate.
  EXPECT_EQ(op.duplicates(), 2u);
  EXPECT_EQ(out.rows[1], 1u);
  EXPECT_EQ(d->context().late_records, 1u);
  EXPECT_TRUE(d->finish().ok());
}

TEST_F(Dedup, FirstSeenTimesExpireAtTheirCleanupTimeAfterARestore) {
  auto p =
      operator_harness::try_plan(registry_, "dedup", cfg({{"ttl", str("10ms")}}), keyed_input());
  ASSERT_TRUE(p.ok()) << p.err().message;
  checkpoint_storage storage(dir_ / "checkpoints");
  {
    counting_output out;
    subtask_driver::options opts;
    opts.node_id = "dedup";
    opts.state_dir = (dir_ / "first").string();
    auto d = subtask_driver::make(*registry_.find("dedup"), **p, opts, out);
    ASSERT_TRUE(d.ok()) << d.err().message;
    (*d)->advance_watermark(500);
    (*d)->process(0, rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {1000, 3000}));
    ASSERT_EQ(out.rows[0], 2u);
    ASSERT_TRUE((*d)->snapshot(1, storage, "dedup-0").ok());
    ASSERT_TRUE(storage.complete(1, "{}").ok());
  }
  collecting_output out;
  auto d = restore(storage, 1, (dir_ / "second").string(), out);
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(dynamic_cast<dedup_operator&>(d->op()).legacy_mode());
  // Before the first watermark after the restore every first-seen time is visible.
  d->process(0, rows({{p1_, int64_t{3}, 3.0}}, {10999}));
  d->advance_watermark(10998);
  EXPECT_EQ(state_entries(*d->context().state), 2u);
  d->process(0, rows({{p1_, int64_t{4}, 4.0}}, {10999}));
  EXPECT_TRUE(out.rows[0].empty()) << "duplicates of 1000 until its cleanup time 10999";
  d->advance_watermark(10999);
  EXPECT_EQ(state_entries(*d->context().state), 1u);
  d->advance_watermark(12999);
  EXPECT_EQ(state_entries(*d->context().state), 0u);
  d->process(0, rows({{p1_, int64_t{5}, 5.0}, {p2_, int64_t{6}, 6.0}}, {13000, 13000}));
  EXPECT_EQ(out.rows[0], (strings{"p1|5|5@13000", "p2|6|6@13000"}));
  EXPECT_EQ(d->context().timers->size(), 0u);
}

TEST_F(Dedup, ARestoreGoesOnFromTheWatermarkOfItsSnapshot) {
  checkpoint_storage storage(dir_ / "checkpoints");
  {
    counting_output out;
    auto d = snapshot_subtask(out, "first", 0, 1);
    ASSERT_NE(d, nullptr);
    d->process(0, rows({{p1_, int64_t{1}, 1.0}}, {1000}));
    d->advance_watermark(20000);  // p1's t0 1000 is cleaned up at 10999.
    ASSERT_TRUE(d->snapshot(1, storage, "dedup-0").ok());
    ASSERT_TRUE(storage.complete(1, "{}").ok());
  }
  collecting_output out;
  const auto second = dir_ / "second";
  auto d = restore(storage, 1, second.string(), out);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->context().watermark, 20000);
  EXPECT_FALSE(std::filesystem::exists(second / "VIGIL-WATERMARK"));
  // Before any watermark reaches the restored subtask, a record that was late before the
  // snapshot is late still: the late port, not forwarded as a key never seen.
  d->process(0, rows({{p1_, int64_t{2}, 2.0}, {p2_, int64_t{3}, 3.0}}, {1500, 20001}));
  EXPECT_EQ(out.rows[1], strings{"p1|2|2@1500"});
  EXPECT_EQ(out.rows[0], strings{"p2|3|3@20001"});
  EXPECT_EQ(d->context().late_records, 1u);
  EXPECT_EQ(state_entries(*d->context().state), 1u);
  EXPECT_TRUE(d->finish().ok());
}

TEST_F(Dedup, ARescaledRestoreGoesOnFromTheLowestWatermarkOfItsSnapshots) {
  checkpoint_storage storage(dir_ / "checkpoints");
  const int64_t watermarks[] = {20000, 7000, 15000};  // The lowest neither first nor last.
  for (uint32_t j = 0; j < 3; ++j) {
    counting_output out;
    auto d = snapshot_subtask(out, "old-" + std::to_string(j), j, 3);
    ASSERT_NE(d, nullptr);
    d->advance_watermark(watermarks[j]);
    ASSERT_TRUE(d->snapshot(1, storage, "dedup-" + std::to_string(j)).ok());
  }
  ASSERT_TRUE(
      storage.complete(1, R"({"max_parallelism":128,"nodes":[{"id":"dedup","parallelism":3}]})")
          .ok());
  {
    collecting_output out;
    auto d = restore(storage, 1, (dir_ / "merged").string(), out);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->context().watermark, 7000);
    d->process(0, rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {7000, 7001}));
    EXPECT_EQ(out.rows[1], strings{"p1|1|1@7000"});
    EXPECT_EQ(out.rows[0], strings{"p2|2|2@7001"});
  }
  // One merged snapshot without a watermark (an older one) leaves it unknown: the minimum.
  const auto file = [&](uint32_t j) {
    return storage.checkpoint_dir(1) / ("dedup-" + std::to_string(j)) / "VIGIL-WATERMARK";
  };
  ASSERT_TRUE(std::filesystem::remove(file(2)));
  {
    counting_output out;
    auto d = restore(storage, 1, (dir_ / "mixed").string(), out);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->context().watermark, min_watermark);
  }
  // A snapshot file that is not a watermark is refused, named.
  { std::ofstream(storage.checkpoint_dir(1) / "dedup-1" / "VIGIL-WATERMARK") << "soon"; }
  counting_output out;
  auto d = make_subtask(out, (dir_ / "refused").string(), 0, 1, &storage, 1);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("VIGIL-WATERMARK: not a watermark: 'soon'"), std::string::npos)
      << d.err().message;
}

TEST_F(Dedup, RestoresACheckpointOfTheEarlierTimerLayout) {
  // The earlier layout, as its code wrote it (ttl 10ms, no allowed lateness): t0 in the value
  // state "dedup_first_seen" and an event-time timer at t0 + ttl - 1 that erases it.
  checkpoint_storage storage(dir_ / "checkpoints");
  {
    state_backend::options o;
    o.directory = (dir_ / "old").string();
    auto state = state_backend::open(o);
    ASSERT_TRUE(state.ok()) << state.err().message;
    auto timers = timer_service::make(**state);
    ASSERT_TRUE(timers.ok()) << timers.err().message;
    auto id = (*state)->declare("dedup_first_seen", state_backend::kind::value);
    ASSERT_TRUE(id.ok()) << id.err().message;
    auto first = rows({{p1_, int64_t{1}, 1.0}, {p2_, int64_t{2}, 2.0}}, {1000, 3000});
    std::string key;
    std::string value;
    for (size_t r = 0; r < first->num_rows(); ++r) {
      key.clear();
      encode_key(*first, {0}, r, key);
      (*state)->set_current_key(key_group_of(first->key_hash[r], 128), key);
      value.clear();
      put_i64_ordered(value, first->event_time[r]);
      (*state)->put(*id, 0, value);
      (*timers)->register_event_timer(first->event_time[r] + 10000 - 1);
    }
    const std::string local = (dir_ / "old.chk").string();
    (*timers)->write_to_state();
    auto identity = (*state)->checkpoint_to(local);
    ASSERT_TRUE(identity.ok()) << identity.err().message;
    ASSERT_TRUE(storage.store_state(1, "dedup-0", local, *identity).ok());
    ASSERT_TRUE(storage.complete(1, "{}").ok());
  }

  collecting_output out;
  auto d = restore(storage, 1, (dir_ / "new").string(), out);
  ASSERT_NE(d, nullptr);
  auto& op = dynamic_cast<dedup_operator&>(d->op());
  EXPECT_TRUE(op.legacy_mode());
  EXPECT_EQ(d->context().watermark, min_watermark) << "a snapshot without a watermark";
  state_backend& state = *d->context().state;
  EXPECT_EQ(legacy_entries(state), 2u);
  d->process(0, rows({{p1_, int64_t{3}, 3.0},
                      {p2_, int64_t{4}, 4.0},
                      {p1_, int64_t{5}, 5.0},
                      {std::string("p3"), int64_t{6}, 6.0}},
                     {5000, 12999, 10999, 4000}));
  EXPECT_EQ(out.rows[0], strings{"p3|6|6@4000"}) << "duplicates of the old t0s are dropped";
  EXPECT_EQ(op.duplicates(), 3u);
  // Past p1's old t0 + ttl: forwarded, and its old entry and timer go as they did before.
  d->process(0, rows({{p1_, int64_t{7}, 7.0}}, {11000}));
  EXPECT_EQ(legacy_entries(state), 1u);
  EXPECT_EQ(d->context().timers->size(), 1u);
  EXPECT_EQ(d->context().timers->next(timer_service::domain::event_time), 12999);
  d->advance_watermark(12998);
  EXPECT_TRUE(op.legacy_mode());
  // p2's old entry lives until its cleanup time 12999; p1's t0 is 11000 now (new state).
  d->process(0, rows({{p2_, int64_t{8}, 8.0}, {p1_, int64_t{9}, 9.0}}, {12999, 20999}));
  EXPECT_EQ(out.rows[0], (strings{"p3|6|6@4000", "p1|7|7@11000"}));
  EXPECT_EQ(op.duplicates(), 5u);
  d->advance_watermark(12999);  // The last old timer fires.
  EXPECT_FALSE(op.legacy_mode());
  EXPECT_EQ(legacy_entries(state), 0u);
  EXPECT_EQ(d->context().timers->size(), 0u);
  d->process(0, rows({{p2_, int64_t{10}, 10.0}, {p1_, int64_t{11}, 11.0}}, {13000, 20999}));
  EXPECT_EQ(out.rows[0], (strings{"p3|6|6@4000", "p1|7|7@11000", "p2|10|10@13000"}));
  EXPECT_TRUE(out.rows[1].empty());
  EXPECT_TRUE(d->finish().ok());
}

TEST_F(Dedup, RefusedConfigsNameTheKey) {
  EXPECT_NE(plan_error({}).find("config.ttl"), std::string::npos) << plan_error({});
  for (const config_value& bad : {str("0s"), str("soon"), num(-5), config_value::of_bool(true)}) {
    std::string e = plan_error(cfg({{"ttl", bad}}));
    EXPECT_NE(e.find("config.ttl"), std::string::npos) << e;
  }
  std::string e = plan_error(cfg({{"ttl", str("1s")}, {"allowed_lateness", str("-1s")}}));
  EXPECT_NE(e.find("config.allowed_lateness"), std::string::npos) << e;
  e = plan_error(cfg({{"ttl", str("1s")}, {"tll", str("1s")}}));
  EXPECT_NE(e.find("config.tll"), std::string::npos) << e;
}

TEST_F(Dedup, RefusesAnUnkeyedInput) {
  auto p =
      operator_harness::try_plan(registry_, "dedup", cfg({{"ttl", str("1s")}}), {{schema_, {}}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.err().code, errc::invalid_graph);
  EXPECT_NE(p.err().message.find("key_by"), std::string::npos) << p.err().message;
}

}  // namespace
}  // namespace vigil
