#include "runtime/state_backend.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/utilities/debug.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "common/key.hpp"

namespace vigil {
namespace {

/// An encode_key()-style encoding of an int64 key: present byte + ordered int64.
std::string int_key(int64_t v) {
  std::string k(1, '\1');
  put_i64_ordered(k, v);
  return k;
}

/// xorshift64: the tests' deterministic pseudo-random sequence.
struct xorshift64 {
  uint64_t x;
  uint64_t next() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  }
  /// The next value modulo n.
  uint64_t below(uint64_t n) { return next() % n; }
};

class state_backend_test : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-state-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    open(true);
  }

  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// Opens a backend in `dir` with a write-back cache of `cache_bytes`; null after a test
  /// failure naming the error.
  static std::unique_ptr<state_backend> open_backend(
      const std::string& dir, bool fresh,
      size_t cache_bytes = state_backend::options{}.write_buffer_bytes) {
    state_backend::options o;
    o.directory = dir;
    o.fresh = fresh;
    o.write_buffer_bytes = cache_bytes;
    auto st = state_backend::open(o);
    EXPECT_TRUE(st.ok()) << st.err().message;
    return st.ok() ? std::move(*st) : nullptr;
  }

  /// Reopens state_ in dir_ (see open_backend()).
  void open(bool fresh, size_t cache_bytes = state_backend::options{}.write_buffer_bytes) {
    state_.reset();
    state_ = open_backend(dir_.string(), fresh, cache_bytes);
    ASSERT_NE(state_, nullptr);
  }

  /// Copies checkpoint directory `chk` to `chk` + ".restored", as a restore would, replacing an
  /// earlier copy; returns the copy.
  static std::string restored_copy(const std::filesystem::path& chk) {
    auto copy = chk.string() + ".restored";
    std::filesystem::remove_all(copy);
    std::filesystem::copy(chk, copy, std::filesystem::copy_options::recursive);
    return copy;
  }

  state_backend::state_id declare(
      std::string_view name, state_backend::kind k, int64_t ttl_us = 0,
      state_backend::ttl_clock c = state_backend::ttl_clock::event_time) {
    auto id = state_->declare(name, k, ttl_us, c);
    EXPECT_TRUE(id.ok()) << id.err().message;
    return id.ok() ? *id : 0;
  }

  std::vector<std::string> list(state_backend::state_id id) {
    std::vector<std::string> out;
    state_->list_scan(id, [&](std::string_view e) {
      out.emplace_back(e);
      return true;
    });
    return out;
  }

  std::vector<std::pair<std::string, std::string>> map(state_backend::state_id id) {
    std::vector<std::pair<std::string, std::string>> out;
    state_->map_scan(id, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    return out;
  }

  /// Closes the backend and lists every version RocksDB keeps of every data key (puts and
  /// tombstones, not only live values) as "type:state id:key group", in key order.
  std::vector<std::string> close_and_list_versions() {
    state_.reset();
    rocksdb::Options o;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, dir_.string(), &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    std::unique_ptr<rocksdb::DB> db(raw);
    std::vector<rocksdb::KeyVersion> versions;
    s = rocksdb::GetAllKeyVersions(db.get(), std::string(4, '\0'), std::string(2, '\xfe'), 1 << 20,
                                   &versions);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<std::string> out;
    for (const auto& v : versions) {
      auto byte = [&](size_t i) { return static_cast<uint8_t>(v.user_key[i]); };
      out.push_back(v.GetTypeName() + ":" + std::to_string(byte(2) << 8 | byte(3)) + ":" +
                    std::to_string(byte(0) << 8 | byte(1)));
    }
    return out;
  }

  std::string get(state_backend::state_id id, int64_t ns = 0) {
    std::string v;
    return state_->get(id, ns, v) ? v : "<absent>";
  }

  /// The model of the randomized tests: (key, namespace or -1 for a map entry, user key) ->
  /// value.
  using model_t = std::map<std::tuple<int, int64_t, std::string>, std::string>;

  /// One write of the randomized tests to state_ (at key `k`, set as current) and `model`:
  /// `op` 0 and 1 put value state, 2 erases it, 3 puts a map entry, 4 erases one.
  void apply_write(uint64_t op, state_backend::state_id v, state_backend::state_id m,
                   model_t& model, int k, int64_t ns, const std::string& uk,
                   const std::string& value) {
    switch (op) {
      case 0:
      case 1:
        state_->put(v, ns, value);
        model[{k, ns, ""}] = value;
        break;
      case 2:
        state_->erase(v, ns);
        model.erase({k, ns, ""});
        break;
      case 3:
        // The model knows whether the entry is new: say so, as an exact index would.
        if (model.contains({k, -1, uk})) {
          state_->map_put(m, uk, value);
        } else {
          state_->map_put_new(m, uk, value);
        }
        model[{k, -1, uk}] = value;
        break;
      case 4:
        state_->map_erase(m, uk);
        model.erase({k, -1, uk});
        break;
      default:
        break;
    }
  }

  /// Checks that `b` holds what `model` says for keys [0, keys), key k in key group
  /// k % key_groups: the value state at namespaces 0..2 and the whole map.
  static void expect_model(state_backend& b, state_backend::state_id v, state_backend::state_id m,
                           const model_t& model, int keys, int key_groups) {
    for (int k = 0; k < keys; ++k) {
      b.set_current_key(static_cast<uint32_t>(k % key_groups), int_key(k));
      for (int64_t ns = 0; ns < 3; ++ns) {
        auto it = model.find({k, ns, ""});
        std::string got;
        ASSERT_EQ(b.get(v, ns, got) ? got : "<absent>", it == model.end() ? "<absent>" : it->second)
            << k << "/" << ns;
      }
      std::vector<std::pair<std::string, std::string>> want;
      for (auto it = model.lower_bound({k, -1, ""});
           it != model.end() && std::get<0>(it->first) == k && std::get<1>(it->first) == -1; ++it) {
        want.emplace_back(std::get<2>(it->first), it->second);
      }
      std::vector<std::pair<std::string, std::string>> got;
      b.map_scan(m, [&](std::string_view uk, std::string_view value) {
        got.emplace_back(uk, value);
        return true;
      });
      ASSERT_EQ(got, want) << k;
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<state_backend> state_;
};

TEST_F(state_backend_test, OpenWithoutDirectoryFails) {
  state_backend::options o;
  auto st = state_backend::open(o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
}

TEST_F(state_backend_test, DeclareIsIdempotentAndChecksKind) {
  auto a = declare("a", state_backend::kind::value);
  auto b = declare("b", state_backend::kind::map);
  EXPECT_NE(a, b);
  EXPECT_EQ(declare("a", state_backend::kind::value), a);
  auto wrong = state_->declare("a", state_backend::kind::list);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.err().code, errc::state_error);
  EXPECT_NE(wrong.err().message.find("'a'"), std::string::npos) << wrong.err().message;
  auto ttl_changed = state_->declare("a", state_backend::kind::value, 1000);
  EXPECT_FALSE(ttl_changed.ok());
}

TEST_F(state_backend_test, ReservedNamesGetReservedIds) {
  auto user = declare("count", state_backend::kind::value);
  auto runtime = declare("__timers", state_backend::kind::map);
  EXPECT_LT(user, 0xff00);
  EXPECT_GE(runtime, 0xff00);
}

TEST_F(state_backend_test, ValueRoundTripWithNamespaces) {
  auto id = declare("v", state_backend::kind::value);
  state_->set_current_key(3, int_key(1));
  EXPECT_EQ(get(id), "<absent>");
  state_->put(id, 0, "zero");
  state_->put(id, -5, "minus five");
  state_->put(id, 1000, "thousand");
  EXPECT_EQ(get(id, 0), "zero");
  EXPECT_EQ(get(id, -5), "minus five");
  EXPECT_EQ(get(id, 1000), "thousand");
  EXPECT_EQ(get(id, 1), "<absent>");
  state_->put(id, 0, "replaced");
  EXPECT_EQ(get(id, 0), "replaced");
  state_->erase(id, 0);
  EXPECT_EQ(get(id, 0), "<absent>");
  EXPECT_EQ(get(id, -5), "minus five");
  state_->put(id, 7, "");
  EXPECT_EQ(get(id, 7), "") << "an empty value is present";
}

TEST_F(state_backend_test, CurrentKeyIsCopied) {
  std::string key = int_key(42);
  state_->set_current_key(9, key);
  key = "changed";
  EXPECT_EQ(state_->current_key(), int_key(42));
  EXPECT_EQ(state_->current_key_group(), 9u);
}

TEST_F(state_backend_test, KeysKeyGroupsAndStatesAreIsolated) {
  auto a = declare("a", state_backend::kind::value);
  auto b = declare("b", state_backend::kind::value);
  state_->set_current_key(1, int_key(1));
  state_->put(a, 0, "a-kg1-k1");
  state_->put(b, 0, "b-kg1-k1");
  state_->set_current_key(1, int_key(2));
  state_->put(a, 0, "a-kg1-k2");
  state_->set_current_key(2, int_key(1));
  state_->put(a, 0, "a-kg2-k1");

  state_->set_current_key(1, int_key(1));
  EXPECT_EQ(get(a), "a-kg1-k1");
  EXPECT_EQ(get(b), "b-kg1-k1");
  state_->set_current_key(1, int_key(2));
  EXPECT_EQ(get(a), "a-kg1-k2");
  EXPECT_EQ(get(b), "<absent>");
  state_->set_current_key(2, int_key(1));
  EXPECT_EQ(get(a), "a-kg2-k1");
  EXPECT_EQ(get(b), "<absent>");
  state_->set_current_key(3, int_key(1));
  EXPECT_EQ(get(a), "<absent>");
}

TEST_F(state_backend_test, MapRoundTripInUserKeyOrder) {
  auto id = declare("m", state_backend::kind::map);
  auto other = declare("other", state_backend::kind::map);
  state_->set_current_key(5, int_key(1));
  state_->map_put(id, "b", "2");
  state_->map_put(id, "a", "1");
  state_->map_put(id, "c", "3");
  state_->map_put(other, "a", "other");
  state_->set_current_key(5, int_key(2));
  state_->map_put(id, "a", "k2");
  state_->set_current_key(6, int_key(1));
  state_->map_put(id, "a", "kg6");

  state_->set_current_key(5, int_key(1));
  std::string v;
  EXPECT_TRUE(state_->map_get(id, "b", v));
  EXPECT_EQ(v, "2");
  EXPECT_FALSE(state_->map_get(id, "d", v));
  using kv = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(map(id), (kv{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  state_->map_erase(id, "b");
  state_->map_put(id, "c", "33");
  EXPECT_EQ(map(id), (kv{{"a", "1"}, {"c", "33"}}));
  EXPECT_EQ(map(other), (kv{{"a", "other"}}));

  int seen = 0;
  state_->map_scan(id, [&](std::string_view, std::string_view) { return ++seen < 1; });
  EXPECT_EQ(seen, 1) << "map_scan stops when fn returns false";

  state_->set_current_key(5, int_key(2));
  EXPECT_EQ(map(id), (kv{{"a", "k2"}}));
  state_->set_current_key(7, int_key(1));
  EXPECT_TRUE(map(id).empty());
}

TEST_F(state_backend_test, MapScanMayWriteDuringTheScan) {
  auto id = declare("m", state_backend::kind::map);
  state_->set_current_key(0, int_key(1));
  for (std::string k : {"a", "b", "c"}) state_->map_put(id, k, "x");
  state_->map_scan(id, [&](std::string_view k, std::string_view) {
    state_->map_erase(id, k);
    return true;
  });
  EXPECT_TRUE(map(id).empty());
}

TEST_F(state_backend_test, ListAppendsInOrderAndClears) {
  auto id = declare("l", state_backend::kind::list);
  state_->set_current_key(1, int_key(1));
  EXPECT_TRUE(list(id).empty());
  state_->list_add(id, "one");
  state_->list_add(id, "");
  state_->list_add(id, std::string(300, 'x'));  // A length prefix of two bytes.
  state_->list_add(id, "four");
  state_->set_current_key(1, int_key(2));
  state_->list_add(id, "other key");

  state_->set_current_key(1, int_key(1));
  EXPECT_EQ(list(id), (std::vector<std::string>{"one", "", std::string(300, 'x'), "four"}));
  int seen = 0;
  state_->list_scan(id, [&](std::string_view) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
  state_->list_clear(id);
  EXPECT_TRUE(list(id).empty());
  state_->list_add(id, "again");
  EXPECT_EQ(list(id), std::vector<std::string>{"again"});
  state_->set_current_key(1, int_key(2));
  EXPECT_EQ(list(id), std::vector<std::string>{"other key"});
}

TEST_F(state_backend_test, ListSurvivesFlushAndCompaction) {
  auto id = declare("l", state_backend::kind::list);
  state_->set_current_key(1, int_key(1));
  state_->list_add(id, "a");
  state_->list_add(id, "b");
  ASSERT_TRUE(state_->compact().ok());
  state_->list_add(id, "c");
  ASSERT_TRUE(state_->compact().ok());
  state_->list_add(id, "d");
  EXPECT_EQ(list(id), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_F(state_backend_test, ScanAllReturnsKeyGroupsInOrder) {
  auto v = declare("v", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map);
  auto l = declare("l", state_backend::kind::list);
  // Written out of order, interleaved with other states.
  for (uint32_t kg : {90u, 3u, 127u, 0u, 45u}) {
    state_->set_current_key(kg, int_key(kg));
    state_->put(v, 1, "v" + std::to_string(kg));
    state_->map_put(m, "u", "m" + std::to_string(kg));
    state_->list_add(l, "l" + std::to_string(kg));
    state_->list_add(l, "l" + std::to_string(kg) + "b");
  }
  ASSERT_TRUE(state_->compact().ok());
  state_->set_current_key(45, int_key(1000));  // A second key in key group 45, in the memtable.
  state_->put(v, 1, "v45b");

  std::vector<std::tuple<uint32_t, std::string, std::string>> seen;
  state_->scan_all(v, [&](uint32_t kg, std::string_view key_and_suffix, std::string_view value) {
    seen.emplace_back(kg, std::string(key_and_suffix), std::string(value));
    return true;
  });
  auto vkey = [](int64_t k) {
    std::string s = int_key(k);
    put_i64_ordered(s, 1);
    return s;
  };
  using row = std::tuple<uint32_t, std::string, std::string>;
  EXPECT_EQ(seen, (std::vector<row>{{0, vkey(0), "v0"},
                                    {3, vkey(3), "v3"},
                                    {45, vkey(45), "v45"},
                                    {45, vkey(1000), "v45b"},
                                    {90, vkey(90), "v90"},
                                    {127, vkey(127), "v127"}}));

  std::vector<std::string> lists;
  state_->scan_all(l, [&](uint32_t, std::string_view key, std::string_view value) {
    EXPECT_EQ(key.size(), 9u);
    lists.emplace_back(value);
    return true;
  });
  EXPECT_EQ(lists, (std::vector<std::string>{"l0", "l0b", "l3", "l3b", "l45", "l45b", "l90", "l90b",
                                             "l127", "l127b"}));

  int maps = 0;
  state_->scan_all(m, [&](uint32_t, std::string_view, std::string_view) { return ++maps < 2; });
  EXPECT_EQ(maps, 2) << "scan_all stops when fn returns false";
}

TEST_F(state_backend_test, TtlHidesExpiredValuesOnRead) {
  auto v = declare("v", state_backend::kind::value, 100);
  auto m = declare("m", state_backend::kind::map, 100);
  auto l = declare("l", state_backend::kind::list, 100);
  auto plain = declare("plain", state_backend::kind::value);
  state_->advance_clocks(1000, 0);
  state_->set_current_key(1, int_key(1));
  state_->put(v, 0, "early");  // Expires at 1100.
  state_->map_put(m, "k", "early");
  state_->list_add(l, "early");
  state_->put(plain, 0, "forever");
  state_->advance_clocks(1050, 0);
  state_->list_add(l, "late");  // Expires at 1150.
  state_->map_put(m, "k2", "late");

  state_->advance_clocks(1099, 0);
  EXPECT_EQ(get(v), "early");
  EXPECT_EQ(list(l), (std::vector<std::string>{"early", "late"}));
  state_->advance_clocks(1100, 0);
  EXPECT_EQ(get(v), "<absent>");
  std::string out;
  EXPECT_FALSE(state_->map_get(m, "k", out));
  EXPECT_TRUE(state_->map_get(m, "k2", out));
  EXPECT_EQ(out, "late");
  using kv = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(map(m), (kv{{"k2", "late"}}));
  EXPECT_EQ(list(l), std::vector<std::string>{"late"});
  EXPECT_EQ(get(plain), "forever");
  int all = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view) { return ++all > 0; });
  EXPECT_EQ(all, 0);

  state_->put(v, 0, "rewritten");  // A write restarts the TTL: expires at 1200.
  EXPECT_EQ(get(v), "rewritten");
  state_->advance_clocks(1200, 0);
  EXPECT_EQ(get(v), "<absent>");
}

TEST_F(state_backend_test, TtlUsesTheDeclaredClock) {
  auto ev = declare("ev", state_backend::kind::value, 100);
  auto pt =
      declare("pt", state_backend::kind::value, 100, state_backend::ttl_clock::processing_time);
  state_->advance_clocks(1000, 5000);
  state_->set_current_key(1, int_key(1));
  state_->put(ev, 0, "e");
  state_->put(pt, 0, "p");
  state_->advance_clocks(1100, 5050);
  EXPECT_EQ(get(ev), "<absent>");
  EXPECT_EQ(get(pt), "p");
  state_->advance_clocks(1100, 5100);
  EXPECT_EQ(get(pt), "<absent>");
}

TEST_F(state_backend_test, ValuesWrittenBeforeTheFirstClockAdvanceDoNotExpire) {
  auto v = declare("v", state_backend::kind::value, 100);
  state_->set_current_key(1, int_key(1));
  state_->put(v, 0, "x");
  state_->advance_clocks(1'000'000, 1'000'000);
  EXPECT_EQ(get(v), "x");
}

TEST_F(state_backend_test, PutExpiringIsVisibleWhileTheClockIsBelowItsExpiry) {
  auto v = declare("v", state_backend::kind::value, 100);
  auto pt =
      declare("pt", state_backend::kind::value, 100, state_backend::ttl_clock::processing_time);
  state_->set_current_key(1, int_key(1));
  // Before the clocks' first advance every expiry but INT64_MIN is still ahead.
  state_->put_expiring(v, 0, "a", -5);
  state_->put_expiring(v, 1, "b", 5000);  // Far beyond clock + ttl: the ttl plays no part.
  state_->put_expiring(pt, 0, "p", 2000);
  EXPECT_EQ(get(v, 0), "a");
  EXPECT_EQ(get(v, 1), "b");
  EXPECT_EQ(get(pt, 0), "p");
  state_->advance_clocks(-6, 1999);
  EXPECT_EQ(get(v, 0), "a");
  EXPECT_EQ(get(pt, 0), "p");
  state_->advance_clocks(-5, 1999);
  EXPECT_EQ(get(v, 0), "<absent>");
  EXPECT_EQ(get(v, 1), "b");
  state_->advance_clocks(4999, 2000);
  EXPECT_EQ(get(v, 1), "b") << "the event-time clock alone decides for v";
  EXPECT_EQ(get(pt, 0), "<absent>") << "the processing-time clock decides for pt";
  int live = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view value) {
    EXPECT_EQ(value, "b");
    return ++live > 0;
  });
  EXPECT_EQ(live, 1);
  state_->advance_clocks(5000, 2000);
  EXPECT_EQ(get(v, 1), "<absent>");
  live = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view) { return ++live > 0; });
  EXPECT_EQ(live, 0);

  // put() and put_expiring() replace each other's expiry.
  state_->put(v, 1, "c");  // Expires at 5100.
  state_->put_expiring(v, 1, "d", 5001);
  state_->advance_clocks(5001, 2000);
  EXPECT_EQ(get(v, 1), "<absent>");
  state_->put_expiring(v, 1, "e", 6000);
  state_->put(v, 1, "f");
  state_->advance_clocks(5100, 2000);
  EXPECT_EQ(get(v, 1), "f");
  state_->advance_clocks(5101, 2000);
  EXPECT_EQ(get(v, 1), "<absent>");
}

TEST_F(state_backend_test, CompactionRemovesExpiredEntries) {
  auto v = declare("v", state_backend::kind::value, 100);
  auto l = declare("l", state_backend::kind::list, 100);
  auto m = declare("m", state_backend::kind::map, 100);
  auto plain = declare("plain", state_backend::kind::value);
  std::string big;  // Incompressible, so that sizes reflect the entries.
  xorshift64 rng{0x9e3779b97f4a7c15ull};
  state_->advance_clocks(1000, 0);
  for (int k = 0; k < 2000; ++k) {
    big.clear();
    for (int i = 0; i < 1000; ++i) big.push_back(static_cast<char>(rng.next()));
    state_->set_current_key(k % 128, int_key(k));
    state_->put(v, 0, big);
    state_->list_add(l, big);
    state_->map_put(m, "u", big);
  }
  state_->set_current_key(0, int_key(0));
  state_->put(plain, 0, "kept");
  state_->advance_clocks(1050, 0);
  state_->set_current_key(0, int_key(0));
  state_->list_add(l, "survivor");  // Expires at 1150: the list keeps one element.
  ASSERT_TRUE(state_->compact().ok());
  uint64_t before = state_->estimated_size_bytes();
  EXPECT_GT(before, 3u * 2000 * 1000 / 2);

  state_->advance_clocks(1100, 0);
  ASSERT_TRUE(state_->compact().ok());
  uint64_t after = state_->estimated_size_bytes();
  EXPECT_LT(after, before / 20) << "before " << before << " after " << after;

  // The data left is what is live: the plain value and the list's live element.
  state_->set_current_key(0, int_key(0));
  EXPECT_EQ(get(plain), "kept");
  EXPECT_EQ(list(l), std::vector<std::string>{"survivor"});
  // Raw contents after the filter: nothing of v or m remains, even with the clock turned back
  // (reads would otherwise hide them).
  state_->advance_clocks(0, 0);
  int remaining = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view) { return ++remaining; });
  state_->scan_all(m, [&](uint32_t, std::string_view, std::string_view) { return ++remaining; });
  EXPECT_EQ(remaining, 0);
  std::vector<std::string> raw_list;
  state_->scan_all(l, [&](uint32_t, std::string_view, std::string_view value) {
    raw_list.emplace_back(value);
    return true;
  });
  EXPECT_EQ(raw_list, std::vector<std::string>{"survivor"});
}

