#include "operators/kafka/sink/sink_wal.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "operators/kafka/sink/progress_marker.hpp"

namespace vigil::kafka {
namespace {

wal_epoch make_epoch(
    int64_t id, const std::vector<std::pair<std::optional<std::string>, std::string>>& messages) {
  wal_epoch e;
  e.epoch = id;
  for (const auto& [key, value] : messages) {
    if (key) {
      e.begin_key();
      e.buffer() += *key;
    }
    e.begin_value();
    e.buffer() += value;
    e.end_message();
  }
  return e;
}

std::vector<std::string> contents(const wal_epoch& e) {
  std::vector<std::string> out;
  e.for_each([&](std::optional<std::string_view> key, std::string_view value) {
    out.push_back((key ? "[" + std::string(*key) + "]" : std::string("-")) + std::string(value));
    return true;
  });
  return out;
}

TEST(SinkWal, EpochKeepsMessagesWithAndWithoutKeys) {
  auto e = make_epoch(3, {{"k1", "v1"}, {std::nullopt, "v2"}, {"", ""}, {"key", "{}"}});
  EXPECT_EQ(e.size(), 4u);
  EXPECT_EQ(contents(e), (std::vector<std::string>{"[k1]v1", "-v2", "[]", "[key]{}"}));
}

TEST(SinkWal, ForEachStopsWhenAsked) {
  auto e = make_epoch(1, {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  int seen = 0;
  EXPECT_FALSE(e.for_each([&](auto, auto) { return ++seen < 2; }));
  EXPECT_EQ(seen, 2);
}

TEST(SinkWal, StateRoundTrips) {
  std::vector<wal_epoch> pending;
  pending.push_back(make_epoch(4, {{"k", "v"}, {std::nullopt, std::string("x\0y", 3)}}));
  pending.push_back(make_epoch(5, {}));
  pending.push_back(make_epoch(7, {{std::nullopt, "only"}}));
  std::string bytes;
  encode_sink_state(bytes, "job/sink/3", 3, "00000000deadbeef", 7, pending);
  auto st = decode_sink_state(bytes);
  ASSERT_TRUE(st.ok()) << st.err().message;
  EXPECT_EQ(st->sink_id, "job/sink/3");
  EXPECT_EQ(st->subtask, 3);
  EXPECT_EQ(st->run, "00000000deadbeef");
  EXPECT_EQ(st->last_checkpoint_id, 7);
  ASSERT_EQ(st->pending.size(), 3u);
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_EQ(st->pending[i].epoch, pending[i].epoch);
    EXPECT_EQ(contents(st->pending[i]), contents(pending[i]));
  }
}

TEST(SinkWal, RefusesOtherVersionsAndDamagedBytes) {
  std::vector<wal_epoch> pending;
  pending.push_back(make_epoch(2, {{"k", "value"}}));
  std::string bytes;
  encode_sink_state(bytes, "job/sink/0", 0, "run", 2, pending);

  std::string v3 = bytes;
  v3[4] = 3;
  auto st = decode_sink_state(v3);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::state_error);
  EXPECT_NE(st.err().message.find("version 3 is not supported"), std::string::npos)
      << st.err().message;

  auto other = decode_sink_state("{\"epoch\":1}");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.err().message.find("bad magic"), std::string::npos) << other.err().message;

  for (size_t cut = 4; cut < bytes.size(); ++cut) {
    auto t = decode_sink_state(std::string_view(bytes).substr(0, cut));
    EXPECT_FALSE(t.ok()) << "truncated to " << cut;
  }
  auto trailing = decode_sink_state(bytes + "x");
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.err().message.find("trailing"), std::string::npos);
}

// Checkpoints of earlier builds (version 1: no writer sink id and subtask) stay readable.
TEST(SinkWal, ReadsVersionOneStates) {
  std::vector<wal_epoch> pending;
  pending.push_back(make_epoch(3, {{"k", "v1"}, {std::nullopt, "v2"}}));
  std::string v2;
  encode_sink_state(v2, "job/sink/1", 1, "00000000000000aa", 3, pending);
  // Version 1 is version 2 without the u32 sink id size, the sink id and the u32 subtask.
  const size_t id_size = std::string("job/sink/1").size();
  std::string v1 = v2.substr(0, 4) + std::string("\x01\0\0\0", 4) + v2.substr(8 + 4 + id_size + 4);
  auto st = decode_sink_state(v1);
  ASSERT_TRUE(st.ok()) << st.err().message;
  EXPECT_EQ(st->sink_id, "");
  EXPECT_EQ(st->subtask, -1);
  EXPECT_EQ(st->run, "00000000000000aa");
  EXPECT_EQ(st->last_checkpoint_id, 3);
  ASSERT_EQ(st->pending.size(), 1u);
  EXPECT_EQ(contents(st->pending[0]), contents(pending[0]));
  for (size_t cut = 4; cut < v1.size(); ++cut) {
    EXPECT_FALSE(decode_sink_state(std::string_view(v1).substr(0, cut)).ok()) << cut;
  }
}

TEST(ProgressMarker, RoundTripsAndRefusesOtherText) {
  progress_marker m{"job/sink/1", 42, "0123456789abcdef", "fedcba9876543210", 17, true};
  auto back = parse_marker(encode_marker(m));
  ASSERT_TRUE(back.ok()) << back.err().message;
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(parse_marker("not json").ok());
  EXPECT_FALSE(parse_marker(R"({"sink":"s","epoch":"x"})").ok());
  EXPECT_EQ(to_hex64(0xabc), "0000000000000abc");
  EXPECT_EQ(random_id().size(), 16u);
  EXPECT_NE(random_id(), random_id());
}

}  // namespace
}  // namespace vigil::kafka
