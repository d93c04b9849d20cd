#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/key.hpp"
#include "runtime/detail/state_cache.hpp"
#include "runtime/state_backend.hpp"

/// The RocksDB implementation of state_backend: one RocksDB instance per subtask, default column
/// family only.
///
/// Stored formats (all integers big-endian):
/// - data key:   [key group u16][state id u16][encoded key][suffix]; the suffix is the ordered
///               int64 namespace (value state), the user key (map state) or empty (list state).
///               map_scan() finds a key's entries by prefix, so keys must be prefix-free among
///               the keys of one state, which encode_key() encodings of one key schema are.
/// - value:      [expiry i64 ordered][bytes] for states declared with a TTL, else [bytes].
/// - list value: a concatenation of elements [varint32 length][payload], payload as a value
///               above (so each element has its own expiry). list_add() is a RocksDB Merge of one
///               element; the merge operator concatenates.
/// - registry:   [0xffff][0xffff][state name] -> [state id u16][state_flags u8]. Key group
///               0xffff is never a data key group, so the registry is outside every key-group
///               range and is restored with the data (ids stay stable across restores).
///
/// Caching: value and map entries go through a write-back detail::state_cache (bounded by
/// options::write_buffer_bytes); RocksDB sees them at write_back(), which runs before every
/// iterator, compaction, size estimate and close, in key order (sorted memtable inserts are far
/// cheaper than random ones). An entry that is created and erased between two write-backs, and
/// that RocksDB is known not to hold (its load found nothing, or it came from map_put_new()),
/// never reaches RocksDB: no Put and no tombstone; nor does a TTL value of such an entry that has
/// expired by the time it would be written (put_expiring() state that lives shorter than a
/// write-back interval costs what erased state costs). Lists are appended with Merge directly. A
/// method added later that reads RocksDB in bulk must call write_back() first.
///
/// Checkpoints: checkpoint_to() writes only the dirty entries that have been dirty for a few
/// checkpoints to RocksDB; the young ones go to a delta file (a WriteBatch) beside the RocksDB
/// checkpoint, which a restore applies. State that lives a few checkpoint intervals never
/// reaches RocksDB, as without checkpoints (see docs/design/0006-checkpoints.md).
///
/// State ids: names starting with "__" are the runtime's (e.g. timers) and get ids from 0xff00
/// up; other names get ids from 0 up, in declaration order.
///
/// TTL: a value written at TTL-clock time c with ttl t expires at c + t and is invisible once
/// the clock reaches its expiry. Before the clock's first advance (it starts at INT64_MIN, "no
/// time yet") values are written without an expiry (INT64_MAX). put_expiring() stores the expiry
/// it is given in the same [expiry][bytes] format, so the cache, checkpoint deltas, restores,
/// rescaling merges and the compaction filter treat it like any other TTL value; the clock
/// starting at INT64_MIN keeps such a value visible until the first advance reaches its expiry.
/// The compaction filter runs on
/// RocksDB's background threads, so the per-id flags and the clocks it reads are atomics.