TEST_F(state_backend_test, ReopenKeepsStateAndIdsFreshWipes) {
  auto a = declare("a", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map, 100);
  auto l = declare("l", state_backend::kind::list);
  auto t = declare("__t", state_backend::kind::map);
  state_->set_current_key(4, int_key(4));
  state_->put(a, 0, "a");
  state_->map_put(m, "k", "m");
  state_->list_add(l, "x");
  state_->map_put(t, "k", "t");

  open(false);
  // Declared in another order: the ids come from the restored registry.
  EXPECT_EQ(declare("__t", state_backend::kind::map), t);
  EXPECT_EQ(declare("l", state_backend::kind::list), l);
  EXPECT_EQ(declare("m", state_backend::kind::map, 100), m);
  EXPECT_EQ(declare("a", state_backend::kind::value), a);
  auto b = declare("b", state_backend::kind::value);
  EXPECT_NE(b, a);
  EXPECT_NE(b, m);
  EXPECT_NE(b, l);
  auto t2 = declare("__t2", state_backend::kind::map);
  EXPECT_NE(t2, t);
  EXPECT_FALSE(state_->declare("m", state_backend::kind::map).ok()) << "TTL-ness is fixed";
  state_->set_current_key(4, int_key(4));
  EXPECT_EQ(get(a), "a");
  std::string v;
  EXPECT_TRUE(state_->map_get(m, "k", v));
  EXPECT_EQ(v, "m");
  EXPECT_EQ(list(l), std::vector<std::string>{"x"});

  open(true);
  auto fresh_id = declare("b", state_backend::kind::value);
  EXPECT_EQ(fresh_id, 0);
  state_->set_current_key(4, int_key(4));
  EXPECT_EQ(get(fresh_id), "<absent>");
  int all = 0;
  state_->scan_all(fresh_id, [&](uint32_t, std::string_view, std::string_view) { return ++all; });
  EXPECT_EQ(all, 0);
}

