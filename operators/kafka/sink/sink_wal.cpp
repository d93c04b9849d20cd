#include "operators/kafka/sink/sink_wal.hpp"

#include <cstring>

namespace vigil::kafka {

namespace {

constexpr char magic[4] = {'V', 'K', 'S', 'K'};

template <class T>
void put(std::string& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
  }
}

/// Reads little-endian fields from checkpoint bytes, remembering whether it ran out.
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}

  template <class T>
  T get() {
    if (bytes_.size() - at_ < sizeof(T)) {
      short_ = true;
      at_ = bytes_.size();
      return T{};
    }
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      v |= uint64_t{static_cast<uint8_t>(bytes_[at_ + i])} << (8 * i);
    }
    at_ += sizeof(T);
    return static_cast<T>(v);
  }

  std::string_view take(uint64_t n) {
    if (bytes_.size() - at_ < n) {
      short_ = true;
      at_ = bytes_.size();
      return {};
    }
    auto s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }

  size_t left() const { return bytes_.size() - at_; }
  bool short_read() const { return short_; }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
  bool short_ = false;
};

error bad_state(const std::string& what) {
  return make_error(errc::state_error, "kafka_sink: checkpoint state: " + what);
}

}  // namespace

void wal_epoch::end_message() {
  entry e;
  if (key_start_ != SIZE_MAX) {
    e.has_key = true;
    e.key_size = static_cast<uint32_t>(value_start_ - key_start_);
  }
  e.value_size = static_cast<uint32_t>(data_.size() - value_start_);
  entries_.push_back(e);
  key_start_ = SIZE_MAX;
}

void encode_sink_state(std::string& out, const std::string& sink_id, uint32_t subtask,
                       const std::string& run, int64_t last_checkpoint_id,
                       const std::vector<wal_epoch>& pending) {
  size_t total = 40 + sink_id.size() + run.size();
  for (const auto& e : pending) total += 24 + e.size() * 9 + e.data().size();
  out.reserve(out.size() + total);
  out.append(magic, sizeof magic);
  put<uint32_t>(out, sink_state_version);
  put<uint32_t>(out, static_cast<uint32_t>(sink_id.size()));
  out += sink_id;
  put<uint32_t>(out, subtask);
  put<uint32_t>(out, static_cast<uint32_t>(run.size()));
  out += run;
  put<int64_t>(out, last_checkpoint_id);
  put<uint32_t>(out, static_cast<uint32_t>(pending.size()));
  for (const auto& e : pending) {
    put<int64_t>(out, e.epoch);
    put<uint64_t>(out, e.size());
    put<uint64_t>(out, e.data().size());
    for (const auto& m : e.entries()) {
      put<uint8_t>(out, m.has_key ? 1 : 0);
      put<uint32_t>(out, m.key_size);
      put<uint32_t>(out, m.value_size);
    }
    out += e.data();
  }
}

result<sink_state> decode_sink_state(std::string_view bytes) {
  if (bytes.size() < sizeof magic + 4 || std::memcmp(bytes.data(), magic, sizeof magic) != 0) {
    return bad_state("not a kafka_sink state (bad magic)");
  }
  reader in(bytes.substr(sizeof magic));
  auto version = in.get<uint32_t>();
  if (version != 1 && version != sink_state_version) {
    return bad_state("version " + std::to_string(version) +
                     " is not supported (this build reads versions 1 to " +
                     std::to_string(sink_state_version) + ")");
  }
  sink_state st;
  if (version >= 2) {
    auto id_size = in.get<uint32_t>();
    st.sink_id = std::string(in.take(id_size));
    st.subtask = in.get<uint32_t>();
    if (in.short_read()) return bad_state("truncated");
    if (st.sink_id.empty()) return bad_state("empty sink id");
  }
  auto run_size = in.get<uint32_t>();
  st.run = std::string(in.take(run_size));
  st.last_checkpoint_id = in.get<int64_t>();
  auto count = in.get<uint32_t>();
  for (uint32_t i = 0; i < count && !in.short_read(); ++i) {
    wal_epoch e;
    e.epoch = in.get<int64_t>();
    auto messages = in.get<uint64_t>();
    auto data_size = in.get<uint64_t>();
    // 9 bytes of sizes per message must still be there: refuses absurd counts up front.
    if (in.short_read() || messages > in.left() / 9) return bad_state("truncated");
    std::vector<wal_epoch::entry> entries(messages);
    uint64_t sum = 0;
    for (auto& m : entries) {
      auto has_key = in.get<uint8_t>();
      if (has_key > 1) return bad_state("bad key flag");
      m.has_key = has_key == 1;
      m.key_size = in.get<uint32_t>();
      m.value_size = in.get<uint32_t>();
      if (!m.has_key && m.key_size != 0) return bad_state("key size without a key");
      sum += uint64_t{m.key_size} + m.value_size;
    }
    if (sum != data_size) return bad_state("message sizes do not add up to the data size");
    auto data = in.take(data_size);
    if (in.short_read()) return bad_state("truncated");
    e.assign(std::string(data), std::move(entries));
    st.pending.push_back(std::move(e));
  }
  if (in.short_read()) return bad_state("truncated");
  if (in.left() != 0) return bad_state(std::to_string(in.left()) + " trailing bytes");
  return st;
}

}  // namespace vigil::kafka