namespace vigil {
namespace {

using state_id = state_backend::state_id;

constexpr state_id first_reserved_id = 0xff00;
constexpr state_id last_reserved_id = 0xfffe;
constexpr uint32_t registry_key_group = 0xffff;
constexpr size_t prefix_bytes = 4;  // key group + state id
constexpr size_t expiry_bytes = 8;
constexpr int64_t no_time = std::numeric_limits<int64_t>::min();
constexpr int64_t never = std::numeric_limits<int64_t>::max();

/// A checkpoint's state cache delta (rocksdb_state_backend::checkpoint_to): a file beside
/// RocksDB's files holding the young dirty cache entries that were not written to RocksDB.
/// Format: delta_magic, the XXH3-64 of the rest (8 bytes, little-endian), then a
/// rocksdb::WriteBatch (Puts and Deletes). Restoring applies it over the SST files.
constexpr const char* delta_file_name = "VIGIL-STATE-DELTA";
constexpr std::string_view delta_magic = "VGLDLTA1";
/// Checkpoints an entry stays in the delta while it remains dirty, before it is written to
/// RocksDB (then its SST file is copied once and shared by later checkpoints).
constexpr uint8_t max_delta_rounds = 4;
/// The most key and value bytes in one delta; the older dirty entries beyond it go to RocksDB.
constexpr size_t max_delta_bytes = 16 << 20;

status write_delta(const std::string& dir, const std::string& rep) {
  std::string path = dir + "/" + delta_file_name;
  uint64_t hash = XXH3_64bits(rep.data(), rep.size());
  char hash_bytes[8];
  for (int i = 0; i < 8; ++i) hash_bytes[i] = static_cast<char>(hash >> (8 * i));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(delta_magic.data(), static_cast<std::streamsize>(delta_magic.size()));
  out.write(hash_bytes, sizeof hash_bytes);
  out.write(rep.data(), static_cast<std::streamsize>(rep.size()));
  out.close();
  if (!out) return make_error(errc::io_error, "state backend: cannot write '" + path + "'");
  return {};
}

/// Applies the delta file of a restored checkpoint directory `dir` to `db` (open on `dir`) and
/// removes it; nothing to do without one.
status apply_delta(rocksdb::DB& db, const std::string& dir) {
  std::string path = dir + "/" + delta_file_name;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return make_error(errc::io_error, "state backend: cannot read '" + path + "'");
  }
  const size_t header = delta_magic.size() + 8;
  uint64_t want = 0;
  if (bytes.size() >= header) {
    for (int i = 7; i >= 0; --i) {
      want = (want << 8) | static_cast<unsigned char>(bytes[delta_magic.size() + i]);
    }
  }
  if (bytes.size() < header ||
      std::string_view(bytes).substr(0, delta_magic.size()) != delta_magic ||
      XXH3_64bits(bytes.data() + header, bytes.size() - header) != want) {
    return make_error(errc::state_error, "state backend: '" + path +
                                             "' is not a state delta or is damaged (checksum)");
  }
  rocksdb::WriteBatch batch(bytes.substr(header));
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  if (auto s = db.Write(wo, &batch); !s.ok()) {
    return make_error(errc::state_error, "state backend: applying '" + path + "': " + s.ToString());
  }
  std::filesystem::remove(path, ec);
  return {};
}

/// Per-state-id flags, shared with the compaction filter.
enum state_flags : uint8_t {
  flag_declared = 1,
  flag_ttl = 2,
  flag_processing_clock = 4,  ///< TTL clock is processing time (else event time).
  flag_list = 8,
  flag_map = 16,
};

uint8_t flags_of(state_backend::kind k, int64_t ttl_us, state_backend::ttl_clock clock) {
  uint8_t f = flag_declared;
  if (k == state_backend::kind::list) f |= flag_list;
  if (k == state_backend::kind::map) f |= flag_map;
  if (ttl_us > 0) {
    f |= flag_ttl;
    if (clock == state_backend::ttl_clock::processing_time) f |= flag_processing_clock;
  }
  return f;
}

state_backend::kind kind_of(uint8_t flags) {
  if (flags & flag_list) return state_backend::kind::list;
  if (flags & flag_map) return state_backend::kind::map;
  return state_backend::kind::value;
}

const char* kind_name(state_backend::kind k) {
  switch (k) {
    case state_backend::kind::value:
      return "value";
    case state_backend::kind::list:
      return "list";
    case state_backend::kind::map:
      return "map";
  }
  return "unknown";
}

/// What the backend and its compaction filter share: which ids have a TTL and the TTL clocks.
struct ttl_table {
  std::array<std::atomic<uint8_t>, 0x10000> flags{};
  std::atomic<int64_t> event_clock{no_time};
  std::atomic<int64_t> processing_clock{no_time};

  int64_t clock(uint8_t f) const {
    return (f & flag_processing_clock) ? processing_clock.load(std::memory_order_relaxed)
                                       : event_clock.load(std::memory_order_relaxed);
  }
};

void put_varint32(std::string& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Reads a varint32 at `p`; returns the position after it, or nullptr if malformed.
const char* get_varint32(const char* p, const char* end, uint32_t& v) {
  v = 0;
  for (int shift = 0; shift <= 28 && p < end; shift += 7) {
    auto byte = static_cast<uint8_t>(*p++);
    v |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return p;
  }
  return nullptr;
}

/// Calls fn(payload) for each element of an encoded list; false if the encoding is malformed.
template <class Fn>
bool for_each_element(std::string_view list, Fn&& fn) {
  const char* p = list.data();
  const char* end = p + list.size();
  while (p < end) {
    uint32_t len = 0;
    p = get_varint32(p, end, len);
    if (p == nullptr || static_cast<size_t>(end - p) < len) return false;
    if (!fn(std::string_view(p, len))) return true;
    p += len;
  }
  return true;
}

/// Strips the expiry of a TTL payload; false if it has expired (or is malformed).
bool live_payload(std::string_view payload, int64_t now, std::string_view& bytes) {
  if (payload.size() < expiry_bytes) return false;
  if (get_i64_ordered(payload.data()) <= now) return false;
  bytes = payload.substr(expiry_bytes);
  return true;
}

uint16_t get_u16_be(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

/// The smallest key greater than every key starting with `prefix`; empty if there is none.
std::string prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<uint8_t>(s.back()) == 0xff) s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<uint8_t>(s.back()) + 1);
  return s;
}