TEST_F(state_backend_test, EstimatedSizeGrowsWithData) {
  auto v = declare("v", state_backend::kind::value);
  uint64_t empty = state_->estimated_size_bytes();
  for (int k = 0; k < 1000; ++k) {
    state_->set_current_key(k % 128, int_key(k));
    state_->put(v, 0, std::string(100, 'x'));
  }
  EXPECT_GT(state_->estimated_size_bytes(), empty + 50'000);
}

TEST_F(state_backend_test, MatchesAModelThroughCacheEvictionsScansAndReopen) {
  // A budget of 64 KiB holds a few hundred entries: most operations evict or miss.
  ASSERT_NO_FATAL_FAILURE(open(true, 64 << 10));
  auto v = declare("v", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map);
  model_t model;
  xorshift64 rng{0x2545f4914f6cdd1dull};
  auto next = [&](uint64_t n) { return rng.below(n); };
  auto check_all = [&] { expect_model(*state_, v, m, model, 500, 16); };
  for (int round = 0; round < 20; ++round) {
    for (int op = 0; op < 2000; ++op) {
      int k = static_cast<int>(next(500));
      state_->set_current_key(k % 16, int_key(k));
      int64_t ns = static_cast<int64_t>(next(3));
      // User keys and values of several lengths: inline, and in the entry's heap block.
      std::string uk(next(2) == 0 ? 1 : 40, static_cast<char>('a' + next(4)));
      std::string value = std::to_string(round * 10000 + op);
      value.append(std::array<size_t, 3>{0, 20, 300}[next(3)], 'p');
      const uint64_t choice = next(6);
      if (choice < 5) {
        apply_write(choice, v, m, model, k, ns, uk, value);
      } else {
        auto it = model.find({k, ns, ""});
        ASSERT_EQ(get(v, ns), it == model.end() ? "<absent>" : it->second);
      }
    }
    check_all();
    if (round % 5 == 4) {
      ASSERT_TRUE(state_->compact().ok());
    }
  }
  size_t values = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view) { return ++values; });
  size_t want_values = 0;
  for (const auto& [key, value] : model) want_values += std::get<1>(key) >= 0;
  EXPECT_EQ(values, want_values);
  ASSERT_NO_FATAL_FAILURE(open(false, 64 << 10));
  ASSERT_EQ(declare("v", state_backend::kind::value), v);
  ASSERT_EQ(declare("m", state_backend::kind::map), m);
  check_all();
}

TEST_F(state_backend_test, PrefetchedKeysReadAsWithoutPrefetch) {
  // Random writes with a small cache, so that keys are dirty in the cache, clean in it, only in
  // RocksDB or nowhere; then batches of keys (some repeated, some absent, a namespace and a
  // state each) are prefetched before every key of the batch is read, and each read must be the
  // model's. A TTL state checks that an expired stored value stays absent.
  ASSERT_NO_FATAL_FAILURE(open(true, 64 << 10));
  auto v = declare("v", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map);
  auto ttl = state_->declare("ttl", state_backend::kind::value, 100);
  ASSERT_TRUE(ttl.ok());
  model_t model;
  // Key -> the event time its TTL value was written at; values written before the clock's first
  // advance never expire.
  std::map<int, int64_t> ttl_written;
  xorshift64 rng{0x9e3779b97f4a7c15ull};
  auto next = [&](uint64_t n) { return rng.below(n); };
  int64_t clock = 1000;
  std::vector<state_backend::key_ref> refs;
  std::vector<std::string> encoded;
  for (int round = 0; round < 12; ++round) {
    for (int op = 0; op < 1500; ++op) {
      int k = static_cast<int>(next(800));
      state_->set_current_key(k % 16, int_key(k));
      if (next(8) == 0) {
        state_->put(*ttl, 0, "t" + std::to_string(k));
        ttl_written[k] = round == 0 ? std::numeric_limits<int64_t>::max() - 100 : clock;
        continue;
      }
      std::string value = std::to_string(round * 10000 + op);
      value.append(std::array<size_t, 3>{0, 20, 300}[next(3)], 'p');
      apply_write(next(3), v, m, model, k, static_cast<int64_t>(next(3)), "", value);
    }
    clock += 40;  // A TTL value written two rounds before a read has expired at it.
    state_->advance_clocks(clock, 0);
    if (round == 5) {  // Everything to RocksDB, nothing in the cache.
      ASSERT_NO_FATAL_FAILURE(open(false, 64 << 10));
      ASSERT_EQ(declare("v", state_backend::kind::value), v);
      ASSERT_EQ(declare("m", state_backend::kind::map), m);
      ASSERT_EQ(*state_->declare("ttl", state_backend::kind::value, 100), *ttl);
      state_->advance_clocks(clock, 0);
    }
    for (int batch = 0; batch < 20; ++batch) {
      const bool of_ttl = next(4) == 0;
      const int64_t ns = of_ttl ? 0 : static_cast<int64_t>(next(3));
      encoded.clear();
      std::vector<int> keys;
      for (size_t i = 0, n = 1 + next(300); i < n; ++i) {
        // Keys up to 900: a ninth were never written.
        const int k =
            next(5) == 0 && !keys.empty() ? keys[next(keys.size())] : static_cast<int>(next(900));
        keys.push_back(k);
        encoded.push_back(int_key(k));
      }
      refs.clear();
      for (size_t i = 0; i < keys.size(); ++i) {
        refs.push_back({static_cast<uint32_t>(keys[i] % 16), encoded[i]});
      }
      state_->prefetch(of_ttl ? *ttl : v, ns, refs);
      // The reads that follow find every key in the cache: no RocksDB lookup (each would
      // consult the memtable's bloom filter).
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
      rocksdb::get_perf_context()->Reset();
      for (int k : keys) {
        state_->set_current_key(k % 16, int_key(k));
        std::string want = "<absent>";
        if (of_ttl) {
          auto it = ttl_written.find(k);
          if (it != ttl_written.end() && clock < it->second + 100) want = "t" + std::to_string(k);
        } else if (auto it = model.find({k, ns, ""}); it != model.end()) {
          want = it->second;
        }
        ASSERT_EQ(get(of_ttl ? *ttl : v, ns), want) << "round " << round << " key " << k;
      }
      const rocksdb::PerfContext& perf = *rocksdb::get_perf_context();
      EXPECT_EQ(perf.bloom_memtable_hit_count + perf.bloom_memtable_miss_count +
                    perf.get_from_memtable_count,
                0u)
          << "round " << round << ": reads after the prefetch went to RocksDB";
      rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    }
  }
}