rocksdb::Slice to_slice(std::string_view s) {
  return {s.data(), s.size()};
}
std::string_view to_view(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

/// List state: every operand is a concatenation of encoded elements, so merging is appending.
class list_merge_operator final : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    size_t total = in.existing_value ? in.existing_value->size() : 0;
    for (const auto& op : in.operand_list) total += op.size();
    out->new_value.clear();
    out->new_value.reserve(total);
    if (in.existing_value)
      out->new_value.append(in.existing_value->data(), in.existing_value->size());
    for (const auto& op : in.operand_list) out->new_value.append(op.data(), op.size());
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice&, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger*) const override {
    size_t total = 0;
    for (const auto& op : operands) total += op.size();
    new_value->clear();
    new_value->reserve(total);
    for (const auto& op : operands) new_value->append(op.data(), op.size());
    return true;
  }

  const char* Name() const override { return "vigil.list_append"; }
};

/// Drops expired values, expired list elements and expired map entries during compaction.
class ttl_compaction_filter final : public rocksdb::CompactionFilter {
 public:
  explicit ttl_compaction_filter(std::shared_ptr<const ttl_table> table)
      : table_(std::move(table)) {}

  Decision FilterV2(int, const rocksdb::Slice& key, ValueType type, const rocksdb::Slice& value,
                    std::string* new_value, std::string*) const override {
    if (type == ValueType::kBlobIndex || key.size() < prefix_bytes) return Decision::kKeep;
    uint8_t f = table_->flags[get_u16_be(key.data() + 2)].load(std::memory_order_relaxed);
    if ((f & flag_ttl) == 0) return Decision::kKeep;
    int64_t now = table_->clock(f);
    if ((f & flag_list) == 0) {
      if (value.size() < expiry_bytes) return Decision::kKeep;
      return get_i64_ordered(value.data()) <= now ? Decision::kRemove : Decision::kKeep;
    }
    // A list value or list merge operand: keep the live elements.
    size_t live = 0;
    size_t dead = 0;
    std::string kept;
    bool well_formed = for_each_element(to_view(value), [&](std::string_view payload) {
      if (payload.size() >= expiry_bytes && get_i64_ordered(payload.data()) <= now) {
        ++dead;
      } else {
        ++live;
        put_varint32(kept, static_cast<uint32_t>(payload.size()));
        kept.append(payload);
      }
      return true;
    });
    if (!well_formed || dead == 0) return Decision::kKeep;
    if (live == 0) return Decision::kRemove;
    *new_value = std::move(kept);
    return Decision::kChangeValue;
  }

  const char* Name() const override { return "vigil.ttl"; }

 private:
  std::shared_ptr<const ttl_table> table_;
};

class rocksdb_state_backend final : public state_backend {
 public:
  explicit rocksdb_state_backend(size_t cache_budget_bytes)
      : table_(std::make_shared<ttl_table>()), filter_(table_), cache_(cache_budget_bytes) {
    write_options_.disableWAL = true;
    read_options_.verify_checksums = false;
  }

  ~rocksdb_state_backend() override {
    if (db_) {
      write_back();
      // Without a WAL, memtables would be lost on close; Close() flushes them.
      db_->Close();
    }
  }