TEST_F(state_backend_test, EntriesErasedBeforeWriteBackNeverReachRocksDb) {
  auto v = declare("v", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map);
  for (int k = 0; k < 100; ++k) {
    state_->set_current_key(1, int_key(k));
    // A value whose read found nothing: erasing it before a write-back leaves nothing to delete.
    EXPECT_EQ(get(v, 7), "<absent>");
    state_->put(v, 7, "acc");
    state_->put(v, 7, std::string(100, 'x'));  // Long enough to leave the inline buffer.
    state_->erase(v, 7);
    // A map entry the caller knows is new (a timer, say), erased before a write-back.
    state_->map_put_new(m, "t", "");
    std::string value;
    EXPECT_TRUE(state_->map_get(m, "t", value));  // A point read: no write-back.
    state_->map_erase(m, "t");
  }
  int seen = 0;
  for (auto id : {v, m}) {
    state_->scan_all(id, [&](uint32_t, std::string_view, std::string_view) { return ++seen; });
  }
  EXPECT_EQ(seen, 0);
  EXPECT_EQ(close_and_list_versions(), std::vector<std::string>{}) << "no put, no tombstone";
}

TEST_F(state_backend_test, TtlValuesExpiredBeforeWriteBackNeverReachRocksDb) {
  auto v = declare("v", state_backend::kind::value, 100);
  state_->advance_clocks(0, 0);
  auto at = [&](int k) { state_->set_current_key(1, int_key(k)); };
  // Key 0 reaches RocksDB while live; its later expired value must still be written over it.
  at(0);
  state_->put_expiring(v, 0, "stored", 1000);
  ASSERT_TRUE(state_->compact().ok());
  at(0);
  state_->put_expiring(v, 0, "expired", 50);
  for (int k = 1; k < 100; ++k) {
    at(k);
    EXPECT_EQ(get(v), "<absent>");  // Known missing from RocksDB, as a first-seen time is.
    state_->put_expiring(v, 0, "x", k < 99 ? 50 : 51);  // Key 99 outlives the clock below.
  }
  state_->advance_clocks(50, 0);
  int live = 0;
  state_->scan_all(v, [&](uint32_t, std::string_view, std::string_view) { return ++live > 0; });
  EXPECT_EQ(live, 1) << "key 99";
  at(0);
  EXPECT_EQ(get(v), "<absent>");
  // Key 0: the live Put, then the expired one over it; key 99: its Put. Nothing else.
  EXPECT_EQ(close_and_list_versions(),
            (std::vector<std::string>{"TypeValue:0:1", "TypeValue:0:1", "TypeValue:0:1"}));
}