  status start(const options& opts) {
    if (opts.directory.empty()) {
      return make_error(errc::invalid_argument, "state backend: no state directory");
    }
    std::error_code ec;
    if (opts.fresh) std::filesystem::remove_all(opts.directory, ec);
    if (!ec) std::filesystem::create_directories(opts.directory, ec);
    if (ec) {
      return make_error(errc::io_error,
                        "state backend: cannot prepare '" + opts.directory + "': " + ec.message());
    }
    rocksdb::Options o;
    o.create_if_missing = true;
    o.write_buffer_size = opts.write_buffer_bytes;
    o.max_write_buffer_number = 4;
    o.max_background_jobs = 2;
    o.level_compaction_dynamic_level_bytes = true;
    o.merge_operator = std::make_shared<list_merge_operator>();
    o.compaction_filter = &filter_;
    // Whole-key memtable bloom: misses (first access of a key) skip the memtable search.
    o.memtable_prefix_bloom_size_ratio = 0.02;
    o.memtable_whole_key_filtering = true;
    o.max_log_file_size = 1 << 20;
    o.keep_log_file_num = 2;
    auto supported = rocksdb::GetSupportedCompressions();
    bool lz4 =
        std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
    o.compression = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.whole_key_filtering = true;
    t.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));

    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, opts.directory, &raw);
    if (!s.ok()) {
      return make_error(errc::state_error, "state backend: cannot open RocksDB in '" +
                                               opts.directory + "': " + s.ToString());
    }
    db_.reset(raw);
    if (!opts.fresh) VIGIL_TRY(apply_delta(*db_, opts.directory));
    return load_registry();
  }

  result<state_id> declare(std::string_view name, kind k, int64_t ttl_us,
                           ttl_clock clock) override {
    uint8_t want = flags_of(k, ttl_us, clock);
    std::string key_name(name);
    if (auto it = ids_.find(key_name); it != ids_.end()) {
      state_id id = it->second;
      uint8_t have = table_->flags[id].load(std::memory_order_relaxed);
      if (have != want) {
        return make_error(errc::state_error, "state '" + key_name + "' already declared as " +
                                                 describe(have) + ", now as " + describe(want));
      }
      if (ttl_us > 0) ttl_us_[id] = ttl_us;
      return id;
    }
    bool reserved = name.starts_with("__");
    state_id& next = reserved ? next_reserved_id_ : next_user_id_;
    state_id limit = reserved ? last_reserved_id : first_reserved_id - 1;
    if (next > limit) {
      return make_error(errc::state_error, "too many states declared (at '" + key_name + "')");
    }
    state_id id = next++;
    std::string reg_key;
    put_u16_be(reg_key, registry_key_group);
    put_u16_be(reg_key, 0xffff);
    reg_key += name;
    std::string reg_value;
    put_u16_be(reg_value, id);
    reg_value.push_back(static_cast<char>(want));
    if (auto s = db_->Put(write_options_, reg_key, reg_value); !s.ok()) {
      return make_error(errc::state_error, "state '" + key_name + "': " + s.ToString());
    }
    table_->flags[id].store(want, std::memory_order_relaxed);
    if (ttl_us > 0) ttl_us_[id] = ttl_us;
    ids_.emplace(std::move(key_name), id);
    return id;
  }

  void set_current_key(uint32_t key_group, std::string_view key) override {
    assert(key_group < registry_key_group);  // max_parallelism is at most 0xffff.
    key_group_ = key_group;
    key_.assign(key.data(), key.size());
    key_buf_.clear();
    put_u16_be(key_buf_, static_cast<uint16_t>(key_group));
    key_buf_.append(2, '\0');
    key_buf_.append(key_);
  }

  uint32_t current_key_group() const override { return key_group_; }
  std::string_view current_key() const override { return key_; }

  bool get(state_id id, int64_t ns, std::string& out) override {
    build_key(id);
    put_i64_ordered(key_buf_, ns);
    return read_value(id, out);
  }

  void put(state_id id, int64_t ns, std::string_view value) override {
    build_key(id);
    put_i64_ordered(key_buf_, ns);
    write_value(id, value);
  }

  void put_expiring(state_id id, int64_t ns, std::string_view value,
                    int64_t expires_at_us) override {
    uint8_t f = flags(id);
    assert(f & flag_ttl);  // An explicit expiry needs a state declared with a TTL.
    build_key(id);
    put_i64_ordered(key_buf_, ns);
    uint32_t i = lookup(lookup_mode::blind);
    if (f & flag_ttl) {
      write_with_expiry(i, expires_at_us, value);
    } else {
      cache_.write(i, value);
    }
  }

  void erase(state_id id, int64_t ns) override {
    build_key(id);
    put_i64_ordered(key_buf_, ns);
    remove_key();
  }

  bool map_get(state_id id, std::string_view user_key, std::string& out) override {
    build_key(id);
    key_buf_.append(user_key);
    return read_value(id, out);
  }

  void map_put(state_id id, std::string_view user_key, std::string_view value) override {
    build_key(id);
    key_buf_.append(user_key);
    write_value(id, value);
  }

  void map_put_new(state_id id, std::string_view user_key, std::string_view value) override {
    build_key(id);
    key_buf_.append(user_key);
    write_value(id, value, lookup_mode::known_new);
  }

  void map_erase(state_id id, std::string_view user_key) override {
    build_key(id);
    key_buf_.append(user_key);
    remove_key();
  }

  void map_scan(state_id id,
                const std::function<bool(std::string_view, std::string_view)>& fn) override {
    write_back();
    // Own copies of the bounds: fn may call other accessors, which reuse key_buf_.
    std::string lower = build_key(id);
    std::string upper = prefix_successor(lower);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro = read_options_;
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    uint8_t f = flags(id);
    for (it->Seek(lower); it->Valid(); it->Next()) {
      std::string_view value = to_view(it->value());
      if ((f & flag_ttl) && !live_payload(value, table_->clock(f), value)) continue;
      if (!fn(to_view(it->key()).substr(lower.size()), value)) return;
    }
    note(it->status());
  }

  void list_add(state_id id, std::string_view element) override {
    build_key(id);
    uint8_t f = flags(id);
    value_buf_.clear();
    size_t payload = element.size() + ((f & flag_ttl) ? expiry_bytes : 0);
    put_varint32(value_buf_, static_cast<uint32_t>(payload));
    if (f & flag_ttl) put_i64_ordered(value_buf_, expiry_for(id, f));
    value_buf_.append(element);
    batch_.Clear();
    note(batch_.Merge(to_slice(key_buf_), to_slice(value_buf_)));
    note(db_->Write(write_options_, &batch_));
  }

  void list_scan(state_id id, const std::function<bool(std::string_view)>& fn) override {
    build_key(id);
    rocksdb::PinnableSlice list;
    rocksdb::Status s = db_->Get(read_options_, db_->DefaultColumnFamily(), key_buf_, &list);
    if (!s.ok()) {
      if (!s.IsNotFound()) note(s);
      return;
    }
    uint8_t f = flags(id);
    bool ok = for_each_element(to_view(list), [&](std::string_view payload) {
      if ((f & flag_ttl) && !live_payload(payload, table_->clock(f), payload)) return true;
      return fn(payload);
    });
    if (!ok) note(rocksdb::Status::Corruption("malformed list state"));
  }

  void list_clear(state_id id) override {
    build_key(id);  // Lists are not cached: delete in RocksDB directly.
    batch_.Clear();
    note(batch_.Delete(to_slice(key_buf_)));
    note(db_->Write(write_options_, &batch_));
  }

  void scan_all(
      state_id id,
      const std::function<bool(uint32_t, std::string_view, std::string_view)>& fn) override {
    write_back();
    // Key groups lead the key, so the entries of one state id are one range per key group:
    // seek to [kg][id] and, past its range, jump to the next key group present.
    std::string upper;
    put_u16_be(upper, registry_key_group);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro = read_options_;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    uint8_t f = flags(id);
    std::string seek;
    auto seek_to = [&](uint32_t kg) {
      seek.clear();
      put_u16_be(seek, static_cast<uint16_t>(kg));
      put_u16_be(seek, id);
      it->Seek(seek);
    };
    seek_to(0);
    while (it->Valid()) {
      std::string_view key = to_view(it->key());
      uint32_t kg = get_u16_be(key.data());
      state_id kid = get_u16_be(key.data() + 2);
      if (kid < id) {
        seek_to(kg);
        continue;
      }
      if (kid > id) {
        if (kg + 1 >= registry_key_group) break;
        seek_to(kg + 1);
        continue;
      }
      std::string_view rest = key.substr(prefix_bytes);
      std::string_view value = to_view(it->value());
      bool go_on = true;
      if (f & flag_list) {
        bool ok = for_each_element(value, [&](std::string_view payload) {
          if ((f & flag_ttl) && !live_payload(payload, table_->clock(f), payload)) return true;
          go_on = fn(kg, rest, payload);
          return go_on;
        });
        if (!ok) note(rocksdb::Status::Corruption("malformed list state"));
      } else if (!(f & flag_ttl) || live_payload(value, table_->clock(f), value)) {
        go_on = fn(kg, rest, value);
      }
      if (!go_on) return;
      it->Next();
    }
    note(it->status());
  }

  void advance_clocks(int64_t event_time_us, int64_t processing_time_us) override {
    table_->event_clock.store(event_time_us, std::memory_order_relaxed);
    table_->processing_clock.store(processing_time_us, std::memory_order_relaxed);
  }

  uint64_t estimated_size_bytes() override {
    // No write-back: a metric must not flush the cache (a RocksDB write on the actor thread).
    uint64_t live = 0;
    uint64_t mem = 0;
    db_->GetIntProperty(rocksdb::DB::Properties::kEstimateLiveDataSize, &live);
    db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
    return live + mem + cache_.bytes();
  }

  status compact() override {
    write_back();
    if (!error_.ok()) return error_;
    // RocksDB becomes the only copy: the cache, now clean, is emptied (the second evict drops
    // what the first kept as recently used), so estimated_size_bytes() measures RocksDB alone.
    cache_.evict();
    cache_.evict();
    rocksdb::FlushOptions fo;
    fo.wait = true;
    if (auto s = db_->Flush(fo); !s.ok()) {
      return make_error(errc::state_error, "state backend: flush failed: " + s.ToString());
    }
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (auto s = db_->CompactRange(co, nullptr, nullptr); !s.ok()) {
      return make_error(errc::state_error, "state backend: compaction failed: " + s.ToString());
    }
    return {};
  }

 private:
  static std::string describe(uint8_t f) {
    std::string d = kind_name(kind_of(f));
    if (f & flag_ttl) {
      d += (f & flag_processing_clock) ? " state with processing-time TTL"
                                       : " state with event-time TTL";
    } else {
      d += " state without TTL";
    }
    return d;
  }

  /// Reads the registry of declared states (empty when fresh).
  status load_registry() {
    std::string lower;
    put_u16_be(lower, registry_key_group);
    put_u16_be(lower, 0xffff);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek(lower); it->Valid() && it->key().starts_with(lower); it->Next()) {
      std::string_view v = to_view(it->value());
      if (v.size() != 3) {
        return make_error(errc::state_error, "state backend: malformed state registry entry");
      }
      state_id id = get_u16_be(v.data());
      auto f = static_cast<uint8_t>(v[2]);
      table_->flags[id].store(f, std::memory_order_relaxed);
      ids_.emplace(std::string(to_view(it->key()).substr(lower.size())), id);
      if (id >= first_reserved_id) {
        next_reserved_id_ = std::max<state_id>(next_reserved_id_, id + 1);
      } else {
        next_user_id_ = std::max<state_id>(next_user_id_, id + 1);
      }
    }
    if (!it->status().ok()) {
      return make_error(errc::state_error,
                        "state backend: cannot read state registry: " + it->status().ToString());
    }
    return {};
  }

  uint8_t flags(state_id id) const {
    uint8_t f = table_->flags[id].load(std::memory_order_relaxed);
    assert(f & flag_declared);  // Accessors take ids returned by declare().
    return f;
  }

  /// key_buf_ = [key group][id][current key]; callers append the suffix.
  const std::string& build_key(state_id id) {
    key_buf_.resize(prefix_bytes + key_.size());
    key_buf_[2] = static_cast<char>(id >> 8);
    key_buf_[3] = static_cast<char>(id & 0xff);
    return key_buf_;
  }

  int64_t expiry_for(state_id id, uint8_t f) const {
    int64_t now = table_->clock(f);
    if (now == no_time) return never;
    int64_t ttl = ttl_us_.find(id)->second;
    return now > never - ttl ? never : now + ttl;
  }

  /// How lookup() fills a new cache entry: from RocksDB (reads), or not at all, either knowing
  /// nothing of RocksDB (blind writes) or knowing that RocksDB has no value (map_put_new()).
  enum class lookup_mode : uint8_t { load, blind, known_new };

  /// Before entries are added to the cache: once it is over its budget, writes it back and drops
  /// the entries not used since the last eviction.
  void make_room() {
    if (cache_.over_budget()) {
      write_back();
      cache_.evict();
    }
  }

  /// The cache entry of key_buf_, created on a miss as `mode` says.
  uint32_t lookup(lookup_mode mode) {
    uint32_t i = cache_.find(key_buf_);
    if (i != detail::state_cache::npos) return i;
    make_room();
    if (mode != lookup_mode::load) return cache_.insert(key_buf_, mode == lookup_mode::blind);
    rocksdb::Status s = db_->Get(read_options_, db_->DefaultColumnFamily(), key_buf_, &pinned_);
    // A failed read proves nothing: the entry may be in RocksDB.
    i = cache_.insert(key_buf_, !s.ok() && !s.IsNotFound());
    if (s.ok()) {
      cache_.set_loaded(i, to_view(pinned_));
    } else if (!s.IsNotFound()) {
      note(s);
    }
    pinned_.Reset();  // Holds no memtable or block between calls.
    return i;
  }

  void prefetch(state_id id, int64_t ns, std::span<const key_ref> keys) override {
    if (keys.empty()) return;
    make_room();
    // The storage keys, as build_key() and the namespace make them, one after the other.
    prefetch_keys_.clear();
    prefetch_ends_.clear();
    for (const key_ref& k : keys) {
      assert(k.key_group < registry_key_group);  // As in set_current_key().
      put_u16_be(prefetch_keys_, static_cast<uint16_t>(k.key_group));
      put_u16_be(prefetch_keys_, id);
      prefetch_keys_.append(k.key);
      put_i64_ordered(prefetch_keys_, ns);
      prefetch_ends_.push_back(prefetch_keys_.size());
    }
    // The keys the cache lacks: RocksDB holds their current values (the cache writes back an
    // entry before it drops it).
    prefetch_slices_.clear();
    size_t begin = 0;
    for (size_t end : prefetch_ends_) {
      rocksdb::Slice key(prefetch_keys_.data() + begin, end - begin);
      begin = end;
      if (cache_.find(to_view(key)) == detail::state_cache::npos) prefetch_slices_.push_back(key);
    }
    const size_t n = prefetch_slices_.size();
    if (n == 0) return;
    if (prefetch_values_.size() < n) prefetch_values_.resize(n);
    prefetch_statuses_.assign(n, rocksdb::Status());
    db_->MultiGet(read_options_, db_->DefaultColumnFamily(), n, prefetch_slices_.data(),
                  prefetch_values_.data(), prefetch_statuses_.data());
    for (size_t i = 0; i < n; ++i) {
      const rocksdb::Status& s = prefetch_statuses_[i];
      const std::string_view key = to_view(prefetch_slices_[i]);
      // A key repeated in `keys` is read each time but cached once; a failed read is left to
      // get(), which reports it.
      if (s.ok() || s.IsNotFound()) {
        if (cache_.find(key) == detail::state_cache::npos) {
          const uint32_t e = cache_.insert(key, false);
          if (s.ok()) cache_.set_loaded(e, to_view(prefetch_values_[i]));
        }
      }
      prefetch_values_[i].Reset();  // Holds no memtable or block after the call.
    }
  }

  bool read_value(state_id id, std::string& out) {
    const auto& e = cache_.at(lookup(lookup_mode::load));
    if (!e.present) return false;
    std::string_view value = e.value();
    uint8_t f = flags(id);
    if ((f & flag_ttl) && !live_payload(value, table_->clock(f), value)) return false;
    out.assign(value.data(), value.size());
    return true;
  }

  void write_value(state_id id, std::string_view value, lookup_mode mode = lookup_mode::blind) {
    uint8_t f = flags(id);
    uint32_t i = lookup(mode);
    if (f & flag_ttl) {
      write_with_expiry(i, expiry_for(id, f), value);
    } else {
      cache_.write(i, value);
    }
  }

  /// Writes cache entry `i` as a TTL value: [expiry][value].
  void write_with_expiry(uint32_t i, int64_t expiry, std::string_view value) {
    value_buf_.clear();
    put_i64_ordered(value_buf_, expiry);
    value_buf_.append(value);
    cache_.write(i, value_buf_);
  }

  result<std::string> checkpoint_to(const std::string& dir) override {
    // Young dirty entries go to the delta file, the rest to RocksDB (see split_dirty()).
    delta_.Clear();
    batch_.Clear();
    cache_.split_dirty(
        max_delta_rounds, max_delta_bytes,
        [&](const detail::state_cache::entry& e) { add_entry(delta_, e); },
        [&](const detail::state_cache::entry& e) { write_entry(e); });
    if (batch_.Count() > 0) note(db_->Write(write_options_, &batch_));
    if (!error_.ok()) return error_.err();
    rocksdb::Checkpoint* raw = nullptr;
    if (auto s = rocksdb::Checkpoint::Create(db_.get(), &raw); !s.ok()) {
      return make_error(errc::state_error, "state backend: checkpoint: " + s.ToString());
    }
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // log_size_for_flush 0: always flush first (writes skip the WAL, so the memtables must
    // become SST files to be part of the checkpoint).
    if (auto s = checkpoint->CreateCheckpoint(dir, 0); !s.ok()) {
      return make_error(errc::state_error,
                        "state backend: checkpoint to " + dir + ": " + s.ToString());
    }
    if (delta_.Count() > 0) VIGIL_TRY(write_delta(dir, delta_.Data()));
    std::string identity;
    if (auto s = db_->GetDbIdentity(identity); !s.ok()) {
      return make_error(errc::state_error, "state backend: identity: " + s.ToString());
    }
    return identity;
  }

  void remove_key() { cache_.erase(lookup(lookup_mode::blind)); }

  /// Writes the dirty cache entries to RocksDB, in key order. Everything that reads RocksDB
  /// other than by point lookup of value or map state (iterators, compaction, checkpoints) calls
  /// it first. Entries erased before they ever reached RocksDB are not dirty: the cache dropped
  /// them, so they cost neither a Put nor a tombstone.
  void write_back() {
    if (!cache_.has_dirty()) return;
    batch_.Clear();
    cache_.drain_dirty([&](const detail::state_cache::entry& e) { write_entry(e); });
    if (batch_.Count() > 0) note(db_->Write(write_options_, &batch_));
  }

  /// Adds a cache entry to `batch`: a Put of its value, or a Delete if it is absent. An expired
  /// TTL value that RocksDB does not hold is left out: no read would see it and the compaction
  /// filter would delete it (so TTL state that expires between two write-backs, like state that
  /// is erased, never reaches RocksDB).
  void add_entry(rocksdb::WriteBatch& batch, const detail::state_cache::entry& e) {
    if (e.present && !e.stored && expired(e)) return;
    note(e.present ? batch.Put(to_slice(e.key()), to_slice(e.value()))
                   : batch.Delete(to_slice(e.key())));
  }

  /// Whether a cache entry is a value of an event-time TTL state whose expiry the clock reached.
  bool expired(const detail::state_cache::entry& e) const {
    std::string_view key = e.key();
    uint8_t f = table_->flags[get_u16_be(key.data() + 2)].load(std::memory_order_relaxed);
    std::string_view value = e.value();
    // Event-time clocks only move forward; a processing-time clock follows the wall clock, which
    // may step back and make the value visible again.
    return (f & flag_ttl) && !(f & flag_processing_clock) && value.size() >= expiry_bytes &&
           get_i64_ordered(value.data()) <= table_->clock(f);
  }

  /// Adds a cache entry to batch_, writing the batch to RocksDB once it is large; the caller
  /// writes the rest.
  void write_entry(const detail::state_cache::entry& e) {
    add_entry(batch_, e);
    if (batch_.GetDataSize() >= max_batch_bytes) {
      note(db_->Write(write_options_, &batch_));
      batch_.Clear();
    }
  }

  /// Keeps the first RocksDB failure; compact() reports it.
  void note(const rocksdb::Status& s) {
    if (!s.ok() && error_.ok()) {
      error_ = make_error(errc::state_error, "state backend: " + s.ToString());
    }
  }

  std::shared_ptr<ttl_table> table_;
  ttl_compaction_filter filter_;  // Outlives db_ (declared before it).
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
  std::unordered_map<std::string, state_id> ids_;
  std::unordered_map<state_id, int64_t> ttl_us_;
  state_id next_user_id_ = 0;
  state_id next_reserved_id_ = first_reserved_id;
  status error_;

  static constexpr size_t max_batch_bytes = 1 << 20;  ///< Per write-back WriteBatch.
  detail::state_cache cache_;  ///< Value and map entries; RocksDB lags it until write_back().

  uint32_t key_group_ = 0;
  std::string key_;                ///< The current key.
  std::string key_buf_;            ///< [key group][state id][key][suffix], reused per call.
  std::string value_buf_;          ///< TTL values, list elements.
  rocksdb::WriteBatch batch_;      ///< One write, reused per call.
  rocksdb::WriteBatch delta_;      ///< checkpoint_to(): the cache entries kept out of RocksDB.
  rocksdb::PinnableSlice pinned_;  ///< Get() result, reused per call; empty between calls.
  // prefetch(), reused per call.
  std::string prefetch_keys_;                            ///< The storage keys, concatenated.
  std::vector<size_t> prefetch_ends_;                    ///< Where each key of prefetch_keys_ ends.
  std::vector<rocksdb::Slice> prefetch_slices_;          ///< The keys the cache lacks.
  std::vector<rocksdb::PinnableSlice> prefetch_values_;  ///< Empty between calls.
  std::vector<rocksdb::Status> prefetch_statuses_;
};

}  // namespace