TEST_F(state_backend_test, EntriesErasedAfterWriteBackAreDeleted) {
  auto v = declare("v", state_backend::kind::value);
  auto m = declare("m", state_backend::kind::map);
  state_->set_current_key(2, int_key(1));
  state_->put(v, 0, "old");  // A blind write: RocksDB may hold the key, so it will be deleted.
  state_->erase(v, 0);
  state_->set_current_key(3, int_key(2));
  state_->map_put_new(m, "t", "");
  state_->put(v, 0, "kept");
  int seen = 0;
  state_->scan_all(m, [&](uint32_t, std::string_view, std::string_view) { return ++seen; });
  EXPECT_EQ(seen, 1);  // The scan wrote the cache back.
  state_->map_erase(m, "t");
  EXPECT_EQ(map(m), (std::vector<std::pair<std::string, std::string>>{}));
  EXPECT_EQ(close_and_list_versions(),
            (std::vector<std::string>{"TypeDeletion:0:2", "TypeValue:0:3", "TypeDeletion:1:3"}));
  open(false);
  EXPECT_EQ(declare("v", state_backend::kind::value), v);
  EXPECT_EQ(declare("m", state_backend::kind::map), m);
  state_->set_current_key(3, int_key(2));
  EXPECT_EQ(get(v), "kept");
  EXPECT_EQ(map(m), (std::vector<std::pair<std::string, std::string>>{}));
  state_->set_current_key(2, int_key(1));
  EXPECT_EQ(get(v), "<absent>");
}

TEST_F(state_backend_test, MapPutNewSurvivesWriteBackAndReopen) {
  auto m = declare("m", state_backend::kind::map);
  for (int k = 0; k < 50; ++k) {
    state_->set_current_key(k % 4, int_key(k));
    state_->map_put_new(m, "a", std::to_string(k));
    state_->map_put_new(m, std::string(40, 'b'), std::string(k * 10, 'v'));
  }
  open(false);
  ASSERT_EQ(declare("m", state_backend::kind::map), m);
  for (int k = 0; k < 50; ++k) {
    state_->set_current_key(k % 4, int_key(k));
    EXPECT_EQ(map(m),
              (std::vector<std::pair<std::string, std::string>>{
                  {"a", std::to_string(k)}, {std::string(40, 'b'), std::string(k * 10, 'v')}}));
  }
}

/// Lists the data keys a RocksDB directory holds in its files (not a checkpoint's delta), as
/// close_and_list_versions() does.
size_t data_keys_in(const std::filesystem::path& dir) {
  rocksdb::Options o;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, dir.string(), &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return 0;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<rocksdb::KeyVersion> versions;
  s = rocksdb::GetAllKeyVersions(db.get(), std::string(4, '\0'), std::string(2, '\xfe'), 1 << 20,
                                 &versions);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return versions.size();
}