status state_backend::merge_key_groups(const std::vector<std::string>& sources,
                                       key_group_range range, const std::string& target) {
  auto open_db = [](const std::string& dir, bool create,
                    std::unique_ptr<rocksdb::DB>& db) -> status {
    rocksdb::Options o;
    o.create_if_missing = create;
    o.error_if_exists = create;
    o.merge_operator = std::make_shared<list_merge_operator>();  // Lists read merged.
    // A source with a cache delta is opened for writing, to apply the delta before reading.
    std::error_code ec;
    const bool delta = !create && std::filesystem::exists(dir + "/" + delta_file_name, ec);
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = create || delta ? rocksdb::DB::Open(o, dir, &raw)
                                        : rocksdb::DB::OpenForReadOnly(o, dir, &raw);
    if (!s.ok()) {
      return make_error(errc::state_error, "rescaling: cannot open '" + dir + "': " + s.ToString());
    }
    db.reset(raw);
    if (delta) {
      if (auto st = apply_delta(*db, dir); !st) return with_context("rescaling: ", st.err());
    }
    return {};
  };
  std::unique_ptr<rocksdb::DB> out;
  VIGIL_TRY(open_db(target, true, out));
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  std::string registry;  // The first source's registry entries, to compare the others with.
  for (size_t i = 0; i < sources.size(); ++i) {
    std::unique_ptr<rocksdb::DB> in;
    VIGIL_TRY(open_db(sources[i], false, in));
    std::unique_ptr<rocksdb::Iterator> it(in->NewIterator(rocksdb::ReadOptions()));
    rocksdb::WriteBatch batch;
    std::string this_registry;
    auto flush = [&]() -> status {
      if (batch.Count() == 0) return {};
      if (auto s = out->Write(wo, &batch); !s.ok()) {
        return make_error(errc::state_error,
                          "rescaling: writing '" + target + "': " + s.ToString());
      }
      batch.Clear();
      return {};
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice key = it->key();
      if (key.size() < 2) continue;
      uint32_t kg = get_u16_be(key.data());
      if (kg == registry_key_group) {
        this_registry.append(key.data(), key.size());
        this_registry.push_back('\0');
        this_registry.append(it->value().data(), it->value().size());
        this_registry.push_back('\0');
        if (i == 0) batch.Put(key, it->value());
      } else if (range.contains(kg)) {
        batch.Put(key, it->value());
      }
      if (batch.GetDataSize() >= (4u << 20)) VIGIL_TRY(flush());
    }
    if (!it->status().ok()) {
      return make_error(errc::state_error,
                        "rescaling: reading '" + sources[i] + "': " + it->status().ToString());
    }
    VIGIL_TRY(flush());
    if (i == 0) {
      registry = std::move(this_registry);
    } else if (this_registry != registry) {
      return make_error(errc::state_error,
                        "rescaling: the old subtasks declared different states; the checkpoint "
                        "does not come from this operator");
    }
  }
  if (auto s = out->Close(); !s.ok()) {
    return make_error(errc::state_error, "rescaling: closing '" + target + "': " + s.ToString());
  }
  return {};
}

result<std::unique_ptr<state_backend>> state_backend::open(const options& opts) {
  auto backend = std::make_unique<rocksdb_state_backend>(opts.write_buffer_bytes);
  VIGIL_TRY(backend->start(opts));
  return std::unique_ptr<state_backend>(std::move(backend));
}

}  // namespace vigil