TEST_F(state_backend_test, CheckpointsKeepYoungEntriesInADeltaThatRestoresApply) {
  auto v = declare("v", state_backend::kind::value);
  auto at = [&](int k) { state_->set_current_key(static_cast<uint32_t>(k % 4), int_key(k)); };
  for (int k = 0; k < 100; ++k) {
    at(k);
    EXPECT_EQ(get(v), "<absent>");  // Known missing from RocksDB, as a new accumulator is.
    state_->put(v, 0, "v1-" + std::to_string(k));
  }
  int next = 0;
  auto checkpoint = [&] {
    auto dir = dir_.string() + ".chk-" + std::to_string(++next);
    std::filesystem::remove_all(dir);
    auto identity = state_->checkpoint_to(dir);
    EXPECT_TRUE(identity.ok()) << identity.err().message;
    return std::filesystem::path(dir);
  };
  // Opens a copy of checkpoint `chk` as a restore would, and reads keys [0, 100).
  auto restored = [&](const std::filesystem::path& chk) {
    const std::string copy = restored_copy(chk);
    auto backend = open_backend(copy, false);
    std::vector<std::string> out;
    if (backend == nullptr) return out;
    auto id = backend->declare("v", state_backend::kind::value);
    EXPECT_TRUE(id.ok() && *id == v);
    for (int k = 0; k < 100; ++k) {
      backend->set_current_key(static_cast<uint32_t>(k % 4), int_key(k));
      std::string value;
      out.push_back(backend->get(v, 0, value) ? value : "<absent>");
    }
    backend.reset();
    std::filesystem::remove_all(copy);
    return out;
  };
  auto expected = [&](int erased_below, int v2_below) {
    std::vector<std::string> out;
    for (int k = 0; k < 100; ++k) {
      out.push_back(k < erased_below ? "<absent>"
                    : k < v2_below   ? "v2-" + std::to_string(k)
                                     : "v1-" + std::to_string(k));
    }
    return out;
  };
  const std::string delta = "VIGIL-STATE-DELTA";

  // The entries are young: in the delta only, RocksDB's files hold none of them.
  auto chk1 = checkpoint();
  EXPECT_TRUE(std::filesystem::exists(chk1 / delta));
  EXPECT_EQ(data_keys_in(chk1), 0u);
  EXPECT_EQ(restored(chk1), expected(0, 0));

  // Erasing entries that never reached RocksDB leaves nothing behind.
  for (int k = 0; k < 50; ++k) {
    at(k);
    state_->erase(v, 0);
  }
  for (int k = 50; k < 60; ++k) {
    at(k);
    state_->put(v, 0, "v2-" + std::to_string(k));
  }
  auto chk2 = checkpoint();
  EXPECT_EQ(data_keys_in(chk2), 0u);
  EXPECT_EQ(restored(chk2), expected(50, 60));
  EXPECT_EQ(restored(chk1), expected(0, 0)) << "an older checkpoint is unchanged";

  // Entries dirty for four checkpoints are written to RocksDB at the fifth.
  checkpoint();
  auto chk4 = checkpoint();
  EXPECT_TRUE(std::filesystem::exists(chk4 / delta));
  auto chk5 = checkpoint();
  EXPECT_FALSE(std::filesystem::exists(chk5 / delta));
  EXPECT_EQ(data_keys_in(chk5), 50u);
  EXPECT_EQ(restored(chk5), expected(50, 60));

  // Now an erase needs a tombstone; until it is old, it lives in the delta.
  at(60);
  state_->erase(v, 0);
  at(61);
  state_->put(v, 0, "v2-61");
  auto chk6 = checkpoint();
  EXPECT_TRUE(std::filesystem::exists(chk6 / delta));
  EXPECT_EQ(data_keys_in(chk6), 50u);
  auto want = expected(50, 60);
  want[60] = "<absent>";
  want[61] = "v2-61";
  EXPECT_EQ(restored(chk6), want);

  // Rescaling merges the SST files and the delta of each old subtask.
  auto merged = dir_.string() + ".merged";
  std::filesystem::remove_all(merged);
  auto source = chk6.string() + ".source";
  std::filesystem::remove_all(source);
  std::filesystem::copy(chk6, source, std::filesystem::copy_options::recursive);
  auto st = state_backend::merge_key_groups({source}, key_group_range{0, 2}, merged);
  ASSERT_TRUE(st.ok()) << st.err().message;
  {
    auto backend = open_backend(merged, false);
    ASSERT_NE(backend, nullptr);
    ASSERT_TRUE(backend->declare("v", state_backend::kind::value).ok());
    for (int k = 0; k < 100; ++k) {
      backend->set_current_key(static_cast<uint32_t>(k % 4), int_key(k));
      std::string value;
      bool found = backend->get(v, 0, value);
      EXPECT_EQ(found ? value : "<absent>", k % 4 < 2 ? want[k] : "<absent>") << "key " << k;
    }
  }

  // A damaged delta is refused, naming it.
  auto damaged = chk6.string() + ".damaged";
  std::filesystem::remove_all(damaged);
  std::filesystem::copy(chk6, damaged, std::filesystem::copy_options::recursive);
  {
    std::FILE* f = std::fopen((damaged + "/" + delta).c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 20, SEEK_SET);
    std::fputc('#', f);
    std::fclose(f);
  }
  state_backend::options o;
  o.directory = damaged;
  o.fresh = false;
  auto refused = state_backend::open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().message.find(delta), std::string::npos) << refused.err().message;

  for (int i = 1; i <= next; ++i)
    std::filesystem::remove_all(dir_.string() + ".chk-" + std::to_string(i));
  for (const auto& d : {merged, source, damaged}) std::filesystem::remove_all(d);
}

TEST_F(state_backend_test, PutExpiringKeepsItsExpiryThroughTheCacheCheckpointsAndCompaction) {
  // A 64 KiB cache: most entries are written back to RocksDB, the youngest go to the delta.
  constexpr int keys = 2000;
  constexpr size_t small_cache = 64 << 10;
  auto value_of = [](int k) { return std::to_string(k) + std::string(60, 'x'); };
  auto at = [](state_backend& b, int k) {
    b.set_current_key(static_cast<uint32_t>(k % 8), int_key(k));
  };
  // Reads every key of `b` at event-time clock `clock`: key k (expiry 1000 + k) is visible iff
  // its key group is in `groups` and clock < 1000 + k. Returns the keys that differ.
  auto mismatches = [&](state_backend& b, state_backend::state_id id, int64_t clock,
                        key_group_range groups) {
    b.advance_clocks(clock, 0);
    std::vector<int> wrong;
    std::string got;
    for (int k = 0; k < keys; ++k) {
      at(b, k);
      bool want = groups.contains(static_cast<uint32_t>(k % 8)) && clock < 1000 + k;
      bool found = b.get(id, 0, got);
      if (found != want || (found && got != value_of(k))) wrong.push_back(k);
    }
    return wrong;
  };
  // The entries RocksDB's files keep, whatever the clock says (the filter's work).
  auto raw_entries = [](state_backend& b, state_backend::state_id id) {
    b.advance_clocks(std::numeric_limits<int64_t>::min() + 1, 0);
    int n = 0;
    b.scan_all(id, [&](uint32_t, std::string_view, std::string_view) { return ++n > 0; });
    return n;
  };
  const key_group_range all{0, 8};

  state_.reset();
  state_ = open_backend(dir_.string(), true, small_cache);
  ASSERT_NE(state_, nullptr);
  auto v = declare("v", state_backend::kind::value, 100);
  state_->advance_clocks(0, 0);
  for (int k = 0; k < keys; ++k) {
    at(*state_, k);
    state_->put_expiring(v, 0, value_of(k), 1000 + k);
  }
  const std::filesystem::path chk = dir_.string() + ".expiring-chk";
  std::filesystem::remove_all(chk);
  ASSERT_TRUE(state_->checkpoint_to(chk.string()).ok());
  EXPECT_TRUE(std::filesystem::exists(chk / "VIGIL-STATE-DELTA"));
  EXPECT_GT(data_keys_in(chk), 0u);

  // Live: the boundary at clock E - 1 / E, read back from RocksDB (the cache is small).
  EXPECT_EQ(mismatches(*state_, v, 1499, all), std::vector<int>{});
  EXPECT_EQ(mismatches(*state_, v, 1500, all), std::vector<int>{});
  ASSERT_TRUE(state_->compact().ok());  // At clock 1500: keys 0..500 are deleted.
  EXPECT_EQ(raw_entries(*state_, v), keys - 501);
  EXPECT_EQ(mismatches(*state_, v, 1500, all), std::vector<int>{});

  // Restored from the checkpoint (files + delta), taken before any expired.
  const std::string copy = restored_copy(chk);
  {
    auto restored = open_backend(copy, false, small_cache);
    ASSERT_NE(restored, nullptr);
    ASSERT_EQ(*restored->declare("v", state_backend::kind::value, 100), v);
    EXPECT_EQ(raw_entries(*restored, v), keys);
    EXPECT_EQ(mismatches(*restored, v, 1099, all), std::vector<int>{});
    EXPECT_EQ(mismatches(*restored, v, 1100, all), std::vector<int>{});
    ASSERT_TRUE(restored->compact().ok());
    EXPECT_EQ(raw_entries(*restored, v), keys - 101);
  }

  // Rescaled: key groups 0-3 merged from the checkpoint.
  auto source = chk.string() + ".source";
  auto merged = chk.string() + ".merged";
  for (const auto& d : {source, merged}) std::filesystem::remove_all(d);
  std::filesystem::copy(chk, source, std::filesystem::copy_options::recursive);
  ASSERT_TRUE(state_backend::merge_key_groups({source}, key_group_range{0, 4}, merged).ok());
  {
    auto rescaled = open_backend(merged, false, small_cache);
    ASSERT_NE(rescaled, nullptr);
    ASSERT_EQ(*rescaled->declare("v", state_backend::kind::value, 100), v);
    EXPECT_EQ(mismatches(*rescaled, v, 1299, key_group_range{0, 4}), std::vector<int>{});
    EXPECT_EQ(mismatches(*rescaled, v, 1300, key_group_range{0, 4}), std::vector<int>{});
  }
  for (const auto& d : {chk.string(), copy, source, merged}) std::filesystem::remove_all(d);
}

TEST_F(state_backend_test, RestoresEveryCheckpointAsTheModelWasWhenItWasTaken) {
  // Two cache budgets: 32 MiB keeps every entry (checkpoints carry them in the delta), 64 KiB
  // evicts and writes back all the time (they are in RocksDB's files). Scans write the cache
  // back between checkpoints; erases and re-inserts reuse cache entries.
  for (size_t budget : {size_t{32} << 20, size_t{64} << 10}) {
    SCOPED_TRACE("cache budget " + std::to_string(budget));
    ASSERT_NO_FATAL_FAILURE(open(true, budget));
    auto v = declare("v", state_backend::kind::value);
    auto m = declare("m", state_backend::kind::map);
    model_t model;
    xorshift64 rng{0x9e3779b97f4a7c15ull};
    auto next = [&](uint64_t n) { return rng.below(n); };
    std::vector<std::pair<std::filesystem::path, model_t>> checkpoints;
    for (int round = 0; round < 24; ++round) {
      for (int op = 0; op < 800; ++op) {
        int k = static_cast<int>(next(300));
        state_->set_current_key(k % 8, int_key(k));
        int64_t ns = static_cast<int64_t>(next(3));
        std::string uk(next(2) == 0 ? 1 : 40, static_cast<char>('a' + next(4)));
        std::string value = std::to_string(round * 10000 + op);
        value.append(std::array<size_t, 3>{0, 20, 300}[next(3)], 'p');
        const uint64_t choice = next(7);
        if (choice <= 1 && next(2) == 0) {
          auto it = model.find({k, ns, ""});
          EXPECT_EQ(get(v, ns), it == model.end() ? std::string("<absent>") : it->second);
        }
        if (choice < 5) {
          apply_write(choice, v, m, model, k, ns, uk, value);
        } else if (choice == 5 && next(8) == 0) {
          map(m);  // A scan: writes the whole cache back.
        }
      }
      auto chk = dir_.string() + ".model-chk-" + std::to_string(round);
      std::filesystem::remove_all(chk);
      auto identity = state_->checkpoint_to(chk);
      ASSERT_TRUE(identity.ok()) << identity.err().message;
      checkpoints.emplace_back(chk, model);
    }
    expect_model(*state_, v, m, model, 300, 8);
    for (const auto& [chk, want_model] : checkpoints) {
      SCOPED_TRACE(chk.filename().string());
      const std::string copy = restored_copy(chk);
      auto restored = open_backend(copy, false);
      ASSERT_NE(restored, nullptr);
      ASSERT_EQ(*restored->declare("v", state_backend::kind::value), v);
      ASSERT_EQ(*restored->declare("m", state_backend::kind::map), m);
      expect_model(*restored, v, m, want_model, 300, 8);
      restored.reset();
      std::filesystem::remove_all(copy);
      std::filesystem::remove_all(chk);
    }
  }
}

/// Not a test of speed (nothing asserted on time): prints the cost of the hot path of a keyed
/// aggregation (encode the key, set it, get then put a small value) on 100k keys in memory,
/// in random key order.
TEST_F(state_backend_test, MicroBenchmarkGetPut) {
  auto id = declare("count", state_backend::kind::value);
  constexpr int keys = 100'000;
  constexpr int ops = 1'000'000;
  std::string key;
  auto set_key = [&](int k) {
    key.assign(1, '\1');
    put_i64_ordered(key, k);
    state_->set_current_key(static_cast<uint32_t>(hash_encoded_key(key) % 128), key);
  };
  std::string value(8, '\0');
  for (int k = 0; k < keys; ++k) {
    set_key(k);
    state_->put(id, 0, value);
  }
  std::string out;
  uint64_t found = 0;
  xorshift64 rng{88172645463325252ull};
  auto cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * int64_t{1'000'000'000} + ts.tv_nsec;
  };
  int64_t start = cpu_ns();
  for (int i = 0; i < ops; ++i) {
    set_key(static_cast<int>(rng.below(keys)));
    found += state_->get(id, 0, out);
    out[0] = static_cast<char>(out[0] + 1);
    state_->put(id, 0, out);
  }
  int64_t ns = cpu_ns() - start;
  EXPECT_EQ(found, static_cast<uint64_t>(ops));
  std::printf("[ bench    ] encode key + set_current_key + get + put: %.0f CPU ns (%d keys)\n",
              static_cast<double>(ns) / ops, keys);
}

}  // namespace
}  // namespace vigil
